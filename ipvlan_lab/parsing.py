"""Reading what commands print on the nodes: pure functions, no I/O.

Each function takes a command's output as text and returns plain data. The
formats are those of the lab's nodes: busybox ``ping`` and ``nslookup``
inside the containers, iputils ``ping``, iproute2 ``ip -j`` and ``tcpdump`` on
the hosts, and ``docker inspect``. Output that none of them could have
printed (an error of ``docker exec``, say) raises
:class:`~ipvlan_lab.errors.NodeError` quoting its first lines, so the caller
can tell a broken lab from a negative result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import NodeError

#: Link kinds stacked on a parent NIC: they share its MAC and are never the NIC.
STACKED_KINDS = ("vlan", "ipvlan", "ipvtap", "macvlan", "macvtap")

_PING_HEADER = re.compile(r"^PING (\S+) \(([^)]*)\)", re.MULTILINE)
_PING_SENT = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_ERRORS = re.compile(r"\+(\d+) errors")
_PING_LOSS = re.compile(r"([\d.]+)% packet loss")
_PING_RTT = re.compile(r"(?:round-trip|rtt) min/avg/max(?:/mdev)? = [\d.]+/([\d.]+)/")
_PING_UNRESOLVED = re.compile(
    r"^ping: (?:bad address '[^']*'|unknown host|[^:\n]+: (?:Name or service not "
    r"known|Temporary failure in name resolution|No address associated with "
    r"hostname|Name has no usable address))",
    re.MULTILINE,
)
_PING_NET_UNREACHABLE = re.compile(r"Network is unreachable")
_PING_HOST_UNREACHABLE = re.compile(r"Destination Host Unreachable|No route to host")

_NS_FAILURE = re.compile(r"\*\* server can't find ([^:]+): (\w+)")
_NS_OLD_FAILURE = re.compile(r"can't resolve '([^']*)'")
_NS_NO_SERVER = re.compile(r"no servers could be reached|Connection refused")
_TCPDUMP_PACKET = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d+ ", re.MULTILINE)
_TCPDUMP_COUNT = re.compile(r"^(\d+) packets? captured", re.MULTILINE)


@dataclass
class Ping:
    """What one ``ping`` run showed.

    ``problem`` says why nothing came back: ``unresolved`` (the name did not
    resolve, so nothing was sent), ``network-unreachable`` (no route),
    ``host-unreachable`` (no ARP answer, reported by iputils) or ``no-reply``
    (packets went out, none came back). It is ``None`` when replies came.
    """

    transmitted: int
    received: int
    loss: float | None = None
    rtt_avg: float | None = None
    errors: int = 0
    #: The address ping sent to (the resolved one, when given a name).
    address: str | None = None
    problem: str | None = None

    @property
    def reachable(self) -> bool:
        """Whether at least one reply came back."""
        return self.received > 0

    @property
    def resolved(self) -> bool:
        """Whether the target's name resolved (always true for an address)."""
        return self.problem != "unresolved"

    @property
    def observed(self) -> str:
        """``reachable`` or ``unreachable``, the words a scenario expects."""
        return "reachable" if self.reachable else "unreachable"


@dataclass
class Lookup:
    """What one busybox ``nslookup`` showed.

    ``status`` is ``resolved``, the server's negative answer in lower case
    (``nxdomain``, ``servfail``, ``refused``; old busybox prints only "can't
    resolve", read as ``nxdomain``), ``empty`` (an answer without address) or
    ``no-answer`` (no server answered at all).
    """

    name: str | None
    server: str | None
    addresses: list[str] = field(default_factory=list)
    status: str = "resolved"

    @property
    def observed(self) -> str:
        """``resolves``, ``nxdomain`` (a server said no) or ``no-answer``."""
        if self.addresses:
            return "resolves"
        if self.status == "no-answer":
            return "no-answer"
        return "nxdomain"


@dataclass
class Link:
    """One network link from ``ip -j link`` (``kind`` needs ``ip -j -d``)."""

    ifname: str
    mac: str | None
    operstate: str | None
    #: ``vlan``, ``ipvlan``, ``veth``, ``bridge``...; ``None`` for a plain NIC.
    kind: str | None = None
    #: The parent (or veth peer) the link sits on.
    link: str | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class Address:
    """One address from ``ip -j addr``."""

    ifname: str
    family: str
    address: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass
class Network:
    """A Docker network as ``docker network inspect`` shows it."""

    name: str
    driver: str
    #: ``ipvlan_mode`` or ``macvlan_mode``; Docker's default when not given.
    mode: str | None
    parent: str | None
    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, str | None]:
        """The values a ``docker-network`` check compares, by key."""
        return {
            "driver": self.driver,
            "mode": self.mode,
            "parent": self.parent,
            "subnet": self.subnets[0] if self.subnets else None,
            "gateway": self.gateways[0] if self.gateways else None,
        }


