"""identity.yaml is validated on load; every error names the file and the setting."""

import pytest
import yaml

from cdp_assets.identity.config import IDENTITY_YAML, load_identity_config
from cdp_assets.settings import ConfigError


def edited(tmp_path, change) -> object:
    data = yaml.safe_load(IDENTITY_YAML.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "identity.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_shipped_configuration_loads_with_types_in_priority_order():
    config = load_identity_config()

    assert [t.name for t in config.types] == ["user_id", "contact_id", "order_id", "email", "phone",
                                              "ga_client_id", "fbp"]
    assert [s.name for s in config.sources] == ["contact", "order"]


def test_a_source_identifier_of_an_undeclared_type_is_refused(tmp_path):
    path = edited(tmp_path, lambda d: d["sources"]["order"]["identifiers"].update(ttclid="ttclid"))

    with pytest.raises(ConfigError, match=r"sources.order.identifiers.ttclid is not declared under identifier_types"):
        load_identity_config(path)


def test_a_degree_key_the_source_does_not_map_is_refused(tmp_path):
    path = edited(tmp_path, lambda d: d["sources"]["order"].update(degree_key="ga_client_id"))

    with pytest.raises(ConfigError, match=r"sources.order.degree_key names an identifier type the source maps"):
        load_identity_config(path)


def test_a_misspelt_type_setting_is_refused(tmp_path):
    path = edited(tmp_path, lambda d: d["identifier_types"]["email"].update(max_record=5))

    with pytest.raises(ConfigError, match=r"identifier_types.email has unknown settings max_record"):
        load_identity_config(path)


def test_a_new_identifier_type_is_config_only(tmp_path):
    def add_ttclid(data):
        data["identifier_types"]["ttclid"] = {"max_records": 50, "max_per_profile": 10}
        data["sources"]["order"]["identifiers"]["ttclid"] = "ttclid"

    config = load_identity_config(edited(tmp_path, add_ttclid))

    assert config.type("ttclid").priority == 7
    assert config.sources[1].identifiers["ttclid"] == "ttclid"
