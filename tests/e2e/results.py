"""Reading what a real run left under results/."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def latest_run(command_slug: str) -> Path:
    """The newest run folder whose id ends with ``command_slug``."""
    runs = sorted(p for p in (ROOT / "results").glob(f"*-{command_slug}") if p.is_dir())
    assert runs, f"no run folder for {command_slug} under results/"
    return runs[-1]


def load(folder: Path) -> dict:
    """A run's results.json, as data."""
    return json.loads((folder / "results.json").read_text())


def verdicts(run: dict, scenario: str) -> dict[str, tuple[str, str | None]]:
    """Each check of ``scenario`` in ``run``: (outcome, verdict)."""
    found = next(s for s in run["scenarios"] if s["name"] == scenario)
    return {c["id"]: (c["outcome"], c["verdict"]) for c in found["checks"]}
