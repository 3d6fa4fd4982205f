"""Shared fixtures: a warehouse per backend, generated landing data, and a guard against network access."""

import ipaddress
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from cdp_assets import settings
from cdp_assets.activation.destinations.registry import ad_platforms, discover
from cdp_assets.resources.warehouse import WarehouseResource, normalize_url
from cdp_assets.sample_data import write_crm_extracts, write_ga4_sample

IN_CI = os.environ.get("CI", "").lower() == "true"
SAMPLE_PEOPLE = 300
SAMPLE_DAYS = 30

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def require(condition: bool, reason: str) -> None:
    """Skip with the reason outside CI; under CI=true a missing prerequisite is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"prerequisite missing under CI=true: {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests may only talk to this machine: any other address is refused before a packet leaves."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = host == "localhost"
            if not local:
                raise ConnectionRefusedError(f"test tried to reach {host}: tests never leave 127.0.0.1")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Each test starts from the documented defaults, whatever the developer's shell exports; run failures are
    recorded in the test's own alert log."""
    destination_variables = {v for platform in ad_platforms().values() for v in platform.variables} | {
        v for destination in discover().values() for v in destination.variables}
    for name in ("CDP_WAREHOUSE_URL", "CDP_LANDING_DIR", "CDP_EGRESS_MODE", "CDP_TIMEZONE", "DAGSTER_HOME",
                 "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_API_URL", "GA4_PROPERTY_ID", "GA4_API_URL",
                 "GOOGLE_APPLICATION_CREDENTIALS", "CDP_EXCHANGE_RATES_FILE", "CDP_REPORTING_CURRENCY",
                 "CDP_SCHEDULE_HOUR", "CDP_ALERT_WEBHOOK_URL", "CDP_ALERT_LOG", "CDP_RETENTION_REQUEST_BODY_DAYS",
                 "CDP_RETENTION_QUARANTINE_DAYS", "CDP_RETENTION_SNAPSHOT_DAYS", "CDP_START_DATE", "CDP_SYNCS_DIR",
                 "CDP_DESTINATION_DIRS",
                 *sorted(destination_variables)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDP_ALERT_LOG", str(tmp_path / "alerts" / "run_failures.jsonl"))


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    base = os.environ.get("CDP_TEST_POSTGRES_URL")
    require(bool(base), "CDP_TEST_POSTGRES_URL is not set, so the PostgreSQL variant cannot run")
    admin_url = sa.engine.make_url(normalize_url(base))
    name = f"cdp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path) -> WarehouseResource:
    """The same test on the embedded DuckDB file and on PostgreSQL."""
    if request.param == "duckdb":
        return WarehouseResource(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return WarehouseResource(url=request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def module_warehouse(request, tmp_path_factory) -> Iterator[WarehouseResource]:
    """A warehouse per backend shared by a module's tests that only read what one run wrote."""
    if request.param == "duckdb":
        yield WarehouseResource(url=f"duckdb:///{tmp_path_factory.mktemp('module') / 'warehouse.duckdb'}")
        return
    with postgres_database() as url:
        yield WarehouseResource(url=url)


@pytest.fixture(scope="session")
def sample_landing(tmp_path_factory) -> Path:
    """Messy CRM extracts for 300 people whose 30 days of orders end yesterday, and the GA4 sample for those
    days (read-only: copy to change)."""
    landing = tmp_path_factory.mktemp("landing")
    end = settings.yesterday()
    write_crm_extracts(landing, SAMPLE_PEOPLE, end, SAMPLE_DAYS)
    write_ga4_sample(landing, end - timedelta(days=SAMPLE_DAYS - 1), end)
    return landing


@pytest.fixture
def run_day_key() -> date:
    return settings.yesterday()


def pytest_sessionfinish(session, exitstatus):
    session.config.cdp_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the process right after pytest's summary, with pytest's exit status.

    Importing duckdb_engine and Great Expectations into one process makes DuckDB 2's nanobind bindings print
    a wall of benign "leaked instance" warnings during interpreter teardown (nothing is lost: see nanobind's
    refleaks documentation). They would bury the summary line CI reads, and there is nothing left to do.
    """
    status = getattr(config, "cdp_exitstatus", None)
    if status is not None and not hasattr(config, "workerinput"):  # xdist workers report to the controller
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
