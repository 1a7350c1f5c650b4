"""Kept-open SSH sessions to the nodes, with Fabric.

One :class:`Session` per node, made from Vagrant's ``ssh-config``, opened once
and reused by every command of a run. A command that finds the connection
dropped reconnects once; a second failure is a
:class:`~ipvlan_lab.errors.ConnectionFailed`. :meth:`Session.docker` gives a
Docker SDK client that talks to the node's daemon through the same SSH
transport (``docker system dial-stdio`` on a channel), so an API call costs no
new SSH handshake.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import docker
import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut
from urllib3.util.retry import Retry

from .errors import ConnectionFailed
from .machines import SSHTarget
from .results import CommandRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
CONNECT_TIMEOUT = 20
#: Seconds a command may run when its caller does not say: every wait is bounded.
COMMAND_TIMEOUT = 120
#: Docker API connections kept open per node (each is one SSH session).
DOCKER_STREAMS = 4
_DROPPED = (paramiko.SSHException, EOFError, OSError, socket.timeout)


def now() -> str:
    """The time now, as the records write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Session:
    """A kept-open SSH connection to one node."""

    def __init__(self, slot: str, target: SSHTarget):
        self.slot = slot
        self.target = target
        self._lock = threading.Lock()
        self._docker_lock = threading.Lock()
        self._bridge: DockerBridge | None = None
        self._docker: docker.DockerClient | None = None
        self.connection = self._connection()

    def _connection(self) -> Connection:
        # The key the lab was given, and only it; without one (machines of the
        # user's own), what ssh itself would try: the agent and ~/.ssh.
        given = bool(self.target.key)
        return Connection(
            host=self.target.host,
            port=self.target.port,
            user=self.target.user,
            connect_timeout=CONNECT_TIMEOUT,
            connect_kwargs={
                "key_filename": [self.target.key] if given else [],
                "look_for_keys": not given,
                "allow_agent": not given,
                "banner_timeout": CONNECT_TIMEOUT,
                "auth_timeout": CONNECT_TIMEOUT,
            },
        )

    def open(self) -> None:
        """Connect now (commands connect on first use otherwise)."""
        with self._lock:
            if self.connection.is_connected:
                return
            # A fresh Connection: the old one may hold a dead transport.
            self.connection = self._connection()
            try:
                self.connection.open()
                _detect_dead_peers(self.connection.transport)
            except Exception as exc:
                raise ConnectionFailed(
                    f"cannot reach {self.slot} over SSH at "
                    f"{self.target.user}@{self.target.host}:{self.target.port}: "
                    f"{exc}",
                    hint="is the node running? `invoke status`; then "
                    "`invoke up` to bring it back",
                ) from None

    def reconnect(self) -> None:
        """Drop the connection and open a new one."""
        with self._lock, contextlib.suppress(Exception):
            self.connection.close()
        # open() makes a new Connection for a closed one. The Docker bridge
        # opens each stream on whatever connection is current, so the SDK
        # client carries on over the new one.
        self.open()

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> CommandRecord:
        """Run ``command`` in a shell on the node and record it.

        A non-zero exit is recorded, not raised; so is a command that runs
        past ``timeout`` seconds, with no exit status. A dropped connection
        is retried once on a fresh connection.
        """
        started, clock = now(), time.monotonic()
        for attempt in (1, 2):
            used = self.connection
            try:
                self.open()
                used = self.connection
                result = used.run(
                    command, hide=True, warn=True, timeout=timeout, in_stream=False
                )
                return CommandRecord(
                    node=self.slot,
                    command=command,
                    exit_status=result.exited,
                    stdout=result.stdout,
                    stderr=result.stderr,
                    started=started,
                    duration=round(time.monotonic() - clock, 3),
                )
            except CommandTimedOut as exc:
                return CommandRecord(
                    node=self.slot,
                    command=command,
                    exit_status=None,
                    stdout=exc.result.stdout,
                    stderr=exc.result.stderr + f"\n(timed out after {timeout} s)",
                    started=started,
                    duration=round(time.monotonic() - clock, 3),
                )
            except ConnectionFailed:
                if attempt == 2:
                    raise
                self.reconnect_quietly()
            except paramiko.ChannelException as exc:
                # sshd refused one more session (it counts them per
                # connection): a new connection starts from none.
                if attempt == 2:
                    raise ConnectionFailed(
                        f"{self.slot} refused a new SSH session twice: {exc}",
                        hint="the node's sshd allows too few sessions "
                        "(MaxSessions); `invoke up` raises it",
                    ) from None
                self._replace(used)
            except _DROPPED as exc:
                if attempt == 2:
                    raise ConnectionFailed(
                        f"the SSH connection to {self.slot} dropped twice while "
                        f"running `{command}`: {exc}",
                        hint="`invoke status` shows whether the node is running",
                    ) from None
                if self._alive():
                    # One channel failed, not the connection: other commands
                    # share it, so it stays; the command goes again on it.
                    log.info("command on %s failed (%s); again", self.slot, exc)
                    time.sleep(1)
                else:
                    log.info("connection to %s dropped (%s); again", self.slot, exc)
                    self.reconnect_quietly()
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, used: Connection) -> None:
        """A new connection instead of ``used``, unless another command has
        already replaced it."""
        with self._lock:
            if self.connection is not used:
                return
            with contextlib.suppress(Exception):
                used.close()
        self.reconnect_quietly()

    def _alive(self) -> bool:
        transport = self.connection.transport
        return transport is not None and transport.is_active()

    def reconnect_quietly(self) -> None:
        """Reconnect, leaving any failure to the next attempt to report."""
        with contextlib.suppress(ConnectionFailed):
            self.reconnect()

    def put(self, local: Path, remote: str) -> None:
        """Copy a file to the node."""
        self.open()
        self.connection.put(str(local), remote)

    def docker(self, sockets: Path) -> docker.DockerClient:
        """A Docker SDK client for this node's daemon, over this session."""
        self.open()
        with self._docker_lock:
            if self._docker is None:
                self._bridge = DockerBridge(self, sockets / f"docker-{self.slot}.sock")
                client = docker.DockerClient(
                    base_url=f"unix://{self._bridge.path}",
                    timeout=60,
                    max_pool_size=DOCKER_STREAMS,
                )
                # A kept-alive HTTP connection is one dial-stdio channel; when
                # the node's end has closed it, the call goes again on a new one.
                client.api.get_adapter("http+docker://").max_retries = Retry(
                    total=2, connect=2, read=2, status=0, allowed_methods=None
                )
                self._docker = client
            return self._docker

    def close(self) -> None:
        """Close the Docker bridge and the connection."""
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.close()
        if self._bridge:
            self._bridge.close()
        with contextlib.suppress(Exception):
            self.connection.close()


