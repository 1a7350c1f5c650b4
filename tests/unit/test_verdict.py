"""Outcomes, verdicts, exit codes and the claim ledger."""

from __future__ import annotations

import pytest

from ipvlan_lab.results import (
    CONFIRMED,
    FAIL,
    LAB_FAULT,
    PASS,
    REFUTED,
    SKIPPED,
    CheckResult,
    Claim,
)
from ipvlan_lab.scenario import Check, Expectation
from ipvlan_lab.verdict import exit_code, ledger, outcome_of, verdict_of

ROW = Claim("Procedure 1, step 3", "ping 192.168.4.101: own container", "unreachable")


def make_check(
    kind: str = "ping",
    expect: str | dict | list = "unreachable",
    claim: Claim | None = ROW,
    holds: bool = True,
) -> Check:
    if isinstance(expect, list):
        expectations = [Expectation(value, when) for when, value in expect]
    else:
        expectations = [Expectation(expect)]
    return Check(
        id="c1",
        kind=kind,
        title="t",
        source="host1",
        node="host1",
        params={},
        expect=expectations,
        claim=claim,
        holds=holds,
        control="control-host1",
    )


def result(
    check_id: str, claim: Claim | None, observed: str, verdict: str | None
) -> CheckResult:
    return CheckResult(
        id=check_id,
        kind="ping",
        title="t",
        source="test101",
        target=None,
        expected="",
        observed=observed,
        outcome=PASS,
        verdict=verdict,
        claim=claim,
    )


# outcome_of


@pytest.mark.parametrize(
    ("observed_ok", "control", "healthy", "applies", "expected"),
    [
        (True, PASS, True, True, PASS),
        (False, PASS, True, True, FAIL),
        (True, FAIL, True, True, LAB_FAULT),  # unreachable beside a failed control
        (True, None, True, True, LAB_FAULT),  # ... or beside none
        (True, SKIPPED, True, True, LAB_FAULT),
        (True, LAB_FAULT, True, True, LAB_FAULT),
        (True, PASS, False, True, LAB_FAULT),  # a node was down
        (None, PASS, True, True, LAB_FAULT),  # nothing could be observed
        (True, PASS, True, False, SKIPPED),
        (None, None, False, False, SKIPPED),  # skipped checks never ran
    ],
)
def test_outcome_of_a_negative_check(observed_ok, control, healthy, applies, expected):
    check = make_check(expect="unreachable")
    assert outcome_of(check, observed_ok, control, healthy, applies=applies) == expected


@pytest.mark.parametrize(
    ("observed_ok", "control", "expected"),
    [(True, None, PASS), (False, None, FAIL), (True, FAIL, PASS)],
)
def test_a_positive_check_needs_no_control(observed_ok, control, expected):
    check = make_check(expect="reachable")
    assert outcome_of(check, observed_ok, control, True) == expected


def test_the_applied_expectation_decides_whether_a_control_is_needed():
    check = make_check(expect=[("docker >= 23", "unreachable"), (None, "reachable")])
    assert outcome_of(check, True, FAIL, True) == LAB_FAULT
    applied = check.expect[1]
    assert outcome_of(check, True, FAIL, True, expectation=applied) == PASS
    assert outcome_of(check, True, FAIL, True, expectation=check.expect[0]) == (
        LAB_FAULT
    )


# verdict_of


@pytest.mark.parametrize(
    ("says", "observed", "outcome", "expected"),
    [
        ("unreachable", "unreachable", PASS, CONFIRMED),
        ("unreachable", "reachable", FAIL, REFUTED),
        ("reachable", "reachable", PASS, CONFIRMED),
        # holds: false and the lab behaved as expected: the claim is refuted
        ("unreachable", "reachable", PASS, REFUTED),
        ("unreachable", "unreachable", LAB_FAULT, LAB_FAULT),
        ("unreachable", "", SKIPPED, SKIPPED),
    ],
)
def test_verdict_of_a_ping_compares_with_what_the_claim_says(
    says, observed, outcome, expected
):
    claim = Claim(ROW.section, ROW.text, says)
    check = make_check(claim=claim)
    assert verdict_of(check, outcome, observed) == expected


