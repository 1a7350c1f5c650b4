"""The report: results.json, JUnit, the ledger, the pictures, Markdown and HTML.

Most tests start from the made-up sample run of ``data/report/make_sample.py``,
which holds every case a report must show (a refuted claim, a lab fault, a
skipped and a failed check, a VLAN); a few build the smallest run that shows
one behaviour.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib import image

from ipvlan_lab import results, verdict
from ipvlan_lab.errors import LabError
from ipvlan_lab.report import (
    jsonio,
    junit,
    ledger,
    markdown,
    pictures,
    read_results,
    render_all,
    render_html,
    render_markdown,
    rerender,
    view,
    write_results,
)
from ipvlan_lab.results import (
    CheckResult,
    Claim,
    CommandRecord,
    Environment,
    NodeFacts,
    RunResult,
    ScenarioResult,
    TopologyContainer,
    TopologyNetwork,
)

SAMPLE = Path(__file__).parent / "data" / "report" / "make_sample.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _sample_module():
    spec = importlib.util.spec_from_file_location("report_sample", SAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample() -> RunResult:
    return _sample_module().sample_run()


@pytest.fixture(scope="module")
def drawn(sample: RunResult) -> dict[str, pictures.ScenarioPictures]:
    """The sample's pictures, drawn once for the module."""
    return pictures.run_pictures(sample)


@pytest.fixture
def run(sample: RunResult) -> RunResult:
    """A copy of the sample that a test may change."""
    return results.from_dict(results.to_dict(sample))


def find(run: RunResult, check_id: str, scenario: str | None = None) -> CheckResult:
    for s, c in run.checks():
        if c.id == check_id and (scenario is None or s.name == scenario):
            return c
    raise KeyError(check_id)


def ping(id, source, target, observed, *, says=None, outcome="pass", verdict=None):
    claim = (
        Claim("Procedure 1, step 3", f"{source} ping {target}", says) if says else None
    )
    if verdict is None and claim:
        verdict = "confirmed" if observed == says else "refuted"
    return CheckResult(
        id=id,
        kind="ping",
        title=f"{source} to {target}",
        source=source,
        target=target,
        expected=observed,
        observed=observed,
        outcome=outcome,
        verdict=verdict,
        claim=claim,
    )


def small_run(*checks: CheckResult, **scenario) -> RunResult:
    env = Environment(
        "libvirt-qemu",
        "box",
        "isolated",
        [NodeFacts("host1", "host", "192.168.4.236", nic="eth1")],
    )
    values = {
        "name": "tiny",
        "title": "A tiny scenario",
        "file": "scenarios/tiny.yaml",
        "started": "",
        "duration": 1.0,
        "status": "ok",
        "checks": list(checks),
        **scenario,
    }
    return RunResult(
        "r1", "invoke scenario tiny", "", 1.0, 0, env, [ScenarioResult(**values)]
    )


# results.json and its schema -------------------------------------------------


def test_results_round_trip(sample: RunResult, tmp_path: Path) -> None:
    path = write_results(sample, tmp_path / "run")

    assert path == tmp_path / "run" / "results.json"
    assert read_results(path) == sample
    assert read_results(path.parent) == sample


def test_results_file_replaced_whole(sample: RunResult, tmp_path: Path) -> None:
    write_results(sample, tmp_path)
    write_results(sample, tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    assert oct(tmp_path.joinpath("results.json").stat().st_mode & 0o644) == oct(0o644)


DATACLASSES = {
    "": RunResult,
    "record": CommandRecord,
    "claim": Claim,
    "step": results.StepResult,
    "check": CheckResult,
    "container": TopologyContainer,
    "network": TopologyNetwork,
    "scenario": ScenarioResult,
    "node": NodeFacts,
    "environment": Environment,
}


@pytest.mark.parametrize("name", DATACLASSES)
def test_schema_lists_every_field_as_required(name: str) -> None:
    schema = jsonio.schema()
    part = schema["$defs"][name] if name else schema
    fields = [f.name for f in dataclasses.fields(DATACLASSES[name])]

    assert sorted(part["properties"]) == sorted(fields)
    assert sorted(part["required"]) == sorted(fields)
    assert part["additionalProperties"] is False


def test_schema_is_valid_draft_2020_12() -> None:
    import jsonschema

    schema = jsonio.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("/draft/2020-12/schema")
    assert schema["properties"]["schema_version"] == {"const": results.SCHEMA_VERSION}


def test_schema_words_match_results_module() -> None:
    defs = jsonio.schema()["$defs"]

    assert defs["outcome"]["enum"] == [
        results.PASS,
        results.FAIL,
        results.LAB_FAULT,
        results.SKIPPED,
    ]
    assert defs["verdict"]["enum"] == [
        results.CONFIRMED,
        results.REFUTED,
        results.LAB_FAULT,
        results.SKIPPED,
        None,
    ]


def test_sample_is_valid(sample: RunResult) -> None:
    assert jsonio.problems(results.to_dict(sample)) == []


def test_read_results_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabError) as caught:
        read_results(tmp_path)

    assert "no results file at" in caught.value.message
    assert str(tmp_path / "results.json") in caught.value.message
    assert "results/<run-id>/" in caught.value.hint


