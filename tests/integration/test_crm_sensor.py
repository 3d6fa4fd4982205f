"""The CRM file sensor: file system only, cursor in Dagster, one run per new or changed set of files."""

import os

import dagster as dg

from cdp_assets.ingest.crm_sensor import LOADERS, SEEN_KEY, crm_files_sensor
from cdp_assets.ingest.landing import LandingZone


def evaluate(landing, cursor=None):
    # No warehouse resource is given: the sensor must not need one.
    context = dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral(),
                                      resources={"landing": LandingZone(path=str(landing))})
    return crm_files_sensor(context)


def test_new_files_launch_one_ingestion_run(tmp_path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "contacts.csv").write_text("contact_id\n")
    (tmp_path / "crm" / "orders.csv.gz").write_bytes(b"")

    result = evaluate(tmp_path)

    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["cdp/changed_files"] == "2"


def test_nothing_new_launches_nothing(tmp_path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "contacts.csv").write_text("contact_id\n")
    first = evaluate(tmp_path)

    second = evaluate(tmp_path, first.cursor)

    assert (second.run_requests, second.skip_reason.skip_message) == (
        [], f"no new or changed files in {tmp_path / 'crm'} that a load has not seen")


def test_a_changed_file_launches_a_run_with_a_new_run_key(tmp_path):
    (tmp_path / "crm").mkdir()
    path = tmp_path / "crm" / "contacts.csv"
    path.write_text("contact_id\n")
    first = evaluate(tmp_path)
    path.write_text("contact_id\nC1\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))

    second = evaluate(tmp_path, first.cursor)

    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_files_that_are_not_data_are_ignored(tmp_path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "README.txt").write_text("notes")
    (tmp_path / "crm" / ".hubspot-api-contacts-x.jsonl.gz.partial").write_bytes(b"")

    assert evaluate(tmp_path).run_requests == []


def test_the_sensor_runs_by_default_and_targets_the_ingestion_job():
    assert (crm_files_sensor.default_status, crm_files_sensor.job_name) == (
        dg.DefaultSensorStatus.RUNNING, "crm_ingest_job")


def test_files_both_loaders_already_saw_launch_nothing(tmp_path):
    """A file `cdp-assets run` or the demo just loaded is not loaded again by a sensor run."""
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "contacts.csv").write_text("contact_id\n")
    landing = LandingZone(path=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    for key in LOADERS:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=key, metadata={SEEN_KEY: dg.MetadataValue.json(landing.crm_file_states())}))

    context = dg.build_sensor_context(instance=instance, resources={"landing": landing})

    assert crm_files_sensor(context).run_requests == []


def test_a_file_only_one_loader_saw_still_launches_a_run(tmp_path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "orders.csv").write_text("order_id\n")
    landing = LandingZone(path=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=LOADERS[0], metadata={SEEN_KEY: dg.MetadataValue.json(landing.crm_file_states())}))

    context = dg.build_sensor_context(instance=instance, resources={"landing": landing})

    assert len(crm_files_sensor(context).run_requests) == 1
