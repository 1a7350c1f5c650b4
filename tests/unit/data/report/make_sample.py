"""A made-up but realistic run of the how-to, for the report's tests.

Run it to rewrite ``results.json`` beside it::

    .venv/bin/python tests/unit/data/report/make_sample.py

then ``UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_report_golden.py`` to
rewrite the golden files. A ``results.json`` recorded on real VMs can replace
the one written here; only ``tests/unit/test_report.py`` uses
:func:`sample_run` itself, for the cases a real run may lack (a refuted
claim, a lab fault, a skipped check, a failed check).

It mirrors ``scenarios/novlan.yaml`` and ``scenarios/vlan.yaml`` (ids,
titles, claims, commands as the runner renders them) on the lab's defaults,
with what the lab saw on Debian 12 guests with Docker 20.10; two scenarios of
the how-to's "problems" add a refuted claim, a failed check and a skipped
one, and the LAN node drops out once to make a lab fault.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __name__ == "__main__":  # run as a script from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from ipvlan_lab.results import (
    CheckResult,
    Claim,
    CommandRecord,
    Environment,
    NodeFacts,
    RunResult,
    ScenarioResult,
    StepResult,
    TopologyContainer,
    TopologyNetwork,
)

HOSTS = {
    "host1": ("192.168.4.236", "52:54:00:4c:00:01", "192.168.15.50"),
    "host2": ("192.168.4.237", "52:54:00:4c:00:02", "192.168.15.51"),
}
LAN = "192.168.4.199"
DOCKER, KERNEL = "20.10.24+dfsg1", "6.1.0-31-amd64"
PROBLEMS = "Problems the author ran into"


class Clock:
    """Hands out ISO time stamps that move forward as commands take time."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 14, 9, 30, 0, tzinfo=timezone.utc)

    def take(self, seconds: float) -> str:
        stamp = self.now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.now += timedelta(seconds=seconds)
        return stamp


CLOCK = Clock()


def record(node, command, exit_status=0, stdout="", stderr="", duration=0.9):
    return CommandRecord(
        node=node,
        command=command,
        exit_status=exit_status,
        stdout=stdout,
        stderr=stderr,
        started=CLOCK.take(duration),
        duration=duration,
    )


# Pings, as the runner sends them and busybox or iputils answer ----------------


def busybox_ping(name: str, address: str, replies: bool) -> str:
    lines = [f"PING {name} ({address}): 56 data bytes"]
    if replies:
        lines += [
            f"64 bytes from {address}: seq=0 ttl=64 time=1.284 ms",
            f"64 bytes from {address}: seq=1 ttl=64 time=0.731 ms",
        ]
    lines += ["", f"--- {name} ping statistics ---"]
    if replies:
        lines += [
            "2 packets transmitted, 2 packets received, 0% packet loss",
            "round-trip min/avg/max = 0.731/1.007/1.284 ms",
        ]
    else:
        lines += ["2 packets transmitted, 0 packets received, 100% packet loss"]
    return "\n".join(lines) + "\n"


def iputils_ping(address: str, replies: bool) -> str:
    lines = [f"PING {address} ({address}) 56(84) bytes of data."]
    if replies:
        lines += [
            f"64 bytes from {address}: icmp_seq=1 ttl=64 time=1.41 ms",
            f"64 bytes from {address}: icmp_seq=2 ttl=64 time=0.882 ms",
        ]
    lines += ["", f"--- {address} ping statistics ---"]
    if replies:
        lines += [
            "2 packets transmitted, 2 received, 0% packet loss, time 301ms",
            "rtt min/avg/max/mdev = 0.882/1.146/1.410/0.264 ms",
        ]
    else:
        lines += ["2 packets transmitted, 0 received, 100% packet loss, time 2041ms"]
    return "\n".join(lines) + "\n"