def test_read_results_bad_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"run_id": "x",\n  oops}')

    with pytest.raises(LabError, match=r"not valid JSON: .* line 2, column 3"):
        read_results(tmp_path)


def test_read_results_names_the_bad_field(sample: RunResult, tmp_path: Path) -> None:
    data = results.to_dict(sample)
    data["scenarios"][0]["checks"][4]["outcome"] = "passed"
    (tmp_path / "results.json").write_text(json.dumps(data))

    with pytest.raises(LabError) as caught:
        read_results(tmp_path)

    message = caught.value.message
    assert "does not match the results schema" in message
    assert "scenarios[0].checks[4].outcome: 'passed' is not one of" in message
    assert "docs/results-schema.md" in caught.value.hint


def test_read_results_missing_field(sample: RunResult, tmp_path: Path) -> None:
    data = results.to_dict(sample)
    del data["environment"]["nodes"][0]["kernel"]
    (tmp_path / "results.json").write_text(json.dumps(data))

    with pytest.raises(LabError, match=r"environment.nodes\[0\]: 'kernel' is a req"):
        read_results(tmp_path)


def test_read_results_other_schema_version(sample: RunResult, tmp_path: Path) -> None:
    data = results.to_dict(sample) | {"schema_version": 99}
    (tmp_path / "results.json").write_text(json.dumps(data))

    with pytest.raises(LabError, match="schema version 99; this lab reads version 1"):
        read_results(tmp_path)


def test_read_results_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("[]")

    with pytest.raises(LabError, match=r"\(top level\): \[\] is not of type 'object'"):
        read_results(tmp_path)


def test_write_results_refuses_bad_words_but_keeps_file(tmp_path: Path) -> None:
    bad = small_run(ping("p", "test101", "192.168.4.1", "reachable", outcome="ok"))

    with pytest.raises(LabError, match="outcome: 'ok' is not one of") as caught:
        write_results(bad, tmp_path)

    assert "bug in the lab" in caught.value.hint
    assert json.loads((tmp_path / "results.json").read_text())["run_id"] == "r1"


def test_write_results_keeps_odd_evidence_as_text(tmp_path: Path) -> None:
    check = ping("p", "test101", "192.168.4.1", "reachable")
    check.evidence = {"where": tmp_path}

    read = read_results(write_results(small_run(check), tmp_path))

    assert read.scenarios[0].checks[0].evidence == {"where": str(tmp_path)}


# The ledger ------------------------------------------------------------------


def test_ledger_uses_the_lab_verdict_rules(sample: RunResult) -> None:
    rows = ledger.ledger(sample)
    rules = verdict.ledger(c for _, c in sample.checks())

    assert [(r.claim.section, r.claim.text) for r in rows] == [
        (r.section, r.text) for r in rules
    ]
    assert [r.verdict for r in rows] == [r.verdict for r in rules]
    assert [r.observed for r in rows] == [r.observed for r in rules]
    assert [[c.id for _, c in r.checks] for r in rows] == [r.checks for r in rules]


def test_ledger_groups_one_claim_across_scenarios() -> None:
    shared = ping("a", "test101", "192.168.4.1", "reachable", says="reachable")
    other = ping(
        "b",
        "test201",
        "192.168.4.1",
        "unreachable",
        outcome="lab-fault",
        verdict="lab-fault",
    )
    other.claim = shared.claim
    other.message = "host2 stopped answering"
    run = small_run(shared)
    run.scenarios.append(
        dataclasses.replace(run.scenarios[0], name="second", checks=[other])
    )

    (row,) = ledger.ledger(run)

    assert [(s.name, c.id) for s, c in row.checks] == [("tiny", "a"), ("second", "b")]
    assert row.verdict == "lab-fault"
    assert row.counts == {"confirmed": 1, "lab-fault": 1}
    assert row.faults == ["host2 stopped answering"]


