"""The health engine: snapshot → raw verdicts (:func:`evaluate`) → debounced checks and events
(:class:`HealthEngine`) → one host state (:func:`host_state`). Pure: no I/O, no clock (``now`` is
always passed in), no UI.
"""

from __future__ import annotations

import logging

from gpudash.health.checks import check_disks, check_gpus, check_link, check_memory
from gpudash.health.context import Phase, RunContext
from gpudash.health.debounce import Debouncer
from gpudash.health.jobs_summary import check_jobs, summarize_jobs
from gpudash.health.stale import mark_stale, stale_probes, stale_checks
from gpudash.health.thresholds import Intervals, Thresholds
from gpudash.health.training import (
    check_checkpoint_age,
    check_grad_norm,
    check_log_silent,
    check_loss,
    check_run_ended,
    check_script_edited,
    ingest_metrics,
    track_run,
)
from gpudash.health.verdict import verdict
from gpudash.model import CheckResult, Event, HostSnapshot, Reason, State, worst

__all__ = [
    "HealthEngine", "Intervals", "Phase", "RunContext", "Thresholds", "evaluate", "host_state",
    "judged", "stale_checks", "summarize_jobs",
]

log = logging.getLogger(__name__)


def evaluate(
    snapshot: HostSnapshot,
    thresholds: Thresholds | None = None,
    intervals: Intervals | None = None,
    now: float | None = None,
    *,
    context: RunContext | None = None,
) -> tuple[CheckResult, ...]:
    """Raw per-check verdicts for one snapshot (no hysteresis). Updates ``context`` (oom counter,
    phase, run alive/ended/restarted, loss history). Never raises: a check that fails on odd data
    becomes an UNKNOWN ``health.error`` check instead of killing the watcher."""
    th = thresholds or Thresholds()
    iv = intervals or Intervals()
    now = snapshot.taken_at if now is None else now
    ctx = context if context is not None else RunContext()
    snap = snapshot
    stale = stale_probes(snap, iv, now)
    checks: list[CheckResult] = [check_link(snap, now)]
    alive = None

    def guarded(name, fn):
        try:
            res = fn()
        except Exception as exc:  # noqa: BLE001 - one bad input must not silence every check
            log.exception("health check %s failed", name)
            checks.append(verdict(f"health.error:{name}", State.UNKNOWN,
                                  f"health check {name} failed: {type(exc).__name__}",
                                  reason=Reason.PROBE_ERROR))
            return None
        if isinstance(res, CheckResult):
            checks.append(res)
        elif res:
            checks.extend(res)
        return res

    def track():
        nonlocal alive
        alive = track_run(snap, ctx, now, fresh="jobs" not in stale)
        ingest_metrics(snap, ctx, th, now)

    guarded("run", track)
    guarded("gpu", lambda: check_gpus(snap, th, iv, now, job_running=alive,
                                      run_started_at=ctx.run_started_at))
    ckpt_dir = ctx.checkpoint_dir or (snap.checkpoints.path if snap.checkpoints else None)
    ckpt_size = _checkpoint_size(snap, ctx)
    guarded("disk", lambda: judged(ctx, "disk", (snap.disks, snap.disk_errors, th, ckpt_size, ckpt_dir),
                                   lambda: check_disks(snap, th, checkpoint_size=ckpt_size,
                                                       checkpoint_dir=ckpt_dir)))
    guarded("memory", lambda: check_memory(snap, th, ctx, now))
    guarded("jobs", lambda: judged(ctx, "jobs", (snap.slurm, snap.ray, snap.tmux),
                                   lambda: check_jobs(snap)))
    guarded("loss", lambda: check_loss(ctx, th, now))
    guarded("grad_norm", lambda: judged(ctx, "grad_norm", (snap.metrics, th),
                                        lambda: check_grad_norm(snap, th)))
    guarded("checkpoint", lambda: check_checkpoint_age(snap, th, ctx, now, alive))
    guarded("log", lambda: check_log_silent(snap, th, ctx, now, alive))
    guarded("run.ended", lambda: check_run_ended(snap, th, ctx, now, alive))
    guarded("script", lambda: check_script_edited(ctx, now, alive))
    unique: dict[str, CheckResult] = {}
    for c in mark_stale(checks, stale):
        unique.setdefault(c.key, c)
    return tuple(unique.values())


