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
from ipvlan_lab import nodes, runner
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


#: bridge, host and none, as `docker network ls -q --no-trunc` lists them.
BUILTIN_NETWORKS = [
    "8a3f6ad06cba4b1e9c3e4f0d2a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b",
    "5d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c",
    "e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2",
]


class FakeSession:
    """Answers the runner's commands like a healthy node, unless told not to."""

    def __init__(self, slot: str, world: dict):
        self.slot, self.world, self.commands = slot, world, []

    def open(self) -> None:
        pass

    def run(self, command: str, timeout: float | None = None) -> CommandRecord:
        self.commands.append(command)
        out, status, *said = self.answer(command)
        err = said[0] if said else ""
        if status is None:
            err += f"\n(timed out after {timeout} s)"
        return CommandRecord(self.slot, command, status, out, err, "t", 0.01)

    def links(self) -> str:
        link = {
            "ifname": "eth1",
            "address": f"52:54:00:4c:00:0{self.slot[-1]}",
            "operstate": "UP",
            "flags": ["UP"],
        }
        return json.dumps([link, *self.world.get("extra_links", {}).get(self.slot, [])])

    def addresses(self) -> str:
        own = {"host1": "192.168.4.236", "host2": "192.168.4.237"}
        addresses = [own.get(self.slot, "192.168.4.199")]
        addresses += self.world.get("extra_addresses", {}).get(self.slot, [])
        infos = [{"family": "inet", "local": a, "prefixlen": 24} for a in addresses]
        if self.slot == "lan":
            infos.append({"family": "inet", "local": "192.168.4.1", "prefixlen": 24})
        return json.dumps([{"ifname": "eth1", "addr_info": infos}])

    def answer(self, command: str) -> tuple[str, int | None]:
        for text, answer in self.world.get("answers", {}).items():
            if text in command:
                return answer
        if command.startswith("set -e; "):
            # The listing the clean-up is checked with.
            parts = [self.links(), self.addresses()]
            if self.slot != "lan":
                parts = ["\n".join(self.world.get("containers", [])), "", *parts]
                if "docker network ls" in command and "type=custom" not in command:
                    # Docker's own networks; bridge's ID is new at each start.
                    parts[1] = "\n".join(BUILTIN_NETWORKS)
            return f"\n{nodes.LISTING_PART}\n".join(parts), 0
        if command.startswith("ip -j -d link show"):
            return self.links(), 0
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


def run_tiny(lab, tmp_path, world: dict, more_checks: str = ""):
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO + more_checks)
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


LOOKUPS = """
  - {id: no-answer, kind: resolve, title: t, from: c1, name: c2,
     expect: no-answer, control: cross-ip}
  - {id: nxdomain, kind: resolve, title: t, from: c1, name: c2,
     expect: nxdomain, control: cross-ip}
  - {id: resolves, kind: resolve, title: t, from: c1, name: c2, expect: resolves}
"""


@pytest.mark.parametrize(
    ("answer", "outcomes"),
    [
        # No server answered: only a check that expects no answer learns
        # anything; the others cannot tell, so the lab is at fault.
        ("nslookup-no-server.txt", ("pass", "lab-fault", "lab-fault")),
        ("nslookup-nxdomain.txt", ("fail", "pass", "fail")),
        ("nslookup-ok.txt", ("fail", "fail", "pass")),
    ],
)
def test_lookup_outcomes_by_answer(lab, tmp_path, answer, outcomes):
    world = healthy_world()
    world["answers"] = {"nslookup c2": ((DATA / answer).read_text(), 1)}
    result, _ = run_tiny(lab, tmp_path, world, LOOKUPS)
    checks = {c.id: c for c in result.checks}
    seen = tuple(checks[i].outcome for i in ("no-answer", "nxdomain", "resolves"))
    assert seen == outcomes


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