def ping_records(node, source, target, reachable, addresses):
    """The records of one ping: the ping, then the neighbours when it failed."""
    if source == node:
        output = iputils_ping(target, reachable)
        command = f"ping -c 2 -i 0.3 -W 1 -w 2 {target}"
        records = [record(node, command, 0 if reachable else 1, output, duration=2.2)]
        neigh = "ip neigh show"
    else:
        command = f"docker exec {source} ping -c 2 -W 1 -w 2 {target}"
        by_name = not target[0].isdigit()
        if reachable or not by_name:
            address = addresses.get(target, target)
            output = busybox_ping(target, address, reachable)
            records = [
                record(node, command, 0 if reachable else 1, output, duration=2.7)
            ]
        else:
            error = f"ping: bad address '{target}'\n"
            records = [record(node, command, 1, stderr=error, duration=2.4)]
        neigh = f"docker exec {source} ip neigh show"
    if not reachable:
        nic = "eth1" if source == node else "eth0"
        table = f"{target} dev {nic}  FAILED\n" if target[0].isdigit() else ""
        records.append(record(node, neigh, 0, table, duration=1.1))
    return records


def verdict_of(claim, outcome, observed):
    if claim is None:
        return None
    if outcome in ("lab-fault", "skipped"):
        return outcome
    return "confirmed" if observed == claim.says else "refuted"


def ping(
    scenario,
    id,
    title,
    node,
    source,
    target,
    *,
    expect,
    observed=None,
    claim=None,
    control=None,
    outcome=None,
    message="",
    reason=None,
):
    """A ping check as the runner would record it."""
    observed = observed or expect
    records = ping_records(
        node, source, target, observed == "reachable", scenario["addresses"]
    )
    evidence = {"ping": (records[0].stdout + records[0].stderr).strip()}
    if observed == "unreachable":
        evidence["neighbours"] = records[1].stdout.strip()
    evidence["attempts"] = 1
    outcome = outcome or ("pass" if observed == expect else "fail")
    check = CheckResult(
        id=id,
        kind="ping",
        title=title,
        source=source,
        target=target,
        expected=expect,
        observed=observed,
        outcome=outcome,
        verdict=verdict_of(claim, outcome, observed),
        claim=claim,
        reason=reason,
        control=control,
        message=message,
        evidence=evidence,
        records=records,
        started=records[0].started,
        duration=round(sum(r.duration for r in records), 3),
    )
    scenario["checks"].append(check)
    return check


def step(scenario, id, title, nodes, command, outputs=None, **extra):
    """A step that went well; ``command`` may hold ``{address}`` per node."""
    values = extra.pop("values", {})
    outputs = outputs or [""] * len(nodes)
    records = [
        record(node, command.format(**values.get(node, {})), 0, out)
        for node, out in zip(nodes, outputs, strict=True)
    ]
    scenario["steps"].append(
        StepResult(
            id=id,
            title=title,
            nodes=nodes,
            command=command,
            status="ok",
            records=records,
            started=records[0].started,
            duration=round(max(r.duration for r in records), 3),
            **extra,
        )
    )


def hex_id(seed: str) -> str:
    return (seed.encode().hex() * 8)[:64]


def start_containers(scenario, network, placed):
    for name, (node, address) in placed.items():
        step(
            scenario,
            f"run-{name}",
            f"Start {name} on {node.replace('host', 'host ')}",
            [node],
            f"docker run --net={network} --ip={address} -id --name {name} busybox sh",
            [hex_id(name) + "\n"],
        )


