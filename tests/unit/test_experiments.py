"""The experiment scenarios: the how-to's problems and the facts around them.

Each file loads with the unit tests' context; the tests pin what the lab
measured on Debian 12 (Docker 20.10.24, kernel 6.1) and how each file keeps
the how-to's claims apart from today's expectations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipvlan_lab import config, templates
from ipvlan_lab.scenario import Scenario, load_scenario, render_check

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
DATA = Path(__file__).parent / "data" / "scenarios"

#: The scenario of each numbered problem of the how-to.
PROBLEMS = {
    "parent-reuse": 1,
    "vlan-subnet": 2,
    "default-subnet": 3,
    "ipam-conflict": 4,
}
#: The other experiments.
FACTS = (
    "host-access",
    "vlan-router",
    "one-mac",
    "dns",
    "vlan-lifecycle",
    "modes",
)
EXPERIMENTS = (*PROBLEMS, *FACTS)

#: The versions the lab measured, as the nodes report them.
MEASURED = {"docker": "20.10.24+dfsg1", "kernel": "6.1.0-57-amd64"}
#: A Docker past every version condition the files use.
NEWEST = {"docker": "29.1.0", "kernel": "6.12.0"}


def load(name: str, context: dict) -> Scenario:
    return load_scenario(SCENARIOS / f"{name}.yaml", context)


def applying(loaded: Scenario, versions: dict) -> dict:
    """The expectation value of every check that runs with ``versions``."""
    return {
        check.id: check.expectation(versions).value
        for check in loaded.checks
        if check.applies(versions) and check.expectation(versions) is not None
    }


# Every file


#: A lab.yaml that moves every subnet and address away from the defaults.
MOVED = {
    "network": {"subnet": "10.64.4.0/24", "gateway": "10.64.4.1"},
    "vlan": {
        "id": 300,
        "subnet": "10.64.100.0/24",
        "gateway": "10.64.100.1",
        "host_subnet": "10.64.15.0/24",
    },
    "nodes": {
        "host1": {"address": "10.64.4.36", "vlan_address": "10.64.15.50"},
        "host2": {"address": "10.64.4.37", "vlan_address": "10.64.15.51"},
        "lan": {"address": "10.64.4.199"},
    },
}
#: The defaults' numbers, which a scenario must never write in what it runs.
DEFAULT_NUMBERS = ("192.168.4.", "192.168.15.", "192.168.100.", ".100 ", "id 100")


@pytest.mark.parametrize("name", ("novlan", "vlan", *EXPERIMENTS))
def test_every_command_and_check_follows_lab_yaml(name):
    """Scenarios take the lab's numbers from placeholders: moved subnets and
    a moved VLAN id leave none of the defaults in a rendered command, a
    container's address or a check."""
    moved = config.from_data(MOVED)
    context = config.template_context(moved)
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    rendered = [s.command(context, n) for s in loaded.steps for n in s.nodes]
    rendered += [c.command(context, n) for c in loaded.cleanup for n in c.nodes]
    for check in loaded.checks:
        check = render_check(check, context)
        rendered.append(repr((check.params, [e.value for e in check.expect])))
    rendered += [
        templates.render(c.address, context)
        for c in loaded.containers.values()
        if c.address
    ]
    for text in rendered:
        for number in DEFAULT_NUMBERS:
            assert number not in text + " ", f"{name}: {number!r} in {text!r}"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_loads_before_the_lab_is_up(name):
    context = config.template_context(config.from_data({}))
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", context)
    assert loaded.name == name
    assert loaded.title and loaded.description


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_negative_checks_have_a_positive_control(context, name):
    loaded = load(name, context)
    for check in loaded.checks:
        if check.negative:
            control = loaded.check(check.control)
            assert control.source == check.source, check.id
            assert control.positive, check.id


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_claims_that_fail_say_why(context, name):
    loaded = load(name, context)
    for check in loaded.checks:
        if not check.holds:
            assert check.claim is not None and check.reason, check.id


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_containers_are_all_started(context, name):
    loaded = load(name, context)
    commands = " ".join(step.run for step in loaded.steps)
    for container in loaded.containers:
        assert f"--name {container} " in commands, container


# The four problems


@pytest.mark.parametrize(("name", "number"), PROBLEMS.items())
def test_problem_scenarios_test_their_problem(context, name, number):
    loaded = load(name, context)
    assert loaded.document == "Problems the author ran into"
    sections = {c.claim.section for c in loaded.checks if c.claim}
    assert f"Problems the author ran into, {number}" in sections


def test_parent_reuse_expects_both_refusals(context):
    loaded = load("parent-reuse", context)
    errors = {s.id: s.expect_error for s in loaded.steps if s.expect_error}
    assert errors == {
        "second-subnet-refused": "is already using parent interface",
        "same-subnet-refused": "Pool overlaps with other one on this address space",
    }
    two = next(s for s in loaded.steps if s.id == "two-subnets")
    assert two.command(context, "host1").count("--subnet=") == 2
    assert two.nodes == ["host1", "host2"]
    assert loaded.check("parent-still-exclusive").holds