def test_a_failed_step_stops_the_scenario_and_no_check_runs(lab, tmp_path):
    world = healthy_world()
    world["answers"] = {"--name c1 ": ("docker: Error response from daemon", 125)}
    result, sessions = run_tiny(lab, tmp_path, world)
    assert [s.status for s in result.steps] == ["ok", "failed"]
    assert not any("--name c2" in c for c in sessions["host2"].commands)
    assert not any("docker exec" in c for c in sessions["host1"].commands)
    for check in result.checks:
        assert (check.outcome, check.verdict) == ("skipped", "skipped")
        assert check.reason == "not run: step c1 failed and the 1 after it did not run"
    assert result.status == "failed"


def test_a_ping_that_could_not_run_is_a_lab_fault_not_a_refutation(lab, tmp_path):
    world = healthy_world()
    world["answers"] = {"docker exec c1": ("Error: No such container: c1", 1)}
    result, _ = run_tiny(lab, tmp_path, world)
    checks = {c.id: c for c in result.checks}
    for check_id in ("cross-ip", "gateway"):
        assert checks[check_id].observed == "error"
        assert (checks[check_id].outcome, checks[check_id].verdict) == (
            "lab-fault",
            "lab-fault",
        )
        assert "cannot read this ping output" in checks[check_id].message
    # Its negative partner has no passing control: a lab fault too.
    assert checks["cross-name"].outcome == "lab-fault"


def test_a_ping_that_did_not_finish_is_a_lab_fault(lab, tmp_path):
    world = healthy_world()
    world["answers"] = {f"-W {runner.PING_WAIT} 192.168.4.1": ("", None)}
    result, _ = run_tiny(lab, tmp_path, world)
    gateway = next(c for c in result.checks if c.id == "gateway")
    assert (gateway.observed, gateway.outcome, gateway.verdict) == (
        "not finished",
        "lab-fault",
        "lab-fault",
    )
    assert "timed out" in gateway.message


def test_leftovers_are_cleaned_before_the_scenario_starts(lab, tmp_path):
    world = healthy_world()
    world["extra_addresses"] = {"lan": ["192.168.4.2"]}
    result, sessions = run_tiny(lab, tmp_path, world)
    # The node was cleaned, since it was not clean, and looked at again ...
    assert sum("ip addr del" in c for c in sessions["lan"].commands) == 1
    assert sum(c.startswith("set -e; ") for c in sessions["lan"].commands) == 2
    # ... and as the fake keeps the address, the lab cannot start clean.
    assert result.status == "lab-fault"
    assert "lan still holds address 192.168.4.2/24 after the clean-up" in (
        result.message
    )


def test_dockers_own_networks_are_never_a_scenarios_leftovers(lab, tmp_path):
    # The lab came up before the daemon was restarted (as default-subnet
    # does): its baseline knows none of the IDs bridge has now.
    result, _ = run_tiny(lab, tmp_path, healthy_world())
    assert result.status == "ok", result.message
    # Nor does the clean-up try to remove them.
    node = lab.config.nodes["host1"]
    (removal,) = [
        c for c in nodes.reset_commands(node, "eth1", {}, [], []) if "network rm" in c
    ]
    assert removal.startswith(nodes.NETWORKS + " |")


def test_a_clean_lab_is_only_looked_at(lab, tmp_path):
    result, sessions = run_tiny(lab, tmp_path, healthy_world())
    for slot in ("host1", "host2", "lan"):
        assert sum(c.startswith("set -e; ") for c in sessions[slot].commands) == 1
        assert not any("ip addr del" in c for c in sessions[slot].commands)
    assert result.status == "ok"


CAPTURE = """
name: listen
title: A capture while a container pings
containers:
  c1: {node: host1}
steps:
  - {id: c1, title: c1, on: host1, run: docker run -id --name c1 busybox sh}
checks:
  - id: tagged
    kind: capture
    title: the frames are on the wire
    on: host1
    interface: ${nic}
    filter: icmp
    during: {from: c1, ping: "${lab.gateway}"}
    expect: {contains: "ethertype IPv4"}
  - id: quiet
    kind: capture
    title: nothing from the LAN node
    on: host2
    interface: ${nic}
    filter: host ${lan.address}
    expect: {absent: true}
"""
PACKET = (
    "10:00:00.000001 52:54:00:4c:00:01 > 52:54:00:4c:00:03, ethertype IPv4 "
    "(0x0800), length 98: 192.168.4.101 > 192.168.4.1: ICMP echo request\n"
)
LISTENING = "listening on eth1, link-type EN10MB (Ethernet), snapshot length 262144"