def finish(name, title, file, scenario, placed, network, parent, subnet, **extra):
    """The scenario's result, with what it left standing and its cleanup."""
    steps, checks = scenario["steps"], scenario["checks"]
    by_id = {c.id: c for c in checks}
    for check in checks:
        if check.control in by_id:
            control = by_id[check.control]
            check.evidence["control"] = {
                "id": control.id,
                "title": control.title,
                "outcome": control.outcome,
            }
    outcomes = {c.outcome for c in checks}
    status = (
        "lab-fault"
        if "lab-fault" in outcomes
        else ("failed" if "fail" in outcomes else "ok")
    )
    containers = [
        TopologyContainer(c, node, network, address, HOSTS[node][1])
        for c, (node, address) in placed.items()
    ]
    nodes = sorted({node for node, _ in placed.values()} or {"host1"})
    networks = [
        TopologyNetwork(network, node, "ipvlan", parent, [subnet], "l2")
        for node in nodes
    ]
    cleanup = [
        record(node, f"docker rm -f {c}", stdout=f"{c}\n", duration=0.8)
        for c, (node, _) in placed.items()
    ] + [
        record(node, f"docker network rm {network}", stdout=f"{network}\n")
        for node in nodes
    ]
    if "." in parent:
        cleanup += [record(n, f"sudo ip link del {parent}") for n in nodes]
    return ScenarioResult(
        name=name,
        title=title,
        file=file,
        started=steps[0].started,
        duration=round(
            sum(s.duration for s in steps) + sum(c.duration for c in checks) + 6.0, 3
        ),
        status=status,
        steps=steps,
        checks=checks,
        cleanup=cleanup,
        containers=containers,
        networks=networks,
        **extra,
    )


# The scenarios ---------------------------------------------------------------


