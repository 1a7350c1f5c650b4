"""Test-wide setup: the project on sys.path, and the real-VM tests last."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Unit tests first, then the tests that share one lab (bringing it up, the
# documented procedures, verify), then those that break it.
_ORDER = (
    "tests/unit/",
    "tests/e2e/test_report_browser.py",
    "tests/e2e/test_up.py",
    "tests/e2e/test_procedures.py",
    "tests/e2e/test_verify.py",
    "tests/e2e/",
    "tests/faults/",
)


def pytest_collection_modifyitems(items):
    def rank(item):
        path = str(Path(item.fspath).relative_to(ROOT))
        for i, prefix in enumerate(_ORDER):
            if path.startswith(prefix):
                return i
        return len(_ORDER)

    items.sort(key=rank)


# The shared lab ------------------------------------------------------------
#
# Every real-VM test uses one lab, brought up once with the project's own
# commands (`invoke box`, `invoke up`) and taken down at the end of the
# session (unless IPVLAN_LAB_KEEP=1). Timings of the lab's commands go to
# results/test-timings.json, and what the isolation and leftover tests counted
# to results/test-figures.json.

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import pytest  # noqa: E402

from tests.machine import Snapshot  # noqa: E402

INVOKE = [sys.executable, "-m", "invoke"]
TIMINGS = ROOT / "results" / "test-timings.json"
FIGURES = ROOT / "results" / "test-figures.json"


@dataclass
class LabHandle:
    """The shared lab, driven through the CLI as a user drives it."""

    timings: dict = field(default_factory=dict)
    #: What the tests counted, by what they counted (packets, leftovers).
    figures: dict = field(default_factory=dict)
    root: Path = ROOT
    #: This machine before the session's lab: what `down` must return it to.
    before: Snapshot | None = None
    #: What the session's first `invoke up` printed.
    cold_up: subprocess.CompletedProcess | None = None

    def invoke(
        self,
        *args: str,
        timeout: float = 1800,
        check: bool = False,
        label: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run `invoke ARGS` in the project; record its wall time."""
        start = time.monotonic()
        result = subprocess.run(
            [*INVOKE, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        seconds = round(time.monotonic() - start, 1)
        self.timings.setdefault(label or " ".join(args), []).append(seconds)
        TIMINGS.parent.mkdir(exist_ok=True)
        TIMINGS.write_text(json.dumps(self.timings, indent=2))
        sys.stderr.write(
            f"\n[invoke {' '.join(args)}: exit {result.returncode}, "
            f"{seconds} s]\n{result.stderr[-3000:]}\n"
        )
        if check:
            assert result.returncode == 0, (
                f"invoke {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def figure(self, name: str, value) -> None:
        """Keep what a test counted, in results/test-figures.json."""
        self.figures[name] = value
        FIGURES.parent.mkdir(exist_ok=True)
        FIGURES.write_text(json.dumps(self.figures, indent=2))

    def lab(self):
        """A library handle on the same lab (for SSH checks)."""
        from ipvlan_lab.lab import Lab

        return Lab()


@pytest.fixture(scope="session")
def lab():
    """The shared lab: box built, nodes up. Taken down after the session."""
    handle = LabHandle(before=Snapshot.take())
    try:
        handle.invoke("box", check=True, label="box")
        handle.cold_up = handle.invoke("up", check=True, label="up (cold)")
        yield handle
    finally:
        # Also when `up` failed: what it made before failing is removed.
        if not os.environ.get("IPVLAN_LAB_KEEP"):
            handle.invoke("down", label="down (session end)")