def test_ledger_sections_and_unclaimed(sample: RunResult) -> None:
    titles = [s.title for s in ledger.sections(ledger.ledger(sample))]

    assert titles == [
        "Procedure 1, step 1",
        "Procedure 1, step 2",
        "Procedure 1, step 3",
        "Procedure 2, step 1",
        "Procedure 2, step 4",
        "Problems the author ran into",
    ]
    assert [c.id for _, c in ledger.unclaimed(sample)] == [
        "control-host1",
        "l3s-mode",
        "host-other-container",
        "host-own-container",
    ]


def test_ledger_row_says_why_a_claim_fails(sample: RunResult) -> None:
    (row,) = [r for r in ledger.ledger(sample) if r.verdict == "refuted"]

    assert row.claim.text.startswith("2. The ipvlan subnet")
    assert row.observed == "reachable"
    assert row.reasons == [find(sample, "cross-1").reason]


# The pictures ----------------------------------------------------------------


def test_matrix_rows_and_columns_in_run_order(sample: RunResult) -> None:
    novlan = sample.scenarios[0]
    matrix = pictures.reachability(novlan, sample.environment)

    assert matrix.sources == [
        "test101",
        "test102",
        "host1",
        "test201",
        "test202",
        "host2",
    ]
    assert matrix.targets[:4] == [
        "192.168.4.1",
        "test102",
        "192.168.4.101",
        "192.168.4.199",
    ]
    assert matrix.source_labels["test101"] == "test101\non host1"
    assert matrix.source_labels["host1"] == "host1\n(the host)"
    assert matrix.target_labels["192.168.4.101"] == "192.168.4.101\ntest101"
    assert matrix.target_labels["192.168.4.199"] == "192.168.4.199\nlan"
    assert matrix.target_labels["test102"] == "test102\n(by name)"
    assert matrix.target_labels["192.168.4.1"] == "192.168.4.1"


def test_matrix_cell_states(sample: RunResult) -> None:
    novlan = pictures.reachability(sample.scenarios[0], sample.environment)
    subnet = pictures.reachability(sample.scenarios[3], sample.environment)

    assert novlan.cell("test101", "192.168.4.1").state == "reachable"
    assert novlan.cell("test101", "test201").state == "unreachable"
    assert novlan.cell("test202", "192.168.4.199").state == "lab-fault"
    assert novlan.cell("test101", "192.168.4.101") is None
    assert not any(cell.differs for cell in novlan.cells.values())
    assert subnet.cell("test100.101", "192.168.100.201").differs
    assert not subnet.cell("host1", "192.168.100.201").differs


@pytest.mark.parametrize(
    ("outcome", "observed", "state"),
    [
        ("pass", "reachable", "reachable"),
        ("fail", "unreachable", "unreachable"),
        ("lab-fault", "reachable", "lab-fault"),
        ("skipped", "skipped", "skipped"),
        ("fail", "error", "other"),
    ],
)
def test_cell_state(outcome: str, observed: str, state: str) -> None:
    check = ping("p", "test101", "192.168.4.1", observed, outcome=outcome)

    assert pictures.cell_state(check) == state


def test_matrix_cell_with_two_checks_shows_the_refuting_one() -> None:
    confirmed = ping("a", "test101", "192.168.4.1", "unreachable", says="unreachable")
    refuted = ping("b", "test101", "192.168.4.1", "reachable", says="unreachable")
    run = small_run(confirmed, refuted)

    cell = pictures.reachability(run.scenarios[0], run.environment).cell(
        "test101", "192.168.4.1"
    )

    assert cell.check is refuted
    assert cell.state == "reachable"
    assert cell.differs


def test_no_matrix_without_pings(sample: RunResult) -> None:
    assert pictures.reachability(sample.scenarios[2], sample.environment) is None