def novlan() -> ScenarioResult:
    placed = {
        "test101": ("host1", "192.168.4.101"),
        "test102": ("host1", "192.168.4.102"),
        "test201": ("host2", "192.168.4.201"),
        "test202": ("host2", "192.168.4.202"),
    }
    s = {"steps": [], "checks": [], "addresses": {k: v[1] for k, v in placed.items()}}
    create = (
        "docker network create -d ipvlan --subnet=192.168.4.0/24 "
        "--gateway=192.168.4.1 -o parent=eth1 -o ipvlan_mode=l2 eth0_1"
    )
    step(
        s,
        "create-network",
        "Create the Docker ipvlan network on both hosts",
        ["host1", "host2"],
        create,
        [hex_id("n1") + "\n", hex_id("n2") + "\n"],
        howto=create.replace("parent=eth1", "parent=eth0"),
        note="The parent is the lab NIC (eth1), not eth0, which carries the "
        "lab's management network; the network keeps its name eth0_1.",
    )
    start_containers(s, "eth0_1", placed)

    network_claim = Claim(
        "Procedure 1, step 1",
        "docker network create -d ipvlan --subnet=192.168.4.0/24 "
        "--gateway=192.168.4.1 -o parent=eth0 -o ipvlan_mode=l2 eth0_1 (on both "
        "hosts)",
        "creates an ipvlan L2 network on the parent NIC",
    )
    seen = {
        "driver": "ipvlan",
        "mode": "l2",
        "parent": "eth1",
        "subnet": ["192.168.4.0/24"],
        "gateway": ["192.168.4.1"],
    }
    for node in ("host1", "host2"):
        s["checks"].append(
            CheckResult(
                id=f"{node[0]}{node[-1]}-network",
                kind="docker-network",
                title=f"host {node[-1]}'s eth0_1 is an ipvlan L2 network on the "
                "lab NIC",
                source=node,
                target="eth0_1",
                expected="driver ipvlan, mode l2, parent eth1, subnet "
                "192.168.4.0/24, gateway 192.168.4.1",
                observed="driver=ipvlan, mode=l2, parent=eth1, "
                "subnet=['192.168.4.0/24'], gateway=['192.168.4.1']",
                outcome="pass",
                verdict="confirmed",
                claim=network_claim,
                evidence={"network": seen},
                started=CLOCK.take(0.4),
                duration=0.4,
            )
        )
    for name in ("test101", "test201"):
        node, address = placed[name]
        s["checks"].append(
            CheckResult(
                id=f"{name}-address",
                kind="docker-container",
                title=f"{name} has {address}",
                source=node,
                target=name,
                expected=f"address {address}",
                observed=f"address={address}",
                outcome="pass",
                verdict="confirmed",
                claim=Claim(
                    "Procedure 1, step 2",
                    f"docker run --net=eth0_1 --ip={address} -id --name "
                    f"{name} busybox sh",
                    f"{name} gets {address}",
                ),
                evidence={"container": {"address": address}},
                started=CLOCK.take(0.3),
                duration=0.3,
            )
        )

    def claim(text, says, mirror=None):
        if mirror:
            text = f"host 2 gives the same results: {mirror} ({text})"
        return Claim("Procedure 1, step 3", text, says)

    rows = [
        # id, title, source, target, expected, how-to's words
        ("gateway", "the gateway", "test101", "192.168.4.1", "reachable"),
        (
            "same-host-name",
            "a container on this host, by name",
            "test101",
            "test102",
            "reachable",
        ),
        (
            "same-host-ip",
            "a container on this host, by IP",
            "test102",
            "192.168.4.101",
            "reachable",
        ),
        ("lan-peer", "another machine on the LAN", "test102", LAN, "reachable"),
        (
            "other-host-ip",
            "a container on the other host, by IP",
            "test101",
            "192.168.4.201",
            "reachable",
        ),
        (
            "other-host-name",
            "a container on the other host, by name",
            "test101",
            "test201",
            "unreachable",
        ),
        (
            "host-own-container",
            "this host to its own container",
            "host1",
            "192.168.4.101",
            "unreachable",
        ),
        (
            "host-other-container",
            "this host to the other host's container",
            "host1",
            "192.168.4.201",
            "reachable",
        ),
    ]
    mirror = {
        "test101": "test201",
        "test102": "test202",
        "host1": "host2",
        "test201": "test101",
        "test202": "test102",
        "192.168.4.101": "192.168.4.201",
        "192.168.4.201": "192.168.4.101",
    }
    for side in ("h1", "h2"):
        node = "host1" if side == "h1" else "host2"
        for key, title, source, target, says in rows:
            if side == "h2":
                source, target = mirror.get(source, source), mirror.get(target, target)
            where = "docker exec " + source if source.startswith("test") else ""
            command = f"{where} ping {target}".strip()
            the_claim = (
                claim(f"{command}: {title}", says)
                if side == "h1"
                else claim(title, says, mirror=command)
            )
            control = None
            if says == "unreachable":
                positive = "gateway" if where else "host-other-container"
                control = f"{side}-{positive}"
            if side == "h2" and key == "lan-peer":
                # The LAN node dropped out: the lab, not ipvlan, failed here.
                ping(
                    s,
                    f"{side}-{key}",
                    title,
                    node,
                    source,
                    target,
                    expect=says,
                    observed="unreachable",
                    claim=the_claim,
                    outcome="lab-fault",
                    message="lan: did not answer the health probe after the "
                    "checks (SSH timed out after 20 s)",
                )
                continue
            ping(
                s,
                f"{side}-{key}",
                title,
                node,
                source,
                target,
                expect=says,
                claim=the_claim,
                control=control,
            )

    return finish(
        "novlan",
        "Procedure 1: ipvlan L2 without a VLAN, across two hosts",
        "scenarios/novlan.yaml",
        s,
        placed,
        "eth0_1",
        "eth1",
        "192.168.4.0/24",
        message="lan: did not answer the health probe after the checks (SSH "
        "timed out after 20 s)",
    )


