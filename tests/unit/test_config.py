"""The lab's configuration: defaults, validation, and the template context."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ipvlan_lab import config
from ipvlan_lab.errors import ConfigError

BAD = Path(__file__).parent / "data" / "bad" / "config"
CASES = sorted(BAD.glob("*.yaml"))


def expected_error(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# error: "), f"{path} must start with '# error: '"
    return first.removeprefix("# error: ").replace("{file}", str(path))


def test_lab_yaml_holds_exactly_the_defaults():
    documented = yaml.safe_load((config.PROJECT / "lab.yaml").read_text())
    assert documented == config.DEFAULTS


def test_no_file_means_all_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    monkeypatch.setattr(config, "PROJECT", tmp_path)
    loaded = config.load()
    assert loaded.path is None
    assert loaded.data == config.DEFAULTS


def test_a_named_file_that_is_missing_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.yaml")


def test_partial_file_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("vlan:\n  id: 200\nnodes:\n  lan:\n    memory: 768\n")
    loaded = config.load(path)
    assert loaded.data["vlan"]["id"] == 200
    assert loaded.data["vlan"]["subnet"] == "192.168.100.0/24"
    assert loaded.nodes["lan"].memory == 768
    assert loaded.nodes["host1"].address == "192.168.4.236"


def test_nodes_and_addresses_follow_the_howto():
    loaded = config.from_data({})
    assert [n.address for n in loaded.nodes.values()] == [
        "192.168.4.236",
        "192.168.4.237",
        "192.168.4.199",
    ]
    assert loaded.lan_addresses() == ["192.168.4.199/24", "192.168.4.1/24"]
    assert loaded.address_cidr("host2") == "192.168.4.237/24"
    assert loaded.nodes["host1"].role == "docker"
    assert loaded.nodes["lan"].role == "lan"


def test_bridged_mode_with_an_adapter_is_accepted():
    loaded = config.from_data({"network": {"mode": "bridged", "adapter": "enp3s0"}})
    assert loaded.data["network"]["adapter"] == "enp3s0"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_configuration_gets_one_clear_error(case):
    with pytest.raises(ConfigError) as caught:
        config.load(case)
    assert expected_error(case) in caught.value.message
    assert caught.value.hint, "every configuration error says what to do"


@pytest.mark.parametrize(
    ("case", "example"),
    [
        ("docker-version-number", 'version: "24.0"'),
        ("box-version-number", 'version: "24.0"'),
        ("box-name-number", 'name: "2404"'),
        ("adapter-number", 'adapter: "enp3s0"'),
        ("mac-number", 'mac: "52:54:00:40:00:01"'),
    ],
)
def test_a_number_where_text_belongs_gets_a_hint_to_quote_it(case, example):
    with pytest.raises(ConfigError) as caught:
        config.load(BAD / f"{case}.yaml")
    assert "in quotes" in caught.value.hint
    assert example in caught.value.hint


@pytest.mark.parametrize("case", ["docker-version-list", "box-version-empty"])
def test_a_value_that_is_not_a_number_gets_the_usual_hint(case):
    with pytest.raises(ConfigError) as caught:
        config.load(BAD / f"{case}.yaml")
    assert "in quotes" not in caught.value.hint
    assert "or delete it to use the default (None)" in caught.value.hint


def test_versions_may_be_text_or_null():
    loaded = config.from_data(
        {
            "docker": {"source": "docker", "version": "5:27.3.1-1~debian.12~bookworm"},
            "boxes": {
                "virtualbox": {"name": "bento/ubuntu-24.04", "version": "202404.01.0"},
                "libvirt": {"version": None},
            },
        }
    )
    assert loaded.data["docker"]["version"] == "5:27.3.1-1~debian.12~bookworm"
    assert loaded.data["boxes"]["virtualbox"]["version"] == "202404.01.0"
    assert loaded.data["boxes"]["libvirt"]["version"] is None


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"network": {"name": float("nan")}}, "network.name"),
        ({"management": {"name": "ipvlan-lab-mgmt\n"}}, "management.name"),
        ({"nodes": {"lan": {"name": "ipvlan-lan\n"}}}, "nodes.lan.name"),
        ({"nodes": {"lan": {"mac": "52:54:00:4c:00:03\n"}}}, "nodes.lan.mac"),
    ],
)
def test_names_must_be_text_and_nothing_more(raw, key):
    # str(nan) is "nan", and a pattern's $ matches before a final newline:
    # neither may pass for a name.
    with pytest.raises(ConfigError, match=f"{key} is "):
        config.from_data(raw)


def test_catalogue_is_large_enough():
    assert len(CASES) >= 30


def test_template_context_without_facts_has_placeholders():
    context = config.template_context(config.from_data({}))
    assert context["host1"]["nic"] == "<nic>"
    assert context["host2"]["vlan_address"] == "192.168.15.51"
    assert context["lab"]["gateway"] == "192.168.4.1"
    assert context["vlan"]["id"] == "100"
    assert context["lab"]["ip"]["101"] == "192.168.4.101"
    assert context["vlan"]["ip"]["201"] == "192.168.100.201"


def test_template_context_with_facts():
    facts = {"host1": {"nic": "enp0s8", "mac": "08:00:27:00:00:01"}}
    context = config.template_context(config.from_data({}), facts)
    assert context["host1"]["nic"] == "enp0s8"
    assert context["host1"]["mac"] == "08:00:27:00:00:01"
    assert context["host2"]["nic"] == "<nic>"
