"""The runner against fake nodes: steps, checks, controls and lab faults.

The SSH sessions are replaced by a small fake that answers the commands the
runner sends with canned output (real busybox and iproute2 output from
tests/unit/data/parsing); everything else is the real code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ipvlan_lab import config as lab_config
from ipvlan_lab import runner
from ipvlan_lab.lab import Lab
from ipvlan_lab.results import CommandRecord
from ipvlan_lab.scenario import load_scenario

DATA = Path(__file__).parent / "data" / "parsing"
PING_OK = (DATA / "ping-busybox-ok.txt").read_text()
PING_LOST = (DATA / "ping-busybox-no-reply.txt").read_text()
PING_BAD_NAME = (DATA / "ping-busybox-bad-address.txt").read_text()

SCENARIO = """
name: tiny
title: Two containers, one on each host
containers:
  c1: {node: host1, address: "${lab.ip.101}"}
  c2: {node: host2, address: "${lab.ip.201}"}
steps:
  - id: net
    title: the network on both hosts
    on: hosts
    run: docker network create -d ipvlan --subnet=${lab.subnet} -o parent=${nic} n1
  - id: c1
    title: c1
    on: host1
    run: docker run --net=n1 --ip=${lab.ip.101} -id --name c1 busybox sh
  - id: c2
    title: c2
    on: host2
    run: docker run --net=n1 --ip=${lab.ip.201} -id --name c2 busybox sh
checks:
  - id: cross-ip
    kind: ping
    title: c1 reaches c2 by address
    from: c1
    to: ${lab.ip.201}
    expect: reachable
    claim: {section: Test, text: c1 pings c2, says: reachable}
  - id: cross-name
    kind: ping
    title: c1 cannot resolve c2's name
    from: c1
    to: c2
    expect: unreachable
    control: cross-ip
    claim: {section: Test, text: c1 pings c2 by name, says: unreachable}
  - id: gateway
    kind: ping
    title: c1 reaches the gateway
    from: c1
    to: ${lab.gateway}
    expect: reachable
    claim: {section: Test, text: c1 pings the gateway, says: unreachable}
    holds: false
    reason: the lab's LAN node holds the gateway
"""


class FakeSession:
    """Answers the runner's commands like a healthy node, unless told not to."""

    def __init__(self, slot: str, world: dict):
        self.slot, self.world, self.commands = slot, world, []

    def open(self) -> None:
        pass

    def run(self, command: str, timeout: float | None = None) -> CommandRecord:
        self.commands.append(command)
        out, status = self.answer(command)
        return CommandRecord(self.slot, command, status, out, "", "t", 0.01)

    def answer(self, command: str) -> tuple[str, int]:
        if command.startswith("ip -j -d link show"):
            link = {
                "ifname": "eth1",
                "address": f"52:54:00:4c:00:0{self.slot[-1]}",
                "operstate": "UP",
                "flags": ["UP"],
            }
            return json.dumps([link]), 0
        if command.startswith("cat /sys/class/net/"):
            state = "down" if self.world.get("nic_down") == self.slot else "up"
            return f"{state}\ndocker-ok\nsegment-ok\n", 0
        ping = re.search(r"ping -c 1 -W \d+ (\S+)$", command)
        if ping:
            target = ping.group(1)
            if target in self.world["unresolvable"]:
                return PING_BAD_NAME, 1
            if target in self.world["reachable"]:
                return PING_OK, 0
            return PING_LOST, 1
        return "", 0

    def close(self) -> None:
        pass


@pytest.fixture
def lab(tmp_path):
    made = Lab(lab_config.from_data({}), lab_dir=tmp_path / ".lab")
    made.state.data["lab"].update(provider="libvirt-qemu", ready=True)
    for slot, node in made.config.nodes.items():
        made.state.nodes[slot] = {
            "nic": "eth1",
            "mac": node.mac,
            "kernel": "6.1.0-18-amd64",
            "docker": "20.10.24+dfsg1" if slot != "lan" else None,
            "baseline": {"links": ["eth0", "eth1", "lo"]},
        }
    made.state.save()
    return made


