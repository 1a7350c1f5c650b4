"""Golden files: the reports of the recorded run, compared with what they were.

``data/report/results.json`` is a recorded run (made up by ``make_sample.py``
until one recorded on real VMs replaces it); ``data/report/golden/`` holds
its ``report.md``, ``junit.xml`` and ``report.html`` as they should render.
The HTML is compared with its PNG payloads cut out, so that another
matplotlib or font changes nothing here.

After a deliberate change to the reports, or a new recording, rewrite the
golden files and review the diff::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_report_golden.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ipvlan_lab.report import read_results, write_results
from ipvlan_lab.report.html import render_html
from ipvlan_lab.report.junit import junit_bytes
from ipvlan_lab.report.markdown import render_markdown
from ipvlan_lab.report.pictures import run_pictures
from ipvlan_lab.results import RunResult

DATA = Path(__file__).parent / "data" / "report"
GOLDEN = DATA / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

_PAYLOAD = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def normalized_html(text: str) -> str:
    """The HTML with every embedded PNG cut down to a marker."""
    return _PAYLOAD.sub("data:image/png;base64,PNG", text)


@pytest.fixture(scope="module")
def recorded() -> RunResult:
    return read_results(DATA / "results.json")


def compare(name: str, text: str) -> None:
    """Compare *text* with the golden file *name*, or rewrite it on request."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no golden {path}; run with UPDATE_GOLDEN=1 to make it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"{name} differs from {path}; if the change is meant, run "
        "UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_report_golden.py and "
        "review the diff"
    )


def test_golden_markdown(recorded: RunResult) -> None:
    compare("report.md", render_markdown(recorded, run_pictures(recorded)))


def test_golden_junit(recorded: RunResult) -> None:
    compare("junit.xml", junit_bytes(recorded).decode("utf-8"))


def test_golden_html(recorded: RunResult) -> None:
    compare(
        "report.html", normalized_html(render_html(recorded, run_pictures(recorded)))
    )


def test_recording_round_trips(recorded: RunResult, tmp_path: Path) -> None:
    """Writing the recording back gives the same data, key for key."""
    written = write_results(recorded, tmp_path)

    assert json.loads(written.read_text()) == json.loads(
        (DATA / "results.json").read_text()
    )


def test_normalized_html_keeps_the_rest() -> None:
    text = '<img id="m" src="data:image/png;base64,iVBORw0KG+/=" alt="x">'

    assert (
        normalized_html(text) == '<img id="m" src="data:image/png;base64,PNG" alt="x">'
    )
