"""Long-lived `/bin/sh -s` sessions: the part shared by the ssh and local transports.

Why a session: starting a login shell per probe costs ~100–300 ms of CPU on the box (rc files,
conda/pyenv inits). One `/bin/sh -s` per channel, fed framed batches on stdin, pays that once
an hour. Why a pool: a step stuck on the box (a hung nvidia-smi) holds its session until the
step's remote `timeout` fires; other probe groups take another session meanwhile.

The process object is anything with ``stdin.write/drain``, ``stdout.read(n)`` and
``stderr.read(n)`` (asyncssh's ``SSHClientProcess`` opened with ``encoding=None`` and asyncio's
subprocess both fit). The transport supplies how to open one and how to tear it down.

Rules kept here: every buffer is bounded; a session with a batch in flight is never reused once
its caller gave up (it is torn down, not returned to the pool); the whole call, process open
included, lives inside one ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from gpudash.model import Reason
from gpudash.transport import framing
from gpudash.transport.base import Step, StepResult, TransportError

log = logging.getLogger(__name__)

OpenProcess = Callable[[str], Awaitable[Any]]
CloseProcess = Callable[[Any], Awaitable[None]]

CHUNK = 65536
SLACK = 64 * 1024  # markers and per-step framing on top of the steps' own max_bytes
STDERR_PER_STEP = 64 * 1024
IDLE_KEEP = 4096  # between batches only rc junk arrives: keep a little, for diagnostics
STDERR_GRACE = 1.0  # stderr's end marker trails stdout's; local pipes do not order the two
DEFAULT_LIFETIME = 3600.0
RETIRE_MARGIN = 120.0  # retire a session this long before its remote lifetime ends
DEFAULT_CHANNELS = 3


class OpenTimeout(TransportError):
    """No process could be opened before the deadline (a wedged link, or a slow box)."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.TIMEOUT, message)


class SessionEnded(Exception):
    """The session's process ended before the batch did (lifetime, link loss, overflow)."""

    def __init__(self, partial: dict[str, StepResult], started: bool) -> None:
        super().__init__("session ended mid-batch")
        self.partial = partial
        #: whether the batch's begin marker arrived (if not, nothing of it ran: safe to retry)
        self.started = started