@dataclass
class ContainerNetworks:
    """A container as ``docker inspect`` shows it: state and addresses."""

    name: str
    running: bool
    #: Network name -> (IPv4 address or None, MAC as Docker reports it or None).
    networks: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def address(self) -> str | None:
        """The address on its first network."""
        return next(iter(self.networks.values()), (None, None))[0]


@dataclass
class Capture:
    """What ``tcpdump -l -n -e`` printed (stdout and stderr together)."""

    packets: list[str]
    #: The count tcpdump reports when it stops, if it got that far.
    captured: int | None = None

    def contains(self, text: str) -> bool:
        """Whether any packet line contains ``text``."""
        return any(text in line for line in self.packets)


def parse_ping(output: str) -> Ping:
    """Read busybox or iputils ``ping`` output (stdout and stderr together).

    Raises :class:`~ipvlan_lab.errors.NodeError` when the output is neither,
    e.g. ``Error: No such container`` from ``docker exec``.
    """
    if _PING_UNRESOLVED.search(output):
        return Ping(0, 0, problem="unresolved")

    header = _PING_HEADER.search(output)
    address = header.group(2) if header else None
    sent = _PING_SENT.search(output)
    if sent is None:
        if _PING_NET_UNREACHABLE.search(output):
            return Ping(0, 0, address=address, problem="network-unreachable")
        raise NodeError(f"cannot read this ping output: {_head(output)}")

    transmitted, received = int(sent.group(1)), int(sent.group(2))
    errors = _PING_ERRORS.search(output)
    loss = _PING_LOSS.search(output)
    rtt = _PING_RTT.search(output)
    problem = None
    if received == 0:
        if _PING_HOST_UNREACHABLE.search(output):
            problem = "host-unreachable"
        elif _PING_NET_UNREACHABLE.search(output):
            problem = "network-unreachable"
        else:
            problem = "no-reply"
    return Ping(
        transmitted=transmitted,
        received=received,
        loss=float(loss.group(1)) if loss else None,
        rtt_avg=float(rtt.group(1)) if rtt else None,
        errors=int(errors.group(1)) if errors else 0,
        address=address,
        problem=problem,
    )


def parse_nslookup(output: str) -> Lookup:
    """Read busybox ``nslookup NAME SERVER`` output, new (1.28+) or old format.

    Raises :class:`~ipvlan_lab.errors.NodeError` when the output is not
    nslookup's.
    """
    server = name = None
    addresses: list[str] = []
    for line in output.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "Server":
            server = value
        elif key == "Name":
            name = value
        elif (key == "Address" or key.startswith("Address ")) and value:
            address = value.split()[0]
            if name is None:  # the server's own address, before any answer
                server = server or address
            elif address not in addresses:
                addresses.append(address)

    if addresses:
        return Lookup(name, server, addresses, "resolved")
    failure = _NS_FAILURE.search(output)
    if failure:
        return Lookup(failure.group(1), server, [], failure.group(2).lower())
    old_failure = _NS_OLD_FAILURE.search(output)
    if old_failure:
        return Lookup(old_failure.group(1), server, [], "nxdomain")
    if _NS_NO_SERVER.search(output):
        return Lookup(name, server, [], "no-answer")
    if server is not None:
        return Lookup(name, server, [], "empty")
    raise NodeError(f"cannot read this nslookup output: {_head(output)}")


def parse_links(text: str) -> list[Link]:
    """Read ``ip -j link`` or ``ip -j -d link`` (or ``ip -j addr``) output."""
    return [
        Link(
            ifname=entry["ifname"],
            mac=_mac(entry.get("address")),
            operstate=entry.get("operstate"),
            kind=(entry.get("linkinfo") or {}).get("info_kind"),
            link=entry.get("link"),
            flags=list(entry.get("flags", [])),
        )
        for entry in _json_list(text, "ip -j link")
    ]


def parse_addresses(text: str) -> list[Address]:
    """Read ``ip -j addr`` output: every address of every link, in order."""
    return [
        Address(entry["ifname"], info["family"], info["local"], info["prefixlen"])
        for entry in _json_list(text, "ip -j addr")
        for info in entry.get("addr_info", [])
        if "local" in info
    ]


def parse_neighbours(text: str) -> dict[str, str]:
    """Read ``ip -j neigh`` output as address -> MAC (lower case).

    Entries without a MAC (``FAILED``, ``INCOMPLETE``) are left out.
    """
    return {
        entry["dst"]: entry["lladdr"].lower()
        for entry in _json_list(text, "ip -j neigh")
        if entry.get("lladdr")
    }


