"""`gpudash wait HOST --until done [--timeout 3h] [--interval 30s]`: a bounded waiter for scripts.

Exit codes: 0 the run completed (its completion line or marker, triage ``completed``, Slurm
COMPLETED, Ray SUCCEEDED); 2 it ended without completing (the triage is printed: class, summary,
evidence, remediation); 124 the timeout passed first. It never waits forever, and an unreachable
host is not a failure: a dropped link is not a dead job, so it keeps waiting within the timeout.

Each round is one full probe round of the same HostWatcher the TUI and `status` use, so `wait`
cannot conclude anything the dashboard would not show.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT = "24h"
DEFAULT_INTERVAL = "30s"
COMPLETED, FAILED, TIMED_OUT = 0, 2, 124


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("host", metavar="HOST", help="a configured host, an ssh alias, "
                   "user@host:port, or `local`")
    p.add_argument("--until", choices=("done",), default="done",
                   help="what to wait for (done: the run completed or failed)")
    p.add_argument("--timeout", default=DEFAULT_TIMEOUT, metavar="DURATION",
                   help=f"give up after this long: exit 124 (default {DEFAULT_TIMEOUT}; 90m, 3h…)")
    p.add_argument("--interval", default=DEFAULT_INTERVAL, metavar="DURATION",
                   help=f"between probe rounds (default {DEFAULT_INTERVAL})")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


@dataclass
class WaitState:
    """What the waiter itself has seen across rounds (the run alive once, for "it vanished")."""

    seen_alive: bool = False
    last_line: str = ""


@dataclass(frozen=True)
class Verdict:
    code: int | None  # 0 completed, 2 failed, None: keep waiting
    reason: str


def judge(view, state: WaitState, *, completion_seen: bool = False) -> Verdict:
    """Pure: one round's view (+ what earlier rounds saw) → done, failed, or keep waiting."""
    from gpudash.health.jobs_summary import (
        CANCELLED,
        COMPLETED as DONE,
        FAILED as BAD,
        job_category,
        run_alive,
        tmux_category,
    )

    snap = view.snapshot
    if not snap.link.ok:
        why = snap.link.reason.value if snap.link.reason else "unreachable"
        return Verdict(None, f"cannot reach the box ({why}): still waiting — a dropped link is "
                       "not a dead job")
    for j in snap.slurm:
        cat = job_category(j.state, "slurm")
        if cat == DONE:
            return Verdict(COMPLETED, f"Slurm job {j.job_id}: {j.state}")
        if cat in (BAD, CANCELLED):
            return Verdict(FAILED, f"Slurm job {j.job_id} ended {j.state}")
    for r in snap.ray:
        cat = job_category(r.status, "ray")
        if cat == DONE:
            return Verdict(COMPLETED, f"Ray job {r.job_id}: {r.status}")
        if cat in (BAD, CANCELLED):
            return Verdict(FAILED, f"Ray job {r.job_id} ended {r.status}")
    alive = run_alive(snap)
    if alive:
        state.seen_alive = True
    triage = view.triage
    cls = getattr(triage, "cls", None)
    if cls == "completed":
        return Verdict(COMPLETED, getattr(triage, "summary", "") or "the run completed")
    if cls not in (None, "none") and alive is not True:
        return Verdict(FAILED, getattr(triage, "summary", "") or cls)
    marker = next((m for m in snap.markers if m.exists), None)
    if marker is not None:
        return Verdict(COMPLETED, f"marker {marker.path} exists")
    if completion_seen:
        return Verdict(COMPLETED, "the run's completion line is in its log")
    for t in snap.tmux:
        if tmux_category(t) == BAD and (alive is not True):
            return Verdict(FAILED, f"tmux {t.name}: exited with status {t.pane_dead_status}")
    if state.seen_alive and alive is False:
        return Verdict(FAILED, "the run's process is gone with neither a completion line nor a "
                       "marker")
    return Verdict(None, view.job_summary or "running")


def print_triage(view, reason: str, out=None) -> None:
    out = out or sys.stdout
    t = view.triage
    print(f"{view.name}: FAILED — {reason}", file=out)
    if t is None:
        print("triage: none (no log of the run was read)", file=out)
        return
    print(f"triage: {t.cls} ({t.category}): {t.summary}", file=out)
    for e in list(getattr(t, "evidence", ()))[:8]:
        print(f"  line {e.line_no}: {e.text}", file=out)
    if getattr(t, "remediation", ""):
        print(f"remediation: {t.remediation}", file=out)


async def wait_for(spec, transport, *, timeout: float, interval: float,
                   clock=time.monotonic, sleep=None, progress=None):
    """Probe rounds until the run completed or failed, or ``timeout`` passed.
    Returns ``(exit code, last view, verdict)``."""
    import asyncio

    from gpudash.watch.host import HostWatcher

    sleep = sleep or asyncio.sleep
    watcher = HostWatcher(spec, transport)
    state = WaitState()
    end = clock() + timeout
    view = None
    verdict = Verdict(None, "no round finished")
    while True:
        remaining = end - clock()
        if remaining <= 0:
            return TIMED_OUT, view, verdict
        try:
            view = await asyncio.wait_for(watcher.full_round(), remaining)
        except asyncio.TimeoutError:
            return TIMED_OUT, view, verdict
        seen = getattr(getattr(watcher, "analysis", None), "completion", None) is not None
        verdict = judge(view, state, completion_seen=seen)
        if progress is not None and verdict.reason != state.last_line:
            state.last_line = verdict.reason
            progress(view, verdict)
        if verdict.code is not None:
            return verdict.code, view, verdict
        remaining = end - clock()
        if remaining <= 0:
            return TIMED_OUT, view, verdict
        await sleep(min(interval, remaining))


def run(args) -> int:
    from gpudash.config import parse_duration

    try:
        timeout = parse_duration(args.timeout)
        interval = parse_duration(args.interval)
    except ValueError as exc:
        print(f"gpudash wait: {exc}", file=sys.stderr)
        return 2
    if timeout <= 0 or interval <= 0:
        print("gpudash wait: --timeout and --interval must be positive", file=sys.stderr)
        return 2
    from gpudash.commands.hosts import load_specs

    args.hosts = [args.host]
    specs = load_specs(args)
    if isinstance(specs, int):
        return specs
    import asyncio

    return asyncio.run(_main(args, specs[0], timeout, interval))


async def _main(args, spec, timeout: float, interval: float) -> int:
    from gpudash.teardown.runner import transport_for

    def progress(view, verdict: Verdict) -> None:
        if not args.quiet:
            stamp = time.strftime("%H:%M:%S")
            print(f"[{stamp}] {view.name}: {verdict.reason}", file=sys.stderr, flush=True)

    transport = transport_for(spec)
    try:
        code, view, verdict = await wait_for(spec, transport, timeout=timeout, interval=interval,
                                             progress=progress)
    finally:
        await transport.close()
    if code == COMPLETED:
        print(f"{spec.name}: completed — {verdict.reason}")
    elif code == FAILED:
        print_triage(view, verdict.reason)
    else:
        print(f"{spec.name}: timed out after {args.timeout} — last seen: {verdict.reason}")
    sys.stdout.flush()
    return code
