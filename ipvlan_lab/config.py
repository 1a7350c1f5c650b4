"""The lab's configuration: one YAML file, every value with a default.

``lab.yaml`` at the top of the project documents every key; :data:`DEFAULTS`
holds the same values, so a key left out of the file keeps its default. A
unit test keeps the two equal. :func:`load` reads, merges and validates, and
each problem becomes one :class:`~ipvlan_lab.errors.ConfigError` that names
the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PROJECT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "IPVLAN_LAB_CONFIG"

PROVIDERS = ("auto", "virtualbox", "libvirt-kvm", "libvirt-qemu", "existing")
NETWORK_MODES = ("isolated", "bridged")
DOCKER_SOURCES = ("distro", "docker")
#: The node slots, fixed: scenarios refer to nodes by these names.
DOCKER_HOSTS = ("host1", "host2")
SLOTS = (*DOCKER_HOSTS, "lan")

DEFAULTS: dict[str, Any] = {
    "provider": "auto",
    "network": {
        "mode": "isolated",
        "adapter": None,
        "name": "ipvlan-lab",
        "subnet": "192.168.4.0/24",
        "gateway": "192.168.4.1",
    },
    "management": {"name": "ipvlan-lab-mgmt", "subnet": "192.168.121.0/24"},
    "vlan": {
        "id": 100,
        "host_subnet": "192.168.15.0/24",
        "subnet": "192.168.100.0/24",
        "gateway": "192.168.100.1",
    },
    "nodes": {
        "host1": {
            "name": "ipvlan-host1",
            "address": "192.168.4.236",
            "vlan_address": "192.168.15.50",
            "mac": "52:54:00:4c:00:01",
            "cpus": 2,
            "memory": 1024,
        },
        "host2": {
            "name": "ipvlan-host2",
            "address": "192.168.4.237",
            "vlan_address": "192.168.15.51",
            "mac": "52:54:00:4c:00:02",
            "cpus": 2,
            "memory": 1024,
        },
        "lan": {
            "name": "ipvlan-lan",
            "address": "192.168.4.199",
            "mac": "52:54:00:4c:00:03",
            "cpus": 1,
            "memory": 512,
        },
    },
    "boxes": {
        "virtualbox": {"name": "bento/ubuntu-24.04", "version": None},
        "libvirt": {"name": "ipvlan-lab/debian12", "version": None},
    },
    "docker": {"source": "distro", "version": None},
    "boot_timeout": 900,
    "ssh": {
        slot: {"host": None, "port": 22, "user": None, "key": None, "nic": None}
        for slot in ("host1", "host2", "lan")
    },
}

CPU_RANGE = (1, 16)
MEMORY_RANGE = (256, 65536)
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_VM_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Node:
    """One node of the lab, by slot (``host1``, ``host2`` or ``lan``)."""

    slot: str
    name: str
    address: str
    mac: str
    cpus: int
    memory: int
    vlan_address: str | None = None

    @property
    def role(self) -> str:
        """``docker`` for the two Docker hosts, ``lan`` for the LAN node."""
        return "lan" if self.slot == "lan" else "docker"


@dataclass(frozen=True)
class Config:
    """The validated configuration, with the raw merged data beside it."""

    path: Path | None
    data: dict[str, Any]

    @property
    def provider(self) -> str:
        """The provider asked for, or ``auto``."""
        return self.data["provider"]

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        """The lab segment's subnet."""
        return ipaddress.IPv4Network(self.data["network"]["subnet"])

    @property
    def vlan_subnet(self) -> ipaddress.IPv4Network:
        """The containers' subnet on the VLAN."""
        return ipaddress.IPv4Network(self.data["vlan"]["subnet"])

    @property
    def vlan_host_subnet(self) -> ipaddress.IPv4Network:
        """The hosts' own subnet on the VLAN."""
        return ipaddress.IPv4Network(self.data["vlan"]["host_subnet"])

    @property
    def nodes(self) -> dict[str, Node]:
        """The nodes by slot, in slot order."""
        return {slot: _node(slot, self.data["nodes"][slot]) for slot in SLOTS}

    def node_by_name(self, name: str) -> Node:
        """The node whose slot or VM name is ``name``."""
        for node in self.nodes.values():
            if name in (node.slot, node.name):
                return node
        known = ", ".join(SLOTS)
        raise ConfigError(
            f"no node called {name!r} in this lab", hint=f"use one of: {known}"
        )

    def lan_addresses(self) -> list[str]:
        """What the LAN node holds: its own address and, on the lab's own
        machines, the gateway's. On machines of your own (provider ``existing``)
        the LAN's router holds the gateway."""
        prefix = self.subnet.prefixlen
        own = self.data["nodes"]["lan"]["address"]
        if self.provider == "existing":
            return [f"{own}/{prefix}"]
        gateway = self.data["network"]["gateway"]
        return [f"{own}/{prefix}", f"{gateway}/{prefix}"]

    def address_cidr(self, slot: str) -> str:
        """A node's lab address with the segment's prefix length."""
        return f"{self.nodes[slot].address}/{self.subnet.prefixlen}"