def vlan() -> ScenarioResult:
    placed = {
        "test100.101": ("host1", "192.168.100.101"),
        "test100.102": ("host1", "192.168.100.102"),
        "test100.201": ("host2", "192.168.100.201"),
        "test100.202": ("host2", "192.168.100.202"),
    }
    s = {"steps": [], "checks": [], "addresses": {k: v[1] for k, v in placed.items()}}
    hosts = ["host1", "host2"]
    step(
        s,
        "vlan-link",
        "Create the VLAN link on both hosts",
        hosts,
        "sudo ip link add link eth1 name eth1.100 type vlan id 100",
        howto="vconfig add eth0 100",
        note="vconfig (package vlan) is deprecated and absent from today's "
        "distributions; ip link makes the same 802.1Q link. The parent is the "
        "lab NIC, not eth0.",
    )
    step(
        s,
        "vlan-address",
        "Give each host its address on the VLAN",
        hosts,
        "sudo ip addr add {address}/24 dev eth1.100",
        values={n: {"address": HOSTS[n][2]} for n in hosts},
        note="The how-to states the hosts' addresses on eth0.100 (192.168.15.50 "
        "and 192.168.15.51) without the command that sets them.",
    )
    step(s, "vlan-up", "Bring the VLAN link up", hosts, "sudo ip link set eth1.100 up")
    create = (
        "docker network create -d ipvlan --subnet=192.168.100.0/24 "
        "--gateway=192.168.100.1 -o parent=eth1.100 -o ipvlan_mode=l2 100_1"
    )
    step(
        s,
        "create-network",
        "Create the Docker ipvlan network on the VLAN link on both hosts",
        hosts,
        create,
        [hex_id("n3") + "\n", hex_id("n4") + "\n"],
        howto=create.replace("eth1.100", "eth0.100"),
        note="The parent is the VLAN link on the lab NIC, eth1.100.",
    )
    start_containers(s, "100_1", placed)

    link = (
        "17: eth1.100@eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc "
        "noqueue state UP mode DEFAULT group default qlen 1000\n"
        "    link/ether 52:54:00:4c:00:0{n} brd ff:ff:ff:ff:ff:ff promiscuity 0\n"
        "    vlan protocol 802.1Q id 100 <REORDER_HDR> addrgenmode eui64\n"
    )
    vlan_claim = Claim(
        "Procedure 2, step 1",
        "vconfig add eth0 100 creates eth0.100 (made here with ip link)",
        "a VLAN 100 link on the parent NIC",
    )
    for n in ("1", "2"):
        r = record(
            f"host{n}", "ip -d link show eth1.100", 0, link.format(n=n), duration=0.3
        )
        s["checks"].append(
            CheckResult(
                id=f"h{n}-vlan-link",
                kind="command",
                title=f"host {n} has a VLAN 100 link on the lab NIC",
                source=f"host{n}",
                target=None,
                expected="exit 0, stdout contains 'vlan protocol 802.1Q id 100'",
                observed="exit 0",
                outcome="pass",
                verdict="confirmed",
                claim=vlan_claim,
                evidence={"attempts": 1},
                records=[r],
                started=r.started,
                duration=r.duration,
            )
        )

    rows = [
        ("gateway", "the gateway", "test100.101", "192.168.100.1", "unreachable"),
        (
            "own-vlan-address",
            "this host's eth0.100 address",
            "test100.101",
            "192.168.15.50",
            "unreachable",
        ),
        (
            "other-vlan-address",
            "the other host's eth0.100 address",
            "test100.101",
            "192.168.15.51",
            "unreachable",
        ),
        (
            "same-host-ip",
            "a container on this host, by IP",
            "test100.101",
            "192.168.100.102",
            "reachable",
        ),
        (
            "other-host-ip",
            "a container on the other host, by IP",
            "test100.101",
            "192.168.100.201",
            "reachable",
        ),
        (
            "same-host-name",
            "a container on this host, by name",
            "test100.101",
            "test100.102",
            "reachable",
        ),
        (
            "other-host-name",
            "a container on the other host, by name",
            "test100.101",
            "test100.201",
            "unreachable",
        ),
        (
            "other-network",
            "a machine on another network",
            "test100.101",
            LAN,
            "unreachable",
        ),
        (
            "host-own-container",
            "this host to its own container",
            "host1",
            "192.168.100.101",
            "unreachable",
        ),
        (
            "host-other-container",
            "this host to the other host's container",
            "host1",
            "192.168.100.201",
            "unreachable",
        ),
    ]
    # The loader's own positive control for host 1's negative pings.
    ping(
        s,
        "control-host1",
        "host1 reaches host2 (positive control)",
        "host1",
        "host1",
        HOSTS["host2"][0],
        expect="reachable",
    )
    for key, title, source, target, says in rows:
        where = "docker exec " + source if source.startswith("test") else ""
        command = f"{where} ping {target}".strip()
        control = None
        if says == "unreachable":
            control = "h1-same-host-ip" if where else "control-host1"
        ping(
            s,
            f"h1-{key}",
            title,
            "host1",
            source,
            target,
            expect=says,
            claim=Claim("Procedure 2, step 4", f"{command}: {title}", says),
            control=control,
        )
    return finish(
        "vlan",
        "Procedure 2: ipvlan L2 on VLAN 100, across two hosts",
        "scenarios/vlan.yaml",
        s,
        placed,
        "100_1",
        "eth1.100",
        "192.168.100.0/24",
    )


