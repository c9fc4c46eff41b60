"""A snapshot's log lines and metric points are built once per change, not per refresh: always
equal to the watcher's buffers, and the very same tuples while nothing new arrived (what lets
health judge the grad-norm check again only on new points)."""

from __future__ import annotations

import asyncio

from gpudash.demo.fleet import demo_fleet
from gpudash.watch.host import SNAPSHOT_LOG_LINES


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _expected(w):
    return tuple(w.log_lines)[-SNAPSHOT_LOG_LINES:], tuple(w.analysis.metrics.view())


def test_snapshot_tuples_follow_the_buffers_and_are_reused_until_they_change():
    clock = FakeClock()
    fleet = demo_fleet(clock=clock, start=clock.t)
    grew = reused = 0

    async def go():
        nonlocal grew, reused
        for n in range(120):
            clock.t += 3.0
            for w in fleet.watchers.values():
                before = w.snapshot()
                await w.round("log")
                await w.round("gpu")
                if n == 60:
                    w._reset_log()  # rotated / replaced: both start over
                after = w.snapshot()
                lines, metrics = _expected(w)
                assert after.log_lines == lines and after.metrics == metrics
                again = w.snapshot()
                assert again.log_lines is after.log_lines and again.metrics is after.metrics
                if after.log_lines != before.log_lines:
                    grew += 1
                elif after.log_lines is before.log_lines:
                    reused += 1
        await fleet.close()

    asyncio.run(go())
    assert grew > 0 and reused > 0  # both paths ran


def test_the_snapshot_keeps_the_newest_lines_when_the_buffer_is_full():
    clock = FakeClock()
    fleet = demo_fleet(clock=clock, start=clock.t)
    w = next(iter(fleet.watchers.values()))

    async def go():
        for _ in range(400):  # well past the 1,000-line buffer on the busiest demo log
            clock.t += 5.0
            await w.round("log")
            lines, metrics = _expected(w)
            snap = w.snapshot()
            assert snap.log_lines == lines and snap.metrics == metrics
        await fleet.close()

    asyncio.run(go())
    assert len(w.snapshot().log_lines) == min(SNAPSHOT_LOG_LINES, len(w.log_lines))
