"""`invoke verify` on the shared lab: every scenario, the ledger, the reports."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from .capture import Capture, lab_filter, uplink
from .results import latest_run, load, verdicts
from .test_procedures import FIRST_RUN
from .test_report_browser import check_report_in_browser

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def verified(lab, tmp_path_factory):
    """One full `invoke verify`, with captures running on this machine's uplink
    (where no lab packet may appear) and, as a control that the capture sees
    what it should, on the bridge of the lab's management network."""
    handle = lab.lab()
    expression = lab_filter(handle.config)
    folder = tmp_path_factory.mktemp("captures")
    captures = {"uplink": Capture(uplink(), expression, folder / "uplink.pcap")}
    bridge = management_bridge(handle.config.data["management"]["name"])
    if bridge:
        captures["control"] = Capture(bridge, expression, folder / "control.pcap")
    for capture in captures.values():
        capture.start()
    try:
        result = lab.invoke("verify", label="verify (all scenarios)")
    finally:
        seen = {name: capture.stop() for name, capture in captures.items()}
    run_folder = latest_run("verify")
    VERIFY["captures"] = seen
    return result, run_folder, load(run_folder)


VERIFY: dict = {}


def management_bridge(network: str) -> str | None:
    found = subprocess.run(
        ["virsh", "-c", "qemu:///system", "net-info", network],
        capture_output=True,
        text=True,
    )
    for line in found.stdout.splitlines():
        if line.startswith("Bridge:"):
            return line.split(":", 1)[1].strip()
    return None


def test_no_lab_packet_reaches_the_uplink(lab, verified):
    seen = VERIFY["captures"]
    for name, packets in seen.items():
        lab.figure(f"lab packets on the {name} capture during verify", len(packets))
    assert seen["uplink"] == [], seen["uplink"][:10]
    if "control" not in seen:
        pytest.skip("no libvirt management bridge to check the capture against")
    assert seen["control"], "the same capture sees the lab's own traffic"


def test_verify_exits_zero_and_checks_every_scenario(lab, verified):
    result, folder, run = verified
    failing = [
        (s["name"], c["id"], c["outcome"], c["observed"], c["message"])
        for s in run["scenarios"]
        for c in s["checks"]
        if c["outcome"] not in ("pass", "skipped")
    ]
    assert result.returncode == 0, failing or result.stderr[-4000:]
    assert run["exit_code"] == 0
    names = [s["name"] for s in run["scenarios"]]
    scenario_files = sorted(p.stem for p in (lab.root / "scenarios").glob("*.yaml"))
    assert sorted(names) == scenario_files
    assert names[:2] == ["novlan", "vlan"], "the documented procedures run first"
    assert f"report: {folder}/report.html" in result.stderr
    # A lab the user brought up is left standing.
    assert "taking the lab down" not in result.stderr


def test_verify_records_the_environment(verified):
    _, _, run = verified
    env = run["environment"]
    assert env["provider"] in ("libvirt-qemu", "libvirt-kvm", "virtualbox")
    nodes = {n["name"]: n for n in env["nodes"]}
    for slot in ("host1", "host2"):
        assert nodes[slot]["kernel"] and nodes[slot]["docker"]
    assert nodes["lan"]["kernel"]


def test_second_run_gives_the_same_verdicts(verified):
    _, _, run = verified
    if not FIRST_RUN:
        pytest.skip("the procedures' first run did not happen in this session")
    for name, first in FIRST_RUN.items():
        assert verdicts(run, name) == first, name


def test_verify_writes_junit_markdown_and_html(verified):
    _, folder, run = verified
    suite = ET.parse(folder / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    total = sum(len(s["checks"]) for s in run["scenarios"])
    assert len(cases) >= total
    assert not suite.findall(".//failure") and not suite.findall(".//error")
    markdown = (folder / "report.md").read_text()
    assert "Procedure 1" in markdown and "Problems the author ran into" in markdown
    html = (folder / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html


def test_the_report_reads_in_a_real_browser(verified, tmp_path):
    _, folder, _ = verified
    seen = check_report_in_browser(folder / "report.html", folder / "screenshot.png")
    assert seen["ledger_rows"] > 0
    assert seen["matrix_ids"], "the reachability matrix is in the page"
    assert not seen["screenshot_blank"]


def test_report_rerenders_without_the_lab(lab, verified):
    _, folder, _ = verified
    written = (folder / "report.md").read_text()
    (folder / "report.md").unlink()
    result = lab.invoke("report", folder.name, check=True)
    assert "report.md" in result.stderr or "markdown" in result.stderr
    # From results.json alone, the same report as the run wrote.
    assert (folder / "report.md").read_text() == written
