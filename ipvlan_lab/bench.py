"""The lab's own benchmark: what its ways of talking to the nodes cost.

``invoke bench`` measures, on the running lab, the choices the lab makes for
speed: a kept-open SSH session against a new connection per command, the
Docker SDK over that session against the docker CLI, and work on all nodes
at once against one after the other. Each figure is the median of several
rounds; the whole table is also written to ``results/bench-<time>.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import SLOTS
from .connections import Session, parallel
from .lab import Lab
from .machines import SSHTarget


@dataclass
class Figure:
    """One measurement: what, how many rounds, and the median seconds."""

    name: str
    rounds: int
    median: float
    low: float
    high: float


def measure(name: str, rounds: int, once: Callable[[], object]) -> Figure:
    """Time ``once`` over ``rounds`` rounds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return Figure(name, rounds, statistics.median(times), min(times), max(times))


def run(lab: Lab, rounds: int = 5) -> list[Figure]:
    """Every figure of the benchmark, on the running lab."""
    lab.require_ready()
    sessions = lab.sessions()
    parallel(lambda slot: sessions[slot].open(), SLOTS)
    host1 = sessions["host1"]
    target = SSHTarget(**lab.state.nodes["host1"]["ssh"])

    def new_connection() -> None:
        session = Session("host1", target)
        try:
            session.run("true")
        finally:
            session.close()

    client = host1.docker(lab.dir)
    client.ping()

    def serial() -> None:
        for slot in SLOTS:
            sessions[slot].run("sleep 1")

    figures = [
        measure(
            "command on the kept-open session", rounds * 4, lambda: host1.run("true")
        ),
        measure("command on a new SSH connection", rounds, new_connection),
        measure(
            "Docker SDK call over the session",
            rounds * 4,
            lambda: client.networks.list(),
        ),
        measure(
            "docker CLI call over the session",
            rounds,
            lambda: host1.run("docker network ls -q"),
        ),
        measure(
            "`sleep 1` on all three nodes, at once",
            max(2, rounds // 2),
            lambda: parallel(lambda slot: sessions[slot].run("sleep 1"), SLOTS),
        ),
        measure(
            "`sleep 1` on all three nodes, one by one", max(2, rounds // 2), serial
        ),
    ]
    return figures


def write(figures: list[Figure], folder: Path) -> Path:
    """Save the figures as JSON under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps([asdict(f) for f in figures], indent=2))
    return path
