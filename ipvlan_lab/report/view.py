"""What the Markdown and HTML reports show, worked out once from a run.

Both templates read the same context (:func:`context`), so the two reports
cannot disagree; only the markup differs. Text helpers that both use (times,
clipped output) live here too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..results import (
    CONFIRMED,
    EXIT_FAILED,
    EXIT_LAB,
    EXIT_OK,
    FAIL,
    LAB_FAULT,
    PASS,
    REFUTED,
    SKIPPED,
    CheckResult,
    RunResult,
    ScenarioResult,
)
from ..scenario import NEGATIVE
from . import ledger as claims
from .pictures import ScenarioPictures, slug

OUTCOMES = (PASS, FAIL, LAB_FAULT, SKIPPED)
VERDICTS = (CONFIRMED, REFUTED, LAB_FAULT, SKIPPED)

#: Output longer than this many lines is cut in the reports (never in JSON).
OUTPUT_LINES = 200

#: Evidence longer than this as one line of JSON is shown indented.
SHORT_JSON = 160

EXIT_MEANINGS = {
    EXIT_OK: "every check passed",
    EXIT_FAILED: "a check failed",
    EXIT_LAB: "the lab failed",
}


def count(values: list[str | None], words: tuple[str, ...]) -> dict[str, int]:
    """How often each of *words* occurs in *values*, zeros included, in order."""
    found = Counter(values)
    return {w: found[w] for w in words}


def seconds(value: float) -> str:
    """A duration for people: ``0.82 s``, ``12.4 s``, ``2 min 17 s``."""
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s"


def clip(text: str, lines: int = OUTPUT_LINES) -> str:
    """*text* without its final newline, cut after *lines* lines with a note."""
    kept = text.rstrip("\n").split("\n")
    if len(kept) <= lines:
        return "\n".join(kept)
    more = len(kept) - lines
    return "\n".join(kept[:lines] + [f"... {more} more lines in results.json"])


def shown(value: object) -> str:
    """An evidence value as text: strings as they are, the rest as JSON.

    JSON stays on one line while it is short, and is indented when it is not.
    """
    if isinstance(value, str):
        return value
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= SHORT_JSON:
        return text
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def anchor(scenario: ScenarioResult, check: CheckResult | None = None) -> str:
    """The HTML id of a scenario's section, or of one of its checks."""
    if check is None:
        return f"scenario-{slug(scenario.name)}"
    return f"check-{slug(scenario.name)}-{slug(check.id)}"


#: Evidence keys the reports show elsewhere (control, attempts).
SHOWN_ELSEWHERE = frozenset({"control", "attempts"})


@dataclass
class Control:
    """The positive control of a negative check, as far as the run knows it."""

    id: str
    title: str = ""
    outcome: str | None = None
    observed: str | None = None
    #: The HTML id of the control's own check, when it is in the same scenario.
    anchor: str | None = None


def control_of(scenario: ScenarioResult, check: CheckResult) -> Control | None:
    """The control of *check*: its own result if the scenario has it.

    Falls back on what the check's evidence recorded of it, then on its id.
    """
    if not check.control:
        return None
    for other in scenario.checks:
        if other.id == check.control:
            return Control(
                id=other.id,
                title=other.title,
                outcome=other.outcome,
                observed=other.observed,
                anchor=anchor(scenario, other),
            )
    recorded = check.evidence.get("control")
    if isinstance(recorded, dict):
        return Control(
            id=check.control,
            title=str(recorded.get("title") or ""),
            outcome=recorded.get("outcome"),
        )
    return Control(id=check.control)


def is_negative(check: CheckResult) -> bool:
    """Whether the check expected or saw something not happen."""
    return check.observed in NEGATIVE or check.expected in NEGATIVE


def evidence_of(check: CheckResult) -> list[tuple[str, str]]:
    """The check's evidence worth showing, as (key, text) pairs.

    Leaves out what the reports show elsewhere: the control, the attempts,
    and any output that is word for word one of the check's commands' own.
    """
    outputs = {(r.stdout + r.stderr).strip() for r in check.records}
    shown_pairs = []
    for key, value in check.evidence.items():
        if key in SHOWN_ELSEWHERE:
            continue
        text = shown(value)
        if isinstance(value, str) and text.strip() in outputs:
            continue
        shown_pairs.append((key, text))
    return shown_pairs


@dataclass
class ScenarioView:
    """One scenario with what the reports say about it."""

    scenario: ScenarioResult
    pictures: ScenarioPictures
    outcomes: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def anchor(self) -> str:
        """The HTML id of the scenario's section."""
        return anchor(self.scenario)


def context(run: RunResult, pictures: dict[str, ScenarioPictures]) -> dict[str, Any]:
    """Everything the report templates need, by name."""
    checks = [c for _, c in run.checks()]
    rows = claims.ledger(run)
    scenarios = [
        ScenarioView(
            scenario=s,
            pictures=pictures.get(s.name, ScenarioPictures()),
            outcomes=count([c.outcome for c in s.checks], OUTCOMES),
            verdicts=count([c.verdict for c in s.checks], VERDICTS),
        )
        for s in run.scenarios
    ]
    return {
        "run": run,
        "env": run.environment,
        "exit_meaning": EXIT_MEANINGS.get(run.exit_code, "unknown exit code"),
        "outcomes": count([c.outcome for c in checks], OUTCOMES),
        "check_verdicts": count([c.verdict for c in checks], VERDICTS),
        "claim_verdicts": count([r.verdict for r in rows], VERDICTS),
        "claims": len(rows),
        "refuted": [r for r in rows if r.verdict == REFUTED],
        "unsettled": [r for r in rows if r.verdict == LAB_FAULT],
        "sections": claims.sections(rows),
        "unclaimed": claims.unclaimed(run),
        "scenarios": scenarios,
    }
