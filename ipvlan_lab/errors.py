"""The lab's one exception root and its kinds.

Every error the lab expects carries a message that says what was tried and
what was found, and a hint that says what to do next. ``tasks.py`` catches
:class:`LabError` once and turns it into an exit with that text and
:attr:`LabError.exit_code`.
"""

from __future__ import annotations


class LabError(Exception):
    """An expected failure, told to the user in one message and one hint."""

    #: The process exit code for this kind of error.
    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class ConfigError(LabError):
    """The lab's configuration file is wrong."""


class ScenarioError(LabError):
    """A scenario file is wrong, or names a scenario that does not exist."""


class UsageError(LabError):
    """A command's arguments are wrong."""


class ProviderError(LabError):
    """The hypervisor (provider) is missing, unusable or misbehaving."""


class BoxError(LabError):
    """The offline box cannot be built or added."""


class MachineError(LabError):
    """Vagrant failed to bring up, query or remove a node."""


class NodeError(LabError):
    """A node is not fit for the work: no Docker, no ipvlan, no lab NIC..."""


class ConnectionFailed(LabError):
    """A node cannot be reached over SSH, even after one reconnect."""


class StateError(LabError):
    """The lab's own state file is corrupt, stale or locked."""