def find_nic(
    links: list[Link],
    addresses: list[Address],
    mac: str | None = None,
    address: str | None = None,
) -> str:
    """The name of the NIC with ``mac``, or else the one holding ``address``.

    Links stacked on another (a VLAN, an ipvlan or macvlan link) share their
    parent's MAC; the parent wins. Raises
    :class:`~ipvlan_lab.errors.NodeError` listing the NICs found when none
    (or more than one) fits.
    """
    if mac is not None:
        wanted = mac.lower()
        matches = [link for link in links if link.mac == wanted]
        names = {link.ifname for link in matches}
        base = [
            link
            for link in matches
            if link.kind not in STACKED_KINDS and link.link not in names
        ]
        if len(base) == 1:
            return base[0].ifname
        if len(base) > 1:
            raise NodeError(
                f"several NICs have MAC {wanted}: "
                f"{', '.join(link.ifname for link in base)}",
                hint="give each NIC of the lab's nodes its own MAC",
            )
    if address is not None:
        holders = [a.ifname for a in addresses if a.address == address.split("/")[0]]
        if holders:
            return holders[0]

    wanted = " or ".join(
        part
        for part in (mac and f"MAC {mac.lower()}", address and f"address {address}")
        if part
    )
    raise NodeError(
        f"no NIC with {wanted or 'nothing to look for'} "
        f"(found: {_describe_nics(links, addresses)})",
        hint="check the node's MAC and address in lab.yaml",
    )


def parse_network(text: str) -> Network:
    """Read ``docker network inspect NAME`` output (the first network)."""
    return network_of(_json_list(text, "docker network inspect")[0])


def network_of(entry: dict[str, Any]) -> Network:
    """A network from one entry of ``docker network inspect`` (or the Docker
    SDK's ``Network.attrs``, the same mapping)."""
    options = entry.get("Options") or {}
    driver = entry.get("Driver", "")
    mode = options.get(f"{driver}_mode")
    if mode is None and driver == "ipvlan":
        mode = "l2"  # Docker's default ipvlan mode
    elif mode is None and driver == "macvlan":
        mode = "bridge"  # Docker's default macvlan mode
    configs = (entry.get("IPAM") or {}).get("Config") or []
    return Network(
        name=entry.get("Name", ""),
        driver=driver,
        mode=mode,
        parent=options.get("parent"),
        subnets=[c["Subnet"] for c in configs if c.get("Subnet")],
        gateways=[c["Gateway"] for c in configs if c.get("Gateway")],
    )


def parse_container(text: str) -> ContainerNetworks:
    """Read ``docker inspect CONTAINER`` output (the first container).

    An ipvlan endpoint has no MAC of its own: Docker reports an empty one,
    kept here as ``None``; read ``/sys/class/net/eth0/address`` in the
    container for the MAC it really uses.
    """
    return container_of(_json_list(text, "docker inspect")[0])


def container_of(entry: dict[str, Any]) -> ContainerNetworks:
    """A container from one entry of ``docker inspect`` (or the Docker SDK's
    ``Container.attrs``)."""
    networks = (entry.get("NetworkSettings") or {}).get("Networks") or {}
    return ContainerNetworks(
        name=entry.get("Name", "").lstrip("/"),
        running=bool((entry.get("State") or {}).get("Running")),
        networks={
            name: (info.get("IPAddress") or None, _mac(info.get("MacAddress")))
            for name, info in networks.items()
        },
    )


def parse_capture(output: str) -> Capture:
    """Read ``tcpdump -l -n -e`` output: its packet lines and final count."""
    packets = [line for line in output.splitlines() if _TCPDUMP_PACKET.match(line)]
    count = _TCPDUMP_COUNT.search(output)
    return Capture(packets, int(count.group(1)) if count else None)


def _json_list(text: str, command: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise NodeError(f"{command} printed no JSON: {_head(text)}") from None
    if not isinstance(data, list) or (not data and command.startswith("docker")):
        raise NodeError(f"{command} printed no list of entries: {_head(text)}")
    return data


def _mac(value: str | None) -> str | None:
    return value.lower() if value else None


def _describe_nics(links: list[Link], addresses: list[Address]) -> str:
    described = []
    for link in links:
        if link.ifname == "lo":
            continue
        held = [str(a) for a in addresses if a.ifname == link.ifname]
        parts = [link.mac or "no MAC", *held]
        described.append(f"{link.ifname} {' '.join(parts)}")
    return ", ".join(described) or "none"


def _head(text: str, lines: int = 3) -> str:
    shown = [line for line in text.strip().splitlines() if line.strip()][:lines]
    return " / ".join(shown) if shown else "(nothing)"
