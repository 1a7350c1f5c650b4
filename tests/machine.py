"""What of the lab exists on this machine: processes, links, chains, files."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

LIBVIRT_CONFIG = Path("/etc/libvirt/qemu")
IMAGES = Path("/var/lib/libvirt/images")
LAB_PROCESSES = ("qemu-system-x86", "libvirtd", "virtlogd", "dnsmasq")


def _lines(*command: str) -> list[str]:
    found = subprocess.run(command, capture_output=True, text=True)
    return found.stdout.splitlines()


@dataclass(frozen=True)
class Snapshot:
    """The lab-relevant state of this machine at one moment."""

    processes: frozenset[str]
    links: frozenset[str]
    chains: frozenset[str]
    files: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        processes = set()
        for line in _lines("ps", "-eo", "pid=,stat=,comm="):
            pid, stat, comm = line.split(None, 2)
            # A zombie has ended; this machine's PID 1 just does not reap it.
            if not stat.startswith("Z") and comm.startswith(LAB_PROCESSES):
                processes.add(f"{comm} (pid {pid})")
        links = {line.split()[0] for line in _lines("ip", "-br", "link") if line}
        chains = set()
        for table in ("filter", "nat", "mangle"):
            chains |= {
                f"{table}: {line}"
                for line in _lines("iptables", "-w", "-t", table, "-S")
            }
        files = {
            str(p)
            for folder in (LIBVIRT_CONFIG, LIBVIRT_CONFIG / "networks", IMAGES)
            if folder.is_dir()
            for p in folder.iterdir()
        }
        return cls(
            frozenset(processes), frozenset(links), frozenset(chains), frozenset(files)
        )

    def added_since(self, before: Snapshot) -> dict[str, list[str]]:
        """What exists now and did not at ``before``."""
        return {
            kind: sorted(getattr(self, kind) - getattr(before, kind))
            for kind in ("processes", "links", "chains", "files")
            if getattr(self, kind) - getattr(before, kind)
        }
