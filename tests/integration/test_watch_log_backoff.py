"""The log cadence backs off while the log is quiet and snaps back when it grows.

Real watcher loops over a real transport (local subprocesses, and SSH to the in-process server
with a real /bin/sh behind it); the log is a real file the test appends to. No timing
assertions: the test records which wait the watcher chose after each of its log reads (its own
`_next_log_wait`, recorded) and checks the sequence; the waits only bound how long it runs.
"""

from __future__ import annotations

import asyncio

import pytest

from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec

BASE = 0.2  # cap = min(8 × BASE, log_quiet_max) = 1.6 s


@pytest.fixture(params=["local", "ssh"])
async def transport(request, make_box):
    from gpudash.transport.local import LocalTransport
    from gpudash.transport.ssh import SshTransport

    if request.param == "local":
        t = LocalTransport()
    else:
        await make_box("box")
        t = SshTransport("box")
    try:
        yield t
    finally:
        await t.close()


class Recording(HostWatcher):
    """The real watcher; every wait its log loop chose is recorded, as (log_at, wait)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.reads: list[tuple[float | None, float]] = []

    def _next_log_wait(self, base: float) -> float:
        wait = super()._next_log_wait(base)
        self.reads.append((self.log_at, wait))
        return wait


async def until(cond, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.05)


async def test_quiet_log_backs_off_and_growth_or_probe_now_snaps_back(tmp_path, transport):
    log = tmp_path / "train.log"
    log.write_text("step 1\n")
    slow = 3600.0  # only the log loop matters here; the other groups run once
    spec = WatchSpec(name="b", transport=transport.kind, log=str(log), gpu_stream=False,
                     log_follow=False,  # the polled reads back off; the follower has no reads to back off
                     cadence=Cadence(gpu=slow, log=BASE, disk=slow, jobs=slow, files=slow,
                                     log_quiet_max=1.6))
    w = Recording(spec, transport)
    reads = w.reads
    task = asyncio.create_task(w.run())
    try:
        # Quiet after the first read: the wait doubles up to the cap and stays there.
        await until(lambda: len(reads) >= 6)
        waits = [wt for _, wt in reads[:6]]
        assert waits == [BASE, 2 * BASE, 4 * BASE, 8 * BASE, 8 * BASE, 8 * BASE], waits
        assert list(w.log_lines) == ["step 1"]

        # The log grows: the next read brings the line and the cadence is the base again.
        n = len(reads)
        with log.open("a") as f:
            f.write("step 2\n")
        await until(lambda: "step 2" in w.log_lines)
        await until(lambda: any(wt == BASE for _, wt in reads[n:]))
        grew = next(i for i in range(n, len(reads)) if reads[i][1] == BASE)
        await until(lambda: len(reads) > grew + 1)
        assert [wt for _, wt in reads[n:grew]] == [8 * BASE] * (grew - n)  # reads before the line
        assert reads[grew + 1][1] == 2 * BASE  # and quiet again: backing off anew

        # probe_now while backed off: a read at once, and the base cadence after it.
        await until(lambda: reads[-1][1] == 8 * BASE)
        n = len(reads)
        w.probe_now()
        await until(lambda: len(reads) > n + 1)
        assert BASE in [wt for _, wt in reads[n:n + 2]]  # at once, or right after a read in flight
        assert list(w.log_lines) == ["step 1", "step 2"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_stale_judges_the_log_against_its_slowest_cadence():
    # A backed-off log read every 5 s must not look STALE after 3 × 1 s.
    assert Cadence().log_slowest == 5.0
    assert Cadence(log=0.2).log_slowest == pytest.approx(1.6)
    assert Cadence(log=10).log_slowest == 10  # never faster than configured
    assert Cadence().scaled(0.1).log_slowest == pytest.approx(0.5)
