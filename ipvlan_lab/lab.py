"""The lab's verbs: up, down, status and the sessions every other verb uses.

``tasks.py`` parses arguments and calls these; they report progress through
:mod:`ipvlan_lab.console` and raise :class:`~ipvlan_lab.errors.LabError` for
anything the user must act on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import box as boxes
from . import console, nodes
from .config import DEFAULTS, PROJECT, SLOTS, Config
from .config import load as load_config
from .connections import Session, parallel
from .errors import ConfigError, LabError, MachineError, StateError
from .machines import ExistingMachines, Machines, SSHTarget
from .providers import PROVIDERS, Choice, Provider, choose
from .state import State, lock

LAB_DIR = Path(os.environ.get("IPVLAN_LAB_DIR") or PROJECT / ".lab")
#: How long a second `up` or `down` waits for the first to finish.
LOCK_WAIT = 1800.0


@dataclass
class NodeStatus:
    """One node, as ``invoke status`` shows it."""

    slot: str
    name: str
    state: str
    provider: str | None
    address: str
    nic: str | None
    mac: str | None
    kernel: str | None
    docker: str | None
    ssh: str | None


class Lab:
    """The lab in this project folder: its configuration, state and nodes."""

    def __init__(self, config: Config | None = None, lab_dir: Path = LAB_DIR):
        self.config = config or load_config()
        self.dir = lab_dir
        self._state: State | None = None
        self._sessions: dict[str, Session] = {}

    # State, provider, machines ------------------------------------------

    @property
    def state(self) -> State:
        """The lab's state file, read once."""
        if self._state is None:
            self._state = State(self.dir)
        return self._state

    def reload(self) -> None:
        """Forget what was read of the state file; read it again when asked."""
        self._state = None

    def provider(self, requested: str | None = None) -> Choice:
        """The provider of the running lab, or the one to bring it up with."""
        running = self.state.data["lab"].get("provider")
        if running:
            if requested and requested != running:
                raise LabError(
                    f"the lab is already up on {running}; --provider {requested} "
                    "cannot change that",
                    hint="run `invoke down` first to move the lab to another provider",
                )
            return Choice(
                PROVIDERS[running](self.config, console.say),
                "the provider the lab is running on",
            )
        return choose(self.config, requested, console.say)

    def machines(self, provider: Provider) -> Machines | ExistingMachines:
        """The Vagrant environment for ``provider``, or the user's own
        machines for provider ``existing``."""
        if provider.keeps_machines:
            return ExistingMachines(self.config)
        return Machines(self.config, provider.name, self.dir)

    def config_digest(self) -> str:
        """A digest of the configuration: a changed one needs a new lab."""
        text = json.dumps(self.config.data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # up ------------------------------------------------------------------

    def preflight(self, requested: str | None = None) -> Choice:
        """What ``up`` checks before it makes anything: the provider (asked
        for, or the first that works), this machine's routes and the box. Bad
        input stops here, with nothing on the lab changed, not even its lock."""
        choice = self.provider(requested)
        choice.provider.check_routes()
        if not self.state.data["lab"].get("provider") and not (
            choice.provider.keeps_machines
        ):
            self._check_box(choice.provider)
        return choice

    def up(
        self, requested: str | None = None, choice: Choice | None = None
    ) -> dict[str, dict]:
        """Bring the lab up (or check the running one) and return the facts
        of each node. ``choice`` is what :meth:`preflight` returned, if it
        ran already."""
        choice = choice or self.preflight(requested)
        with lock(self.dir, wait=LOCK_WAIT, what="invoke up", on_wait=console.say):
            self.reload()
            if self.state.data["lab"].get("provider"):
                # Another `up` may have brought the lab up while this waited.
                choice = self.provider(requested)
            return self._up(choice)

    def _up(self, choice: Choice) -> dict[str, dict]:
        state = self.state
        provider = choice.provider
        console.say(f"provider: {provider.name} ({choice.why})")

        lab = state.data["lab"]
        if lab.get("ready") and lab.get("config") != self.config_digest():
            raise StateError(
                "lab.yaml changed since the lab was brought up",
                hint="run `invoke down`, then `invoke up`, to rebuild the lab with "
                "the new configuration",
            )
        machines = self.machines(provider)
        if lab.get("ready"):
            statuses = machines.status()
            if all(s.state in ("running", "reachable") for s in statuses.values()):
                with console.phase("checking the running lab"):
                    return self._settle(provider, machines, fresh=False)
            console.say("some nodes are not running: bringing them up again")

        lab.update(provider=provider.name, ready=False, config=self.config_digest())
        state.save()
        if provider.keeps_machines:
            with console.phase("reaching your machines over SSH"):
                machines.up()
        else:
            with console.phase("preparing the hypervisor"):
                provider.prepare(state)
                self._ensure_box(provider)
                provider.refresh_box()
                provider.stage_box(state)
            with console.phase("booting the nodes (Vagrant; log in .lab/vagrant.log)"):
                machines.up()
        with console.phase("bringing each node to the lab's baseline"):
            return self._settle(provider, machines, fresh=True)

    def _check_box(self, provider: Provider) -> None:
        # A box Vagrant does not have is fetched from Vagrant Cloud, whose
        # names are all owner/box: a box of another name could only fail later,
        # with the nodes half made.
        name = provider.box()["name"]
        offline = DEFAULTS["boxes"]["libvirt"]["name"]
        if (provider.vagrant == "libvirt" and name == offline) or "/" in name:
            return
        if not boxes.box_exists(name, provider.vagrant):
            where = self.config.path or "lab.yaml"
            key = f"boxes.{provider.box_key}.name"
            raise ConfigError(
                f"{where}: {key} is {name!r}, a box Vagrant does not have for "
                f"{provider.vagrant} (nor a Vagrant Cloud name, owner/box)",
                hint=f"add it (`vagrant box add {name} FILE.box`), or set {key} "
                "to a box `vagrant box list` shows, or delete it to use the "
                f"default ({DEFAULTS['boxes'][provider.box_key]['name']!r})",
            )

    def _ensure_box(self, provider: Provider) -> None:
        name = provider.box()["name"]
        offline = DEFAULTS["boxes"]["libvirt"]["name"]
        if provider.vagrant == "libvirt" and name == offline:
            if not boxes.box_exists(name):
                console.say(
                    f"box {name} is missing: building it from Debian's "
                    "packages (a few minutes, once)"
                )
                boxes.build_box(name, workdir=self.dir / "box", log=console.say)

    def _settle(
        self, provider: Provider, machines: Machines | ExistingMachines, fresh: bool
    ) -> dict:
        state = self.state
        sessions = None
        if not fresh:
            # A running lab keeps its addresses: try the ones on record first.
            try:
                sessions = self.sessions(fresh=True)
                parallel(lambda slot: sessions[slot].open(), SLOTS)
            except LabError:
                sessions = None
        if sessions is None:
            targets = parallel(machines.ssh_target, SLOTS)
            for slot, target in targets.items():
                state.nodes.setdefault(slot, {})["ssh"] = vars(target)
            state.save()
            sessions = self.sessions(fresh=True)
            parallel(lambda slot: sessions[slot].open(), SLOTS)

        own = provider.keeps_machines

        def settle(slot: str) -> dict:
            node = self.config.nodes[slot]
            session = sessions[slot]
            named = self.config.data["ssh"][slot]["nic"] if own else None
            found = nodes.discover_nic(session, node, named=named, own=own)
            nodes.provision(session, self.config, node, found["nic"], own=own)
            found.update(nodes.facts(session, node))
            known = state.nodes.get(slot, {})
            found["baseline"] = (
                known["baseline"]
                if not fresh and "baseline" in known
                else nodes.baseline(session, node, found["nic"])
            )
            return found

        found = parallel(settle, SLOTS)
        # Provisioning may have changed sshd's limits (MaxSessions): the
        # connections every later command uses are opened afresh.
        self.sessions(fresh=True)
        for slot, facts in found.items():
            state.nodes[slot].update(facts)
            console.say(
                f"{slot}: {facts['nic']} {self.config.nodes[slot].address}, "
                f"kernel {facts['kernel']}"
                + (f", Docker {facts['docker']}" if facts.get("docker") else "")
            )
        state.data["lab"]["ready"] = True
        state.data["lab"]["up_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        state.save()
        return {slot: state.nodes[slot] for slot in SLOTS}

    # Sessions ------------------------------------------------------------

    def sessions(self, fresh: bool = False) -> dict[str, Session]:
        """Kept-open SSH sessions to every node of the running lab."""
        if self._sessions and not fresh:
            return self._sessions
        self.close()
        if not self.state.data["lab"].get("provider"):
            raise LabError("the lab is not up", hint="run `invoke up` first")
        for slot in SLOTS:
            known = self.state.nodes.get(slot, {}).get("ssh")
            if not known:
                raise StateError(
                    f"the lab's state has no SSH address for {slot}",
                    hint="run `invoke up` to bring the lab to a known state",
                )
            self._sessions[slot] = Session(slot, SSHTarget(**known))
        return self._sessions

    def close(self) -> None:
        """Close every session."""
        for session in self._sessions.values():
            session.close()
        self._sessions = {}

    def require_ready(self) -> None:
        """Raise unless ``invoke up`` finished on this lab."""
        if not self.state.data["lab"].get("ready"):
            raise LabError("the lab is not up", hint="run `invoke up` first")

    # down ----------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove everything the lab made; return what is left (nothing,
        normally)."""
        with lock(self.dir, wait=LOCK_WAIT, what="invoke down", on_wait=console.say):
            return self._down()

    def _down(self) -> list[str]:
        self.close()
        try:
            state = self.state
        except StateError as exc:
            console.warn(f"{exc.message}; removing whatever can be found")
            (self.dir / "state.json").unlink()
            self._state = None
            state = self.state
        name = state.data["lab"].get("provider")
        if name:
            provider = PROVIDERS[name](self.config, console.say)
        else:
            try:
                provider = choose(self.config, None, console.say).provider
            except LabError:
                console.say(
                    "no provider works here, so the lab cannot have made anything"
                )
                state.clear()
                return []
        if provider.keeps_machines:
            return self._restore(provider, state)
        usable = shutil.which("vagrant") and not provider.problems()
        made = self.machines(provider).made() if usable else []
        if not name and not made and not provider.leftovers():
            console.say("the lab is not up: there is nothing of it to remove")
            state.clear()
            return []
        with console.phase(f"removing the lab ({provider.name})"):
            if made or name:
                try:
                    self.machines(provider).destroy()
                except MachineError as exc:
                    console.warn(str(exc))
            left = provider.teardown(state)
            for sock in self.dir.glob("docker-*.sock"):
                sock.unlink()
            state.clear()
        return left

    def _restore(self, provider: Provider, state: State) -> list[str]:
        """``down`` on machines of the user's: remove what the scenarios left
        and undo what provisioning changed; the machines keep running."""
        if not state.data["lab"].get("provider"):
            console.say("the lab is not up: there is nothing of it to remove")
            state.clear()
            return []
        left = []
        # One session a machine, made here and not in the threads below: from
        # the address `up` noted, or from lab.yaml if `up` stopped before that.
        self.close()
        machines = ExistingMachines(self.config)
        for slot in SLOTS:
            known = state.nodes.get(slot, {}).get("ssh")
            target = SSHTarget(**known) if known else machines.target(slot)
            self._sessions[slot] = Session(slot, target)

        def restore(slot: str) -> None:
            node, facts = self.config.nodes[slot], state.nodes.get(slot, {})
            session = self._sessions[slot]
            try:
                session.open()
                if facts.get("nic"):
                    nic, base = facts["nic"], facts.get("baseline", {})
                    kept = nodes.kept_addresses(self.config, slot, facts)
                    nodes.reset(session.run, node, nic, base, kept)
                    found, _ = nodes.left_on(session.run, node, nic, base, kept)
                    left.extend(f"{slot}: {thing}" for thing in found)
                for line in nodes.restore(session, node).splitlines()[:-1]:
                    console.say(line)
            except LabError as exc:
                left.append(f"{slot}: {exc.message}")

        with console.phase(f"restoring your machines ({provider.name})"):
            parallel(restore, SLOTS)
            self.close()
            for sock in self.dir.glob("docker-*.sock"):
                sock.unlink()
            if not left:
                state.clear()
        return left

    # status --------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        """Each node's state, provider, addresses, lab NIC, kernel, Docker."""
        name = self.state.data["lab"].get("provider")
        found = {}
        if name:
            provider = PROVIDERS[name](self.config, console.say)
            found = self.machines(provider).status()
        rows = []
        for slot, node in self.config.nodes.items():
            facts = self.state.nodes.get(slot, {})
            machine = found.get(slot)
            ssh = facts.get("ssh")
            rows.append(
                NodeStatus(
                    slot=slot,
                    name=node.name,
                    state=machine.state if machine else "not created",
                    provider=name,
                    address=node.address,
                    nic=facts.get("nic"),
                    mac=facts.get("mac"),
                    kernel=facts.get("kernel"),
                    docker=facts.get("docker"),
                    ssh=f"{ssh['user']}@{ssh['host']}:{ssh['port']}" if ssh else None,
                )
            )
        return rows

    def ssh_command(self, slot: str) -> list[str]:
        """The ``ssh`` command line that opens a shell on ``slot``."""
        if slot not in SLOTS:
            raise LabError(
                f"no node called {slot!r}", hint="use one of: " + ", ".join(SLOTS)
            )
        self.require_ready()
        target = SSHTarget(**self.state.nodes[slot]["ssh"])
        command = ["ssh", "-p", str(target.port)]
        if target.key:
            command += ["-i", target.key]
        if self.state.data["lab"].get("provider") != "existing":
            # The lab's VMs: new host keys on every `up`, at reused addresses.
            command += [
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
            ]
        return [*command, f"{target.user}@{target.host}"]