def problem_parent() -> ScenarioResult:
    s = {"steps": [], "checks": [], "addresses": {}}
    step(
        s,
        "create-first",
        "Create eth0_1 on the lab NIC",
        ["host1"],
        "docker network create -d ipvlan --subnet=192.168.4.0/24 -o parent=eth1 "
        "-o ipvlan_mode=l2 eth0_1",
        [hex_id("n5") + "\n"],
    )
    claim = Claim(
        PROBLEMS,
        "1. An ipvlan network must name a parent, and a parent can be used only "
        "once: once eth0 is the parent of one network, creating another network "
        "on eth0 fails.",
        "a second network on the same parent fails",
    )
    tries = [
        (
            "second-same-subnet",
            "a second network on eth1 with the same subnet fails",
            "192.168.4.0/24",
            "eth0_2",
            "{exit: nonzero}",
            "Error response from daemon: Pool overlaps with other one on this address "
            "space\n",
        ),
        (
            "second-other-subnet",
            "a second network on eth1 with another subnet fails for the parent",
            "192.168.5.0/24",
            "eth0_3",
            "{exit: nonzero, stderr: already using parent interface}",
            "Error response from daemon: network di-5f1c0a9e2b7d is already using "
            "parent interface eth1\n",
        ),
    ]
    for id, title, subnet, name, expected, stderr in tries:
        r = record(
            "host1",
            f"docker network create -d ipvlan --subnet={subnet} -o parent=eth1 {name}",
            1,
            stderr=stderr,
        )
        s["checks"].append(
            CheckResult(
                id=id,
                kind="command",
                title=title,
                source="host1",
                target=None,
                expected=expected,
                observed="exit 1",
                outcome="pass",
                verdict="confirmed",
                claim=claim,
                evidence={"attempts": 1},
                records=[r],
                started=r.started,
                duration=r.duration,
            )
        )
    s["checks"].append(
        CheckResult(
            id="l3s-mode",
            kind="command",
            title="ipvlan_mode=l3s is accepted",
            source="host1",
            target=None,
            expected="skipped",
            observed="skipped",
            outcome="skipped",
            verdict=None,
            condition="docker >= 23",
            reason=f"skipped: docker >= 23 applies not here (docker {DOCKER}, "
            f"kernel {KERNEL})",
            attempts=0,
            started=CLOCK.take(0),
            duration=0.0,
        )
    )
    return finish(
        "problem-parent",
        "Problem 1: a parent serves one ipvlan network",
        "scenarios/problem-parent.yaml",
        s,
        {},
        "eth0_1",
        "eth1",
        "192.168.4.0/24",
    )


