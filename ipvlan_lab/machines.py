"""The nodes as Vagrant machines, through python-vagrant.

Vagrant's own output goes to ``.lab/vagrant.log``; what the user sees is the
lab's progress. Every Vagrant call gets the lab's environment: the project's
Python (so that the Vagrantfile can read ``lab.yaml``) and the chosen
provider.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .__main__ import PROVIDER_ENV
from .config import PROJECT, Config
from .errors import MachineError

# python-vagrant warns on stderr, as it is imported, when there is no vagrant
# on PATH; the lab says so itself, as one error with a hint (providers.choose).
logging.getLogger("vagrant").addHandler(logging.NullHandler())
import vagrant  # noqa: E402

LOG_NAME = "vagrant.log"
#: Seconds Vagrant gets to clean up after Ctrl-C.
INTERRUPT_GRACE = 300


@dataclass
class MachineStatus:
    """One node's state as Vagrant sees it."""

    slot: str
    state: str
    provider: str | None


@dataclass
class SSHTarget:
    """How to reach a node over SSH, from ``vagrant ssh-config``."""

    host: str
    port: int
    user: str
    key: str


class Machines:
    """The lab's Vagrant environment."""

    def __init__(self, config: Config, provider: str, lab_dir: Path):
        self.config = config
        self.provider = provider
        self.log_path = lab_dir / LOG_NAME
        lab_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env[PROVIDER_ENV] = provider
        env["IPVLAN_LAB_PYTHON"] = sys.executable
        env["VAGRANT_DEFAULT_PROVIDER"] = _vagrant_name(provider)
        env.setdefault("VAGRANT_CHECKPOINT_DISABLE", "1")
        env.setdefault("VAGRANT_NO_COLOR", "1")
        if config.path is not None:
            env["IPVLAN_LAB_CONFIG"] = str(config.path)
        self.env = env
        log = vagrant.make_file_cm(str(self.log_path))
        self.vagrant = vagrant.Vagrant(
            root=str(PROJECT), env=env, out_cm=log, err_cm=log
        )

    def _fail(self, what: str, exc: Exception) -> MachineError:
        tail = _tail(self.log_path)
        return MachineError(
            f"vagrant {what} failed ({exc})" + (f":\n{tail}" if tail else ""),
            hint=f"the whole of Vagrant's output is in {self.log_path}",
        )

    def status(self) -> dict[str, MachineStatus]:
        """Each node's state (``running``, ``not_created``, ``shutoff``...)."""
        try:
            found = self.vagrant.status()
        except (subprocess.CalledProcessError, OSError) as exc:
            raise self._fail("status", exc) from None
        return {s.name: MachineStatus(s.name, s.state, s.provider) for s in found}

    def up(self) -> None:
        """Create and boot every node that is not running, in parallel where
        the provider allows it."""
        self._run("up", "--no-provision", f"--provider={_vagrant_name(self.provider)}")

    def destroy(self) -> None:
        """Remove every node."""
        self._run("destroy", "--force")

    def made(self) -> list[str]:
        """The nodes Vagrant has made and not yet removed: it keeps an id for
        each under ``.vagrant/machines``, without asking the hypervisor."""
        folder = Path(self.vagrant.root) / ".vagrant" / "machines"
        return sorted({path.parts[-3] for path in folder.glob("*/*/id")})

    def _run(self, *args: str) -> None:
        # Not python-vagrant's up/destroy: on Ctrl-C they kill Vagrant at once,
        # in the middle of making or removing a machine. Vagrant handles the
        # interrupt itself (the terminal sends it to both of us); the lab
        # waits for it to finish cleaning up, then stops.
        command = [vagrant.get_vagrant_executable() or "vagrant", *args]
        with open(self.log_path, "a") as log:
            proc = subprocess.Popen(
                command,
                cwd=self.vagrant.root,
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
            try:
                code = proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=INTERRUPT_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
        if code != 0:
            raise self._fail(" ".join(args), f"exit status {code}")

    def ssh_target(self, slot: str) -> SSHTarget:
        """How to reach ``slot`` now (read afresh: addresses change)."""
        try:
            conf = self.vagrant.conf(ssh_config=self.vagrant.ssh_config(slot))
        except (subprocess.CalledProcessError, OSError) as exc:
            raise self._fail(f"ssh-config {slot}", exc) from None
        return SSHTarget(
            host=conf["HostName"],
            port=int(conf.get("Port", 22)),
            user=conf.get("User", "vagrant"),
            key=conf["IdentityFile"].strip('"'),
        )


def _vagrant_name(provider: str) -> str:
    return "virtualbox" if provider == "virtualbox" else "libvirt"


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class ExistingMachines:
    """The user's own machines (provider ``existing``), with :class:`Machines`'s
    interface: they are reached, never made or removed."""

    #: Seconds to wait for a machine's SSH port.
    REACH_TIMEOUT = 10

    def __init__(self, config: Config):
        self.config = config

    def target(self, slot: str) -> SSHTarget:
        entry = self.config.data["ssh"][slot]
        key = entry["key"]
        return SSHTarget(
            host=entry["host"],
            port=entry["port"],
            user=entry["user"],
            key=str(Path(key).expanduser()) if key else "",
        )

    def ssh_target(self, slot: str) -> SSHTarget:
        """How to reach ``slot``: ``lab.yaml``'s ``ssh`` entry."""
        return self.target(slot)

    def _reach(self, slot: str) -> str | None:
        target = self.target(slot)
        try:
            socket.create_connection(
                (target.host, target.port), timeout=self.REACH_TIMEOUT
            ).close()
        except OSError as exc:
            return f"{slot} ({target.host}:{target.port}): {exc.strerror or exc}"
        return None

    def status(self) -> dict[str, MachineStatus]:
        """``reachable`` or ``unreachable``, by each machine's SSH port."""
        from .connections import parallel

        found = parallel(self._reach, tuple(self.config.data["ssh"]))
        return {
            slot: MachineStatus(slot, "unreachable" if why else "reachable", "existing")
            for slot, why in found.items()
        }

    def up(self) -> None:
        """Check that every machine answers on its SSH port."""
        from .connections import parallel

        found = parallel(self._reach, tuple(self.config.data["ssh"]))
        down = [why for why in found.values() if why]
        if down:
            raise MachineError(
                "cannot reach over SSH: " + "; ".join(down),
                hint="check the ssh section of lab.yaml, and that the machines "
                "are on and reachable from here",
            )

    def destroy(self) -> None:
        """Nothing: the machines are the user's."""

    def made(self) -> list[str]:
        """None: the lab makes no machines here."""
        return []
