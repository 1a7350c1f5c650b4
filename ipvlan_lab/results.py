"""What a run observed, as plain data.

The runner fills these in; the report modules only read them. ``to_dict`` and
``from_dict`` round-trip a whole :class:`RunResult` through ``results.json``,
whose schema is ``ipvlan_lab/schema/results.schema.json``.

Words used throughout:

* a check's **outcome** compares what was observed with what the scenario
  expects on this stack: ``pass``, ``fail``, ``lab-fault`` or ``skipped``;
* a check's **verdict** compares what was observed with what the *document*
  claims: ``confirmed``, ``refuted``, ``lab-fault`` or ``skipped``.

The two differ when a claim no longer holds and the scenario says so: the
check passes (the lab behaved as expected) while the claim is refuted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

PASS, FAIL, LAB_FAULT, SKIPPED = "pass", "fail", "lab-fault", "skipped"
CONFIRMED, REFUTED = "confirmed", "refuted"

#: Exit codes of ``invoke verify`` and ``invoke scenario``.
EXIT_OK, EXIT_FAILED, EXIT_LAB = 0, 1, 2


@dataclass
class CommandRecord:
    """One command as it ran on one node."""

    node: str
    command: str
    exit_status: int | None
    stdout: str = ""
    stderr: str = ""
    started: str = ""
    duration: float = 0.0


@dataclass
class Claim:
    """A claim of the document: where it stands, its words, what it says."""

    section: str
    text: str
    says: str


@dataclass
class StepResult:
    """One step of a scenario, run on one or more nodes."""

    id: str
    title: str
    nodes: list[str]
    command: str
    status: str
    message: str = ""
    howto: str | None = None
    note: str | None = None
    expect_error: str | None = None
    records: list[CommandRecord] = field(default_factory=list)
    started: str = ""
    duration: float = 0.0


@dataclass
class CheckResult:
    """One check: what was expected, what was seen, and what that means."""

    id: str
    kind: str
    title: str
    source: str
    target: str | None
    expected: str
    observed: str
    outcome: str
    verdict: str | None
    claim: Claim | None = None
    reason: str | None = None
    condition: str | None = None
    control: str | None = None
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    records: list[CommandRecord] = field(default_factory=list)
    attempts: int = 1
    started: str = ""
    duration: float = 0.0


@dataclass
class TopologyContainer:
    """A container standing at the end of a scenario."""

    name: str
    node: str
    network: str
    address: str | None
    mac: str | None


@dataclass
class TopologyNetwork:
    """A Docker network standing at the end of a scenario."""

    name: str
    node: str
    driver: str
    parent: str | None
    subnets: list[str]
    mode: str | None = None


@dataclass
class ScenarioResult:
    """One scenario's run: its steps, its checks and what it left standing."""

    name: str
    title: str
    file: str
    started: str
    duration: float
    status: str
    steps: list[StepResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    cleanup: list[CommandRecord] = field(default_factory=list)
    containers: list[TopologyContainer] = field(default_factory=list)
    networks: list[TopologyNetwork] = field(default_factory=list)
    message: str = ""


@dataclass
class NodeFacts:
    """What the lab knows about one node."""

    name: str
    role: str
    address: str
    nic: str | None = None
    mac: str | None = None
    kernel: str | None = None
    docker: str | None = None
    os: str | None = None
    vlan_address: str | None = None


@dataclass
class Environment:
    """Where a run happened."""

    provider: str
    box: str
    network_mode: str
    nodes: list[NodeFacts] = field(default_factory=list)


@dataclass
class RunResult:
    """A whole ``invoke scenario`` or ``invoke verify`` run."""

    run_id: str
    command: str
    started: str
    duration: float
    exit_code: int
    environment: Environment
    scenarios: list[ScenarioResult] = field(default_factory=list)
    message: str = ""
    schema_version: int = SCHEMA_VERSION

    def checks(self) -> list[tuple[ScenarioResult, CheckResult]]:
        """Every check of the run with the scenario it belongs to."""
        return [(s, c) for s in self.scenarios for c in s.checks]


def to_dict(result: RunResult) -> dict[str, Any]:
    """The run as JSON-ready data."""
    return dataclasses.asdict(result)


def _records(items: list[dict]) -> list[CommandRecord]:
    return [CommandRecord(**r) for r in items]


def _check(data: dict) -> CheckResult:
    data = dict(data)
    claim = data.pop("claim")
    records = data.pop("records")
    return CheckResult(
        claim=Claim(**claim) if claim else None, records=_records(records), **data
    )


def _step(data: dict) -> StepResult:
    data = dict(data)
    return StepResult(records=_records(data.pop("records")), **data)


def _scenario(data: dict) -> ScenarioResult:
    data = dict(data)
    return ScenarioResult(
        steps=[_step(s) for s in data.pop("steps")],
        checks=[_check(c) for c in data.pop("checks")],
        cleanup=_records(data.pop("cleanup")),
        containers=[TopologyContainer(**c) for c in data.pop("containers")],
        networks=[TopologyNetwork(**n) for n in data.pop("networks")],
        **data,
    )


def from_dict(data: dict[str, Any]) -> RunResult:
    """Rebuild a run from what :func:`to_dict` made (after validation)."""
    data = dict(data)
    env = dict(data.pop("environment"))
    environment = Environment(nodes=[NodeFacts(**n) for n in env.pop("nodes")], **env)
    return RunResult(
        environment=environment,
        scenarios=[_scenario(s) for s in data.pop("scenarios")],
        **data,
    )