def run_capture(lab, tmp_path, answers: dict):
    path = tmp_path / "listen.yaml"
    path.write_text(CAPTURE)
    scenario = load_scenario(path, runner.context(lab))
    world = {**healthy_world(), "answers": answers}
    sessions = {slot: FakeSession(slot, world) for slot in ("host1", "host2", "lan")}
    result = runner.ScenarioRun(lab, sessions, scenario, keep=True).run()
    return {c.id: c for c in result.checks}, sessions


def test_captures_run_alone_and_read_tcpdump(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(runner.time, "sleep", lambda _: None)
    checks, sessions = run_capture(
        lab,
        tmp_path,
        {
            "tcpdump -l -nn -e -c 4 -i eth1 icmp": (PACKET, 0, LISTENING),
            "host 192.168.4.199": ("", 124, LISTENING),
        },
    )
    assert (checks["tagged"].outcome, checks["tagged"].observed) == (
        "pass",
        "1 packets",
    )
    assert (checks["quiet"].outcome, checks["quiet"].observed) == ("pass", "0 packets")
    assert any("docker exec c1 ping -c 3" in c for c in sessions["host1"].commands)


def test_a_capture_that_never_listened_cannot_pass(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(runner.time, "sleep", lambda _: None)
    checks, _ = run_capture(
        lab,
        tmp_path,
        {
            "tcpdump": ("", 1, "tcpdump: eth1: You don't have permission"),
            "docker exec c1 ping": ("", None),
        },
    )
    for check in checks.values():
        assert (check.observed, check.outcome) == ("no capture", "lab-fault")
    assert "You don't have permission" in checks["quiet"].message


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


def test_a_capture_whose_traffic_never_ran_is_a_lab_fault(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(runner.time, "sleep", lambda _: None)
    checks, _ = run_capture(
        lab,
        tmp_path,
        {
            "docker exec c1 ping": ("", None),
            "tcpdump": ("", 124, LISTENING),
        },
    )
    tagged = checks["tagged"]
    assert (tagged.observed, tagged.outcome) == ("no capture", "lab-fault")
    assert "what the capture waits for did not run" in tagged.message
    assert checks["quiet"].outcome == "pass"


NEIGHBOURS = """
name: neigh
title: The neighbours on a VLAN link
steps:
  - id: link
    title: the link
    on: host1
    run: ip link add link ${nic} name ${nic}.${vlan.id} type vlan id ${vlan.id}
checks:
  - id: one-mac
    kind: neighbours
    title: both containers behind one MAC
    on: host1
    interface: ${nic}.${vlan.id}
    trigger: ["${vlan.ip.201}", "${vlan.ip.202}"]
    expect: {same_mac: ["${vlan.ip.201}", "${vlan.ip.202}"], mac: "52:54:00:4c:00:02"}
"""


def test_neighbours_are_read_on_the_interface_the_check_names(lab, tmp_path):
    path = tmp_path / "neigh.yaml"
    path.write_text(NEIGHBOURS)
    scenario = load_scenario(path, runner.context(lab))
    table = [
        {
            "dst": f"192.168.100.{n}",
            "lladdr": "52:54:00:4c:00:02",
            "state": ["REACHABLE"],
        }
        for n in (201, 202)
    ]
    world = {
        **healthy_world(),
        "answers": {"ip -j neigh show dev eth1.100": (json.dumps(table), 0)},
    }
    sessions = {slot: FakeSession(slot, world) for slot in ("host1", "host2", "lan")}
    result = runner.ScenarioRun(lab, sessions, scenario, keep=True).run()
    check = result.checks[0]
    assert (check.outcome, check.message) == ("pass", "")
    assert "ping -c 1 -W 1 192.168.100.201 >/dev/null" in "\n".join(
        sessions["host1"].commands
    )
    assert not any(
        "neigh show dev eth1 " in c + " " for c in sessions["host1"].commands
    )
