"""The claims ledger as the reports show it.

The grouping and the verdict of each claim are :func:`ipvlan_lab.verdict.ledger`'s
(one rule for the whole lab); this module only puts back, beside each row,
the scenario and the result of every check it counts, so that the reports
can link to them and count their verdicts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .. import verdict as rules
from ..results import (
    CONFIRMED,
    LAB_FAULT,
    REFUTED,
    SKIPPED,
    CheckResult,
    Claim,
    RunResult,
    ScenarioResult,
)

#: Verdict words in the order the reports count them.
VERDICTS = (CONFIRMED, REFUTED, LAB_FAULT, SKIPPED)


@dataclass
class LedgerRow:
    """One claim of the document and every check that tested it."""

    claim: Claim
    #: The claim's verdict, summed up from its checks' by :mod:`ipvlan_lab.verdict`.
    verdict: str
    #: What the checks observed, e.g. ``reachable (1), unreachable (1)``.
    observed: str
    checks: list[tuple[ScenarioResult, CheckResult]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """How many of the row's checks gave each verdict (none left at zero)."""
        found = Counter(c.verdict for _, c in self.checks)
        return {v: found[v] for v in VERDICTS if found[v]}

    @property
    def reasons(self) -> list[str]:
        """Why the claim does not hold, as the refuting checks' scenarios say."""
        found: list[str] = []
        for _, check in self.checks:
            if check.verdict == REFUTED and check.reason and check.reason not in found:
                found.append(check.reason)
        return found

    @property
    def faults(self) -> list[str]:
        """What went wrong in the lab, as the checks with a lab fault say."""
        found: list[str] = []
        for _, check in self.checks:
            if check.verdict == LAB_FAULT and check.message not in found:
                found.append(check.message)
        return [m for m in found if m]


@dataclass
class LedgerSection:
    """The rows of one section of the document, in the order they ran."""

    title: str
    rows: list[LedgerRow] = field(default_factory=list)


def ledger(run: RunResult) -> list[LedgerRow]:
    """One row per claim that the run's checks tested, in first-tested order."""
    tested = [(s, c) for s, c in run.checks() if c.claim is not None]
    members: dict[tuple[str, str], list[tuple[ScenarioResult, CheckResult]]] = {}
    for scenario, check in tested:
        key = (check.claim.section, check.claim.text)
        members.setdefault(key, []).append((scenario, check))

    return [
        LedgerRow(
            claim=Claim(row.section, row.text, row.says),
            verdict=row.verdict,
            observed=row.observed,
            checks=members[(row.section, row.text)],
        )
        for row in rules.ledger(c for _, c in tested)
    ]


def sections(rows: list[LedgerRow]) -> list[LedgerSection]:
    """The rows grouped by the document's section, sections in first-seen order."""
    grouped: dict[str, LedgerSection] = {}
    for row in rows:
        title = row.claim.section
        grouped.setdefault(title, LedgerSection(title=title)).rows.append(row)
    return list(grouped.values())


def unclaimed(run: RunResult) -> list[tuple[ScenarioResult, CheckResult]]:
    """The checks that test no claim of the document (the lab's own checks)."""
    return [(s, c) for s, c in run.checks() if c.claim is None]
