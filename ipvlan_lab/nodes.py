"""Bringing each node to the lab's baseline, and learning its facts.

For every node: find the lab NIC (by the MAC the lab gave it), run the
node's provision script from ``provision/`` (idempotent: it installs what is
missing, then checks), and record what scenarios and reports need to know:
NIC name and MAC, kernel, Docker version, OS, and the baseline of what stood
there before any scenario ran (so that cleaning up removes only what
scenarios made).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from .config import PROJECT, Config, Node
from .connections import Session
from .errors import LabError, NodeError
from .parsing import Link, find_nic, parse_addresses, parse_links
from .results import CommandRecord

PROVISION = PROJECT / "provision"
REMOTE_PREFIX = "ipvlan-lab"
#: Link kinds a scenario may create; anything of these kinds not in the
#: baseline is removed before the next scenario.
SCENARIO_LINK_KINDS = ("vlan", "ipvlan", "macvlan", "dummy")
#: The Docker networks a scenario may have made: the user-defined ones.
#: Docker's own (bridge, host, none) cannot be removed, and bridge gets a new
#: ID each time the daemon starts, as a scenario may make it do.
NETWORKS = "docker network ls -q --no-trunc --filter type=custom"


def discover_nic(
    session: Session, node: Node, named: str | None = None, own: bool = False
) -> dict:
    """The lab NIC of ``node``: its name and MAC.

    On the lab's VMs it is found by MAC. On a machine of the user's (``own``)
    it is the NIC ``named`` in ``lab.yaml``, or else the one with the node's
    MAC, or else the one holding the node's address.
    """
    links = parse_links(_output(session, node, "ip -j -d link show"))
    if named:
        link = next((link for link in links if link.ifname == named), None)
        if link is None:
            found = ", ".join(link.ifname for link in links)
            raise NodeError(
                f"{node.slot} has no NIC {named} (found: {found})",
                hint=f"fix ssh.{node.slot}.nic in lab.yaml",
            )
        return {"nic": link.ifname, "mac": link.mac}
    addresses = []
    if own:
        addresses = parse_addresses(_output(session, node, "ip -j addr show"))
    name = find_nic(
        links, addresses, mac=node.mac, address=node.address if own else None
    )
    link = next(link for link in links if link.ifname == name)
    return {"nic": name, "mac": link.mac}


def provision(
    session: Session, config: Config, node: Node, nic: str, own: bool = False
) -> str:
    """Run the node's provision script; its output, or a NodeError. ``own``:
    the node is a machine of the user's (provider ``existing``)."""
    script = "lan.sh" if node.role == "lan" else "node.sh"
    env = {
        "LAB_NODE": node.slot,
        "LAB_NIC": nic,
        "LAB_HOSTNAME": node.name,
        "LAB_MACHINE": "own" if own else "vm",
    }
    if node.role == "lan":
        env["LAB_ADDRESSES"] = " ".join(config.lan_addresses())
    else:
        env["LAB_ADDRESS"] = config.address_cidr(node.slot)
        env["LAB_DNS"] = config.nodes["lan"].address
        env["DOCKER_SOURCE"] = config.data["docker"]["source"]
        env["DOCKER_VERSION"] = config.data["docker"]["version"] or ""
    record = _run_script(session, script, env, timeout=900)
    output = (record.stdout + record.stderr).strip()
    if record.exit_status != 0 or "baseline ok" not in record.stdout:
        # The scripts print each problem as "NODE: what is wrong; fix: what to do".
        problems = [
            line
            for line in output.splitlines()
            if "; fix: " in line or "FAIL" in line or "error" in line
        ]
        raise NodeError(
            f"{node.slot} is not fit for the lab: "
            + ("; ".join(problems) if problems else output[-400:]),
            hint=f"the provision script provision/{script} says what to fix; "
            "run `invoke up` again once it is fixed",
        )
    return output


