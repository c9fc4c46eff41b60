"""`judged`: the disk checks, the job checks and the job summary are judged again only when their
samples change — and every view is exactly what judging everything afresh gives.

Differential: the six demo boxes (the recorded H100 traces through the real replay transport,
probes and parsers; disks that fill, inodes that run out, an OOM, a box that drops off), driven
by a fake clock with the GPU sampled every round and disk / jobs rounds only every few rounds, as
the watcher's cadences do. At every refresh the health engine runs twice from the same state:
once with the memo it has built up, once on a copy with the memo emptied. Both must agree on
every check (key, state, summary, reason, detail) and on the job summary.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses

from gpudash.demo.fleet import demo_fleet
from gpudash.health import engine as he
from gpudash.health.context import RunContext
from gpudash.health.thresholds import Thresholds
from gpudash.model import DiskUsage, HostSnapshot, State, TmuxSession


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _same(a, b) -> bool:
    return [(c.key, c.state, c.summary, c.reason, c.detail) for c in a] == \
           [(c.key, c.state, c.summary, c.reason, c.detail) for c in b]


def test_memoised_verdicts_equal_fresh_ones_on_the_demo_boxes():
    clock = FakeClock()
    fleet = demo_fleet(clock=clock, start=clock.t)
    compared = hits = misses = 0

    async def go():
        nonlocal compared, hits, misses
        for w in fleet.watchers.values():
            await w.full_round()
        for n in range(90):
            clock.t += 2.0
            for w in fleet.watchers.values():
                await w.round("gpu")
                if n % 5 == 0:
                    await w.round("disk")
                if n % 7 == 0:
                    await w.round("jobs")
                if n % 3 == 0:
                    await w.round("log")
                a = w.analysis
                snap = w.snapshot()
                ref_ctx = copy.deepcopy(a.context)
                ref_ctx.judged.clear()
                before = dict(a.context.judged)
                th, iv, now = a.engine.thresholds, a.engine.intervals, clock.t
                got = he.evaluate(snap, th, iv, now, context=a.context)
                want = he.evaluate(snap, th, iv, now, context=ref_ctx)
                assert _same(got, want), w.spec.name
                for name in ("disk", "jobs"):
                    if name in before and a.context.judged[name] is before[name]:
                        hits += 1
                    else:
                        misses += 1
                # the fresh run's own context must end where the memoised one did (ignoring the memo)
                assert dataclasses.replace(ref_ctx, judged={}) == dataclasses.replace(a.context, judged={})
                compared += 1
                w.refresh()  # the view path too (it memoises the job summary)
                assert w.view.job_summary == he.summarize_jobs(snap)
        await fleet.close()

    asyncio.run(go())
    assert compared == 6 * 90
    # most refreshes reuse (this is what the memo is for), and every disk / jobs round judges anew
    assert hits > misses > 0


GIB = 2**30


def _disk(used_gib: int) -> DiskUsage:
    """A 100 GiB mount with ``used_gib`` used; inodes at 10%."""
    return DiskUsage(mount="/", size_bytes=100 * GIB, used_bytes=used_gib * GIB,
                     avail_bytes=(100 - used_gib) * GIB, inodes_total=10_000, inodes_used=1_000,
                     inodes_free=9_000)


def _snap(**kw) -> HostSnapshot:
    base = dict(name="h", taken_at=1000.0,
                disks=(_disk(used_gib=85),),
                disk_at=1000.0, jobs_at=1000.0)
    base.update(kw)
    return HostSnapshot(**base)


def _disk_state(checks) -> State:
    return next(c for c in checks if c.key == "disk.bytes:/").state


def test_same_samples_same_objects_changed_samples_judged_again():
    ctx, th = RunContext(), Thresholds()
    snap = _snap()
    first = [c for c in he.evaluate(snap, th, context=ctx) if c.key.startswith("disk.")]
    again = [c for c in he.evaluate(dataclasses.replace(snap, taken_at=1002.0), th, context=ctx)
             if c.key.startswith("disk.")]
    assert again == first and all(x is y for x, y in zip(again, first))
    assert _disk_state(again) is State.OK  # 85% used

    # a new disk sample is judged again
    assert _disk_state(he.evaluate(_snap(disks=(_disk(used_gib=98),)), th, context=ctx)) is State.CRIT

    # other thresholds: judged again with them (85% is CRIT at 60%)
    strict = dataclasses.replace(th, disk_warn_pct=50.0, disk_crit_pct=60.0)
    ctx2 = RunContext()
    he.evaluate(snap, th, context=ctx2)
    assert _disk_state(he.evaluate(snap, strict, context=ctx2)) is State.CRIT

    # the same sample, but a checkpoint that no longer fits in what is free: judged again
    ctx3 = RunContext()
    assert _disk_state(he.evaluate(snap, th, context=ctx3)) is State.OK
    ctx3.checkpoint_size_bytes = 20 * GIB  # 15 GiB free
    assert _disk_state(he.evaluate(snap, th, context=ctx3)) is State.CRIT


def test_job_checks_follow_a_new_jobs_round():
    ctx, th = RunContext(), Thresholds()
    running = (TmuxSession(name="train", pane_dead=False, pane_command="python"),)
    dead = (TmuxSession(name="train", pane_dead=True, pane_dead_status=137),)
    a = he.evaluate(_snap(tmux=running), th, context=ctx)
    assert next(c for c in a if c.key == "job:tmux:train").state is State.OK
    b = he.evaluate(_snap(tmux=dead), th, context=ctx)
    assert next(c for c in b if c.key == "job:tmux:train").state is State.CRIT


def test_job_summary_follows_bare_processes():
    """With no tmux, Slurm or Ray job, a matching process is the job: the summary must change
    when one appears, though the (empty) tmux/Slurm/Ray samples did not."""
    from gpudash.model import ProcessInfo
    from gpudash.watch.analysis import HostAnalysis
    from gpudash.watch.spec import WatchSpec

    a = HostAnalysis(WatchSpec(name="h"))
    first = a.view(_snap(), paused=False, now=1000.0)
    proc = (ProcessInfo(pid=42, command="python train.py", elapsed_s=5),)
    second = a.view(_snap(processes=proc, taken_at=1002.0), paused=False, now=1002.0)
    assert first.job_summary == "no jobs"
    assert second.job_summary == he.summarize_jobs(_snap(processes=proc)) != "no jobs"
