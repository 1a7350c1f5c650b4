"""What the user sees while the lab works: one place, through rich.

The library logs with :mod:`logging` and stays quiet; the lab's verbs report
progress through :func:`phase`, :func:`say` and :func:`line`, which write to
standard error so that ``--json`` output on standard output stays clean.
``IPVLAN_LAB_DEBUG=1`` switches the library's logging on.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

# Piped output (logs, CI) is not cut at 80 columns.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

STYLES = {
    "pass": "green",
    "ok": "green",
    "confirmed": "green",
    "fail": "bold red",
    "failed": "bold red",
    "refuted": "yellow",
    "lab-fault": "bold magenta",
    "skipped": "dim",
}

if os.environ.get("IPVLAN_LAB_DEBUG"):
    logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


def say(text: str) -> None:
    """One line of progress."""
    err.print(f"    {escape(text)}")


@contextmanager
def phase(title: str) -> Iterator[None]:
    """A phase header, and its time when it ends."""
    err.print(f"[bold]--> {escape(title)}[/bold]")
    start = time.monotonic()
    yield
    err.print(f"    [dim]{escape(title)}: {time.monotonic() - start:.1f} s[/dim]")


def line(node: str, what: str, status: str, seconds: float, detail: str = "") -> None:
    """One step or check as it finishes: node, command, outcome, time."""
    style = STYLES.get(status, "")
    text = f"    [{style}]{status:>9}[/{style}] {seconds:5.1f}s  {escape(node):<14} "
    text += escape(what)
    if detail:
        text += f"  [dim]{escape(detail)}[/dim]"
    err.print(text, soft_wrap=True)


def warn(text: str) -> None:
    """A warning that does not stop the command."""
    err.print(f"[yellow]warning:[/yellow] {escape(text)}")