def test_verdict_of_a_resolve():
    claim = Claim("Facts", "nslookup test201 127.0.0.11 from test101", "nxdomain")
    check = make_check(kind="resolve", expect="nxdomain", claim=claim)
    assert verdict_of(check, PASS, "nxdomain") == CONFIRMED
    assert verdict_of(check, FAIL, "resolves") == REFUTED
    # No answer is no lookup: the runner makes it a lab fault, which settles
    # nothing.
    assert verdict_of(check, LAB_FAULT, "no-answer") == LAB_FAULT


@pytest.mark.parametrize(
    ("holds", "outcome", "expected"),
    [
        (True, PASS, CONFIRMED),
        (True, FAIL, REFUTED),
        (False, PASS, REFUTED),
        (False, FAIL, CONFIRMED),
        (False, LAB_FAULT, LAB_FAULT),
        (True, SKIPPED, SKIPPED),
    ],
)
def test_verdict_of_other_kinds_follows_holds(holds, outcome, expected):
    claim = Claim("Problems, 3", "no --ip without a subnet", "refused")
    check = make_check(
        kind="command", expect={"exit": "nonzero"}, claim=claim, holds=holds
    )
    assert verdict_of(check, outcome, "exit 1") == expected


def test_no_claim_no_verdict():
    assert verdict_of(make_check(claim=None), PASS, "unreachable") is None


def test_verdict_of_refuses_an_unknown_outcome():
    with pytest.raises(ValueError, match="unknown outcome 'passed'"):
        verdict_of(make_check(), "passed", "unreachable")


# exit_code


@pytest.mark.parametrize(
    ("outcomes", "lab_ran", "expected"),
    [
        ([], True, 0),
        ([PASS, SKIPPED, PASS], True, 0),
        ([PASS, FAIL, SKIPPED], True, 1),
        ([PASS, FAIL, LAB_FAULT], True, 2),
        ([LAB_FAULT], True, 2),
        ([PASS], False, 2),
    ],
)
def test_exit_code(outcomes, lab_ran, expected):
    assert exit_code(outcomes, lab_ran=lab_ran) == expected


def test_exit_code_refuses_an_unknown_outcome():
    with pytest.raises(ValueError):
        exit_code([PASS, "ok"])


# ledger


def test_ledger_groups_checks_by_claim_in_first_seen_order():
    gateway = Claim("Procedure 1, step 3", "ping 192.168.4.1: the gateway", "reachable")
    rows = ledger(
        [
            result("h1-own", ROW, "unreachable", CONFIRMED),
            result("h1-gateway", gateway, "reachable", CONFIRMED),
            result("control-host1", None, "reachable", None),
            result("h1-own-again", ROW, "unreachable", CONFIRMED),
        ]
    )
    assert [(r.text, r.observed, r.verdict, r.count, r.checks) for r in rows] == [
        (ROW.text, "unreachable", CONFIRMED, 2, ["h1-own", "h1-own-again"]),
        (gateway.text, "reachable", CONFIRMED, 1, ["h1-gateway"]),
    ]
    assert (rows[0].section, rows[0].says) == (ROW.section, "unreachable")


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([CONFIRMED, CONFIRMED], CONFIRMED),
        ([CONFIRMED, SKIPPED], CONFIRMED),
        ([SKIPPED, SKIPPED], SKIPPED),
        ([CONFIRMED, REFUTED, SKIPPED], REFUTED),
        ([REFUTED, LAB_FAULT, CONFIRMED], LAB_FAULT),
    ],
)
def test_ledger_verdict_of_a_row(verdicts, expected):
    checks = [result(f"c{i}", ROW, "x", v) for i, v in enumerate(verdicts)]
    (row,) = ledger(checks)
    assert row.verdict == expected
    assert row.count == len(verdicts)


def test_ledger_summarises_differing_observations():
    checks = [
        result("a", ROW, "unreachable", CONFIRMED),
        result("b", ROW, "reachable", REFUTED),
        result("c", ROW, "unreachable", CONFIRMED),
    ]
    (row,) = ledger(checks)
    assert row.observed == "unreachable (2), reachable (1)"