def _node(slot: str, data: dict[str, Any]) -> Node:
    return Node(
        slot=slot,
        name=data["name"],
        address=data["address"],
        mac=data["mac"].lower(),
        cpus=data["cpus"],
        memory=data["memory"],
        vlan_address=data.get("vlan_address"),
    )


def default_path() -> Path:
    """The configuration file in use: ``$IPVLAN_LAB_CONFIG`` or ``lab.yaml``."""
    return Path(os.environ.get(CONFIG_ENV) or PROJECT / "lab.yaml")


def load(path: Path | None = None) -> Config:
    """Read, merge with the defaults and validate the lab's configuration.

    A missing default ``lab.yaml`` means all defaults; a missing file that was
    named explicitly is an error.
    """
    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    path = Path(path) if path is not None else default_path()
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"configuration file {path} does not exist",
                hint=f"create it, or unset {CONFIG_ENV} to use lab.yaml",
            )
        return from_data({}, path=None)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{where}: not valid YAML: {problem}",
            hint="fix the syntax; lab.yaml in the project shows every key",
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping of settings, found {type(raw).__name__}",
            hint="start from the project's lab.yaml",
        )
    return from_data(raw, path=path)


def from_data(raw: dict[str, Any], path: Path | None = None) -> Config:
    """Merge ``raw`` over the defaults and validate the result."""
    where = str(path) if path else "configuration"
    data = _merge(DEFAULTS, raw, where, "")
    _validate(data, where)
    return Config(path=path, data=data)


def _merge(defaults: dict, raw: dict, where: str, prefix: str) -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            known = ", ".join(defaults)
            raise ConfigError(
                f"{where}: unknown setting {dotted!r}",
                hint=f"known settings{' under ' + prefix[:-1] if prefix else ''}: "
                f"{known}",
            )
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{where}: {dotted} must be a mapping, found {value!r}",
                    hint=f"see {dotted} in the project's lab.yaml",
                )
            merged[key] = _merge(defaults[key], value, where, f"{dotted}.")
        else:
            merged[key] = value
    return merged