def decoded(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    pixels = image.imread(io.BytesIO(png), format="png")
    return pixels.shape[1], pixels.shape[0]


def test_draw_matrix_is_a_png(sample: RunResult) -> None:
    matrix = pictures.reachability(sample.scenarios[3], sample.environment)

    width, height = decoded(pictures.draw_matrix(matrix))

    assert width > 400 and height > 300


def test_pictures_are_deterministic(sample: RunResult) -> None:
    one = pictures.scenario_pictures(sample.scenarios[3], sample)
    two = pictures.scenario_pictures(sample.scenarios[3], sample)

    assert one.matrix.png == two.matrix.png
    assert one.topology.png == two.topology.png


def test_draw_topology_with_vlan_and_stray_container(sample: RunResult) -> None:
    vlan = dataclasses.replace(sample.scenarios[1])
    vlan.containers = [
        *vlan.containers,
        TopologyContainer("helper", "host2", "bridge", "172.17.0.2", None),
        TopologyContainer("far", "host3", "100_1", None, None),
    ]

    width, height = decoded(pictures.draw_topology(vlan, sample.environment))

    assert width > 1000 and height > 400


@pytest.mark.parametrize(
    ("parent", "vlan"),
    [("eth1.100", "100"), ("eth1", None), (None, None), ("br.lan", None)],
)
def test_vlan_of(parent: str | None, vlan: str | None) -> None:
    assert pictures.vlan_of(parent) == vlan


def test_scenario_pictures_ids_and_alt(sample: RunResult, drawn) -> None:
    found = drawn

    assert list(found) == [s.name for s in sample.scenarios]
    assert found["novlan"].topology.id == "topology-novlan"
    assert found["novlan"].matrix.filename == "matrix-novlan.png"
    assert found["problem-parent"].matrix is None
    assert found["problem-parent"].topology.alt.endswith("network eth0_1 on host1")
    assert "1 differing from the document" not in found["novlan"].matrix.alt
    assert "2 differing from the document" in found["problem-vlan-subnet"].matrix.alt
    assert found["novlan"].matrix.data_uri.startswith("data:image/png;base64,iVBOR")


def test_no_pictures_for_an_empty_scenario() -> None:
    assert pictures.scenario_pictures(small_run().scenarios[0], small_run()).all() == []


def test_slug() -> None:
    assert pictures.slug("problem 2: VLAN/subnet") == "problem-2-VLAN-subnet"
    assert pictures.slug("...") == "scenario"


# JUnit -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def suites(sample: RunResult) -> ET.Element:
    return ET.fromstring(junit.junit_bytes(sample))


def case(root: ET.Element, name_start: str, classname: str) -> ET.Element:
    for found in root.iter("testcase"):
        if found.get("classname") == classname and found.get("name").startswith(
            name_start
        ):
            return found
    raise KeyError(name_start)


def test_junit_totals(suites: ET.Element, sample: RunResult) -> None:
    checks = [c for _, c in sample.checks()]

    assert suites.tag == "testsuites"
    assert suites.get("tests") == str(len(checks))
    assert suites.get("failures") == "1"
    assert suites.get("errors") == "1"
    assert suites.get("skipped") == "1"
    assert [s.get("name") for s in suites.iter("testsuite")] == [
        s.name for s in sample.scenarios
    ]
    assert len(list(suites.iter("testcase"))) == len(checks)


def test_junit_names_and_properties(suites: ET.Element) -> None:
    found = case(suites, "h1-gateway", "novlan")
    properties = {p.get("name"): p.get("value") for p in found.iter("property")}

    assert found.get("name") == "h1-gateway: the gateway"
    assert found.get("time") == "2.700"
    assert properties["verdict"] == "confirmed"
    assert properties["claim.says"] == "reachable"
    assert "docker exec test101 ping" in found.find("system-out").text


def test_junit_environment_properties(suites: ET.Element) -> None:
    suite = suites.find("testsuite")
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}

    assert properties["provider"] == "libvirt-qemu"
    assert properties["box"] == "ipvlan-lab/debian12"
    assert properties["node.host1.kernel"] == "6.1.0-31-amd64"
    assert properties["node.host2.docker"] == "20.10.24+dfsg1"
    assert "node.lan.docker" not in properties


def test_junit_failure_carries_the_output(suites: ET.Element) -> None:
    failure = case(suites, "host-other-container", "problem-vlan-subnet").find(
        "failure"
    )

    assert failure.get("type") == "fail"
    assert failure.get("message") == "expected reachable, got unreachable"
    assert "host1$ ping -c 2 -i 0.3 -W 1 -w 2 192.168.100.201" in failure.text
    assert "100% packet loss" in failure.text
    assert "[exit 1, 2.20 s]" in failure.text


