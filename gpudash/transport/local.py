"""The local transport: the same framed `/bin/sh -s` sessions, on this machine.

This is what gpudash uses with no config (it watches the machine it runs on). Each session is
started in a new POSIX session (``start_new_session=True``) so teardown can find every process
it spawned: coreutils' ``timeout`` puts each step in its own process GROUP, so killing the
session's group alone would leave a stuck step behind; every process keeps the session id
(short of an explicit ``setsid``, which is how a detached launch is meant to escape).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from gpudash.model import LinkStatus
from gpudash.transport.base import Step, StepResult, Transport
from gpudash.transport.session import (
    DEFAULT_CHANNELS,
    DEFAULT_LIFETIME,
    SessionEnded,
    SessionPool,
    stream_lines,
)


class LocalTransport(Transport):
    """Runs probe steps on this machine."""

    kind = "local"
    runs_shell = True

    def __init__(
        self,
        host: str = "localhost",
        *,
        channels: int = DEFAULT_CHANNELS,
        lifetime: float = DEFAULT_LIFETIME,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(host)
        self._env = env
        self._pool = SessionPool(self._open, close_local_process, size=channels, lifetime=lifetime)
        self._link = LinkStatus()

    @property
    def link(self) -> LinkStatus:
        """Always up once a batch ran (there is no network); same shape as SshTransport's."""
        return self._link

    async def _open(self, command: str) -> Any:
        return await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env=self._env,
        )

    async def run(self, steps: Sequence[Step], *, deadline: float) -> dict[str, StepResult]:
        try:
            results = await self._pool.run(steps, deadline)
        except SessionEnded as ended:
            # The shell ended (its lifetime, or output past the bound): finished steps keep
            # their results; there is no link to blame.
            results = ended.partial
        now = time.time()
        self._link = LinkStatus(ok=True, since=self._link.since or now, last_ok=now)
        return results

    async def stream(
        self, step: Step, *, sample_timeout: float, lifetime: float
    ) -> AsyncIterator[bytes]:
        async for line in stream_lines(
            self._open, close_local_process, step,
            sample_timeout=sample_timeout, lifetime=lifetime,
        ):
            yield line

    async def close(self) -> None:
        await self._pool.aclose()


async def close_local_process(proc: Any) -> None:
    """Kill everything in the process's session, then reap it (bounded)."""
    with contextlib.suppress(Exception):
        proc.stdin.close()
    kill_session(proc.pid)
    with contextlib.suppress(Exception):
        # Read the pipes to EOF (a reader that stopped at its bound left them paused), so
        # asyncio can close the subprocess transport; then close it anyway.
        await asyncio.wait_for(proc.communicate(), 5)
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


def kill_session(sid: int) -> int:
    """SIGKILL every process whose session id is ``sid``; return how many were signalled.

    A few passes, because a dying shell may have forked a moment before. Falls back to the
    process group where /proc is absent (not Linux).
    """
    if not os.path.isdir("/proc/self"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        return 0
    total = 0
    for _ in range(3):
        pids = session_members(sid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                total += 1
    return total


def session_members(sid: int) -> list[int]:
    """Live processes of POSIX session ``sid`` (zombies excluded: they are only unreaped)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parens): state ppid pgrp sid
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) > 3 and rest[0] != b"Z" and int(rest[3]) == sid:
            out.append(int(name))
    return out
