"""The scenario model and its loader.

A scenario is a YAML file under ``scenarios/``: the containers it makes, the
steps that make them (shell commands, most of them the how-to's own), and the
checks that test what the how-to claims. ``scenarios/README.md`` documents the
vocabulary; the code below knows only that vocabulary, so a new experiment is
a new file, not new Python.

:func:`load_scenario` validates a whole file before anything runs. Each problem
raises one :class:`~ipvlan_lab.errors.ScenarioError` whose message starts with
``FILE:LINE:`` and says what was expected. Placeholders (``${lab.gateway}``)
stay unrendered in the model; :meth:`Step.command`, :meth:`Step.note_text`,
:meth:`Step.error_text` and :func:`render_check` fill them in once the lab's
values are known.

Version conditions (``docker >= 23``, ``kernel < 5.4``) gate checks and
choose between expectations; :func:`evaluate` decides them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from . import templates
from .errors import ScenarioError
from .results import Claim

#: The hint every scenario error carries.
HINT = "the scenario vocabulary is described in scenarios/README.md"

#: Seconds a step may take when the scenario does not say.
DEFAULT_STEP_TIMEOUT = 120.0
#: Seconds a check may take when the scenario does not say.
DEFAULT_CHECK_TIMEOUT = 30.0
#: Extra attempts of a check whose observation does not match (see README).
DEFAULT_RETRIES = 1
#: Where a container's resolver listens: Docker's embedded DNS server.
DEFAULT_DNS_SERVER = "127.0.0.11"

#: ``on`` value meaning every Docker host of the lab.
ALL_HOSTS = "hosts"

POSITIVE = ("reachable", "resolves")
NEGATIVE = ("unreachable", "nxdomain", "no-answer")

TOP_KEYS = (
    "name",
    "title",
    "document",
    "description",
    "containers",
    "steps",
    "checks",
    "cleanup",
)
CONTAINER_KEYS = ("node", "address")
STEP_KEYS = ("id", "title", "on", "run", "howto", "note", "expect_error", "timeout")
CLAIM_KEYS = ("section", "text", "says")
ALTERNATIVE_KEYS = ("when", "expect")
CLEANUP_KEYS = ("on", "run")
DURING_KEYS = ("from", "ping", "run")
#: Keys every check may have; the kind adds its source key and its params.
CHECK_KEYS = (
    "expect",
    "claim",
    "holds",
    "reason",
    "control",
    "timeout",
    "retries",
    "when",
)

#: What each param type takes, in words, for error messages.
PARAM_HELP = {
    "target": "an address, a ${name} or a container of this scenario",
    "targets": "a list of addresses, ${name}s or containers",
    "address": "an address or a ${name}",
    "container": "a container of this scenario",
    "text": "text",
    "during": "a mapping of from and ping or run",
}

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")
_CONDITION = re.compile(
    r"^\s*(?P<what>docker|kernel)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<version>\d+(?:\.\d+)*)\s*$"
)
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_OPERATORS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Kind:
    """What one check kind takes: its source, its params, its expectation.

    ``params`` maps each param to its type: ``target`` (an address, a
    placeholder or a container of the scenario), ``targets`` (a list of
    those), ``address`` (an address or a placeholder), ``container`` (a
    container of the scenario), ``text`` or ``during``. ``words`` lists the
    observations of a kind that observes a single word (``ping``,
    ``resolve``); ``fields`` lists the keys of a mapping expectation.
    """

    name: str
    source_key: str
    sources: tuple[str, ...]
    params: dict[str, str]
    required: tuple[str, ...]
    target_param: str | None = None
    words: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    expect_help: str = ""


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "ping",
            "from",
            ("container", "node"),
            {"to": "target"},
            ("to",),
            target_param="to",
            words=("reachable", "unreachable"),
            expect_help="reachable or unreachable",
        ),
        Kind(
            "resolve",
            "from",
            ("container",),
            {"name": "container", "server": "address", "address": "address"},
            ("name",),
            target_param="name",
            words=("resolves", "nxdomain", "no-answer"),
            expect_help="resolves, nxdomain or no-answer",
        ),
        Kind(
            "command",
            "on",
            ("node",),
            {"run": "text"},
            ("run",),
            fields=("exit", "stdout", "stderr", "output"),
            expect_help="a mapping of exit, stdout, stderr, output",
        ),
        Kind(
            "docker-network",
            "on",
            ("node",),
            {"network": "text"},
            ("network",),
            target_param="network",
            fields=("driver", "mode", "parent", "subnet", "gateway"),
            expect_help="a mapping of driver, mode, parent, subnet, gateway",
        ),
        Kind(
            "docker-container",
            "on",
            ("node",),
            {"container": "container"},
            ("container",),
            target_param="container",
            fields=("address", "mac"),
            expect_help="a mapping of address, mac",
        ),
        Kind(
            "neighbours",
            "on",
            ("node",),
            {"trigger": "targets", "interface": "text"},
            (),
            expect_help="same_mac (and mac), or entries",
        ),
        Kind(
            "capture",
            "on",
            ("node",),
            {"interface": "text", "filter": "text", "during": "during"},
            ("interface",),
            target_param="interface",
            expect_help="contains: TEXT or absent: true",
        ),
    )
}


@dataclass
class Container:
    """A container the scenario's steps create, and where it lives."""

    name: str
    node: str
    #: Its address as written (a placeholder or a literal), if it has a fixed one.
    address: str | None = None
    line: int = 0