def problem_vlan_subnet() -> ScenarioResult:
    placed = {
        "test100.101": ("host1", "192.168.100.101"),
        "test100.201": ("host2", "192.168.100.201"),
    }
    s = {"steps": [], "checks": [], "addresses": {k: v[1] for k, v in placed.items()}}
    hosts = ["host1", "host2"]
    step(
        s,
        "vlan-link",
        "Create the VLAN link on both hosts",
        hosts,
        "sudo ip link add link eth1 name eth1.100 type vlan id 100",
    )
    step(
        s,
        "vlan-address",
        "Give each host an address inside the ipvlan subnet",
        hosts,
        "sudo ip addr add {address}/24 dev eth1.100",
        values={
            "host1": {"address": "192.168.100.50"},
            "host2": {"address": "192.168.100.51"},
        },
    )
    step(s, "vlan-up", "Bring the VLAN link up", hosts, "sudo ip link set eth1.100 up")
    step(
        s,
        "create-network",
        "Create 100_1 on the VLAN link",
        hosts,
        "docker network create -d ipvlan --subnet=192.168.100.0/24 "
        "-o parent=eth1.100 -o ipvlan_mode=l2 100_1",
        [hex_id("n6") + "\n", hex_id("n7") + "\n"],
    )
    start_containers(s, "100_1", placed)
    claim = Claim(
        PROBLEMS,
        "2. The ipvlan subnet must not be the same as the VLAN interface's subnet; "
        "if it is, containers on the ipvlan network can no longer talk across "
        "hosts.",
        "unreachable",
    )
    why = (
        "L2 ipvlan traffic between hosts never uses the hosts' own addresses; a "
        "separate subnet is an L3 need"
    )
    ping(
        s,
        "cross-1",
        "test100.101 reaches test100.201 across hosts",
        "host1",
        "test100.101",
        "192.168.100.201",
        expect="reachable",
        claim=claim,
        reason=why,
    )
    ping(
        s,
        "cross-2",
        "test100.201 reaches test100.101 across hosts",
        "host2",
        "test100.201",
        "192.168.100.101",
        expect="reachable",
        claim=claim,
        reason=why,
    )
    ping(
        s,
        "host-other-container",
        "host 1 reaches test100.201 once eth1.100 is in the ipvlan subnet",
        "host1",
        "host1",
        "192.168.100.201",
        expect="reachable",
        observed="unreachable",
    )
    ping(
        s,
        "host-own-container",
        "host 1 still cannot reach its own container",
        "host1",
        "host1",
        "192.168.100.101",
        expect="unreachable",
        control="cross-1",
    )
    return finish(
        "problem-vlan-subnet",
        "Problem 2: the ipvlan subnet equal to the VLAN link's subnet",
        "scenarios/problem-vlan-subnet.yaml",
        s,
        placed,
        "100_1",
        "eth1.100",
        "192.168.100.0/24",
    )


def sample_run() -> RunResult:
    """The sample run: procedures 1 and 2 and problems 1 and 2 of the how-to."""
    global CLOCK
    CLOCK = Clock()
    start = CLOCK.take(0)
    scenarios = [novlan(), vlan(), problem_parent(), problem_vlan_subnet()]
    nodes = [
        NodeFacts(
            name,
            "host",
            address,
            "eth1",
            mac,
            KERNEL,
            DOCKER,
            "Debian GNU/Linux 12 (bookworm)",
            vlan_address,
        )
        for name, (address, mac, vlan_address) in HOSTS.items()
    ]
    nodes.append(
        NodeFacts(
            "lan",
            "lan",
            LAN,
            "eth1",
            "52:54:00:4c:00:03",
            KERNEL,
            None,
            "Debian GNU/Linux 12 (bookworm)",
        )
    )
    return RunResult(
        run_id="20250314-093000-verify",
        command="invoke verify",
        started=start,
        duration=round(sum(s.duration for s in scenarios) + 4.2, 3),
        exit_code=2,
        environment=Environment(
            "libvirt-qemu", "ipvlan-lab/debian12", "isolated", nodes
        ),
        scenarios=scenarios,
    )


if __name__ == "__main__":
    from ipvlan_lab.report.jsonio import write_results

    print(write_results(sample_run(), Path(__file__).resolve().parent))
