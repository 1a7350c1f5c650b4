"""``results.json``: a run written out, and read back against its schema.

The file holds exactly what :func:`ipvlan_lab.results.to_dict` makes; its
shape is ``ipvlan_lab/schema/results.schema.json`` (JSON Schema, draft
2020-12), described field by field in ``docs/results-schema.md``.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import LabError
from ..results import SCHEMA_VERSION, RunResult, from_dict, to_dict

#: The file name of a run's results inside its run folder.
RESULTS_FILE = "results.json"

#: Where the JSON Schema of ``results.json`` lives.
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "results.schema.json"

_SHOWN_PROBLEMS = 3


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of ``results.json``, loaded once."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _where(path: Any) -> str:
    """A JSON path such as ``scenarios[0].checks[2].outcome``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(top level)"


def problems(data: Any) -> list[str]:
    """Every way *data* breaks the schema, one readable line each.

    An empty list means *data* is a valid ``results.json`` document.
    """
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]


def _summary(found: list[str]) -> str:
    shown = "; ".join(found[:_SHOWN_PROBLEMS])
    more = len(found) - _SHOWN_PROBLEMS
    return shown + (f" (and {more} more)" if more > 0 else "")


def write_results(run: RunResult, folder: str | os.PathLike[str]) -> Path:
    """Write *run* to ``results.json`` in *folder* and return the file's path.

    The folder is created when missing, and the file is replaced in one step,
    so a reader never sees half of it. The written data is then checked
    against the schema: a :class:`~ipvlan_lab.errors.LabError` says so when
    it does not match, and the file is kept for inspection.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS_FILE
    data = to_dict(run)
    # default=str: a run must not be lost at its very end because a check
    # put an odd object (a Path, a datetime) into its evidence.
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"

    tmp = folder / f".{RESULTS_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

    found = problems(json.loads(text))
    if found:
        raise LabError(
            f"the results of run {run.run_id} do not match the results schema: "
            f"{_summary(found)}",
            hint=f"this is a bug in the lab, not in the hosts; {path} is kept "
            "for inspection",
        )
    return path


def read_results(path: str | os.PathLike[str]) -> RunResult:
    """Read a run back from ``results.json``, or from the run folder holding it.

    The file must be valid JSON and match the schema; anything else raises a
    :class:`~ipvlan_lab.errors.LabError` that names the file and the first
    problems found.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise LabError(
            f"no results file at {path}",
            hint="name a run folder such as results/<run-id>/ that a finished "
            "`invoke scenario` or `invoke verify` wrote",
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LabError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}",
            hint="the file was cut short or edited by hand; run the scenario "
            "again to record it afresh",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(
            f"cannot read {path}: {exc}", hint="check the file's permissions"
        ) from exc

    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and version != SCHEMA_VERSION:
        raise LabError(
            f"{path} has results schema version {version!r}; this lab reads "
            f"version {SCHEMA_VERSION}",
            hint="render it with the version of the lab that wrote it, or run "
            "the scenario again",
        )

    found = problems(data)
    if found:
        raise LabError(
            f"{path} does not match the results schema: {_summary(found)}",
            hint="the file was edited by hand or written by another version of "
            "the lab; see docs/results-schema.md",
        )
    return from_dict(data)