def test_junit_error_and_skipped(suites: ET.Element) -> None:
    error = case(suites, "h2-lan-peer", "novlan").find("error")
    skipped = case(suites, "l3s-mode", "problem-parent").find("skipped")

    assert error.get("type") == "lab-fault"
    assert error.get("message").startswith("lan: did not answer the health probe")
    assert "docker exec test202 ping" in error.text
    assert skipped.get("message").startswith("skipped: docker >= 23 applies not")


def test_junit_survives_terminal_escapes(tmp_path: Path) -> None:
    check = ping("p", "test101", "192.168.4.1", "unreachable", outcome="fail")
    check.records = [
        CommandRecord("host1", "ping", 1, "\x1b[31mred\x1b[0m\x00", "", "", 0.1)
    ]

    root = ET.parse(junit.write_junit(small_run(check), tmp_path)).getroot()

    assert "\\x1b[31mred\\x1b[0m\\x00" in root.find(".//failure").text


def test_junit_reports_failed_steps() -> None:
    run = small_run(status="failed")
    run.scenarios[0].steps = [
        results.StepResult(
            "create-network",
            "Create",
            ["host1"],
            "docker network create x",
            "failed",
            message="host1: exit 1: parent eth9 not found",
            records=[
                CommandRecord(
                    "host1",
                    "docker network create x",
                    1,
                    "",
                    "Error response from daemon: eth9 not found",
                )
            ],
        )
    ]

    root = junit.junit_tree(run)

    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        "1",
        "1",
        "0",
    )
    failure = root.find(".//testcase[@name='steps']/failure")
    assert failure.get("message") == "step create-network failed"
    assert "eth9 not found" in failure.text


def test_junit_reports_a_scenario_broken_in_its_steps() -> None:
    run = small_run(status="lab-fault", message="host2 is gone")
    run.scenarios[0].steps = [
        results.StepResult(
            "run-x", "Start x", ["host2"], "docker run x", "failed", message="exit 125"
        )
    ]

    root = junit.junit_tree(run)

    assert root.get("errors") == "1" and root.get("tests") == "1"
    error = root.find(".//testcase[@name='steps']/error")
    assert error.get("message") == "host2 is gone"
    assert "step run-x (failed): exit 125" in error.text


# Markdown --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a | b", "a \\| b"),
        ("one\ntwo\n", "one<br>two"),
        ("<script>&", "&lt;script&gt;&amp;"),
    ],
)
def test_markdown_cell(value: str, text: str) -> None:
    assert markdown.cell(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("ping x", "`ping x`"),
        ("echo `id`", "`` echo `id` ``"),
        ("a `b` c", "``a `b` c``"),
        ("`x`", "`` `x` ``"),
    ],
)
def test_markdown_code(value: str, text: str) -> None:
    assert markdown.code(value) == text


def test_markdown_fence_outgrows_its_content() -> None:
    assert markdown.fence("a\n```\nb\n", "console") == "````console\na\n```\nb\n````"


def test_markdown_tidy_keeps_output_blank_lines() -> None:
    text = "a\n\n\n\nb\n```\nx\n\n\ny\n```\n\n\nc\n"

    assert markdown.tidy(text) == "a\n\nb\n```\nx\n\n\ny\n```\n\nc\n"


def test_markdown_report(sample: RunResult, drawn) -> None:
    text = render_markdown(sample, drawn)

    assert text.startswith("# ipvlan-lab report: 20250314-093000-verify\n")
    assert "exited 2 (the lab failed)" in text
    assert "- **Claims of the document:** 32 tested: 30 confirmed · 1 refuted" in text
    assert "- **refuted:** 2. The ipvlan subnet" in text
    assert "### Problems the author ran into" in text
    assert "![Reachability of Procedure 2" in text and "(matrix-vlan.png)" in text
    assert "(topology-problem-parent.png)" in text
    assert "```console\n$ docker exec test101 ping -c 2 -W 1 -w 2 192.168.4.1\n" in text
    assert (
        "- **Positive control:** `h1-gateway` the gateway: pass (observed reachable)"
        in text
    )
    assert "| host1 | host | 192.168.4.236 | eth1 |" in text
    assert "None" not in text


# HTML ------------------------------------------------------------------------


def test_html_is_self_contained(sample: RunResult, drawn) -> None:
    text = render_html(sample, drawn)

    assert text.startswith("<!DOCTYPE html>")
    assert "<style>" in text and "<link" not in text and "<script" not in text
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)
    assert 'id="ledger"' in text
    for key in ("matrix-novlan", "matrix-vlan", "topology-vlan"):
        uri = re.search(f'id="{key}" src="(data:image/png;base64,[^"]+)"', text)
        assert uri, key
        decoded(base64.b64decode(uri.group(1).split(",", 1)[1]))


