"""The how-to's two procedures on real VMs, through `invoke scenario`."""

from __future__ import annotations

import pytest

from .results import latest_run, load, verdicts

pytestmark = pytest.mark.lab

#: What each procedure's run gave, for the second run in `invoke verify`.
FIRST_RUN: dict[str, dict] = {}


def test_listing_a_scenario_runs_nothing(lab):
    before = sorted((lab.root / "results").glob("*-scenario-vlan"))
    result = lab.invoke("scenario", "vlan", "--list", check=True)
    assert "docker network create -d ipvlan" in result.stdout
    assert "check" in result.stdout
    assert sorted((lab.root / "results").glob("*-scenario-vlan")) == before


@pytest.mark.parametrize("name", ["novlan", "vlan"])
def test_procedure_runs_and_every_result_is_the_documents(lab, name):
    result = lab.invoke("scenario", name, label=f"scenario {name}")
    folder = latest_run(f"scenario-{name}")
    run = load(folder)
    assert result.returncode == 0, result.stderr[-4000:]
    assert run["exit_code"] == 0

    (scenario,) = run["scenarios"]
    assert scenario["status"] == "ok"
    assert all(step["status"] == "ok" for step in scenario["steps"])
    # Every command is recorded with its node, exit status, output and time.
    for step in scenario["steps"]:
        for record in step["records"]:
            assert record["node"] in ("host1", "host2", "lan")
            assert record["exit_status"] == 0
            assert record["started"] and record["duration"] > 0

    checks = scenario["checks"]
    claimed = [c for c in checks if c["claim"]]
    assert all(c["outcome"] == "pass" for c in checks), [
        (c["id"], c["observed"], c["message"]) for c in checks if c["outcome"] != "pass"
    ]
    # On Debian 12 every row of the how-to's tables still holds.
    assert {c["verdict"] for c in claimed} == {"confirmed"}
    # Both hosts test the table: "host 2 gives the same results".
    pings = [c for c in claimed if c["kind"] == "ping"]
    sources = {c["source"] for c in pings}
    assert {"host1", "host2"} <= sources
    assert any(s.startswith(("test1", "test100.1")) for s in sources)
    assert any(s.startswith(("test2", "test100.2")) for s in sources)
    # Every "unreachable" stands beside a positive control that passed.
    outcomes = {c["id"]: c["outcome"] for c in checks}
    for check in pings:
        if check["observed"] == "unreachable":
            assert check["control"], check["id"]
            assert outcomes[check["control"]] == "pass"
            assert "ping" in check["evidence"]

    FIRST_RUN[name] = verdicts(run, name)
    assert (folder / "report.html").exists() and (folder / "junit.xml").exists()
