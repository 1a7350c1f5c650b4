"""From observations to outcomes, verdicts, exit codes and the claim ledger.

Pure logic over the scenario model and :mod:`ipvlan_lab.results`; the words
are those of :mod:`ipvlan_lab.results`. A check's *outcome* compares what was
observed with the scenario's expectation on today's stack; its *verdict*
compares it with what the document claims. The two rules that are easy to
get wrong live here:

* a negative result (unreachable, nxdomain, no-answer) counts only beside a
  positive control from the same source that passed; otherwise the lab, not
  the network under test, may be what failed, and the outcome is
  ``lab-fault``;
* for ``ping`` and ``resolve`` the verdict compares the observation with what
  the claim says, whatever the scenario expected; for the other kinds, which
  observe no single word, the outcome and :attr:`Check.holds` decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .results import (
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
)
from .scenario import KINDS, Check, Expectation

OUTCOMES = (PASS, FAIL, LAB_FAULT, SKIPPED)


@dataclass
class LedgerRow:
    """One claim of the document with every check that tested it."""

    section: str
    text: str
    says: str
    #: What the checks saw, e.g. ``unreachable`` or ``reachable (1), unreachable (1)``.
    observed: str
    verdict: str
    count: int
    checks: list[str] = field(default_factory=list)


def outcome_of(
    check: Check,
    observed_ok: bool | None,
    control_outcome: str | None,
    nodes_healthy: bool,
    *,
    applies: bool = True,
    expectation: Expectation | None = None,
) -> str:
    """The outcome of one check: ``pass``, ``fail``, ``lab-fault`` or ``skipped``.

    ``observed_ok`` says whether the observation matched the expectation
    (``None`` when nothing could be observed); ``control_outcome`` is the
    outcome of the check's positive control, if it has one;
    ``nodes_healthy`` whether every node in :attr:`Check.nodes` was fine.
    ``applies`` is false when the check's ``when`` condition does not hold or
    no expectation applies: the check is skipped. ``expectation`` is the one
    that applied; without it, a check counts as negative when any of its
    expectations is.
    """
    if not applies:
        return SKIPPED
    if not nodes_healthy:
        return LAB_FAULT
    negative = expectation.negative if expectation is not None else check.negative
    if negative and control_outcome != PASS:
        return LAB_FAULT
    if observed_ok is None:
        return LAB_FAULT
    return PASS if observed_ok else FAIL


def verdict_of(check: Check, outcome: str, observed: str | None) -> str | None:
    """What the check says of the document's claim, or ``None`` without a claim.

    ``lab-fault`` and ``skipped`` carry over from the outcome. A ``ping`` or
    ``resolve`` is ``confirmed`` when ``observed`` (reachable, unreachable,
    resolves, nxdomain, no-answer) is what the claim says, else ``refuted``.
    Any other kind is ``confirmed`` when it passed and the claim is expected
    to hold, or failed and it is not; ``refuted`` otherwise.
    """
    if check.claim is None:
        return None
    if outcome in (LAB_FAULT, SKIPPED):
        return outcome
    if outcome not in (PASS, FAIL):
        raise ValueError(f"unknown outcome {outcome!r} (expected one of {OUTCOMES})")
    if KINDS[check.kind].words:
        return CONFIRMED if observed == check.claim.says else REFUTED
    return CONFIRMED if (outcome == PASS) == check.holds else REFUTED


def exit_code(run_outcomes: Iterable[str], *, lab_ran: bool = True) -> int:
    """The process exit code for a run whose checks ended with ``run_outcomes``.

    0 when every check passed or was skipped; 2 when any was a lab fault or
    the lab could not run at all (``lab_ran`` false); else 1 if any failed.
    """
    outcomes = list(run_outcomes)
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise ValueError(f"unknown outcome {unknown[0]!r} (expected one of {OUTCOMES})")
    if not lab_ran or LAB_FAULT in outcomes:
        return EXIT_LAB
    if FAIL in outcomes:
        return EXIT_FAILED
    return EXIT_OK


def ledger(checks: Iterable[CheckResult]) -> list[LedgerRow]:
    """The document's claims, one row each, in the order first tested.

    Checks are grouped by claim (section and text); checks without a claim
    are left out. A row's verdict is ``lab-fault`` if any of its checks is,
    else ``refuted`` if any is, else ``skipped`` if all are, else
    ``confirmed``.
    """
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for check in checks:
        if check.claim is not None:
            key = (check.claim.section, check.claim.text)
            groups.setdefault(key, []).append(check)
    return [_row(group) for group in groups.values()]


def _row(group: list[CheckResult]) -> LedgerRow:
    claim = group[0].claim
    verdicts = [check.verdict for check in group]
    if LAB_FAULT in verdicts:
        verdict = LAB_FAULT
    elif REFUTED in verdicts:
        verdict = REFUTED
    elif all(v == SKIPPED for v in verdicts):
        verdict = SKIPPED
    else:
        verdict = CONFIRMED
    return LedgerRow(
        section=claim.section,
        text=claim.text,
        says=claim.says,
        observed=_summary([check.observed for check in group]),
        verdict=verdict,
        count=len(group),
        checks=[check.id for check in group],
    )


def _summary(observed: list[str]) -> str:
    counts: dict[str, int] = {}
    for value in observed:
        counts[value] = counts.get(value, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{value} ({count})" for value, count in counts.items())
