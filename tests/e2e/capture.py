"""A packet capture on this machine, for the isolation test."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path


def uplink() -> str:
    """The device of this machine's default route."""
    routes = json.loads(
        subprocess.run(
            ["ip", "-j", "route", "show", "default"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert routes, "this machine has no default route"
    return routes[0]["dev"]


class Capture:
    """tcpdump on one device with one filter, from start() to stop()."""

    def __init__(self, device: str, expression: str, path: Path):
        self.device, self.expression, self.path = device, expression, path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "tcpdump",
                "-i",
                self.device,
                "-nn",
                "-p",
                "-U",
                "-w",
                str(self.path),
                self.expression,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> list[str]:
        """Stop it; the packets it saw, one line each."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        assert "listening on" in err, f"tcpdump did not capture: {err}"
        read = subprocess.run(
            ["tcpdump", "-nn", "-r", str(self.path)], capture_output=True, text=True
        )
        return [line for line in read.stdout.splitlines() if line.strip()]


def lab_filter(config) -> str:
    """A tcpdump expression matching any packet to or from a lab subnet."""
    data = config.data
    subnets = [
        data["network"]["subnet"],
        data["management"]["subnet"],
        data["vlan"]["subnet"],
        data["vlan"]["host_subnet"],
    ]
    return " or ".join(f"net {s}" for s in subnets) + " or vlan"
