"""The scenario model: the real scenarios, the bad-file catalogue, conditions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipvlan_lab import config, scenario
from ipvlan_lab.errors import ScenarioError
from ipvlan_lab.scenario import evaluate, load_scenario, parse_condition

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
DATA = Path(__file__).parent / "data" / "scenarios"
BAD = sorted((DATA / "bad").glob("*.yaml"))

#: What today's stack (Debian 12: Docker 20.10, kernel 6.1) showed, by row.
NOVLAN_ROWS = {
    "gateway": "reachable",
    "same-host-name": "reachable",
    "same-host-ip": "reachable",
    "lan-peer": "reachable",
    "other-host-ip": "reachable",
    "other-host-name": "unreachable",
    "host-own-container": "unreachable",
    "host-other-container": "reachable",
}
VLAN_ROWS = {
    "gateway": "unreachable",
    "own-vlan-address": "unreachable",
    "other-vlan-address": "unreachable",
    "same-host-ip": "reachable",
    "other-host-ip": "reachable",
    "same-host-name": "reachable",
    "other-host-name": "unreachable",
    "other-network": "unreachable",
    "host-own-container": "unreachable",
    "host-other-container": "unreachable",
}


def expected_error(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# error: "), f"{path} must start with '# error: '"
    return first.removeprefix("# error: ").replace("{file}", str(path))


def readme_example(tmp_path: Path) -> Path:
    text = (SCENARIOS / "README.md").read_text()
    found = re.search(
        r"<!-- example: begin -->\n```yaml\n(.*?)```\n<!-- example: end -->",
        text,
        re.S,
    )
    assert found, "scenarios/README.md lost its complete example"
    path = tmp_path / "example.yaml"
    path.write_text(found.group(1))
    return path


# The real scenarios


@pytest.mark.parametrize(
    ("name", "rows"), [("novlan", NOVLAN_ROWS), ("vlan", VLAN_ROWS)]
)
def test_every_row_from_both_hosts_as_measured(context, name, rows):
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    for host, other in (("h1", "host1"), ("h2", "host2")):
        for row, expected in rows.items():
            check = loaded.check(f"{host}-{row}")
            assert check.kind == "ping"
            assert check.node == other
            assert [e.value for e in check.expect] == [expected]
            assert check.claim is not None
            assert check.claim.says == expected
            assert check.holds is True


@pytest.mark.parametrize("name", ["novlan", "vlan"])
def test_every_written_check_has_a_claim(context, name):
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    for check in loaded.checks:
        assert (check.claim is None) == check.synthetic, check.id


@pytest.mark.parametrize("name", ["novlan", "vlan"])
def test_host2_mirrors_host1(context, name):
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    pings = [c for c in loaded.checks if c.kind == "ping" and not c.synthetic]
    by_host = {"host1": set(), "host2": set()}
    for check in pings:
        by_host[check.node].add(check.id[3:])
    assert by_host["host1"] == by_host["host2"]
    for check in pings:
        if check.node == "host2":
            assert check.claim.text.startswith("host 2 gives the same results")


@pytest.mark.parametrize("name", ["novlan", "vlan"])
def test_every_negative_check_has_a_fitting_control(context, name):
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    negatives = [c for c in loaded.checks if c.negative]
    assert negatives
    for check in negatives:
        control = loaded.check(check.control)
        assert control.source == check.source
        assert control.positive


def test_controls_of_procedure_1(context):
    loaded = load_scenario(SCENARIOS / "novlan.yaml", context)
    assert loaded.check("h1-other-host-name").control == "h1-other-host-ip"
    assert loaded.check("h1-host-own-container").control == "h1-host-other-container"
    assert not any(c.synthetic for c in loaded.checks)


def test_controls_of_procedure_2(context):
    loaded = load_scenario(SCENARIOS / "vlan.yaml", context)
    assert loaded.check("h1-gateway").control == "h1-other-host-ip"
    assert loaded.check("h1-own-vlan-address").control == "h1-same-host-ip"
    assert loaded.check("h1-other-vlan-address").control == "h1-other-host-ip"
    assert loaded.check("h1-host-own-container").control == "control-host1"
    made = loaded.check("control-host2")
    assert made.synthetic and made.claim is None
    assert (made.source, made.params, made.nodes) == (
        "host2",
        {"to": "${lan.address}"},
        ["host2", "lan"],
    )


def test_procedure_1_commands_as_rendered(context):
    loaded = load_scenario(SCENARIOS / "novlan.yaml", context)
    create = loaded.steps[0]
    assert create.nodes == ["host1", "host2"]
    assert create.command(context, "host2") == (
        "docker network create -d ipvlan --subnet=192.168.4.0/24 "
        "--gateway=192.168.4.1 -o parent=eth1 -o ipvlan_mode=l2 eth0_1"
    )
    assert "parent=eth0" in create.howto
    assert [s.command(context, s.nodes[0]) for s in loaded.steps[1:]] == [
        f"docker run --net=eth0_1 --ip=192.168.4.{n} -id --name test{n} busybox sh"
        for n in (101, 102, 201, 202)
    ]


def test_procedure_2_commands_as_rendered(context):
    context["host2"]["nic"] = "enp0s8"
    loaded = load_scenario(SCENARIOS / "vlan.yaml", context)
    commands = {s.id: [s.command(context, n) for n in s.nodes] for s in loaded.steps}
    assert commands["vlan-link"] == [
        "sudo ip link add link eth1 name eth1.100 type vlan id 100",
        "sudo ip link add link enp0s8 name enp0s8.100 type vlan id 100",
    ]
    assert commands["vlan-address"] == [
        "sudo ip addr add 192.168.15.50/24 dev eth1.100",
        "sudo ip addr add 192.168.15.51/24 dev enp0s8.100",
    ]
    assert commands["run-test100.201"] == [
        "docker run --net=100_1 --ip=192.168.100.201 -id --name test100.201 busybox sh"
    ]
    assert loaded.steps[0].howto == "vconfig add eth0 100"
    assert set(loaded.containers) == {
        "test100.101",
        "test100.102",
        "test100.201",
        "test100.202",
    }


def test_notes_and_expected_errors_as_rendered(tmp_path, context):
    context["host2"]["nic"] = "enp0s8"
    loaded = load_scenario(SCENARIOS / "vlan.yaml", context)
    create = next(s for s in loaded.steps if s.id == "create-network")
    assert (
        create.note == "The parent is the VLAN link on the lab NIC, ${nic}.${vlan.id}."
    )
    assert [create.note_text(context, n) for n in create.nodes] == [
        "The parent is the VLAN link on the lab NIC, eth1.100.",
        "The parent is the VLAN link on the lab NIC, enp0s8.100.",
    ]
    assert create.error_text(context, "host1") is None

    path = tmp_path / "texts.yaml"
    path.write_text(
        "name: texts\ntitle: t\nsteps:\n"
        "  - id: s1\n    title: s\n    on: hosts\n"
        "    run: sudo ip link add link ${nic} name ${nic}.7 type vlan id 7\n"
        "    howto: vconfig add eth0 7 ${HOME} $${x}\n"
        "    expect_error: ${node.address} ${nic}.7 $${x}\n"
    )
    step = load_scenario(path, context).steps[0]
    assert step.howto == "vconfig add eth0 7 ${HOME} $${x}"
    assert step.note is None and step.note_text(context, "host2") is None
    assert step.expect_error == "${node.address} ${nic}.7 $${x}"
    assert step.error_text(context, "host2") == "192.168.4.237 enp0s8.7 ${x}"


@pytest.mark.parametrize("name", ["novlan", "vlan"])
def test_real_scenarios_load_with_the_real_context_before_the_lab_is_up(name):
    context = config.template_context(config.from_data({}))
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    assert loaded.name == name
    assert loaded.document.startswith("Procedure")


def test_render_check_from_the_checks_node(context):
    context["host2"]["nic"] = "enp0s8"
    loaded = load_scenario(SCENARIOS / "vlan.yaml", context)
    rendered = scenario.render_check(loaded.check("h2-network"), context)
    assert rendered.expect[0].value == {
        "driver": "ipvlan",
        "mode": "l2",
        "parent": "enp0s8.100",
        "subnet": "192.168.100.0/24",
        "gateway": "192.168.100.1",
    }
    assert rendered.target == "100_1"
    ping = scenario.render_check(loaded.check("h2-own-vlan-address"), context)
    assert (ping.target, ping.params) == ("192.168.15.51", {"to": "192.168.15.51"})
    assert loaded.check("h2-own-vlan-address").target == "${host2.vlan_address}"


# The README's example and the good files


def test_readme_example_loads_as_documented(tmp_path, context):
    loaded = load_scenario(readme_example(tmp_path), context)
    kinds = {check.kind for check in loaded.checks}
    assert kinds == set(scenario.KINDS)
    assert loaded.check("cross-host-name").control == "cross-host-ip"
    assert loaded.check("same-host-ip").control == "cross-host-ip"
    assert loaded.check("dns-other-host").control == "cross-host-ip"
    assert loaded.check("host-own-container").control == "control-host1"
    assert loaded.steps[1].expect_error == "is already using parent interface"
    assert loaded.cleanup[0].command(context, "host1") == "sudo ip link del ipvl-host"

    old = {"docker": "20.10.24+dfsg1", "kernel": "6.1.0-18-amd64"}
    new = {"docker": "29.1.0", "kernel": "6.12.0"}
    refused, accepted = (
        loaded.check("fixed-ip-refused"),
        loaded.check("fixed-ip-accepted"),
    )
    assert (refused.applies(old), accepted.applies(old)) == (True, False)
    assert (refused.applies(new), accepted.applies(new)) == (False, True)
    assert refused.claim == accepted.claim
    same_host = loaded.check("same-host-ip")
    assert same_host.expectation(old).value == "reachable"
    assert same_host.expectation(new).value == "unreachable"
    assert same_host.expectation(new).when == "docker >= 23"

    during = scenario.render_check(loaded.check("untagged"), context).params["during"]
    assert during == {
        "from": "test101",
        "node": "host1",
        "container": "test101",
        "ping": "192.168.4.201",
    }


def test_controls_are_picked_as_the_readme_says(context):
    loaded = load_scenario(DATA / "good" / "controls.yaml", context)
    picked = {c.id: c.control for c in loaded.checks if c.control}
    assert picked == {
        "a-host2": "a-c",
        "a-c-nx": "a-c-dns",
        "a-b-ip": "a-b",
        "a-far": "a-gw",
        "a-named": "a-b",
        "h1-own": "control-host1",
        "h1-other": "control-host1",
        "lan-x": "control-lan",
        "c-alt": "c-gw",
    }
    assert loaded.check("control-lan").params == {"to": "${host1.address}"}
    assert [c.id for c in loaded.checks if c.synthetic] == [
        "control-host1",
        "control-lan",
    ]
    assert loaded.cleanup[0].nodes == ["host1", "host2"]


def test_minimal_scenario_and_defaults(context):
    loaded = load_scenario(DATA / "good" / "minimal.yaml", context)
    step = loaded.steps[0]
    assert step.timeout == scenario.DEFAULT_STEP_TIMEOUT
    assert (
        step.command(context, "lan") == "echo hello from 192.168.4.199 on eth1 ${HOME}"
    )
    assert loaded.checks == [] and loaded.containers == {}


def test_yaml_12_scalars(tmp_path, context):
    path = tmp_path / "scalars.yaml"
    path.write_text(
        "name: scalars\ntitle: t\nsteps:\n"
        "  - {id: s1, title: yes, on: host1, run: docker network rm 100_1}\n"
    )
    step = load_scenario(path, context).steps[0]
    assert (step.title, step.run, step.nodes) == (
        "yes",
        "docker network rm 100_1",
        ["host1"],
    )


def test_shared_parts_merge_as_yaml_defines(context):
    first, second, third = load_scenario(DATA / "good" / "anchors.yaml", context).steps
    assert (first.nodes, first.timeout, first.title) == (
        ["host1", "host2"],
        30,
        "On both hosts",
    )
    # The first merged part gives the timeout and title; the second the nodes.
    assert (second.nodes, second.timeout, second.title) == (
        ["host1", "host2"],
        90,
        "a slow step",
    )
    # A step's own key wins over a merged one.
    assert (third.nodes, third.timeout) == (["lan"], 30)


# The catalogue of bad files


def test_the_catalogue_is_large_enough():
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_scenario(path, context):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, context)
    assert caught.value.message == expected_error(path)
    assert caught.value.hint == scenario.HINT


def test_a_missing_file(tmp_path, context):
    with pytest.raises(ScenarioError, match="cannot read scenario .*nothing.yaml"):
        load_scenario(tmp_path / "nothing.yaml", context)


# Listing and finding


def test_list_scenarios():
    found = scenario.list_scenarios(SCENARIOS)
    assert [name for name, _ in found] == [
        p.stem for p in sorted(SCENARIOS.glob("*.yaml"))
    ]
    assert (
        "novlan",
        "Procedure 1: ipvlan L2 without a VLAN, across two hosts",
    ) in found
    assert ("vlan", "Procedure 2: ipvlan L2 on VLAN 100, across two hosts") in found


def test_find_scenario_by_name_or_path():
    assert scenario.find_scenario(SCENARIOS, "vlan") == SCENARIOS / "vlan.yaml"
    path = DATA / "good" / "minimal.yaml"
    assert scenario.find_scenario(SCENARIOS, str(path)) == path


def test_find_scenario_lists_the_known_ones():
    with pytest.raises(ScenarioError) as caught:
        scenario.find_scenario(SCENARIOS, "vlna")
    known = ", ".join([p.stem for p in sorted(SCENARIOS.glob("*.yaml"))])
    assert caught.value.message == (
        f"no scenario called 'vlna' in {SCENARIOS} (known: {known})"
    )


# Version conditions


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("docker >= 23", False),
        ("docker < 23", True),
        ("docker==20.10.24", True),
        ("docker != 20.10", True),
        ("kernel >= 5.4", True),
        ("kernel > 6.1", False),
        ("kernel == 6.1", True),
        ("kernel <= 6.1.0", True),
        ("kernel < 6.1.1", True),
    ],
)
def test_evaluate(condition, expected):
    versions = {"docker": "20.10.24+dfsg1", "kernel": "6.1.0-18-amd64"}
    assert evaluate(condition, versions) is expected


def test_evaluate_compares_numbers_not_text():
    assert evaluate("docker >= 9", {"docker": "10.0.0"})
    assert evaluate("kernel < 5.10", {"kernel": "5.9.16"})


def test_evaluate_needs_the_version():
    with pytest.raises(ScenarioError, match="needs the kernel version"):
        evaluate("kernel >= 5.4", {"docker": "20.10"})


@pytest.mark.parametrize("bad", ["docker ~ 23", "podman >= 4", "docker >=", "23"])
def test_parse_condition_refuses(bad):
    with pytest.raises(ScenarioError, match="bad condition"):
        parse_condition(bad)


def test_parse_condition():
    assert parse_condition(" kernel<5.4 ") == ("kernel", "<", "5.4")