def _fail(
    where: str, key: str, value: Any, expected: str, hint: str | None = None
) -> ConfigError:
    return ConfigError(
        f"{where}: {key} is {value!r}; expected {expected}",
        hint=hint
        or f"fix {key} in {where}, or delete it to use the default "
        f"({_default_of(key)!r})",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quote_hint(where: str, key: str, example: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return (
        f'put {key} in quotes in {where} (for example {leaf}: "{example}"); '
        "without quotes YAML reads it as a number"
    )


def _text(
    data: dict, key: str, where: str, expected: str, example: str, null: bool = False
) -> None:
    """Refuse a value that is not a non-empty string, or not null where
    ``null`` allows it. A value YAML read as a number gets a hint to quote it,
    as ``example`` shows."""
    value = _get(data, key)
    if (value is None and null) or (isinstance(value, str) and value.strip()):
        return
    hint = _quote_hint(where, key, example) if _is_number(value) else None
    raise _fail(where, key, value, expected, hint)


def _default_of(key: str) -> Any:
    value: Any = DEFAULTS
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _choice(data: dict, key: str, choices: tuple, where: str) -> None:
    value = _get(data, key)
    if value not in choices:
        raise _fail(where, key, value, "one of " + ", ".join(choices))


def _get(data: dict, key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        value = value[part]
    return value


def _integer(data: dict, key: str, low: int, high: int, where: str) -> int:
    value = _get(data, key)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (low <= value <= high)
    ):
        raise _fail(where, key, value, f"a whole number from {low} to {high}")
    return value


def _network(data: dict, key: str, where: str) -> ipaddress.IPv4Network:
    value = _get(data, key)
    try:
        net = ipaddress.IPv4Network(str(value), strict=True)
    except ValueError:
        raise _fail(
            where, key, value, "an IPv4 subnet such as 192.168.4.0/24"
        ) from None
    if net.prefixlen > 29:
        raise _fail(where, key, value, "a subnet of /29 or larger")
    return net


def _address(
    data: dict, key: str, where: str, within: ipaddress.IPv4Network, within_key: str
) -> ipaddress.IPv4Address:
    value = _get(data, key)
    try:
        addr = ipaddress.IPv4Address(str(value))
    except ValueError:
        raise _fail(where, key, value, "an IPv4 address") from None
    if addr not in within or addr in (within.network_address, within.broadcast_address):
        raise _fail(where, key, value, f"a host address inside {within_key} ({within})")
    return addr


def _validate(data: dict, where: str) -> None:
    _choice(data, "provider", PROVIDERS, where)
    _choice(data, "network.mode", NETWORK_MODES, where)
    _choice(data, "docker.source", DOCKER_SOURCES, where)
    if data["network"]["mode"] == "bridged" and not data["network"]["adapter"]:
        raise ConfigError(
            f"{where}: network.mode is 'bridged' but network.adapter is not set",
            hint="name the host adapter to bridge to (for example "
            "network.adapter: enp3s0), or use network.mode: isolated",
        )
    _text(
        data,
        "network.adapter",
        where,
        "the name of a host adapter, such as enp3s0, or null",
        "enp3s0",
        null=True,
    )
    for key in ("network.name", "management.name"):
        value = _get(data, key)
        if not isinstance(value, str) or not _VM_NAME.fullmatch(value):
            raise _fail(where, key, value, "lower-case letters, digits, -")
    _text(
        data,
        "docker.version",
        where,
        "a package version string, or null for the newest",
        "24.0",
        null=True,
    )

    # Subnets, and that none of them overlap.
    nets = {
        key: _network(data, key, where)
        for key in (
            "network.subnet",
            "vlan.host_subnet",
            "vlan.subnet",
            "management.subnet",
        )
    }
    keys = list(nets)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            if nets[first].overlaps(nets[second]):
                raise ConfigError(
                    f"{where}: {first} ({nets[first]}) overlaps {second} "
                    f"({nets[second]})",
                    hint="each of the lab's subnets must be separate",
                )

    _integer(data, "vlan.id", 1, 4094, where)
    _integer(data, "boot_timeout", 60, 7200, where)
    gateway = _address(
        data, "network.gateway", where, nets["network.subnet"], "network.subnet"
    )
    _address(data, "vlan.gateway", where, nets["vlan.subnet"], "vlan.subnet")

    # Nodes: every address inside its subnet, and no address used twice.
    used: dict[ipaddress.IPv4Address, str] = {gateway: "network.gateway"}
    names: dict[str, str] = {}
    macs: dict[str, str] = {}
    for slot in SLOTS:
        node = data["nodes"][slot]
        prefix = f"nodes.{slot}"
        addr_keys = [("address", "network.subnet")]
        if slot != "lan":
            addr_keys.append(("vlan_address", "vlan.host_subnet"))
        for field, subnet_key in addr_keys:
            key = f"{prefix}.{field}"
            addr = _address(data, key, where, nets[subnet_key], subnet_key)
            if addr in used:
                raise ConfigError(
                    f"{where}: {key} ({addr}) is the same address as {used[addr]}",
                    hint="give every node and the gateway an address of its own",
                )
            used[addr] = key
        mac = str(node["mac"]).lower()
        if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
            # Unquoted, a MAC of digits only (52:54:00:40:00:01) is a number
            # to YAML: a base-60 integer.
            raise _fail(
                where,
                f"{prefix}.mac",
                node["mac"],
                "a unicast MAC address such as 52:54:00:4c:00:01",
                _quote_hint(where, f"{prefix}.mac", "52:54:00:40:00:01")
                if _is_number(node["mac"])
                else None,
            )
        if mac in macs:
            raise ConfigError(
                f"{where}: {prefix}.mac ({mac}) is also {macs[mac]}",
                hint="give every node's lab NIC a MAC address of its own",
            )
        macs[mac] = f"{prefix}.mac"
        name = node["name"]
        if not isinstance(name, str) or not _VM_NAME.fullmatch(name):
            raise _fail(
                where,
                f"{prefix}.name",
                name,
                "a host name: lower-case letters, digits and -",
            )
        if name in names:
            raise ConfigError(
                f"{where}: {prefix}.name ({name}) is also {names[name]}",
                hint="give every node a name of its own",
            )
        names[name] = f"{prefix}.name"
        _integer(data, f"{prefix}.cpus", *CPU_RANGE, where)
        _integer(data, f"{prefix}.memory", *MEMORY_RANGE, where)

    for slot in SLOTS:
        _machine(data, slot, where)

    for provider in ("virtualbox", "libvirt"):
        _text(data, f"boxes.{provider}.name", where, "a Vagrant box name", "2404")
        _text(
            data,
            f"boxes.{provider}.version",
            where,
            "a box version string, or null for the newest",
            "24.0",
            null=True,
        )


def _machine(data: dict, slot: str, where: str) -> None:
    """``ssh.SLOT``: how to reach a machine of the user's (provider
    ``existing``)."""
    prefix = f"ssh.{slot}"
    needed = data["provider"] == "existing"
    for field, example in (("host", "10.0.0.5"), ("user", "admin")):
        key = f"{prefix}.{field}"
        if needed and _get(data, key) is None:
            raise ConfigError(
                f"{where}: provider is 'existing' but {key} is not set",
                hint=f"give {key} for each of host1, host2 and lan (the machine's "
                f"address or name, and a user with passwordless sudo), or choose "
                "another provider",
            )
        _text(data, key, where, f"text such as {example}", example, null=True)
    _integer(data, f"{prefix}.port", 1, 65535, where)
    _text(data, f"{prefix}.key", where, "the path of a private key, or null", "", True)
    _text(data, f"{prefix}.nic", where, "a network interface's name, or null", "", True)
    key = _get(data, f"{prefix}.key")
    if needed and key and not Path(key).expanduser().is_file():
        raise ConfigError(
            f"{where}: {prefix}.key is {key!r}, which is not a file",
            hint=f"give the path of the private key that logs in to {slot}, or "
            "null to use your SSH agent and ~/.ssh",
        )


def template_context(config: Config, facts: dict[str, dict] | None = None) -> dict:
    """The names scenarios may use in ``${...}`` placeholders.

    ``facts`` holds what only a running lab knows (each node's lab NIC name
    and MAC); without it those names are placeholders, enough to validate a
    scenario before the lab is up.
    """
    from .templates import Hosts  # a leaf module: no import cycle

    facts = facts or {}
    vlan = config.data["vlan"]
    context: dict[str, Any] = {
        "lab": {
            "subnet": str(config.subnet),
            "prefix": str(config.subnet.prefixlen),
            "gateway": config.data["network"]["gateway"],
            "ip": Hosts(config.subnet),
        },
        "vlan": {
            "id": str(vlan["id"]),
            "subnet": str(config.vlan_subnet),
            "gateway": vlan["gateway"],
            "ip": Hosts(config.vlan_subnet),
            "host_subnet": str(config.vlan_host_subnet),
            "host_ip": Hosts(config.vlan_host_subnet),
        },
    }
    for slot, node in config.nodes.items():
        known = facts.get(slot, {})
        entry = {
            "name": node.name,
            "address": node.address,
            "nic": known.get("nic") or "<nic>",
            "mac": known.get("mac") or node.mac,
        }
        if node.vlan_address:
            entry["vlan_address"] = node.vlan_address
            entry["vlan_prefix"] = str(config.vlan_host_subnet.prefixlen)
        context[slot] = entry
    return context
