"""``${dotted.name}`` placeholders in scenario strings.

A scenario never writes the lab's numbers: it writes ``${lab.gateway}``,
``${host1.address}`` or ``${lab.ip.101}`` and the lab fills them in from a
*context*, a nested mapping built by :func:`ipvlan_lab.config.template_context`.
Plain regular expressions are enough, and ``${`` can open a YAML plain scalar
without quotes. ``$${`` stands for a literal ``${``, for the rare shell command
that needs one.

Two groups of names depend on where a command runs: ``node.*`` (the node a
step or check runs on) and ``nic`` (short for ``node.nic``).
:func:`for_node` adds them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ScenarioError

#: A placeholder: dotted words of letters, digits and underscores.
PLACEHOLDER = re.compile(r"\$\{\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*\}")
_DOLLAR_BRACE = re.compile(r"\$\$\{|\$\{")
_UNKNOWN_VALUE = re.compile(r"^<[^<>]*>$")

#: The context keys that are not nodes.
RESERVED = ("lab", "vlan", "node", "nic")


class Hosts(Mapping):
    """The host addresses of a subnet, by number: ``hosts["101"]``.

    ``Hosts(ip_network("192.168.4.0/24"))["101"]`` is ``"192.168.4.101"``.
    Numbers run from 1 to the last address before the broadcast address; a
    number outside that range is not a key.
    """

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network | str):
        self.network = ipaddress.ip_network(network)

    @property
    def last(self) -> int:
        """The highest number that names a host of the subnet."""
        size = self.network.num_addresses
        return size - 1 if size <= 2 else size - 2

    def __getitem__(self, key: object) -> str:
        text = str(key)
        if not text.isdigit() or not 1 <= int(text) <= self.last:
            raise KeyError(key)
        return str(self.network[int(text)])

    def __iter__(self) -> Iterator[str]:
        return (str(n) for n in range(1, self.last + 1))

    def __len__(self) -> int:
        return self.last

    def __repr__(self) -> str:
        return f"Hosts({str(self.network)!r})"

    def describe(self) -> str:
        """The keys in words, for error messages."""
        return f"a host number from 1 to {self.last} of {self.network}"


def names(text: str) -> list[str]:
    """The placeholder names in ``text``, each once, in order of appearance.

    A ``${`` that does not open a well-formed placeholder raises
    :class:`~ipvlan_lab.errors.ScenarioError`.
    """
    found: list[str] = []
    for name in _scan(text):
        if name not in found:
            found.append(name)
    return found


def render(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with every placeholder replaced by its value in ``context``.

    An unknown name, a name that stops at a group (``${lab}``), or a value the
    lab does not know yet (``None``) raises
    :class:`~ipvlan_lab.errors.ScenarioError`.
    """
    _scan(text)  # refuses malformed placeholders before anything is replaced

    def value(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        found = lookup(name, context)
        if found is None:
            raise ScenarioError(
                f"${{{name}}} has no value yet",
                hint="the lab fills it in once its nodes are up",
            )
        return str(found)

    pattern = re.compile(rf"\$\$\{{|{PLACEHOLDER.pattern}")
    return pattern.sub(value, text)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """:func:`render` applied to every string in a value, keys included."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {
            render_value(key, context): render_value(item, context)
            for key, item in value.items()
        }
    return value


def validate(text: str, context: Mapping[str, Any]) -> None:
    """Check that every placeholder of ``text`` names a value of ``context``.

    Values need not be known: a NIC name that is still ``None`` or a
    stand-in such as ``<nic>`` passes. Raises
    :class:`~ipvlan_lab.errors.ScenarioError` on the first unknown name.
    """
    for name in names(text):
        lookup(name, context)


def is_known(text: str, context: Mapping[str, Any]) -> bool:
    """Whether every placeholder of ``text`` has a real value already.

    ``None`` and stand-ins written in angle brackets (``<nic>``) are not real
    values. Unknown names raise as in :func:`validate`.
    """
    for name in names(text):
        found = lookup(name, context)
        if found is None or _UNKNOWN_VALUE.match(str(found)):
            return False
    return True


def lookup(name: str, context: Mapping[str, Any]) -> Any:
    """The value of a dotted ``name`` in ``context``.

    Raises :class:`~ipvlan_lab.errors.ScenarioError` naming the first part
    that is missing and listing what that level knows.
    """
    current: Any = context
    parts = name.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the top level"
        if not isinstance(current, Mapping):
            raise ScenarioError(
                f"unknown name ${{{name}}}: {where} is a value, not a group"
            )
        try:
            current = current[part]
        except KeyError:
            raise ScenarioError(
                f"unknown name ${{{name}}}: no {part!r} in {where} "
                f"(known: {_known(current)})"
            ) from None
    if isinstance(current, Mapping):
        raise ScenarioError(
            f"${{{name}}} is a group, not a value (pick one of: {_known(current)})"
        )
    return current


def for_node(context: Mapping[str, Any], node: str) -> dict[str, Any]:
    """``context`` plus ``node`` (that node's entry) and ``nic`` (its NIC).

    Raises :class:`~ipvlan_lab.errors.ScenarioError` if ``node`` is not one of
    :func:`nodes`.
    """
    if node not in nodes(context):
        raise ScenarioError(
            f"unknown node {node!r} (known: {', '.join(nodes(context))})"
        )
    entry = context[node]
    return {**context, "node": entry, "nic": entry.get("nic")}


def nodes(context: Mapping[str, Any]) -> list[str]:
    """The nodes of the lab: top-level entries holding ``address`` and ``nic``."""
    return [
        key
        for key, value in context.items()
        if key not in RESERVED
        and isinstance(value, Mapping)
        and "address" in value
        and "nic" in value
    ]


def docker_hosts(context: Mapping[str, Any]) -> list[str]:
    """The Docker hosts among :func:`nodes`.

    A node entry with a ``role`` is a Docker host when that role is
    ``docker``; without one, when it has a ``vlan_address`` (only the Docker
    hosts carry the VLAN).
    """
    found = []
    for key in nodes(context):
        entry = context[key]
        if "role" in entry:
            if entry["role"] == "docker":
                found.append(key)
        elif "vlan_address" in entry:
            found.append(key)
    return found


def _scan(text: str) -> list[str]:
    """Every placeholder name of ``text`` in order, refusing malformed ones."""
    found = []
    for match in _DOLLAR_BRACE.finditer(text):
        if match.group(0) == "$${":
            continue
        placeholder = PLACEHOLDER.match(text, match.start())
        if placeholder is None:
            end = text.find("}", match.start())
            shown = text[match.start() : end + 1 if end >= 0 else len(text)]
            raise ScenarioError(
                f"malformed placeholder {shown!r}: expected ${{dotted.name}} "
                "of letters, digits and underscores (write $${ for a literal ${)"
            )
        found.append(placeholder.group(1))
    return found


def _known(level: Any) -> str:
    if isinstance(level, Hosts):
        return level.describe()
    if isinstance(level, Mapping):
        return ", ".join(str(key) for key in level) or "nothing"
    return "nothing"
