"""dps_config.yml as typed settings (exchange/config.py): the shipped file and the schema agree,
a mistyped key gets a hint, and defaults are never shared between two loads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from exchange import config as config_module
from exchange.config import Checker, expand_env, load_config
from exchange.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "dps_config.yml"

# The shipped file points at the demo's stand-ins; these are the only values where it differs
# from the schema's defaults (or where the schema has no default: a required setting).
DEMO_VALUES = {
    ("database", "url"): "sqlite:///var/impact_demo.sqlite",
    ("database", "caseworker_query"): "caseworker",          # §10.4: on in the demo
    ("sftp", "host"): "127.0.0.1",
    ("sftp", "port"): "2222",
    ("sftp", "key_file"): "var/demo_sftp/client_ed25519_key",
    ("sftp", "known_hosts_file"): "var/demo_sftp/known_hosts",
    ("reports", "deliver_to"): ["share", "sharepoint"],
    ("reports", "ori_directory"): "demo/ori_directory.csv",  # §10.4: the synthetic directory
    ("sharepoint", "tenant_id"): "00000000-0000-4000-8000-00000000d0a5",
    ("sharepoint", "client_id"): "11111111-1111-4111-8111-0000000000a9",
    ("sharepoint", "login_host"): "127.0.0.1:8444",
    ("sharepoint", "graph_host"): "127.0.0.1:8443",
    ("sharepoint", "certificate_file"): "var/demo_graph/app-client.pem",
    ("sharepoint", "private_key_file"): "var/demo_graph/app-client.key",
    ("sharepoint", "ca_file"): "var/demo_graph/standin-ca.pem",
    ("sharepoint", "site_host"): "contoso.sharepoint.com",
    ("sharepoint", "site_path"): "/sites/ChildWelfare",
    ("archive", "key_id"): "demo-key",
    ("archive", "key_file"): "var/demo_archive.key",
}


def shipped_values() -> dict:
    """The shipped file with every ${VAR:-default} at its default."""
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return expand_env(raw, {}, SHIPPED, "")


def test_the_shipped_file_lists_every_setting_at_its_default():
    shipped = shipped_values()
    checker = Checker(SHIPPED, lenient=True)
    for section, cls in config_module.SECTIONS.items():
        assert set(shipped[section]) == {f.name for f in dataclasses.fields(cls)}, section
        for spec in dataclasses.fields(cls):
            given = shipped[section][spec.name]
            if (section, spec.name) in DEMO_VALUES:
                assert given == DEMO_VALUES[section, spec.name]
                continue
            kind = spec.metadata.get("kind") or config_module.plain_type(
                config_module.typing.get_type_hints(cls)[spec.name])
            default = config_module.default_of(spec)
            assert checker.value(f"{section}.{spec.name}", kind, given) == \
                checker.value(f"{section}.{spec.name}", kind, default), f"{section}.{spec.name}"
    assert shipped["race_mapping"] == config_module.DEFAULT_RACE_MAPPING


def write_config(tmp_path: Path, **sections: dict) -> Path:
    settings = shipped_values()
    (tmp_path / "key").write_text("k")
    (tmp_path / "known_hosts").write_text("")
    settings["sftp"].update(key_file=str(tmp_path / "key"),
                            known_hosts_file=str(tmp_path / "known_hosts"))
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    path = tmp_path / "dps_config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_a_mistyped_key_gets_a_did_you_mean_hint(tmp_path):
    path = write_config(tmp_path, sftp={"answer_foldr": "TO_DFPS"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"config {path}: unknown key 'sftp.answer_foldr' "
                                 f"(did you mean 'answer_folder'?)")


def test_a_mistyped_section_gets_a_did_you_mean_hint(tmp_path):
    path = write_config(tmp_path, recieve={"poll_seconds": 5})
    with pytest.raises(ConfigError, match=r"unknown section 'recieve' \(did you mean "
                                          r"'receive'\?\)"):
        load_config(path)


def test_an_unknown_key_like_nothing_known_gets_no_hint(tmp_path):
    path = write_config(tmp_path, sftp={"colour": "blue"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"config {path}: unknown key 'sftp.colour'"


def test_each_load_gets_its_own_lists_and_dicts(tmp_path):
    path = write_config(tmp_path)
    first, second = load_config(path), load_config(path)
    first.mail.recipients.append("someone@example.org")
    first.dps_file.name_max_lengths["LAST_NAME"] = 1
    assert second.mail.recipients == []
    assert second.dps_file.name_max_lengths["LAST_NAME"] == 30
    assert config_module.MailSettings().recipients == []


def test_sections_are_typed(tmp_path):
    config = load_config(write_config(tmp_path))
    assert config.sftp.port == 2222 and isinstance(config.receive.poll_seconds, float)
    assert config.folders.share == (tmp_path / "var" / "share").resolve()
    assert config.mail.ca_file is None
    assert config.path == (tmp_path / "dps_config.yml").resolve()


def test_a_race_mapping_given_replaces_the_default_one_whole():
    checker = Checker(SHIPPED, lenient=False)
    defaults = config_module.DEFAULT_RACE_MAPPING
    assert checker.open_section("race_mapping", defaults, {"Anglo": "W"}) == {"Anglo": "W"}
    assert checker.open_section("race_mapping", defaults, {}) == defaults
    with pytest.raises(ConfigError, match="race_mapping.Anglo: expected str, got int"):
        checker.open_section("race_mapping", defaults, {"Anglo": 7})