def _run_script(
    session: Session, script: str, env: dict[str, str], timeout: float
) -> CommandRecord:
    """Copy a script of ``provision/`` (and what it sources) to the node and
    run it there as root with ``env``. The copies go to a new folder only the
    SSH user can write (on a shared machine no one else can swap them before
    root runs them), removed afterwards."""
    made = session.run(f"mktemp -d /tmp/{REMOTE_PREFIX}.XXXXXX", timeout=30)
    folder = made.stdout.strip()
    if made.exit_status != 0 or not folder.startswith(f"/tmp/{REMOTE_PREFIX}."):
        raise NodeError(
            f"{session.slot}: cannot make a folder for the lab's scripts: "
            f"{(made.stdout + made.stderr).strip()[-200:]}",
            hint=f"check that /tmp on {session.slot} is writable and not full",
        )
    try:
        for name in (script, "baseline.sh"):
            session.put(PROVISION / name, f"{folder}/{name}")
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        return session.run(
            f"sudo -n env {assignments} bash {folder}/{script}", timeout=timeout
        )
    finally:
        session.run(f"rm -rf {folder}", timeout=30)


def restore(session: Session, node: Node) -> str:
    """Undo, on a machine of the user's, what provisioning changed
    (``provision/restore.sh``); its output, or a NodeError."""
    record = _run_script(session, "restore.sh", {"LAB_NODE": node.slot}, 300)
    output = (record.stdout + record.stderr).strip()
    # Success is the script's last word on stdout; stderr may carry warnings
    # (sudo's "unable to resolve host ...", for one).
    if record.exit_status != 0 or not record.stdout.rstrip().endswith("restored"):
        raise NodeError(
            f"{node.slot} is not fully restored: {output[-400:]}",
            hint=f"see /var/lib/ipvlan-lab/changes on {node.slot}; `invoke down` "
            "again once it is fixed",
        )
    return record.stdout.strip()


def reset(
    run: Callable[[str, float], CommandRecord],
    node: Node,
    nic: str,
    base: dict,
    addresses: list[str],
) -> list[CommandRecord]:
    """Remove what scenarios made on ``node`` since ``base``, running each
    command with ``run(command, timeout)``; the records."""
    listing = run("ip -j -d link show", 30)
    if listing.exit_status != 0:
        return [listing]
    commands = reset_commands(node, nic, base, parse_links(listing.stdout), addresses)
    return [listing, run("; ".join(commands), 120)]


def facts(session: Session, node: Node) -> dict:
    """Kernel, OS and (on Docker hosts) Docker version of a node."""
    command = (
        'uname -r; . /etc/os-release; echo "$PRETTY_NAME"; '
        "docker version --format '{{.Server.Version}}' 2>/dev/null || true"
    )
    lines = session.run(command, timeout=60).stdout.splitlines() + ["", "", ""]
    found = {"kernel": lines[0].strip(), "os": lines[1].strip()}
    if node.role == "docker":
        found["docker"] = lines[2].strip() or None
    return found


def baseline(session: Session, node: Node, nic: str | None = None) -> dict:
    """What stands on a node before any scenario: containers, Docker
    networks, links and the IPv4 addresses of its lab NIC ``nic``."""
    links = parse_links(_output(session, node, "ip -j -d link show"))
    found = {"links": sorted(link.ifname for link in links)}
    if nic:
        listed = parse_addresses(_output(session, node, f"ip -j addr show dev {nic}"))
        found["addresses"] = sorted(
            f"{a.address}/{a.prefixlen}" for a in listed if a.family == "inet"
        )
    if node.role == "docker":
        containers = _output(session, node, "docker ps -aq --no-trunc").split()
        networks = _output(session, node, NETWORKS).split()
        found.update(containers=sorted(containers), networks=sorted(networks))
    return found


def _output(session: Session, node: Node, command: str) -> str:
    """The output of a command that must succeed: the baseline is what the
    clean-up keeps, so a partial one is an error, never an empty list."""
    record = session.run(command, timeout=60)
    if record.exit_status != 0:
        said = (record.stderr or record.stdout).strip()[-300:]
        raise NodeError(
            f"`{command}` on {node.slot} "
            + (f"exited {record.exit_status}" if record.exit_status else "hung")
            + (f": {said}" if said else ""),
            hint="see `invoke ssh " + node.slot + "`; `invoke up` again once "
            "the node answers",
        )
    return record.stdout


def kept_addresses(config: Config, slot: str, facts: dict) -> list[str]:
    """The IPv4 CIDRs of a node's lab NIC that no clean-up removes: the
    node's own (the LAN node's, gateway and all) and those its baseline
    found there."""
    own = config.lan_addresses() if slot == "lan" else [config.address_cidr(slot)]
    found = facts.get("baseline", {}).get("addresses", [])
    return own + [a for a in found if a not in own]