def run_tiny(lab, tmp_path, world: dict):
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path, runner.context(lab))
    sessions = {slot: FakeSession(slot, world) for slot in ("host1", "host2", "lan")}
    result = runner.ScenarioRun(lab, sessions, scenario, keep=True).run(
        clean_first=False
    )
    return result, sessions


def healthy_world() -> dict:
    return {
        "reachable": {"192.168.4.201", "192.168.4.1", "192.168.4.199"},
        "unresolvable": {"c2"},
    }


def test_steps_run_where_they_say_with_the_labs_values(lab, tmp_path):
    result, sessions = run_tiny(lab, tmp_path, healthy_world())
    assert [s.status for s in result.steps] == ["ok", "ok", "ok"]
    assert result.steps[0].nodes == ["host1", "host2"]
    network = (
        "docker network create -d ipvlan --subnet=192.168.4.0/24 -o parent=eth1 n1"
    )
    assert network in sessions["host2"].commands
    assert not any("docker run" in c for c in sessions["lan"].commands)


def test_outcomes_and_verdicts_on_a_healthy_lab(lab, tmp_path):
    result, _ = run_tiny(lab, tmp_path, healthy_world())
    checks = {c.id: c for c in result.checks}
    assert checks["cross-ip"].outcome == "pass"
    assert checks["cross-ip"].verdict == "confirmed"
    # A negative result with its control passing: confirmed, with evidence.
    assert checks["cross-name"].outcome == "pass"
    assert checks["cross-name"].verdict == "confirmed"
    assert checks["cross-name"].evidence["control"]["outcome"] == "pass"
    assert "ping" in checks["cross-name"].evidence
    # Expected to differ from the document: the check passes, the claim falls.
    assert checks["gateway"].outcome == "pass"
    assert checks["gateway"].verdict == "refuted"
    assert result.status == "ok"


def test_a_failed_control_turns_unreachable_into_a_lab_fault(lab, tmp_path):
    world = healthy_world()
    world["reachable"].discard("192.168.4.201")  # cross-host traffic is broken
    result, _ = run_tiny(lab, tmp_path, world)
    checks = {c.id: c for c in result.checks}
    assert checks["cross-ip"].outcome == "fail"
    assert checks["cross-name"].outcome == "lab-fault"
    assert checks["cross-name"].verdict == "lab-fault"
    assert "cross-ip" in checks["cross-name"].message


def test_a_node_with_its_nic_down_makes_its_checks_lab_faults(lab, tmp_path):
    world = healthy_world()
    world["nic_down"] = "host2"
    result, sessions = run_tiny(lab, tmp_path, world)
    assert result.status == "lab-fault"
    assert "host2's lab NIC eth1 is down" in result.message
    checks = {c.id: c for c in result.checks}
    # Both checks that cross to host2 are lab faults, not results.
    assert checks["cross-ip"].outcome == "lab-fault"
    assert checks["cross-name"].outcome == "lab-fault"
    # Nothing was run on the broken node after it was found broken.
    assert not any("docker run" in c for c in sessions["host2"].commands)
    assert result.steps[0].status == "lab-fault"


def test_documented_procedures_run_first():
    assert runner.ordered(["modes", "vlan", "dns", "novlan"]) == [
        "novlan",
        "vlan",
        "dns",
        "modes",
    ]


@pytest.mark.parametrize(
    "expected, status, out, err, problems",
    [
        ({"exit": 0}, 0, "", "", 0),
        ({"exit": "nonzero"}, 0, "", "", 1),
        (
            {"exit": "nonzero", "stderr": "already using parent"},
            1,
            "",
            "network di-1 is already using parent interface eth1",
            0,
        ),
        ({"stdout": "172.18.0.0/16"}, 0, "172.19.0.0/16\n", "", 1),
        ({"output": "bad address"}, 1, "", "ping: bad address 'c2'", 0),
    ],
)
def test_command_expectations(expected, status, out, err, problems):
    record = CommandRecord("host1", "cmd", status, out, err)
    assert len(runner.command_mismatches(record, expected)) == problems
