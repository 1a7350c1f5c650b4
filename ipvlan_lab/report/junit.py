"""``junit.xml``: the run's checks as JUnit test cases, for CI.

One ``<testsuite>`` per scenario and one ``<testcase>`` per check: its
``classname`` is the scenario's name and its ``name`` the check's id and
title. A check's outcome maps to JUnit's words: ``fail`` to ``<failure>``,
``lab-fault`` to ``<error>``, ``skipped`` to ``<skipped>``. The verdict about
the document, which JUnit has no word for, is a property of each test case;
the environment is a set of properties of each suite.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..results import (
    FAIL,
    LAB_FAULT,
    SKIPPED,
    CheckResult,
    CommandRecord,
    RunResult,
    ScenarioResult,
)

#: The file name of the JUnit report inside a run folder.
JUNIT_FILE = "junit.xml"

#: Step statuses that mean a step did not do its work.
FAILED_STEP_STATUSES = frozenset({"fail", "failed", "error", LAB_FAULT})

# Characters XML 1.0 cannot carry, even escaped (terminal escapes and the like).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    """*text* with the characters XML cannot hold written as ``\\xNN``."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def commands_text(records: list[CommandRecord]) -> str:
    """Commands as they ran: node, command, output, exit status and time."""
    parts = []
    for r in records:
        status = "no exit status" if r.exit_status is None else f"exit {r.exit_status}"
        lines = [f"{r.node}$ {r.command}"]
        if r.stdout:
            lines.append(r.stdout.rstrip("\n"))
        if r.stderr:
            lines.append("[stderr]")
            lines.append(r.stderr.rstrip("\n"))
        lines.append(f"[{status}, {r.duration:.2f} s]")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def check_text(check: CheckResult) -> str:
    """Everything a reader of a failed check needs, as plain text."""
    lines = [f"expected: {check.expected}", f"observed: {check.observed}"]
    if check.claim:
        lines.append(f"the document says: {check.claim.says}")
    if check.message:
        lines.append(check.message)
    if check.control:
        lines.append(f"positive control: {check.control}")
    if check.evidence:
        evidence = json.dumps(check.evidence, indent=2, ensure_ascii=False, default=str)
        lines.append(f"evidence: {evidence}")
    if check.attempts > 1:
        lines.append(f"attempts: {check.attempts}")
    if check.records:
        lines += ["", commands_text(check.records)]
    return "\n".join(lines)


def _properties(parent: ET.Element, values: dict[str, object]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value is None or value == "":
            continue
        ET.SubElement(properties, "property", name=name, value=xml_text(str(value)))


def _environment(run: RunResult) -> dict[str, object]:
    env = run.environment
    values: dict[str, object] = {
        "run_id": run.run_id,
        "command": run.command,
        "provider": env.provider,
        "box": env.box,
        "network_mode": env.network_mode,
    }
    for node in env.nodes:
        for key in ("role", "address", "nic", "kernel", "docker", "os"):
            values[f"node.{node.name}.{key}"] = getattr(node, key)
    return values


def _testcase(suite: ET.Element, scenario: ScenarioResult, check: CheckResult):
    case = ET.SubElement(
        suite,
        "testcase",
        classname=scenario.name,
        name=xml_text(f"{check.id}: {check.title}" if check.title else check.id),
        time=_seconds(check.duration),
    )
    claim = check.claim
    _properties(
        case,
        {
            "kind": check.kind,
            "verdict": check.verdict,
            "expected": check.expected,
            "observed": check.observed,
            "claim.section": claim.section if claim else None,
            "claim.text": claim.text if claim else None,
            "claim.says": claim.says if claim else None,
        },
    )

    if check.outcome == FAIL:
        message = check.message or f"expected {check.expected}, got {check.observed}"
        failure = ET.SubElement(case, "failure", message=xml_text(message), type=FAIL)
        failure.text = xml_text(check_text(check))
    elif check.outcome == LAB_FAULT:
        message = check.message or "the lab failed before the check could tell"
        error = ET.SubElement(case, "error", message=xml_text(message), type=LAB_FAULT)
        error.text = xml_text(check_text(check))
    elif check.outcome == SKIPPED:
        reason = check.reason or check.condition or check.message or "skipped"
        ET.SubElement(case, "skipped", message=xml_text(reason))
    elif check.records:
        out = ET.SubElement(case, "system-out")
        out.text = xml_text(commands_text(check.records))
    return case


def _steps_case(suite: ET.Element, scenario: ScenarioResult) -> str | None:
    """A test case for a scenario that broke outside its checks.

    Without it a scenario whose steps failed would look green in CI: its
    checks never ran, or ran on a half-made lab. A lab fault that no check
    carries becomes an ``<error>``; failed steps a ``<failure>``. Returns
    which of the two it added, or ``None``.
    """
    failed = [s for s in scenario.steps if s.status in FAILED_STEP_STATUSES]
    lab_fault = scenario.status == LAB_FAULT and not any(
        c.outcome == LAB_FAULT for c in scenario.checks
    )
    if not failed and not lab_fault:
        return None

    case = ET.SubElement(
        suite, "testcase", classname=scenario.name, name="steps", time="0.000"
    )
    if lab_fault:
        tag, kind = "error", LAB_FAULT
        message = scenario.message or "the scenario hit a lab fault outside its checks"
    else:
        tag, kind = "failure", FAIL
        names = ", ".join(s.id for s in failed)
        message = scenario.message or f"step {names} failed"
    element = ET.SubElement(case, tag, message=xml_text(message), type=kind)
    element.text = xml_text(
        "\n\n".join(
            f"step {s.id} ({s.status}): {s.message}\n{commands_text(s.records)}"
            for s in failed
        )
    )
    return tag


def junit_tree(run: RunResult) -> ET.Element:
    """The run as a JUnit ``<testsuites>`` element."""
    root = ET.Element(
        "testsuites",
        name=xml_text(f"ipvlan-lab {run.command}".strip()),
        time=_seconds(run.duration),
        timestamp=run.started,
    )
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for scenario in run.scenarios:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=scenario.name,
            time=_seconds(scenario.duration),
            timestamp=scenario.started,
            file=scenario.file,
        )
        _properties(suite, {"title": scenario.title, **_environment(run)})
        for check in scenario.checks:
            _testcase(suite, scenario, check)
        extra = _steps_case(suite, scenario)

        outcomes = [c.outcome for c in scenario.checks]
        counts = {
            "tests": len(outcomes) + (extra is not None),
            "failures": outcomes.count(FAIL) + (extra == "failure"),
            "errors": outcomes.count(LAB_FAULT) + (extra == "error"),
            "skipped": outcomes.count(SKIPPED),
        }
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    return root


def junit_bytes(run: RunResult) -> bytes:
    """The JUnit report as indented UTF-8 XML, declaration included."""
    root = junit_tree(run)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(run: RunResult, folder: str | os.PathLike[str]) -> Path:
    """Write ``junit.xml`` into *folder* and return its path."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / JUNIT_FILE
    path.write_bytes(junit_bytes(run))
    return path
