"""Sync YAML files are checked when definitions load; each mistake names the file and the field."""

import pytest

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import parse_sync
from cdp_assets.settings import ConfigError
from tests.destinations.records_world import COLUMNS, HUBSPOT_SYNC

MODELS = {"core.unified_profiles": COLUMNS}


def parse(tmp_path, name="crm_contacts", **changes):
    settings = {**HUBSPOT_SYNC, **changes}
    return parse_sync(tmp_path / f"{name}.yaml", settings, discover(), MODELS, ("vip",))


def refused(tmp_path, **changes) -> str:
    with pytest.raises(ConfigError) as raised:
        parse(tmp_path, **changes)
    return str(raised.value)


def test_an_unknown_column_names_the_file_and_the_column(tmp_path):
    message = refused(tmp_path, fields={"lifetime_valu": {"field": "cdp_lifetime_value", "type": "number"}})
    assert message.startswith(f"{tmp_path / 'crm_contacts.yaml'}: fields: column 'lifetime_valu' is not a column")


def test_an_unknown_field_type_is_refused(tmp_path):
    message = refused(tmp_path, fields={"order_count": {"field": "cdp_order_count", "type": "integer"}})
    assert message.endswith("fields.order_count.type must be one of string, number, bool, date, datetime")


def test_a_missing_key_is_refused(tmp_path):
    settings = {k: v for k, v in HUBSPOT_SYNC.items() if k != "key"}
    with pytest.raises(ConfigError, match="key must name the model's column and the destination's field"):
        parse_sync(tmp_path / "crm_contacts.yaml", settings, discover(), MODELS, ("vip",))


def test_an_unknown_mode_is_refused(tmp_path):
    assert refused(tmp_path, mode="append").endswith("mode must be one of upsert, mirror")


def test_an_unknown_setting_is_refused(tmp_path):
    assert "consent_purpos" in refused(tmp_path, consent_purpos="none")


def test_an_unknown_destination_lists_the_known_ones(tmp_path):
    assert "destination must be one of" in refused(tmp_path, destination="marketo")


def test_a_model_that_is_not_a_sql_model_is_refused(tmp_path):
    assert "model 'core.profiles' is not a SQL model" in refused(tmp_path, model="core.profiles")


def test_mirror_must_delete_what_leaves(tmp_path):
    assert "on_leave: delete" in refused(tmp_path, mode="mirror", on_leave="clear")


def test_two_columns_to_one_field_are_refused(tmp_path):
    message = refused(tmp_path, fields={"first_name": "firstname", "last_name": "firstname"})
    assert message.endswith("fields map more than one column to firstname")


def test_a_wrong_cron_schedule_is_refused(tmp_path):
    assert "schedule 'every hour' is not a cron expression" in refused(tmp_path, schedule="every hour")


def test_a_consent_purpose_outside_the_known_ones_is_refused(tmp_path):
    assert refused(tmp_path, consent_purpose="sales").endswith(
        "consent_purpose must be one of marketing, ads_personalization, none")


def test_a_sync_file_name_must_be_an_asset_name(tmp_path):
    with pytest.raises(ConfigError, match="lowercase letters, digits and _"):
        parse(tmp_path, name="CRM-contacts")


def test_undeclared_consent_loads_and_is_recorded_as_undeclared(tmp_path):
    assert parse(tmp_path, consent_purpose=None).consent_purpose is None


def test_audience_templates_give_one_boolean_field_and_one_list_per_audience(tmp_path):
    sync = parse(tmp_path)
    assert [(f.column, f.field, f.type) for f in sync.audience_fields] == [
        ("audience_vip", "cdp_audience_vip", "bool")]
    assert sync.lists == {"vip": "cdp: vip"}



def test_a_sync_file_that_is_not_yaml_names_the_file_and_the_line(tmp_path):
    from cdp_assets.activation.records.config import load_syncs

    (tmp_path / "crm.yaml").write_text("destination: hubspot\n: [\n")
    with pytest.raises(ConfigError) as raised:
        load_syncs(discover(), MODELS, ("vip",), tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'crm.yaml'}: is not valid YAML at line ")
