"""What the lab made, kept in one place: ``.lab/`` in the project folder.

``.lab/state.json`` records every resource the lab created (so that ``down``
removes exactly those), the daemons it started, and the facts learnt about
each node. It is written atomically (a temporary file renamed over the old
one), and a file that cannot be read back is reported, never trusted.
``.lab/lock`` serialises the commands that change the lab.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import StateError

STATE_VERSION = 1


class State:
    """The lab's state file, read on creation and saved on demand."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        self.data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return _empty()
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise StateError(
                f"the lab's state file {self.path} is unreadable ({exc})",
                hint="run `invoke down` to remove what it can find of the "
                "lab and start afresh",
            ) from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise StateError(
                f"the lab's state file {self.path} is not one this version of the "
                "lab wrote",
                hint="run `invoke down` to remove the lab and start afresh",
            )
        return data

    def save(self) -> None:
        """Write the state atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".state-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.data, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # What the lab made -------------------------------------------------

    def record(self, kind: str, name: str, **details: Any) -> None:
        """Remember that the lab made ``name`` of ``kind``, and save."""
        made = self.data["made"].setdefault(kind, {})
        made[name] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **details}
        self.save()

    def made(self, kind: str) -> dict[str, dict]:
        """What the lab made of ``kind``, by name."""
        return dict(self.data["made"].get(kind, {}))

    def forget(self, kind: str, name: str) -> None:
        """Forget ``name`` of ``kind`` once it is gone, and save."""
        self.data["made"].get(kind, {}).pop(name, None)
        self.save()

    # Facts about nodes -------------------------------------------------

    @property
    def nodes(self) -> dict[str, dict]:
        """Facts about each node, by slot."""
        return self.data["nodes"]

    def clear(self) -> None:
        """Forget everything: the lab is gone."""
        self.data = _empty()
        self.save()


def _empty() -> dict[str, Any]:
    return {"version": STATE_VERSION, "made": {}, "nodes": {}, "lab": {}}


@contextlib.contextmanager
def lock(
    folder: Path,
    wait: float = 0.0,
    what: str = "this command",
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lab's lock while changing the lab.

    With ``wait`` 0 a second holder is refused at once; otherwise it waits up
    to ``wait`` seconds, telling ``on_wait`` once whom it waits for.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                handle.seek(0)
                holder = handle.read().strip() or "another lab command"
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"the lab is busy: {holder} holds {path}",
                        hint=f"wait for it to finish, then run {what} again",
                    ) from None
                if on_wait:
                    on_wait(f"waiting for the lab: {holder} holds it")
                    on_wait = None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what} (pid {os.getpid()})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