def reset_commands(
    node: Node, nic: str, base: dict, found_links: list[Link], addresses: list[str]
) -> list[str]:
    """Commands that remove what scenarios made on ``node`` since ``base``.

    ``addresses`` are the CIDRs the lab NIC must keep; any other IPv4 address
    on it was a scenario's.

    Containers and Docker networks first (Docker removes the VLAN links it
    made itself), then any link a scenario made by hand, then addresses and
    neighbour entries a scenario left on the lab NIC.
    """
    commands = []
    if node.role == "docker":
        for listing, remove, kept in (
            ("docker ps -aq --no-trunc", "docker rm -f", base.get("containers", [])),
            (
                NETWORKS,
                "docker network rm",
                base.get("networks", []),
            ),
        ):
            patterns = " ".join(f"-e {k}" for k in [*kept, "-none-"])
            commands.append(
                f"{listing} | grep -vxF {patterns} | xargs -r {remove} >/dev/null"
            )
    keep = set(base.get("links", []))
    for link in found_links:
        if link.ifname not in keep and link.kind in SCENARIO_LINK_KINDS:
            commands.append(f"sudo -n ip link del {shlex.quote(link.ifname)} || true")
    keep_addresses = " ".join(addresses)
    commands.append(
        f"for a in $(ip -o -4 addr show dev {shlex.quote(nic)} | awk '{{print $4}}'); "
        f"do case ' {keep_addresses} ' in *\" $a \"*) ;; "
        f"*) sudo -n ip addr del $a dev {shlex.quote(nic)} ;; esac; done; true"
    )
    commands.append(f"sudo -n ip neigh flush dev {shlex.quote(nic)} || true")
    return commands


#: What separates the parts of :func:`leftover_listing`'s output.
LISTING_PART = "--ipvlan-lab--"


def leftover_listing(node: Node, nic: str) -> str:
    """One command that lists what :func:`leftovers` compares with the
    baseline: containers and Docker networks, links, the lab NIC's addresses."""
    parts = []
    if node.role == "docker":
        parts += ["docker ps -aq --no-trunc", NETWORKS]
    parts += ["ip -j -d link show", f"ip -j addr show dev {shlex.quote(nic)}"]
    return f"set -e; {f'; echo {LISTING_PART}; '.join(parts)}"


def left_on(
    run: Callable[[str, float], CommandRecord],
    node: Node,
    nic: str,
    base: dict,
    addresses: list[str],
) -> tuple[list[str], CommandRecord]:
    """What scenarios made that still stands on ``node``, listed with
    ``run(command, timeout)``, and the listing's record. A node that cannot be
    listed holds "nothing it can list (why)": it is not known to be clean."""
    record = run(leftover_listing(node, nic), 60)
    if record.exit_status != 0:
        said = (record.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"nothing it can list ({said})"], record
    try:
        return leftovers(node, base, record.stdout, addresses), record
    except LabError as exc:
        return [f"nothing it can list ({exc.message})"], record


def leftovers(node: Node, base: dict, output: str, addresses: list[str]) -> list[str]:
    """What scenarios made that is still on ``node``, by :func:`leftover_listing`'s
    output: the things :func:`reset_commands` removes, named."""
    parts = output.split(LISTING_PART)
    if len(parts) != (4 if node.role == "docker" else 2):
        raise NodeError(f"cannot read what stands on {node.slot}: {output[-200:]!r}")
    if node.role == "docker":
        containers, networks, *parts = parts
        found = [
            f"container {c[:12]}"
            for c in containers.split()
            if c not in base.get("containers", [])
        ]
        found += [
            f"Docker network {n[:12]}"
            for n in networks.split()
            if n not in base.get("networks", [])
        ]
    else:
        found = []
    links, addrs = parts
    kept = set(base.get("links", []))
    found += [
        f"{link.kind} link {link.ifname}"
        for link in parse_links(links)
        if link.ifname not in kept and link.kind in SCENARIO_LINK_KINDS
    ]
    found += [
        f"address {a.address}/{a.prefixlen}"
        for a in parse_addresses(addrs)
        if a.family == "inet" and f"{a.address}/{a.prefixlen}" not in addresses
    ]
    return found