@dataclass
class Step:
    """One command of the procedure, run on one node or several in parallel."""

    id: str
    title: str
    #: The nodes it runs on, ``hosts`` already expanded.
    nodes: list[str]
    #: The command, with placeholders.
    run: str
    #: The how-to's own command, when :attr:`run` differs from it: word for
    #: word, so never rendered (a ``${`` in it is the how-to's own).
    howto: str | None = None
    #: Why :attr:`run` differs from the how-to, with placeholders.
    note: str | None = None
    #: Text the output must contain, with placeholders: the step is expected
    #: to fail.
    expect_error: str | None = None
    timeout: float = DEFAULT_STEP_TIMEOUT
    line: int = 0

    def command(self, context: Mapping[str, Any], node: str) -> str:
        """The command to run on ``node``, placeholders filled in."""
        return templates.render(self.run, templates.for_node(context, node))

    def note_text(self, context: Mapping[str, Any], node: str) -> str | None:
        """The :attr:`note` as seen from ``node``, placeholders filled in."""
        if self.note is None:
            return None
        return templates.render(self.note, templates.for_node(context, node))

    def error_text(self, context: Mapping[str, Any], node: str) -> str | None:
        """The :attr:`expect_error` as seen from ``node``, placeholders filled in."""
        if self.expect_error is None:
            return None
        return templates.render(self.expect_error, templates.for_node(context, node))


@dataclass
class Expectation:
    """What a check expects, and the version condition under which it does.

    ``value`` is a word (``reachable``, ``nxdomain``) or a mapping, as the
    check's kind takes.
    """

    value: Any
    when: str | None = None
    line: int = 0

    @property
    def negative(self) -> bool:
        """Whether it expects something not to happen (a word of NEGATIVE)."""
        return self.value in NEGATIVE

    @property
    def positive(self) -> bool:
        """Whether it expects reachability or a resolved name."""
        return self.value in POSITIVE

    def describe(self) -> str:
        """The expectation in one line, for reports."""
        return describe(self.value)


@dataclass
class Check:
    """One observation compared with an expectation, and maybe with a claim."""

    id: str
    kind: str
    title: str
    #: The container or node it starts from (``from`` or ``on``).
    source: str
    #: The node it runs on: the source, or the source container's node.
    node: str
    #: The kind's params, with placeholders.
    params: dict[str, Any]
    #: One expectation, or alternatives chosen by version condition, in order.
    expect: list[Expectation]
    claim: Claim | None = None
    #: Whether the claim is expected to hold on today's stack.
    holds: bool = True
    #: Why the claim does not hold (required when :attr:`holds` is false).
    reason: str | None = None
    #: The id of the positive control of a negative check.
    control: str | None = None
    timeout: float = DEFAULT_CHECK_TIMEOUT
    retries: int = DEFAULT_RETRIES
    #: A version condition; when false the check is skipped.
    when: str | None = None
    #: The source container, if the check starts from one.
    container: str | None = None
    #: The target as written (address, container, network...), if any.
    target: str | None = None
    #: The node the target lives on, when the lab knows it.
    target_node: str | None = None
    #: Every node whose health matters to the check.
    nodes: list[str] = field(default_factory=list)
    #: Whether the loader made it (a positive control nobody wrote).
    synthetic: bool = False
    line: int = 0

    @property
    def negative(self) -> bool:
        """Whether any of its expectations is negative."""
        return any(e.negative for e in self.expect)

    @property
    def positive(self) -> bool:
        """Whether every expectation is positive: it can serve as a control."""
        return all(e.positive for e in self.expect)

    def applies(self, versions: Mapping[str, str]) -> bool:
        """Whether :attr:`when` holds for ``versions`` (true without one)."""
        return self.when is None or evaluate(self.when, versions)

    def expectation(self, versions: Mapping[str, str]) -> Expectation | None:
        """The first expectation whose condition holds, or ``None``."""
        for expectation in self.expect:
            if expectation.when is None or evaluate(expectation.when, versions):
                return expectation
        return None


@dataclass
class Cleanup:
    """A command that undoes what the scenario made outside Docker."""

    nodes: list[str]
    run: str
    line: int = 0

    def command(self, context: Mapping[str, Any], node: str) -> str:
        """The command to run on ``node``, placeholders filled in."""
        return templates.render(self.run, templates.for_node(context, node))


@dataclass
class Scenario:
    """A whole scenario file, validated."""

    name: str
    title: str
    file: str
    document: str | None = None
    description: str | None = None
    containers: dict[str, Container] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    cleanup: list[Cleanup] = field(default_factory=list)

    def check(self, check_id: str) -> Check:
        """The check called ``check_id``."""
        for check in self.checks:
            if check.id == check_id:
                return check
        raise ScenarioError(f"scenario {self.name!r} has no check {check_id!r}")


def describe(value: Any) -> str:
    """An expectation value in one line: ``reachable``, ``exit=0, mode=l2``."""
    if isinstance(value, dict):
        return ", ".join(f"{key}={describe(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(describe(item) for item in value) + "]"
    return str(value)


def render_check(check: Check, context: Mapping[str, Any]) -> Check:
    """A copy of ``check`` with its params and expectations filled in.

    Placeholders take the values of ``context`` as seen from the node the
    check runs on (``node.*``, ``nic``); ``during`` takes its own source's.
    """
    here = templates.for_node(context, check.node)
    params = dict(check.params)
    during = params.pop("during", None)
    params = templates.render_value(params, here)
    if during is not None:
        there = templates.for_node(context, during["node"])
        params["during"] = {
            key: value if key == "node" else templates.render_value(value, there)
            for key, value in during.items()
        }
    expect = [
        dataclasses.replace(e, value=templates.render_value(e.value, here))
        for e in check.expect
    ]
    kind = KINDS[check.kind]
    target = params.get(kind.target_param) if kind.target_param else None
    return dataclasses.replace(check, params=params, expect=expect, target=target)


