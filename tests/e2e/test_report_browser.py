"""The HTML report in a real browser: Debian's headless chromium.

Chromium loads the report from a file, takes a screenshot and dumps the DOM
it built; the test reads that DOM back. :func:`check_report_in_browser` does
the work and is shared with the real-VM tests, which call it on the report
of a run on real hosts.

Needs the ``chromium`` package (``apt-get install -y chromium``); another
binary can be named with ``IPVLAN_LAB_CHROMIUM``.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib import image

from ipvlan_lab.report.html import write_html
from ipvlan_lab.report.jsonio import read_results
from ipvlan_lab.report.ledger import ledger
from ipvlan_lab.report.pictures import reachability, run_pictures, slug

SAMPLE = Path(__file__).resolve().parents[1] / "unit" / "data" / "report"

#: Flags for a quiet, offline, throw-away chromium.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WINDOW = "1280,2000"
TIMEOUT = 120
PNG_URI = "data:image/png;base64,"


def chromium() -> str | None:
    """The chromium binary to use, or ``None`` when there is none."""
    named = os.environ.get("IPVLAN_LAB_CHROMIUM")
    if named:
        return shutil.which(named)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(binary: str, *args: str) -> str:
    """Run chromium once with a profile of its own; its standard output."""
    with tempfile.TemporaryDirectory(prefix="ipvlan-lab-chromium-") as profile:
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    if done.returncode != 0:
        raise AssertionError(
            f"chromium exited {done.returncode}: {' '.join(command)}\n"
            f"{done.stderr[-2000:]}"
        )
    return done.stdout


class _Dom(HTMLParser):
    """What the tests look for in the DOM chromium dumped."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.tables: dict[str, int] = {}
        self.images: dict[str, str] = {}
        self.external: list[str] = []
        self.claim_rows = 0
        self._table: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note tables, their rows, images and links that leave the file."""
        values = {k: v or "" for k, v in attrs}
        for key in ("src", "href"):
            link = values.get(key, "")
            if link.startswith(("http:", "https:", "//", "file:", "ftp:")):
                self.external.append(link)
        if tag == "table":
            self._table = values.get("id", "")
            self.tables[self._table] = 0
        elif tag == "tr" and self._table is not None:
            self.tables[self._table] += 1
            if self._table == "ledger" and "claim" in values.get("class", "").split():
                self.claim_rows += 1
        elif tag == "img":
            self.images[values.get("id", "")] = values.get("src", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        """Close the table or the title being read."""
        if tag == "table":
            self._table = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        """Collect the page's title."""
        if self._in_title:
            self.title += data


def decode_png(uri: str) -> tuple[int, int]:
    """The width and height of a PNG ``data:`` URI; AssertionError if it is not."""
    assert uri.startswith(PNG_URI), f"not a PNG data URI: {uri[:40]!r}"
    data = base64.b64decode(uri[len(PNG_URI) :], validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "no PNG signature"
    pixels = image.imread(io.BytesIO(data), format="png")
    return pixels.shape[1], pixels.shape[0]


def check_report_in_browser(html_path: Path, screenshot_path: Path) -> dict:
    """Load an HTML report in headless chromium and say what the browser saw.

    Takes a 1280x2000 screenshot to *screenshot_path* and dumps the DOM.
    Every image must be a decodable PNG ``data:`` URI (AssertionError
    otherwise); the rest is returned for the caller to judge:

    * ``screenshot``: the screenshot's path, and ``screenshot_size``;
    * ``dom``: the DOM as chromium serialised it, and ``title``;
    * ``tables``: each table's id and its number of rows;
    * ``ledger_rows``: the number of claim rows in the ``#ledger`` table;
    * ``images``: each image's id and its (width, height);
    * ``matrix_ids`` and ``topology_ids``: the ids of the pictures;
    * ``external_refs``: any ``src`` or ``href`` that leaves the file.

    Skips the calling test when chromium is not installed.
    """
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    html_path, screenshot_path = Path(html_path).resolve(), Path(screenshot_path)
    url = html_path.as_uri()

    _chromium(binary, f"--screenshot={screenshot_path}", f"--window-size={WINDOW}", url)
    assert screenshot_path.is_file(), (
        f"chromium wrote no screenshot at {screenshot_path}"
    )
    shot = image.imread(screenshot_path)
    dom = _chromium(binary, "--dump-dom", url)
    parsed = _Dom()
    parsed.feed(dom)

    images = {key: decode_png(src) for key, src in parsed.images.items()}
    return {
        "screenshot": screenshot_path,
        "screenshot_size": (shot.shape[1], shot.shape[0]),
        "screenshot_blank": bool(shot.std() == 0),
        "dom": dom,
        "title": parsed.title.strip(),
        "tables": parsed.tables,
        "ledger_rows": parsed.claim_rows,
        "images": images,
        "matrix_ids": [key for key in images if key.startswith("matrix-")],
        "topology_ids": [key for key in images if key.startswith("topology-")],
        "external_refs": parsed.external,
    }


def test_sample_report_in_browser(tmp_path: Path) -> None:
    run = read_results(SAMPLE)
    html = write_html(run, tmp_path, run_pictures(run))

    seen = check_report_in_browser(html, tmp_path / "screenshot.png")

    assert seen["title"] == f"ipvlan-lab report {run.run_id}"
    assert seen["screenshot_size"] == (1280, 2000)
    assert not seen["screenshot_blank"]
    assert "ledger" in seen["tables"]
    assert seen["ledger_rows"] == len(ledger(run))
    with_pings = [
        f"matrix-{slug(s.name)}"
        for s in run.scenarios
        if reachability(s, run.environment) is not None
    ]
    assert with_pings, "the sample run has no ping checks to draw"
    assert sorted(seen["matrix_ids"]) == sorted(with_pings)
    for key in with_pings:
        width, height = seen["images"][key]
        assert width > 200 and height > 100
    assert seen["external_refs"] == []
