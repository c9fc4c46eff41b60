"""The replay transport: answers probe steps from recorded traces instead of a real box.

A :class:`ReplayBox` (the demo's simulated boxes, or a test's) produces, for each step key, the
bytes the real tool would have printed — so the same parsers, health checks and triage run on
them as on a live host. The box can also be unreachable for a while, which the transport turns
into the same :class:`TransportError` an SSH failure gives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from gpudash.model import Reason
from gpudash.transport.base import Step, StepResult, Transport, TransportError


class ReplayBox(Protocol):
    def answer(self, step: Step, now: float) -> StepResult: ...

    def link_error(self, now: float) -> tuple[Reason, str] | None:
        """None while reachable; else why not."""


class ReplayTransport(Transport):
    kind = "replay"

    def __init__(
        self,
        host: str,
        box: ReplayBox,
        *,
        clock: Callable[[], float] = time.time,
        latency: float = 0.002,
    ) -> None:
        super().__init__(host)
        self.box = box
        self.clock = clock
        self.latency = latency
        self.calls = 0

    async def run(self, steps: Sequence[Step], *, deadline: float) -> dict[str, StepResult]:
        self.calls += 1
        await asyncio.sleep(self.latency)
        now = self.clock()
        err = self.box.link_error(now)
        if err is not None:
            raise TransportError(err[0], err[1])
        out: dict[str, StepResult] = {}
        for step in steps:
            res = self.box.answer(step, now)
            if len(res.stdout) > step.max_bytes:
                res = StepResult(step.key, res.stdout[: step.max_bytes], res.stderr, res.exit_code, True)
            out[step.key] = res
        return out

    async def stream(
        self, step: Step, *, sample_timeout: float, lifetime: float
    ) -> AsyncIterator[bytes]:
        """One answer per interval, like `nvidia-smi -lms`."""
        interval = float(step.params.get("interval_ms", 1000)) / 1000.0
        end = self.clock() + lifetime
        last_line = self.clock()
        while self.clock() < end:
            now = self.clock()
            err = self.box.link_error(now)
            if err is not None:
                raise TransportError(err[0], err[1])
            lines = self.box.answer(step, now).stdout.splitlines()
            if lines:
                last_line = now
            elif now - last_line > sample_timeout:
                raise TransportError(Reason.TIMEOUT, "the stream went silent")
            for line in lines:
                yield line[: step.max_bytes]
            await asyncio.sleep(min(interval, sample_timeout))