def judged(ctx: RunContext, name: str, inputs: tuple, judge):
    """``judge()``, or what it returned last time for these very ``inputs``.

    For checks that are pure functions of their inputs (no clock, no context): the disk checks of
    a disk sample, the job checks of a jobs round, the grad-norm check of the metric points. The
    watcher keeps a probe's sample as the same tuple until that probe's next round (the metric
    points until a new one is parsed), and a view is refreshed with every GPU sample, so most
    refreshes would judge the same disks, jobs and points again. Inputs are compared by
    identity: the memo holds them, so an object cannot be freed and its address reused by a new
    one; an equal but distinct input is merely judged again.
    """
    memo = ctx.judged.get(name)
    if memo is not None:
        old, out = memo
        if len(old) == len(inputs):
            for a, b in zip(old, inputs):  # a loop, not all(<genexpr>): 4 calls per refresh
                if a is not b:
                    break
            else:
                return out
    out = judge()
    ctx.judged[name] = (inputs, out)
    return out


def _checkpoint_size(snap: HostSnapshot, ctx: RunContext) -> int | None:
    if ctx.checkpoint_size_bytes:
        return int(ctx.checkpoint_size_bytes)
    listing = snap.checkpoints
    if listing is None or not listing.exists:
        return None
    newest = listing.newest
    return newest.size if newest is not None and newest.size else None


def host_state(checks) -> tuple[State, Reason | None]:
    """A host's state is its worst check; an UNKNOWN host says why (the link's reason first,
    since an unreachable box explains every other unknown)."""
    checks = list(checks)
    state = worst([c.state for c in checks])
    unknown_state = State.UNKNOWN
    if state is not unknown_state:
        return state, None
    unknown = [c for c in checks if c.state is unknown_state]
    link = [c for c in unknown if c.key == "link"]
    pick = (link or unknown)[0]
    return state, pick.reason or Reason.PROBE_ERROR


def _label(state: State, reason: Reason | None) -> str:
    return f"{state.value} ({reason.value})" if state is State.UNKNOWN and reason else state.value


class HealthEngine:
    """Debounces raw verdicts per host and turns changes into events."""

    def __init__(self, thresholds: Thresholds | None = None, intervals: Intervals | None = None):
        self.thresholds = thresholds or Thresholds()
        self.intervals = intervals or Intervals()
        self._hosts: dict[str, Debouncer] = {}

    def update(self, host: str, raw_checks, now: float) -> tuple[tuple[CheckResult, ...], list[Event]]:
        deb = self._hosts.get(host)
        if deb is None:
            deb = self._hosts[host] = Debouncer(self.thresholds)
        checks, alerts = deb.feed(raw_checks, now)
        events = []
        for a in alerts:
            old = _label(a.old, a.old_reason) if a.old is not None else "new"
            new = _label(a.new, a.result.reason)
            note = f" ({a.note})" if a.note else ""
            events.append(Event(at=now, host=host, key=a.key, old=a.old, new=a.new,
                                message=f"{a.key}: {old} → {new}{note}: {a.result.summary}"))
        return checks, events

    def assess(self, snapshot: HostSnapshot, context: RunContext, now: float):
        """evaluate + update in one call: (checks, events, host state, reason)."""
        raw = evaluate(snapshot, self.thresholds, self.intervals, now, context=context)
        checks, events = self.update(snapshot.name, raw, now)
        state, reason = host_state(checks)
        return checks, events, state, reason

    def forget(self, host: str) -> None:
        self._hosts.pop(host, None)