class ShellSession:
    """One remote `/bin/sh -s` fed framed batches, one batch at a time."""

    def __init__(self, process: Any, close: CloseProcess, *, lifetime: float) -> None:
        self._proc = process
        self._close_fn = close
        self.nonce = framing.new_nonce()
        self.lifetime = lifetime
        loop = asyncio.get_running_loop()
        self.opened_at = loop.time()
        self._lock = asyncio.Lock()
        self._batch_id = 0
        self._out = bytearray()
        self._err = bytearray()
        self._out_eof = False
        self._err_eof = False
        self._changed = asyncio.Event()
        self._steps: Sequence[Step] | None = None  # the batch in flight
        self._end = b""  # the batch in flight's end marker: what its waiter waits for
        self._limit_out = 0
        self._limit_err = 0
        self.overflowed = False
        self._closing: asyncio.Task | None = None
        self.leased = False  # held by a SessionPool caller
        self._readers = [
            loop.create_task(self._read(process.stdout, self._out, is_err=False)),
            loop.create_task(self._read(process.stderr, self._err, is_err=True)),
        ]

    @classmethod
    async def open(cls, open_process: OpenProcess, close: CloseProcess, *, lifetime: float):
        try:
            proc = await open_process(framing.session_command(lifetime))
        except (TransportError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. fork failure, a channel closed under us
            raise TransportError(Reason.UNREACHABLE, f"cannot open a shell session: {exc}") from exc
        session = cls(proc, close, lifetime=lifetime)
        try:
            proc.stdin.write(framing.PRELUDE.encode())
            await proc.stdin.drain()
        except BaseException as exc:
            session.abort()
            if isinstance(exc, Exception):
                raise TransportError(
                    Reason.UNREACHABLE, f"shell session closed at once: {exc}"
                ) from exc
            raise
        return session

    # ------------------------------------------------------------------ state

    @property
    def alive(self) -> bool:
        return self._closing is None and not self._out_eof

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def usable(self) -> bool:
        """Alive, idle, and not about to hit its remote lifetime."""
        age = asyncio.get_running_loop().time() - self.opened_at
        return self.alive and not self.busy and age < self.lifetime - RETIRE_MARGIN

    # ------------------------------------------------------------------ reading

    async def _read(self, stream: Any, buf: bytearray, *, is_err: bool) -> None:
        try:
            while True:
                data = await stream.read(CHUNK)
                if not data:
                    break
                seen = len(buf)
                buf += data
                if self._steps is None:
                    # Between batches: rc junk only. Keep the tail, bounded.
                    if len(buf) > IDLE_KEEP:
                        del buf[:-IDLE_KEEP]
                elif is_err and len(buf) > self._limit_err:
                    # stderr is diagnostic: drop the excess but keep draining the channel,
                    # or the remote blocks on a full window and the step stalls.
                    del buf[self._limit_err :]
                elif not is_err and len(buf) > self._limit_out:
                    self.overflowed = True
                    del buf[self._limit_out :]
                    self._changed.set()
                    self.abort()  # past the bound: the only safe way to stop the flood
                    break
                # Wake the batch's waiter only when its end marker may have come: a batch's
                # answer is ~3 packets a step, and waking it for each costs a task switch and
                # a scan of the whole buffer (a batch of 8 `echo`s: 1.37 -> 1.17 ms of client
                # CPU; lost in the noise of a whole every-probe tick).
                end = self._end
                if end and buf.find(end, max(0, seen - len(end) + 1)) >= 0:
                    self._changed.set()
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - a dead channel is EOF here
            pass
        finally:
            if is_err:
                self._err_eof = True
            else:
                self._out_eof = True
            self._changed.set()

    async def _wait_until(self, cond: Callable[[], bool], timeout: float | None = None) -> bool:
        async def waiter() -> None:
            while not cond():
                self._changed.clear()
                await self._changed.wait()

        if timeout is None:
            await waiter()
            return True
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await waiter()
            return True
        except TimeoutError:
            return cond()

    # ------------------------------------------------------------------ batches

    async def run(
        self, steps: Sequence[Step], *, deadline_at: float | None = None
    ) -> dict[str, StepResult]:
        """Run one batch; return when its end marker arrived.

        Raises :class:`SessionEnded` (with the partial results) when the process ends first.
        A caller that gives up early (timeout, cancel) must call :meth:`partial` then
        :meth:`abort`: this session still has the batch in flight.
        """
        async with self._lock:
            if not self.alive:
                raise SessionEnded({s.key: _unfinished(s) for s in steps}, started=False)
            self._batch_id += 1
            bid = self._batch_id
            script = framing.render_batch(steps, self.nonce, bid)
            self._out.clear()
            self._err.clear()
            self._steps = steps
            self._end = framing.end_marker(self.nonce, bid)
            self._limit_out = sum(s.max_bytes for s in steps) + SLACK + 256 * len(steps)
            self._limit_err = STDERR_PER_STEP * len(steps) + SLACK
            try:
                self._proc.stdin.write(script)
                await self._proc.stdin.drain()
            except Exception as exc:  # noqa: BLE001 - broken pipe, asyncssh's channel-closed
                # The channel closed between batches (lifetime, link loss): nothing ran.
                log.debug("writing a batch failed: %r", exc)
                self.abort()
                raise SessionEnded({s.key: _unfinished(s) for s in steps}, started=False) from None
            end = self._end
            await self._wait_until(lambda: self._out_eof or self._out.find(end) >= 0)
            if self._out.find(end) < 0:
                started = self._out.find(framing.begin_marker(self.nonce, bid)) >= 0
                partial = self.partial()
                self.abort()
                raise SessionEnded(partial, started=started)
            grace = STDERR_GRACE
            if deadline_at is not None:
                grace = min(grace, deadline_at - asyncio.get_running_loop().time() - 0.05)
            await self._wait_until(lambda: self._err_eof or self._err.find(end) >= 0, grace)
            results = self.partial()
            self._steps = None
            self._end = b""
            self._out.clear()
            self._err.clear()
            return results

    def batch_heard(self) -> bool:
        """Whether the box answered the batch in flight at all (its begin marker came)."""
        return self._out.find(framing.begin_marker(self.nonce, self._batch_id)) >= 0

    def partial(self, steps: Sequence[Step] | None = None) -> dict[str, StepResult]:
        """What the batch in flight produced so far: finished steps keep their results;
        unfinished ones have ``exit_code=None``."""
        if self._steps is None:  # the batch was never written
            return {s.key: _unfinished(s) for s in steps or ()}
        steps = self._steps
        res = framing.split_batch(
            steps, bytes(self._out), bytes(self._err), self.nonce, self._batch_id
        )
        if self.overflowed:
            res = {
                k: (_replace_truncated(r) if r.exit_code is None else r) for k, r in res.items()
            }
        return res

    # ------------------------------------------------------------------ teardown

    def abort(self) -> asyncio.Task:
        """Tear the process down in the background (never blocks the caller's deadline)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._teardown())
        return self._closing

    async def _teardown(self) -> None:
        current = asyncio.current_task()
        for task in self._readers:  # stop reading first: the closer may drain the pipes
            if task is not current:
                task.cancel()
        try:
            await self._close_fn(self._proc)
        except Exception as exc:  # noqa: BLE001 - best effort: the remote bounds are the backstop
            log.debug("closing a session failed: %r", exc)

    async def aclose(self) -> None:
        await self.abort()


def _unfinished(step: Step) -> StepResult:
    return StepResult(key=step.key, stdout=b"", exit_code=None)


def _replace_truncated(r: StepResult) -> StepResult:
    return StepResult(key=r.key, stdout=r.stdout, stderr=r.stderr, exit_code=None, truncated=True)


class SessionPool:
    """Up to ``size`` sessions to one box; a batch takes an idle one or opens one."""

    def __init__(
        self,
        open_process: OpenProcess,
        close_process: CloseProcess,
        *,
        size: int = DEFAULT_CHANNELS,
        lifetime: float = DEFAULT_LIFETIME,
        on_silent_timeout: Callable[[], None] | None = None,
    ) -> None:
        #: called when a batch hit its deadline without the box answering at all: the link
        #: under the session is suspect (the ssh transport drops the connection)
        self.on_silent_timeout = on_silent_timeout
        self._open = open_process
        self._close = close_process
        self.size = max(1, size)
        self.lifetime = lifetime
        self._sessions: list[ShellSession] = []
        self._opening = 0
        self._freed: asyncio.Condition | None = None
        # Teardowns of sessions dropped from the pool (given up at a deadline, dead, too old):
        # aclose() waits for them too, or closing the app would leave their processes unreaped
        # and their pipes to the garbage collector, on a loop that is gone by then.
        self._teardowns: set[asyncio.Task] = set()

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def _cond(self) -> asyncio.Condition:
        if self._freed is None:  # created lazily: bound to the loop that first uses it
            self._freed = asyncio.Condition()
        return self._freed

    async def _acquire(self, phase: list[str]) -> ShellSession:
        cond = self._cond()
        async with cond:
            while True:
                self._drop_unusable()
                for s in self._sessions:
                    if not s.leased and s.usable():
                        s.leased = True
                        return s
                if len(self._sessions) + self._opening < self.size:
                    self._opening += 1
                    break
                await cond.wait()
        phase[0] = "opening"
        try:
            s = await ShellSession.open(self._open, self._close, lifetime=self.lifetime)
        finally:
            self._opening -= 1
            self._wake()
        s.leased = True
        self._sessions.append(s)
        return s

    def _drop_unusable(self) -> None:
        for s in list(self._sessions):
            if not s.leased and not s.usable():
                self._sessions.remove(s)
                self._tear_down(s)

    def _tear_down(self, s: ShellSession) -> None:
        task = s.abort()
        if not task.done():
            self._teardowns.add(task)
            task.add_done_callback(self._teardowns.discard)

    def _wake(self) -> None:
        async def notify() -> None:
            cond = self._cond()
            async with cond:
                cond.notify_all()

        asyncio.get_running_loop().create_task(notify())

    def _release(self, s: ShellSession, *, reusable: bool) -> None:
        s.leased = False
        if not reusable or not s.alive:
            if s in self._sessions:
                self._sessions.remove(s)
            self._tear_down(s)
        self._wake()

    async def run(self, steps: Sequence[Step], deadline: float) -> dict[str, StepResult]:
        """Run a batch within ``deadline`` seconds, process open included.

        Returns partial results when the deadline passes mid-batch (that session is then torn
        down, never reused). Raises :class:`TransportError` (TIMEOUT) when no session could be
        had in time, :class:`SessionEnded` when the session's process ended mid-batch, and
        whatever the opener raises (a transport maps its own failures to TransportError).
        """
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + deadline
        for attempt in (1, 2):
            session: ShellSession | None = None
            reusable = False
            phase = ["waiting"]  # which step of acquiring the deadline caught
            try:
                async with asyncio.timeout_at(deadline_at):
                    session = await self._acquire(phase)
                    result = await session.run(steps, deadline_at=deadline_at)
                    reusable = True
                    return result
            except TimeoutError:
                if session is not None:
                    if not session.batch_heard() and self.on_silent_timeout is not None:
                        self.on_silent_timeout()
                    return session.partial(steps)
                if phase[0] == "opening":
                    raise OpenTimeout(f"no shell session opened within {deadline:g}s") from None
                raise TransportError(
                    Reason.TIMEOUT, f"all {self.size} shell sessions stayed busy for {deadline:g}s"
                ) from None
            except SessionEnded as ended:
                if attempt == 1 and not ended.started and loop.time() < deadline_at - 0.1:
                    continue  # an idle session had died under us and nothing ran: retry once
                raise
            finally:
                if session is not None:
                    self._release(session, reusable=reusable)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        sessions, self._sessions = self._sessions, []
        for s in sessions:
            self._tear_down(s)
        if self._teardowns:  # each is bounded by its transport's closer
            await asyncio.gather(*self._teardowns, return_exceptions=True)

    def abort_all(self) -> None:
        """Forget every session (the link under them is gone)."""
        sessions, self._sessions = self._sessions, []
        for s in sessions:
            self._tear_down(s)


async def stream_lines(
    open_process: OpenProcess,
    close_process: CloseProcess,
    step: Step,
    *,
    sample_timeout: float,
    lifetime: float,
) -> AsyncIterator[bytes]:
    """Yield the lines of a long-lived step (see :meth:`Transport.stream`)."""
    loop = asyncio.get_running_loop()
    nonce = framing.new_nonce()
    begin = framing.begin_marker(nonce, 0)
    proc = None
    drain_err: asyncio.Task | None = None
    try:
        try:
            async with asyncio.timeout(sample_timeout):
                proc = await open_process(framing.session_command(lifetime + 5))
                proc.stdin.write(framing.render_stream(step, nonce, lifetime))
                await proc.stdin.drain()
                with contextlib.suppress(Exception):
                    proc.stdin.write_eof()
        except TimeoutError:
            raise TransportError(
                Reason.TIMEOUT, f"stream did not start within {sample_timeout:g}s"
            ) from None
        drain_err = loop.create_task(_drain(proc.stderr))
        end_at = loop.time() + lifetime + 10  # client guard if the remote bound is missing
        buf = bytearray()
        started = False
        skipping = False  # inside an over-long line, after its first max_bytes were yielded
        silent_until = loop.time() + sample_timeout
        while True:
            now = loop.time()
            if now >= end_at:
                return
            try:
                async with asyncio.timeout_at(min(silent_until, end_at)):
                    data = await proc.stdout.read(CHUNK)
            except TimeoutError:
                if loop.time() >= end_at:
                    return
                raise TransportError(
                    Reason.TIMEOUT, f"stream silent for {sample_timeout:g}s"
                ) from None
            if not data:
                return
            buf += data
            if not started:
                i = buf.find(begin)
                if i < 0:
                    del buf[: max(0, len(buf) - len(begin))]  # rc junk: bounded
                    continue
                del buf[: i + len(begin)]
                started = True
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > step.max_bytes:
                        if not skipping:
                            yield bytes(buf[: step.max_bytes])
                            silent_until = loop.time() + sample_timeout
                        skipping = True
                        buf.clear()
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                if skipping:
                    skipping = False
                    continue
                yield line[: step.max_bytes]
                silent_until = loop.time() + sample_timeout
    finally:
        if drain_err is not None:
            drain_err.cancel()
        if proc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close_process(proc), 5)


async def _drain(stream: Any) -> None:
    """Read and drop a stream so the remote never blocks writing to it."""
    with contextlib.suppress(Exception):
        while await stream.read(CHUNK):
            pass