def parse_condition(condition: str) -> tuple[str, str, str]:
    """``"docker >= 23"`` as ``("docker", ">=", "23")``.

    Raises :class:`~ipvlan_lab.errors.ScenarioError` if it is not of the form
    ``docker|kernel OP VERSION`` with OP one of ``< <= > >= == !=``.
    """
    match = _CONDITION.match(condition) if isinstance(condition, str) else None
    if match is None:
        raise ScenarioError(
            f"bad condition {condition!r}: expected 'docker|kernel OP VERSION' "
            "with OP one of <, <=, >, >=, ==, != (e.g. 'docker >= 23')"
        )
    return match["what"], match["op"], match["version"]


def evaluate(condition: str, versions: Mapping[str, str]) -> bool:
    """Whether ``condition`` holds for ``versions``.

    ``versions`` maps ``docker`` and ``kernel`` to version strings as the
    node reports them (``20.10.24+dfsg1``, ``6.1.0-18-amd64``); only the
    leading dotted numbers count, so ``6.1.0-18-amd64`` compares as ``6.1.0``
    and ``6.1`` equals ``6.1.0``. A version the condition needs but
    ``versions`` lacks raises :class:`~ipvlan_lab.errors.ScenarioError`.
    """
    what, op, wanted = parse_condition(condition)
    have = versions.get(what)
    if not have:
        raise ScenarioError(
            f"condition {condition!r} needs the {what} version, which is unknown"
        )
    match = _VERSION.search(str(have))
    if match is None:
        raise ScenarioError(f"cannot read a {what} version from {have!r}")
    return _OPERATORS[op](_version(match.group(0)), _version(wanted))


def load_scenario(path: str | Path, context: Mapping[str, Any]) -> Scenario:
    """Read and validate the scenario at ``path`` against the lab's ``context``.

    ``context`` is what :func:`ipvlan_lab.config.template_context` builds;
    its node entries are the nodes a scenario may name, and its names the
    only placeholders it may use (their values need not be known yet).
    Negative checks get their positive control here (see scenarios/README.md).
    """
    data = _parse(Path(path), str(path))
    return _Reader(str(path), context).scenario(data, Path(path).stem)


def list_scenarios(folder: str | Path) -> list[tuple[str, str]]:
    """The scenarios in ``folder`` as ``(name, title)``, sorted by name.

    Only the name and title are read; :func:`load_scenario` validates the rest.
    """
    found = []
    for path in sorted(Path(folder).glob("*.yaml")):
        data = _parse(path, str(path))
        title = data.get("title") if isinstance(data, dict) else None
        found.append((path.stem, title if isinstance(title, str) else ""))
    return found


def find_scenario(folder: str | Path, name: str) -> Path:
    """The file of the scenario called ``name`` in ``folder``.

    ``name`` may also be the path of a scenario file. An unknown name raises
    :class:`~ipvlan_lab.errors.ScenarioError` listing the known ones; a path
    that is not a file raises one that says so.
    """
    given = Path(name)
    if given.suffix == ".yaml" and given.is_file():
        return given
    if given.suffix == ".yaml" or "/" in name:
        raise ScenarioError(
            f"no scenario file {name} (a scenario is a name from {folder}, or "
            "the path of a .yaml file)",
            hint="check the path, or run `invoke scenario --list` for the names",
        )
    path = Path(folder) / f"{name}.yaml"
    if path.is_file():
        return path
    known = ", ".join(n for n, _ in list_scenarios(folder)) or "none"
    raise ScenarioError(
        f"no scenario called {name!r} in {folder} (known: {known})",
        hint="`invoke scenario --list` shows each scenario with its title",
    )


# Reading YAML with line numbers


class _Map(dict):
    """A YAML mapping that remembers where it and its entries stand."""

    line = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}


