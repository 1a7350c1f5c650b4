"""The report: a run's results written out for machines and for people.

Everything here reads a :class:`~ipvlan_lab.results.RunResult` and nothing
else, so a run folder can be rendered again with no lab running. A run
folder ``results/<run-id>/`` gets:

* ``results.json``, the run itself (:mod:`.jsonio`);
* ``junit.xml``, one test case per check (:mod:`.junit`);
* ``report.md`` and the PNG pictures it shows (:mod:`.markdown`,
  :mod:`.pictures`);
* ``report.html``, one self-contained file (:mod:`.html`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..results import RunResult
from .html import HTML_FILE, render_html, write_html
from .jsonio import RESULTS_FILE, read_results, write_results
from .junit import JUNIT_FILE, write_junit
from .markdown import MARKDOWN_FILE, render_markdown, write_markdown
from .pictures import run_pictures, write_pictures

__all__ = [
    "HTML_FILE",
    "JUNIT_FILE",
    "MARKDOWN_FILE",
    "RESULTS_FILE",
    "read_results",
    "render_all",
    "render_html",
    "render_markdown",
    "render_reports",
    "rerender",
    "write_results",
]


def render_reports(run: RunResult, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``junit.xml``, ``report.md``, its pictures and ``report.html``.

    Returns the written files by name: ``junit``, ``markdown``, ``html`` and
    one entry per picture, named by its id (``matrix-<scenario>``,
    ``topology-<scenario>``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = run_pictures(run)
    written = {
        "junit": write_junit(run, folder),
        "markdown": write_markdown(run, folder, pictures),
        "html": write_html(run, folder, pictures),
    }
    written.update(write_pictures(pictures, folder))
    return written


def render_all(run: RunResult, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write everything a run folder holds, ``results.json`` first.

    The results are written before any report, so that a report that fails
    to render never costs the run its data. Returns the written files by
    name, as :func:`render_reports` does, plus ``results``.
    """
    written = {"results": write_results(run, folder)}
    written.update(render_reports(run, folder))
    return written


def rerender(run_folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Read a run folder's ``results.json`` and write its reports again.

    Needs no lab: this is what ``invoke report`` does. A missing or invalid
    ``results.json`` raises :class:`~ipvlan_lab.errors.LabError`.
    """
    run = read_results(Path(run_folder) / RESULTS_FILE)
    return render_reports(run, run_folder)