def _detect_dead_peers(transport: paramiko.Transport) -> None:
    """Bound how long a dead node can keep a command waiting.

    A node that is killed sends nothing more; without these, a command in
    flight waits for TCP's retransmissions (many minutes) and a new channel
    for paramiko's default of an hour.
    """
    transport.set_keepalive(5)
    transport.channel_timeout = CONNECT_TIMEOUT
    sock = transport.sock
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 15000)


class DockerBridge:
    """A local socket whose every connection is a ``docker system dial-stdio``
    channel on the session's SSH transport."""

    def __init__(self, session: Session, path: Path):
        self.session = session
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                channel = self.session.connection.transport.open_session()
                channel.exec_command("docker system dial-stdio")
            except Exception as exc:  # the client sees the socket close
                log.info("docker bridge to %s failed: %s", self.session.slot, exc)
                client.close()
                continue
            threading.Thread(
                target=_pump,
                args=(client.recv, channel.sendall, channel.shutdown_write),
                daemon=True,
            ).start()
            threading.Thread(
                target=_pump,
                args=(channel.recv, client.sendall, partial(_close, client, channel)),
                daemon=True,
            ).start()

    def close(self) -> None:
        """Stop accepting and remove the socket file."""
        self._closed = True
        with contextlib.suppress(OSError):
            self.server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _pump(
    read: Callable[[int], bytes],
    write: Callable[[bytes], None],
    done: Callable[[], None],
) -> None:
    try:
        while True:
            data = read(65536)
            if not data:
                break
            write(data)
    except (OSError, EOFError, paramiko.SSHException):
        pass
    finally:
        with contextlib.suppress(Exception):
            done()


def _close(client: socket.socket, channel: paramiko.Channel) -> None:
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_WR)
    client.close()
    channel.close()


def parallel(fn: Callable[[str], T], slots: Iterable[str]) -> dict[str, T]:
    """Run ``fn(slot)`` for every slot at once; the first error is raised
    after all have finished."""
    slots = list(slots)
    if not slots:
        return {}
    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = {slot: pool.submit(fn, slot) for slot in slots}
    results, first_error = {}, None
    for slot, future in futures.items():
        try:
            results[slot] = future.result()
        except Exception as exc:  # re-raised below, once every node is done
            first_error = first_error or exc
    if first_error:
        raise first_error
    return results