def test_vlan_subnet_refutes_problem_2(context):
    loaded = load("vlan-subnet", context)
    for check_id in ("cross-host", "cross-host-back"):
        check = loaded.check(check_id)
        assert check.claim.says == "unreachable"
        assert [e.value for e in check.expect] == ["reachable"]
        assert check.holds is False
    assert loaded.check("host-other-container").expect[0].value == "reachable"
    assert loaded.check("host-own-container").control == "host-other-container"


def test_default_subnet_refusal_follows_the_docker_version(context):
    loaded = load("default-subnet", context)
    here = applying(loaded, MEASURED)
    assert (
        "user specified IP address is supported only"
        in (here["fixed-ip-refused"]["stderr"])
    )
    assert "fixed-ip-accepted" not in here
    newest = applying(loaded, NEWEST)
    assert newest["fixed-ip-accepted"] == {"exit": 0}
    assert "fixed-ip-refused" not in newest
    assert loaded.check("fixed-ip-accepted").holds is False


def test_default_subnet_starts_from_a_fresh_daemon(context):
    """The pool is the author's only on a fresh daemon: the scenario restarts
    Docker before it makes the network, then shows the next pool in turn."""
    loaded = load("default-subnet", context)
    steps = [step.id for step in loaded.steps]
    assert steps.index("fresh-daemon") < steps.index("create-network")
    assert "systemctl restart docker" in loaded.steps[0].run
    here = applying(loaded, MEASURED)
    assert here["default-pool"]["stdout"] == "172.18.0.0/16"
    assert loaded.check("default-pool").holds is True
    assert here["next-pool"]["stdout"] == "172.19.0.0/16"
    assert loaded.check("next-pool").claim is None


def test_ipam_conflict_undoes_the_lan_address(context):
    loaded = load("ipam-conflict", context)
    lan_steps = [s for s in loaded.steps if s.nodes == ["lan"]]
    assert lan_steps
    assert [c.nodes for c in loaded.cleanup] == [["lan"]]
    assert "ip addr del" in loaded.cleanup[0].command(context, "lan")
    assert loaded.check("auto1-gets-2").expect[0].value == {"address": "${lab.ip.2}"}
    assert loaded.check("aux-address-skips-2").expect[0].value == {
        "address": "${lab.ip.3}"
    }


# The other facts


def test_vlan_router_refutes_the_unreachable_gateway(context):
    loaded = load("vlan-router", context)
    for check_id in ("h1-gateway", "h2-gateway"):
        check = loaded.check(check_id)
        assert check.claim.says == "unreachable"
        assert check.holds is False
        assert "router" in check.reason


def test_modes_skip_what_docker_20_lacks(context):
    loaded = load("modes", context)
    here = applying(loaded, MEASURED)
    assert "private-isolates" not in here and "l3s-accepted" not in here
    assert here["private-ignored"] == "reachable"
    assert "l3s" in here["l3s-refused"]["stderr"]
    newest = applying(loaded, NEWEST)
    assert newest["private-isolates"] == "unreachable"
    assert "private-ignored" not in newest and "l3s-refused" not in newest
    assert [c.nodes for c in loaded.cleanup] == [["lan"]]


def test_one_mac_expects_the_parents_mac(context):
    loaded = load("one-mac", context)
    for check_id in ("test101-mac", "test102-mac"):
        assert loaded.check(check_id).expect[0].value["mac"] == "${host1.mac}"
    seen = loaded.check("lan-sees-one-mac").expect[0].value
    assert len(seen["same_mac"]) == 3


def test_vlan_lifecycle_checks_that_change_state_run_once(context):
    loaded = load("vlan-lifecycle", context)
    for check_id in ("docker-removes-own", "premade-kept"):
        assert loaded.check(check_id).retries == 0
    assert loaded.check("tagged").kind == "capture"


def test_dns_expects_no_answer_for_foreign_names(context):
    loaded = load("dns", context)
    assert loaded.check("local-name").expect[0].value == "resolves"
    foreign = loaded.check("other-host-name")
    assert (foreign.kind, foreign.expect[0].value) == ("resolve", "no-answer")
    assert foreign.control == "local-name"
    unknown = loaded.check("unknown-name")
    assert unknown.kind == "command"
    assert unknown.expect[0].value["exit"] == "nonzero"


def test_host_access_fixes_host_1_only(context):
    loaded = load("host-access", context)
    assert [s.nodes for s in loaded.steps if "ipvl-host" in s.run] == [
        ["host1"],
        ["host1"],
        ["host1"],
    ]
    assert loaded.check("h2-own-container").expect[0].value == "unreachable"
    assert loaded.check("h1-own-container").expect[0].value == "reachable"
