"""``report.html``: the run for people, as one self-contained HTML file.

The style sheet is inline and the pictures are PNG ``data:`` URIs, so the
file reads the same offline, mailed or attached to a CI job, with nothing
fetched from anywhere. ``templates/report.html.j2`` makes it, with
autoescape on, from :func:`ipvlan_lab.report.view.context`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jinja2

from ..results import RunResult
from . import view
from .pictures import ScenarioPictures

#: The file name of the HTML report inside a run folder.
HTML_FILE = "report.html"

TEMPLATES = Path(__file__).resolve().parent / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the HTML template, autoescape on."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(seconds=view.seconds, clip=view.clip, shown=view.shown)
    env.globals.update(anchor=view.anchor)
    env.globals.update(
        control_of=view.control_of,
        evidence_of=view.evidence_of,
        is_negative=view.is_negative,
    )
    return env


def render_html(run: RunResult, pictures: dict[str, ScenarioPictures]) -> str:
    """The HTML report of *run*, *pictures* embedded."""
    template = environment().get_template("report.html.j2")
    return template.render(view.context(run, pictures)).rstrip("\n") + "\n"


def write_html(
    run: RunResult,
    folder: str | os.PathLike[str],
    pictures: dict[str, ScenarioPictures],
) -> Path:
    """Write ``report.html`` into *folder* and return its path."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / HTML_FILE
    path.write_text(render_html(run, pictures), encoding="utf-8")
    return path