def test_html_escapes_what_commands_printed(tmp_path: Path) -> None:
    check = ping("p", "test101", "192.168.4.1", "reachable")
    check.records = [
        CommandRecord("host1", "echo '<b>'", 0, "</pre><script>alert(1)</script>")
    ]
    check.title = "<i>title</i>"

    text = render_html(small_run(check), {})

    assert "<script>alert" not in text and "<i>title" not in text
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "echo &#39;&lt;b&gt;&#39;" in text


def test_html_links_ledger_and_controls_to_checks(sample: RunResult) -> None:
    text = render_html(sample, {})

    assert 'id="check-novlan-h1-gateway"' in text
    assert 'id="check-vlan-h1-gateway"' in text
    assert '<a href="#check-vlan-h1-gateway"' in text
    assert '<a href="#check-novlan-h1-host-other-container">' in text


def test_html_opens_details_of_what_needs_reading(sample: RunResult) -> None:
    text = render_html(sample, {})

    def opened(check_id: str) -> bool:
        start = text.index(f'id="check-{check_id}"')
        article = text[start : text.index("</article>", start)]
        return "<details open>" in article

    assert opened("novlan-h2-lan-peer")  # lab-fault
    assert opened("problem-vlan-subnet-cross-1")  # refuted
    assert opened("novlan-h1-other-host-name")  # a negative result
    assert not opened("novlan-h1-gateway")


def test_control_of_falls_back_on_the_evidence(run: RunResult) -> None:
    scenario = run.scenarios[1]
    check = find(run, "h1-gateway", "vlan")

    assert view.control_of(scenario, check).anchor == "check-vlan-h1-same-host-ip"
    scenario.checks = [c for c in scenario.checks if c.id != "h1-same-host-ip"]
    fallback = view.control_of(scenario, check)
    assert (fallback.id, fallback.outcome, fallback.anchor) == (
        "h1-same-host-ip",
        "pass",
        None,
    )


def test_evidence_leaves_out_what_shows_elsewhere(sample: RunResult) -> None:
    assert view.evidence_of(find(sample, "h1-other-host-name", "novlan")) == []
    assert view.evidence_of(find(sample, "h1-network"))[0][0] == "network"
    assert view.evidence_of(find(sample, "h1-network"))[0][1].startswith(
        '{"driver": "ipvlan", "mode": "l2", "parent": "eth1", "subnet": ['
    )
    assert view.shown({"a": "x" * 200}).startswith('{\n  "a": "xxx')


def test_clip_and_seconds() -> None:
    assert view.clip("a\nb\nc\n", lines=2) == "a\nb\n... 1 more lines in results.json"
    assert view.clip("a\n") == "a"
    assert [view.seconds(s) for s in (0.5, 12.34, 137.5)] == [
        "0.50 s",
        "12.3 s",
        "2 min 18 s",
    ]


# The run folder --------------------------------------------------------------


def test_render_all_writes_the_run_folder(sample: RunResult, tmp_path: Path) -> None:
    written = render_all(sample, tmp_path / "results" / sample.run_id)
    folder = tmp_path / "results" / sample.run_id

    assert written["results"] == folder / "results.json"
    assert written["junit"] == folder / "junit.xml"
    assert written["markdown"] == folder / "report.md"
    assert written["html"] == folder / "report.html"
    for path in written.values():
        assert path.is_file()
    report = written["markdown"].read_text()
    for picture in re.findall(r"\]\(([^)]+\.png)\)", report):
        assert written[picture[: -len(".png")]] == folder / picture
        decoded((folder / picture).read_bytes())


def test_rerender_needs_only_the_results(sample: RunResult, tmp_path: Path) -> None:
    first = render_all(sample, tmp_path)
    before = first["markdown"].read_text()
    for path in first.values():
        if path.name != "results.json":
            path.unlink()

    again = rerender(tmp_path)

    assert "results" not in again
    assert again["markdown"].read_text() == before
    assert again["html"].is_file() and again["junit"].is_file()


def test_rerender_without_results(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no results file at"):
        rerender(tmp_path)


def test_importing_the_report_leaves_matplotlib_alone() -> None:
    """Every ``invoke`` command imports the report; matplotlib costs 0.6 s."""
    code = "import sys, ipvlan_lab.report; print('matplotlib' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert done.stdout.strip() == "False"
