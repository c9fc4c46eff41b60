"""How commands reach a box: one interface, three implementations (ssh, local, replay).

A probe never hands a transport a raw command line. It hands it :class:`Step` objects — a
section key, a POSIX-sh snippet whose every argument is already shlex-quoted, a remote time
bound, and the structured ``params`` the snippet was built from. The ssh and local transports
render a batch of steps into one framed script (``framing.py``) and run it in a long-lived
``/bin/sh -s`` session; the replay transport answers each step from recorded traces by its
key and params. Everything above this layer cannot tell them apart.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import field

from gpudash.frozen import frozen
from gpudash.model import Reason
from gpudash.sanitize import clean_field

DEFAULT_STEP_BYTES = 1 << 20  # 1 MiB per step unless the step says otherwise

#: In the command line of every process gpudash starts on a box (framing puts it first in each
#: step's script), so a process scan — ours or another gpudash instance's — can tell a probe from
#: the run it looks for, even when the probe's script names the run's log or command.
PROBE_MARKER = "gpudash-probe"


def marked(script: str) -> str:
    """``script`` led by the marker line (a no-op ``:`` command), once."""
    head = f": {PROBE_MARKER}\n"
    return script if script.startswith(head) else head + script


@frozen
class Step:
    """One command of a probe round.

    ``script`` runs under ``/bin/sh`` with stdin from /dev/null and is bounded remotely by
    ``timeout -k 1 <timeout>``. ``params`` are the inputs the script was built from (the replay
    transport answers from them; parsers may need them too, e.g. the log offset).
    """

    key: str
    script: str
    timeout: float = 8.0
    params: Mapping = field(default_factory=dict)
    max_bytes: int = DEFAULT_STEP_BYTES


@frozen
class StepResult:
    key: str
    stdout: bytes
    stderr: bytes = b""
    exit_code: int | None = 0
    truncated: bool = False

    @property
    def timed_out(self) -> bool:
        """The remote `timeout` fired (124), or had to SIGKILL (137), or no end marker came."""
        return self.exit_code in (124, 137) or self.exit_code is None


class TransportError(Exception):
    """The link failed (not the command): the host is UNKNOWN with this reason."""

    def __init__(self, reason: Reason, message: str = "") -> None:
        # Link messages often quote the far side (an SSH server's disconnect reason, a channel
        # refusal): remote text, sanitised like any other before it can reach a screen or JSON.
        message = clean_field(message, max_len=1000) if message else message
        super().__init__(message or reason.value)
        self.reason = reason
        self.message = message or reason.advice


class Transport(abc.ABC):
    """A way to run probe steps on one box."""

    #: a short name for the UI ("ssh", "local", "replay")
    kind: str = "?"
    #: steps really run in a shell on the box (ssh, local): long-lived helpers such as the log
    #: follower can run there. A replay transport answers from traces instead.
    runs_shell: bool = False

    def __init__(self, host: str) -> None:
        self.host = host

    @abc.abstractmethod
    async def run(self, steps: Sequence[Step], *, deadline: float) -> dict[str, StepResult]:
        """Run the steps in order; return a result per step key.

        Bounded twice: the whole call (channel open included) returns or raises
        :class:`TransportError` (``Reason.TIMEOUT``) within ``deadline`` seconds, and every step
        is bounded on the box by its own ``timeout``. A step that did not finish has
        ``exit_code=None``.
        """

    @abc.abstractmethod
    def stream(
        self, step: Step, *, sample_timeout: float, lifetime: float
    ) -> AsyncIterator[bytes]:
        """Run a long-lived step and yield its output lines (bytes, newline stripped, each
        cut at ``step.max_bytes``). Ends after ``lifetime`` seconds; raises
        :class:`TransportError` (``Reason.TIMEOUT``) when no line came for ``sample_timeout``
        seconds. Leaving the iterator early closes the channel; the remote command dies of its
        ``timeout`` lifetime or of SIGPIPE on its next write."""

    async def close(self) -> None:  # pragma: no cover - trivial default
        return None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
