"""``report.md``: the run for people, as GitHub-flavoured Markdown.

The pictures are PNG files beside the report in the run folder; the text is
made by ``templates/report.md.j2`` from :func:`ipvlan_lab.report.view.context`.
Markdown has no autoescape, so every value goes through a filter that suits
where it lands: a table cell, inline code or a fenced block.
"""

from __future__ import annotations

import functools
import html
import os
import re
from pathlib import Path

import jinja2

from ..results import RunResult
from . import view
from .pictures import ScenarioPictures

#: The file name of the Markdown report inside a run folder.
MARKDOWN_FILE = "report.md"

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(r) for r in runs), default=0)


def cell(value: object) -> str:
    """*value* as the text of a table cell: one line, ``|`` and HTML escaped."""
    text = html.escape(str(value), quote=False).replace("|", "\\|")
    return "<br>".join(line for line in text.strip().split("\n"))


def code(value: object) -> str:
    """*value* as inline code, however many backticks it holds."""
    text = " ".join(str(value).split("\n"))
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def code_cell(value: object) -> str:
    """*value* as inline code inside a table cell."""
    return code(value).replace("|", "\\|")


def fence(value: object, info: str = "") -> str:
    """*value* as a fenced code block, its fence longer than any run inside."""
    text = str(value).rstrip("\n")
    ticks = "`" * max(3, _longest_run(text, "`") + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def tidy(text: str) -> str:
    """*text* with runs of blank lines made one, except inside fenced blocks.

    Template blocks that render nothing leave blank lines behind; command
    output inside a fence is kept as it ran.
    """
    lines: list[str] = []
    fence_open = ""
    for line in text.split("\n"):
        ticks = re.match(r"`{3,}", line)
        if fence_open:
            if line.rstrip() == fence_open:
                fence_open = ""
        elif ticks:
            fence_open = ticks.group()
        elif not line.strip() and (not lines or not lines[-1].strip()):
            continue
        lines.append(line)
    return "\n".join(lines).strip("\n") + "\n"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the Markdown template and its filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        cell=cell,
        code=code,
        code_cell=code_cell,
        fence=fence,
        seconds=view.seconds,
        clip=view.clip,
        shown=view.shown,
    )
    env.globals.update(
        control_of=view.control_of,
        evidence_of=view.evidence_of,
        is_negative=view.is_negative,
    )
    return env


def render_markdown(run: RunResult, pictures: dict[str, ScenarioPictures]) -> str:
    """The Markdown report of *run*; *pictures* are referenced by file name."""
    template = environment().get_template("report.md.j2")
    return tidy(template.render(view.context(run, pictures)))


def write_markdown(
    run: RunResult,
    folder: str | os.PathLike[str],
    pictures: dict[str, ScenarioPictures],
) -> Path:
    """Write ``report.md`` into *folder* and return its path.

    The PNG files it references are written by
    :func:`ipvlan_lab.report.pictures.write_pictures`.
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / MARKDOWN_FILE
    path.write_text(render_markdown(run, pictures), encoding="utf-8")
    return path
