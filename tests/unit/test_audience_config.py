"""Audience definitions are checked when definitions load, with the file named."""

from pathlib import Path

import pytest

from cdp_assets.audiences.assets import check_audience_sql
from cdp_assets.audiences.config import load_audience_settings
from cdp_assets.settings import ConfigError
from cdp_assets.sql_models import SqlModelError, parse_model


def write(tmp_path: Path, sql: str, settings: str | None) -> Path:
    folder = tmp_path / "audiences"
    folder.mkdir()
    (folder / "vip.sql").write_text(sql, encoding="utf-8")
    if settings is not None:
        (folder / "vip.yaml").write_text(settings, encoding="utf-8")
    return folder / "vip.sql"


def test_an_audience_that_does_not_select_profile_id_is_refused(tmp_path):
    path = write(tmp_path, "SELECT contact_id FROM core.unified_profiles", "")

    with pytest.raises(SqlModelError, match=r"vip.sql: an audience must select a profile_id column"):
        check_audience_sql(parse_model(tmp_path, path))


def test_an_audience_without_its_yaml_is_refused(tmp_path):
    path = write(tmp_path, "SELECT profile_id FROM core.unified_profiles", None)

    with pytest.raises(ConfigError, match=r"vip.sql: an audience needs vip.yaml beside it"):
        load_audience_settings(path)


def test_an_unknown_sync_mode_is_refused_with_the_choices(tmp_path):
    path = write(tmp_path, "SELECT profile_id FROM core.unified_profiles", "sync_mode: mirror\n")

    with pytest.raises(ConfigError, match=r"vip.yaml: sync_mode must be one of add_remove, replace"):
        load_audience_settings(path)


def test_settings_default_to_marketing_consent_and_add_remove(tmp_path):
    path = write(tmp_path, "SELECT profile_id FROM core.unified_profiles",
                 "destinations:\n  meta_custom_audiences:\n    audience_id: 123\n")

    settings = load_audience_settings(path)

    assert (settings.purpose, settings.sync_mode, settings.destinations) == (
        "marketing", "add_remove", {"meta_custom_audiences": "123"})