class _List(list):
    """A YAML sequence that remembers where it and its items stand."""

    line = 0

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with YAML 1.2 scalars and line numbers.

    Only ``true``/``false`` are booleans and only plain digits are integers,
    as in YAML 1.2: ``on:`` is a key (not ``True``), ``100_1`` is a network
    name (not 1001) and a MAC is never read as a sexagesimal number. Mappings
    and lists come out as :class:`_Map` and :class:`_List`.
    """


# YAML 1.1 resolvers replaced below by their YAML 1.2 forms.
_REPLACED = ("bool", "int", "float")
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in found
        if tag.rsplit(":", 1)[-1] not in _REPLACED
    ]
    for first, found in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


_MERGE = "tag:yaml.org,2002:merge"


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node), 10)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    """A mapping, with ``<<: *anchor`` merges as YAML defines them: the
    mapping's own keys win over merged ones, and of several merged mappings
    the first to give a key wins. Only the mapping's own keys may not repeat."""
    mapping = _Map()
    mapping.line = node.start_mark.line + 1
    merged = _Map()
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            for source in _merge_sources(value_node):
                for key, value in loader.construct_object(source, deep=True).items():
                    if key not in merged:
                        merged[key] = value
                        merged.key_lines[key] = key_node.start_mark.line + 1
                        merged.value_lines[key] = source.start_mark.line + 1
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a single value", key_node.start_mark
            ) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
        mapping.value_lines[key] = value_node.start_mark.line + 1
    for key, value in merged.items():
        if key not in mapping:
            mapping[key] = value
            mapping.key_lines[key] = merged.key_lines[key]
            mapping.value_lines[key] = merged.value_lines[key]
    return mapping


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "<< merges a mapping (<<: *name) or a list of them (<<: [*a, *b])",
                source.start_mark,
            )
    return sources


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> _List:
    items = _List()
    items.line = node.start_mark.line + 1
    for item in node.value:
        items.append(loader.construct_object(item, deep=True))
        items.item_lines.append(item.start_mark.line + 1)
    return items


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_list)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _parse(path: Path, shown: str) -> Any:
    """The YAML document at ``path``; syntax errors name ``shown`` and a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(
            f"cannot read scenario {shown}: {error.strerror or error}"
        ) from None
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        problem = error.problem or "unreadable YAML"
        if isinstance(error, yaml.constructor.ConstructorError):
            message = problem
        else:
            context = f" ({error.context})" if error.context else ""
            message = f"YAML syntax error: {problem}{context}"
        raise ScenarioError(f"{shown}:{line}: {message}", hint=HINT) from None
    except yaml.YAMLError as error:
        raise ScenarioError(f"{shown}:1: YAML error: {error}", hint=HINT) from None


# Validation


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"{value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _version(text: str) -> Any:
    try:
        from packaging.version import Version
    except ImportError:  # compare integer tuples, padded to one length
        parts = tuple(int(p) for p in text.split("."))
        return parts + (0,) * (8 - len(parts))
    return Version(text)


class _Reader:
    """Turns parsed YAML into a :class:`Scenario`, failing at the first problem.

    Messages name a *subject* (``the scenario``, ``step 's1'``, ``check
    'c3'``, ``the claim of check 'c3'``) the same way throughout:
    ``unknown key 'x' in SUBJECT``, ``'key' of SUBJECT must be ...``,
    ``SUBJECT has no 'key' (what it takes)``.
    """

    def __init__(self, path: str, context: Mapping[str, Any]):
        self.path = path
        self.context = context
        self.nodes = templates.nodes(context)
        self.hosts = templates.docker_hosts(context)
        self.containers: dict[str, Container] = {}

    def fail(self, line: int, message: str) -> NoReturn:
        """Raise the one error for a problem at ``line``."""
        raise ScenarioError(f"{self.path}:{line}: {message}", hint=HINT)

    # the generic shapes

    def mapping(self, value: Any, line: int, label: str) -> _Map:
        if not isinstance(value, _Map):
            self.fail(line, f"{label} must be a mapping, not {_type_name(value)}")
        return value

    def listing(self, value: Any, line: int, label: str) -> _List:
        if not isinstance(value, _List):
            self.fail(line, f"{label} must be a list, not {_type_name(value)}")
        return value

    def known_keys(
        self,
        data: _Map,
        allowed: tuple[str, ...],
        subject: str,
        extensions: bool = False,
    ) -> None:
        """Refuse keys not in ``allowed``; with ``extensions``, keys named
        ``x-...`` are free (a place for YAML anchors, as in Compose files)."""
        for key in data:
            if key in allowed:
                continue
            if extensions and isinstance(key, str) and key.startswith("x-"):
                continue
            also = ", or x-NAME for parts to share" if extensions else ""
            self.fail(
                data.key_lines[key],
                f"unknown key {_type_name(key)} in {subject} "
                f"(expected one of: {', '.join(allowed)}{also})",
            )

    def require(self, data: _Map, key: str, subject: str, what: str) -> Any:
        if data.get(key) is None:
            self.fail(data.line, f"{subject} has no {key!r} ({what})")
        return data[key]

    def text(
        self, data: _Map, key: str, subject: str, required: bool = False
    ) -> str | None:
        if required:
            self.require(data, key, subject, "text")
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            self.fail(
                data.value_lines[key],
                f"{key!r} of {subject} must be text, not {_type_name(value)}",
            )
        return value

    def seconds(self, data: _Map, key: str, subject: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(
                data.value_lines[key],
                f"{key!r} of {subject} must be a positive number of seconds, "
                f"not {_type_name(value)}",
            )
        return float(value)

    def template_text(
        self,
        data: _Map,
        key: str,
        subject: str,
        nodes: list[str],
        required: bool = False,
    ) -> str | None:
        """A :meth:`text` whose placeholders are checked from each of ``nodes``."""
        value = self.text(data, key, subject, required)
        if value is not None:
            self.template(value, data.value_lines[key], f"{key!r} of {subject}", nodes)
        return value

    def template(self, text: str, line: int, label: str, nodes: list[str]) -> str:
        """Check the placeholders of ``text`` as seen from each of ``nodes``."""
        for node in nodes or [None]:
            context = self.context
            if node is not None:
                context = templates.for_node(self.context, node)
            try:
                templates.validate(text, context)
            except ScenarioError as error:
                self.fail(line, f"{label}: {error.message}")
        return text

    def node_list(self, value: Any, line: int, subject: str) -> list[str]:
        """An ``on`` value: a node, ``hosts``, or a list of those."""
        items = value if isinstance(value, list) else [value]
        if not items:
            self.fail(line, f"'on' of {subject} names no node")
        found: list[str] = []
        for item in items:
            if item == ALL_HOSTS:
                found.extend(h for h in self.hosts if h not in found)
            elif isinstance(item, str) and item in self.nodes:
                if item not in found:
                    found.append(item)
            else:
                self.fail(
                    line,
                    f"unknown node {_type_name(item)} in 'on' of {subject} "
                    f"(expected one of: {', '.join([*self.nodes, ALL_HOSTS])})",
                )
        return found

    def condition(self, data: _Map, key: str, subject: str) -> str | None:
        if key not in data:
            return None
        value = data[key]
        try:
            parse_condition(value)
        except ScenarioError as error:
            self.fail(data.value_lines[key], f"{key!r} of {subject}: {error.message}")
        return value

    # the scenario

    def scenario(self, data: Any, stem: str) -> Scenario:
        data = self.mapping(data, getattr(data, "line", 1), "a scenario")
        subject = "the scenario"
        self.known_keys(data, TOP_KEYS, subject, extensions=True)
        name = self.text(data, "name", subject, required=True)
        if name != stem:
            self.fail(
                data.value_lines["name"],
                f"name {name!r} differs from the file's name {stem!r}",
            )
        title = self.text(data, "title", subject, required=True)
        document = self.text(data, "document", subject)
        description = self.text(data, "description", subject)

        self.containers = self.container_map(data)
        steps = [
            self.step(item, line, index)
            for index, (item, line) in enumerate(self.items(data, "steps"), 1)
        ]
        checks = [
            self.check(item, line, index)
            for index, (item, line) in enumerate(self.items(data, "checks"), 1)
        ]
        cleanup = [
            self.cleanup(item, line, index)
            for index, (item, line) in enumerate(self.items(data, "cleanup"), 1)
        ]
        if not steps and not checks:
            self.fail(data.line, "the scenario has no steps and no checks")

        self.unique_ids(steps, checks)
        checks.extend(self.controls(checks))
        return Scenario(
            name=name,
            title=title,
            file=self.path,
            document=document,
            description=description,
            containers=self.containers,
            steps=steps,
            checks=checks,
            cleanup=cleanup,
        )

    def items(self, data: _Map, key: str) -> list[tuple[Any, int]]:
        if data.get(key) is None:
            return []
        items = self.listing(data[key], data.value_lines[key], f"{key!r}")
        return list(zip(items, items.item_lines, strict=True))

    def container_map(self, data: _Map) -> dict[str, Container]:
        if data.get("containers") is None:
            return {}
        given = self.mapping(
            data["containers"], data.value_lines["containers"], "'containers'"
        )
        found = {}
        for name, spec in given.items():
            line = given.key_lines[name]
            if not isinstance(name, str) or not _CONTAINER.match(name):
                self.fail(
                    line,
                    f"container name {_type_name(name)} is not a Docker container "
                    "name (letters, digits, '_', '.', '-')",
                )
            if name in self.nodes or name == ALL_HOSTS:
                self.fail(line, f"container {name!r} has the name of a node")
            subject = f"container {name!r}"
            spec = self.mapping(spec, given.value_lines[name], subject)
            self.known_keys(spec, CONTAINER_KEYS, subject)
            node = self.require(spec, "node", subject, "a node")
            if node not in self.nodes:
                self.fail(
                    spec.value_lines["node"],
                    f"unknown node {_type_name(node)} in 'node' of {subject} "
                    f"(expected one of: {', '.join(self.nodes)})",
                )
            address = self.text(spec, "address", subject)
            if address is not None:
                line = spec.value_lines["address"]
                self.address(address, line, f"'address' of {subject}", node)
            found[name] = Container(name, node, address, given.key_lines[name])
        return found

    def identify(self, data: _Map, what: str, index: int) -> str:
        if "id" not in data:
            self.fail(data.line, f"{what} {index} has no 'id'")
        value = data["id"]
        if not isinstance(value, str) or not _ID.match(value):
            self.fail(
                data.value_lines["id"],
                f"the id of {what} {index} must be text of letters, digits, "
                f"'_', '.', '-', not {_type_name(value)}",
            )
        return value

    def unique_ids(self, steps: list[Step], checks: list[Check]) -> None:
        seen: dict[str, str] = {}
        for item in [*steps, *checks]:
            what = "step" if isinstance(item, Step) else "check"
            if item.id in seen:
                self.fail(
                    item.line,
                    f"duplicate id {item.id!r}: this {what} has the id of a "
                    f"{seen[item.id]} above (ids are unique among steps and checks)",
                )
            seen[item.id] = what

    # steps and cleanup

    def step(self, data: Any, line: int, index: int) -> Step:
        data = self.mapping(data, line, f"step {index}")
        step_id = self.identify(data, "step", index)
        subject = f"step {step_id!r}"
        self.known_keys(data, STEP_KEYS, subject)
        title = self.text(data, "title", subject, required=True)
        on = self.require(data, "on", subject, "a node, a list of nodes, or hosts")
        nodes = self.node_list(on, data.value_lines["on"], subject)
        run = self.template_text(data, "run", subject, nodes, required=True)
        return Step(
            id=step_id,
            title=title,
            nodes=nodes,
            run=run,
            howto=self.text(data, "howto", subject),
            note=self.template_text(data, "note", subject, nodes),
            expect_error=self.template_text(data, "expect_error", subject, nodes),
            timeout=self.seconds(data, "timeout", subject, DEFAULT_STEP_TIMEOUT),
            line=data.line,
        )

    def cleanup(self, data: Any, line: int, index: int) -> Cleanup:
        subject = f"cleanup item {index}"
        data = self.mapping(data, line, subject)
        self.known_keys(data, CLEANUP_KEYS, subject)
        on = self.require(data, "on", subject, "a node, a list of nodes, or hosts")
        nodes = self.node_list(on, data.value_lines["on"], subject)
        run = self.template_text(data, "run", subject, nodes, required=True)
        return Cleanup(nodes, run, data.line)

    # checks

    def check(self, data: Any, line: int, index: int) -> Check:
        data = self.mapping(data, line, f"check {index}")
        check_id = self.identify(data, "check", index)
        subject = f"check {check_id!r}"
        kind_name = self.require(data, "kind", subject, f"one of: {', '.join(KINDS)}")
        if kind_name not in KINDS:
            self.fail(
                data.value_lines["kind"],
                f"unknown check kind {_type_name(kind_name)} in {subject} "
                f"(expected one of: {', '.join(KINDS)})",
            )
        kind = KINDS[kind_name]
        allowed = ("id", "kind", "title", kind.source_key, *kind.params, *CHECK_KEYS)
        self.known_keys(data, allowed, subject)
        title = self.text(data, "title", subject, required=True)

        source, node, container = self.source(data, kind, subject)
        params = self.params(data, kind, subject, node)
        expect = self.expectations(data, kind, subject, node)
        claim = self.claim(data, kind, subject)
        holds = data.get("holds", True)
        if not isinstance(holds, bool):
            self.fail(
                data.value_lines["holds"],
                f"'holds' of {subject} must be true or false, not {_type_name(holds)}",
            )
        reason = self.text(data, "reason", subject)
        if not holds and claim is None:
            self.fail(data.value_lines["holds"], f"'holds' of {subject} needs a claim")
        if not holds and reason is None:
            self.fail(
                data.value_lines["holds"],
                f"{subject} says its claim does not hold: give the 'reason' why",
            )
        self.consistent(data, kind, claim, holds, expect, subject)
        retries = data.get("retries", DEFAULT_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            self.fail(
                data.value_lines["retries"],
                f"'retries' of {subject} must be a whole number of 0 or more, "
                f"not {_type_name(retries)}",
            )

        # where the target lives: for health, and to choose a control
        target = params.get(kind.target_param) if kind.target_param else None
        if kind.name == "ping" and container is None and target in self.containers:
            self.fail(
                data.value_lines["to"],
                f"{subject} pings container {target!r} by name from node "
                f"{source!r}, which cannot resolve container names: ping its "
                "address instead",
            )
        target_node = self.target_node(target) if kind.words else None
        if kind.name == "docker-container":
            target_node = self.containers[target].node
            if target_node != node:
                self.fail(
                    data.value_lines["container"],
                    f"container {target!r} of {subject} runs on {target_node}, "
                    f"not on {node}",
                )
        involved = [node] + ([target_node] if target_node not in (None, node) else [])
        return Check(
            id=check_id,
            kind=kind.name,
            title=title,
            source=source,
            node=node,
            params=params,
            expect=expect,
            claim=claim,
            holds=holds,
            reason=reason,
            control=self.text(data, "control", subject),
            timeout=self.seconds(data, "timeout", subject, DEFAULT_CHECK_TIMEOUT),
            retries=retries,
            when=self.condition(data, "when", subject),
            container=container,
            target=target,
            target_node=target_node,
            nodes=involved,
            line=data.line,
        )

    def source(
        self, data: _Map, kind: Kind, subject: str
    ) -> tuple[str, str, str | None]:
        """The source of a check, the node it runs on and its container if any."""
        key = kind.source_key
        wanted = " or ".join(f"a {s}" for s in kind.sources)
        source = self.require(data, key, subject, wanted)
        line = data.value_lines[key]
        if "container" in kind.sources and source in self.containers:
            return source, self.containers[source].node, source
        if "node" in kind.sources and source in self.nodes:
            return source, source, None
        if source in self.nodes or source in self.containers:
            other = "node" if source in self.nodes else "container"
            self.fail(
                line,
                f"{key!r} of {subject} must be {wanted}, not {other} {source!r} "
                f"(a {kind.name} starts from {wanted})",
            )
        known = [*self.containers] if "container" in kind.sources else []
        known += self.nodes if "node" in kind.sources else []
        self.fail(
            line,
            f"unknown {' or '.join(kind.sources)} {_type_name(source)} in {key!r} "
            f"of {subject} (expected one of: {', '.join(known) or 'none defined'})",
        )

    def params(self, data: _Map, kind: Kind, subject: str, node: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, kind_of in kind.params.items():
            if data.get(name) is None:
                if name in kind.required:
                    self.require(data, name, subject, PARAM_HELP[kind_of])
                continue
            line = data.value_lines[name]
            label = f"{name!r} of {subject}"
            params[name] = self.param(data[name], kind_of, line, label, node)
        if kind.name == "resolve":
            params.setdefault("server", DEFAULT_DNS_SERVER)
        return params

    def param(self, value: Any, kind_of: str, line: int, label: str, node: str) -> Any:
        if kind_of == "targets":
            items = self.listing(value, line, label)
            if not items:
                self.fail(line, f"{label} must list at least one target")
            return [self.param(v, "target", line, label, node) for v in items]
        if kind_of == "during":
            return self.during(value, line, label)
        if not isinstance(value, str) or not value.strip():
            self.fail(line, f"{label} must be text, not {_type_name(value)}")
        by_name = not templates.names(value) and not _is_address(value)
        if kind_of == "container" or (kind_of == "target" and by_name):
            if value not in self.containers:
                what = "an address, a ${name} or" if kind_of == "target" else ""
                self.fail(
                    line,
                    f"unknown container {value!r} in {label} (expected {what} "
                    f"one of: {', '.join(self.containers) or 'none defined'})".replace(
                        "( ", "("
                    ),
                )
            return value
        if kind_of in ("target", "address"):
            return self.address(value, line, label, node)
        return self.template(value, line, label, [node])

    def address(self, value: str, line: int, label: str, node: str | None) -> str:
        """An IP address, or placeholders that render to one."""
        if _is_address(value):
            return value
        if not templates.names(value):
            self.fail(line, f"{label} must be an address or a ${{name}}, not {value!r}")
        self.template(value, line, label, [node] if node else [])
        context = templates.for_node(self.context, node) if node else self.context
        if templates.is_known(value, context):
            rendered = templates.render(value, context)
            if not _is_address(rendered):
                self.fail(
                    line,
                    f"{label} is {value}, which gives {rendered!r}: not an address",
                )
        return value

    def during(self, value: Any, line: int, label: str) -> dict[str, Any]:
        data = self.mapping(value, line, label)
        subject = label
        self.known_keys(data, DURING_KEYS, subject)
        source = self.require(data, "from", subject, "a container or a node")
        if source in self.containers:
            node, container = self.containers[source].node, source
        elif source in self.nodes:
            node, container = source, None
        else:
            known = ", ".join([*self.containers, *self.nodes])
            self.fail(
                data.value_lines["from"],
                f"unknown container or node {_type_name(source)} in 'from' of "
                f"{subject} (expected one of: {known})",
            )
        actions = [key for key in ("ping", "run") if key in data]
        if len(actions) != 1:
            self.fail(data.line, f"{subject} needs exactly one of 'ping' or 'run'")
        action = actions[0]
        if action == "ping" and container is None and data[action] in self.containers:
            self.fail(
                data.value_lines[action],
                f"{subject} pings container {data[action]!r} by name from node "
                f"{source!r}, which cannot resolve container names",
            )
        kind_of = "target" if action == "ping" else "text"
        found = {"from": source, "node": node, "container": container}
        found[action] = self.param(
            data[action],
            kind_of,
            data.value_lines[action],
            f"{action!r} of {subject}",
            node,
        )
        return found

    def target_node(self, target: str | None) -> str | None:
        """The node a ping or lookup target lives on, when the lab knows it."""
        if target is None:
            return None
        if target in self.containers:
            return self.containers[target].node
        rendered = target
        if templates.is_known(target, self.context):
            rendered = templates.render(target, self.context)
        for container in self.containers.values():
            address = container.address
            if address is None:
                continue
            if address == target:
                return container.node
            if templates.is_known(address, self.context):
                if templates.render(address, self.context) == rendered:
                    return container.node
        for node in self.nodes:
            entry = self.context[node]
            if rendered in (entry.get("address"), entry.get("vlan_address")):
                return node
        return None

    def expectations(
        self, data: _Map, kind: Kind, subject: str, node: str
    ) -> list[Expectation]:
        value = self.require(data, "expect", subject, kind.expect_help)
        line = data.value_lines["expect"]
        label = f"the 'expect' of {subject}"
        if not isinstance(value, _List):
            return [
                Expectation(self.expect(value, kind, line, label, node), None, line)
            ]
        if not value:
            self.fail(line, f"{label} lists no alternatives")
        found = []
        for number, (item, item_line) in enumerate(
            zip(value, value.item_lines, strict=True), 1
        ):
            alternative = f"alternative {number} of {label}"
            item = self.mapping(item, item_line, alternative)
            self.known_keys(item, ALTERNATIVE_KEYS, alternative)
            when = self.condition(item, "when", alternative)
            if when is None and number != len(value):
                self.fail(
                    item.line,
                    f"{alternative} has no 'when' "
                    "(only the last alternative may go without one)",
                )
            expected = self.require(item, "expect", alternative, kind.expect_help)
            expected_line = item.value_lines["expect"]
            found.append(
                Expectation(
                    self.expect(expected, kind, expected_line, alternative, node),
                    when,
                    item.line,
                )
            )
        return found

    def expect(self, value: Any, kind: Kind, line: int, label: str, node: str) -> Any:
        """One expectation value, checked against what ``kind`` observes."""
        if kind.words:
            if value not in kind.words:
                self.fail(
                    line,
                    f"{label} must be {kind.expect_help}, not {_type_name(value)}",
                )
            return value
        data = self.mapping(value, line, label)
        if not data:
            self.fail(line, f"{label} is empty (expected {kind.expect_help})")
        if kind.name == "neighbours":
            return self.expect_neighbours(data, label, node)
        if kind.name == "capture":
            return self.expect_capture(data, label, node)

        self.known_keys(data, kind.fields, label)
        for key, item in data.items():
            item_line = data.value_lines[key]
            if key == "exit":
                if item != "nonzero" and (
                    isinstance(item, bool) or not isinstance(item, int)
                ):
                    self.fail(
                        item_line,
                        f"'exit' of {label} must be a number or 'nonzero', "
                        f"not {_type_name(item)}",
                    )
                continue
            if not isinstance(item, str) or not item:
                self.fail(
                    item_line,
                    f"{key!r} of {label} must be text, not {_type_name(item)}",
                )
            self.template(item, item_line, f"{key!r} of {label}", [node])
        return dict(data)

    def expect_neighbours(self, data: _Map, label: str, node: str) -> dict:
        if "entries" in data:
            self.known_keys(data, ("entries",), label)
            entries = self.mapping(
                data["entries"], data.value_lines["entries"], f"'entries' of {label}"
            )
            found = {}
            for address, mac in entries.items():
                line = entries.key_lines[address]
                sub = f"entry {_type_name(address)} of {label}"
                if not isinstance(address, str):
                    self.fail(line, f"{sub} must name an address")
                self.address(address, line, sub, node)
                if not isinstance(mac, str):
                    self.fail(line, f"the MAC of {sub} must be text")
                found[address] = self.template(mac, line, sub, [node])
            return {"entries": found}

        self.known_keys(data, ("same_mac", "mac", "entries"), label)
        same = self.require(data, "same_mac", label, "a list of addresses")
        line = data.value_lines["same_mac"]
        sub = f"'same_mac' of {label}"
        items = self.listing(same, line, sub)
        if len(items) < 2:
            self.fail(line, f"{sub} must list two addresses or more")
        found = {"same_mac": [self.param(v, "target", line, sub, node) for v in items]}
        if "mac" in data:
            mac = self.text(data, "mac", label)
            line = data.value_lines["mac"]
            found["mac"] = self.template(mac, line, f"'mac' of {label}", [node])
        return found

    def expect_capture(self, data: _Map, label: str, node: str) -> dict:
        self.known_keys(data, ("contains", "absent"), label)
        if len(data) != 1:
            self.fail(data.line, f"{label} takes 'contains' or 'absent', not both")
        if "absent" in data:
            if data["absent"] is not True:
                self.fail(
                    data.value_lines["absent"],
                    f"'absent' of {label} must be true "
                    "(to expect a packet, use 'contains')",
                )
            return {"absent": True}
        text = self.text(data, "contains", label)
        line = data.value_lines["contains"]
        return {"contains": self.template(text, line, f"'contains' of {label}", [node])}

    def claim(self, data: _Map, kind: Kind, subject: str) -> Claim | None:
        if data.get("claim") is None:
            return None
        label = f"the claim of {subject}"
        claim = self.mapping(data["claim"], data.value_lines["claim"], label)
        self.known_keys(claim, CLAIM_KEYS, label)
        values = {key: self.text(claim, key, label, True) for key in CLAIM_KEYS}
        if kind.words and values["says"] not in kind.words:
            self.fail(
                claim.value_lines["says"],
                f"'says' of {label} must be what a {kind.name} observes "
                f"({kind.expect_help}), not {values['says']!r}",
            )
        return Claim(**values)

    def consistent(
        self,
        data: _Map,
        kind: Kind,
        claim: Claim | None,
        holds: bool,
        expect: list[Expectation],
        subject: str,
    ) -> None:
        """A word check's expectation agrees with its claim and ``holds``."""
        if not kind.words or claim is None or len(expect) != 1:
            return
        value = expect[0].value
        if holds and value != claim.says:
            self.fail(
                data.value_lines["expect"],
                f"{subject} expects {value!r} but its claim says {claim.says!r} "
                "and holds (set holds: false with a reason, or fix 'expect')",
            )
        if not holds and value == claim.says:
            self.fail(
                data.value_lines["holds"],
                f"{subject} expects what its claim says ({value!r}) "
                "yet says the claim does not hold",
            )

    # positive controls

    def controls(self, checks: list[Check]) -> list[Check]:
        """Give each negative check its control; return the controls made up."""
        by_id = {check.id: check for check in checks}
        made: dict[str, Check] = {}
        for check in checks:
            if check.control is not None:
                self.given_control(check, by_id)
                continue
            if not check.negative:
                continue
            chosen = self.pick_control(check, checks)
            if chosen is None:
                if check.container is not None:
                    self.fail(
                        check.line,
                        f"check {check.id!r} expects a negative result from "
                        f"{check.source!r}, but no check from {check.source!r} "
                        "expects success: add a positive ping from it as the "
                        "control (a negative result counts only beside a "
                        "positive control)",
                    )
                chosen = made.get(check.source) or self.make_control(check, by_id)
                made[check.source] = chosen
            check.control = chosen.id
        return list(made.values())

    def given_control(self, check: Check, by_id: dict[str, Check]) -> None:
        other = by_id.get(check.control)
        where = f"'control' of check {check.id!r}"
        if other is None:
            self.fail(
                check.line,
                f"{where} names {check.control!r}, which is not a check of this "
                "scenario",
            )
        if other.source != check.source:
            self.fail(
                check.line,
                f"{where} starts from {other.source!r}, not from {check.source!r} "
                "(a control must share the source)",
            )
        if not other.positive:
            self.fail(
                check.line,
                f"{where} names {other.id!r}, which does not expect success "
                "(expected a ping expecting reachable or a lookup expecting "
                "resolves)",
            )

    def pick_control(self, check: Check, checks: list[Check]) -> Check | None:
        """The best same-source positive check, as scenarios/README.md says."""
        candidates = [
            (index, other)
            for index, other in enumerate(checks)
            if other is not check
            and other.source == check.source
            and other.positive
            and other.kind in ("ping", "resolve")
        ]

        def gated(other: Check) -> bool:
            return other.when not in (None, check.when)

        if check.target_node is not None:
            same_node = [
                (gated(other), other.kind != check.kind, index, other)
                for index, other in candidates
                if other.target_node == check.target_node
            ]
            if same_node:
                return min(same_node, key=lambda item: item[:3])[3]
        pings = [
            (gated(other), other.target_node == check.node, index, other)
            for index, other in candidates
            if other.kind == "ping"
        ]
        if pings:
            return min(pings, key=lambda item: item[:3])[3]
        return None

    def make_control(self, check: Check, by_id: dict[str, Check]) -> Check:
        """A ping from the check's node to another node, to serve as control."""
        others = [n for n in self.nodes if n != check.source]
        others.sort(key=lambda n: n != "lan")
        if not others:
            self.fail(check.line, f"no node to ping as the control of {check.id!r}")
        peer = others[0]
        control_id = f"control-{check.source}"
        if control_id in by_id:
            self.fail(
                by_id[control_id].line,
                f"check id {control_id!r} is kept for the control the lab adds "
                f"for {check.source}: rename the check, or make it a ping from "
                f"{check.source} expecting reachable",
            )
        return Check(
            id=control_id,
            kind="ping",
            title=f"positive control: {check.source} reaches {peer}",
            source=check.source,
            node=check.source,
            params={"to": f"${{{peer}.address}}"},
            expect=[Expectation("reachable", None, check.line)],
            target=f"${{{peer}.address}}",
            target_node=peer,
            nodes=[check.source, peer],
            synthetic=True,
            line=check.line,
        )
