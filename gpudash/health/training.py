"""Training health over time: run tracking (alive, gone, restarted), phases, loss and grad norm,
checkpoint age, a silent log (stalled vs block-buffered stdout), how the run ended, and a script
edited under a live run.

``track_run`` and ``ingest_metrics`` update the RunContext; the ``check_*`` functions only read.
"""

from __future__ import annotations

from gpudash.health.context import EARLY_HEAD, Phase, RunContext
from gpudash.health.jobs_summary import (
    COMPLETED,
    RUNNING,
    job_category,
    run_alive,
    run_start,
)
from gpudash.health.thresholds import Thresholds
from gpudash.health.verdict import FILES, JOBS, LOG, age, clock, finite, improvement, mean, verdict
from gpudash.model import CheckResult, HostSnapshot, Reason, State

RESTART_TOLERANCE_S = 5.0  # ps start times derived from elapsed seconds jitter by a second or two
SCRIPT_SLACK_S = 1.0


# ----------------------------------------------------------------------------- run tracking


def track_run(snap: HostSnapshot, ctx: RunContext, now: float, *, fresh: bool) -> bool | None:
    """Note the run alive, gone or restarted. Only fresh jobs data may end a run: a dropped link
    or a stale probe never declares the job dead."""
    alive = run_alive(snap)
    if not fresh:
        return alive
    if alive is True:
        start = run_start(snap)
        if start is not None and ctx.proc_start is not None \
                and abs(start - ctx.proc_start) > RESTART_TOLERANCE_S:
            ctx.restarts += 1  # a new process: a restart resets the phases
            ctx.reset_run(started_at=start)
        if ctx.proc_start is None:
            ctx.proc_start = start
        if ctx.run_started_at is None:
            ctx.run_started_at = start
        ctx.seen_alive = True
        ctx.ended_at = None
    elif alive is False and ctx.seen_alive and ctx.ended_at is None:
        ctx.ended_at = now
    return alive


def ingest_metrics(snap: HostSnapshot, ctx: RunContext, th: Thresholds, now: float) -> None:
    """Fold the metric points not seen before into the context (the watcher's buffer is bounded
    and rolls; the context keeps what two patrol windows and the first 100 steps need)."""
    pts = snap.metrics
    start = len(pts) if pts is ctx.ingested else 0
    if start == 0 and ctx.last_point is not None:
        for j in range(len(pts) - 1, -1, -1):
            if pts[j] == ctx.last_point:
                start = j + 1
                break
        # not found: the buffer rolled past it (or the log was reset): everything left is new
    any_step = False
    for p in pts[start:]:
        step = p.step if isinstance(p.step, int) and not isinstance(p.step, bool) else None
        if step is not None:
            any_step = True
            _note_step(ctx, step)
        if p.loss is None:
            continue
        if not finite(p.loss):
            if ctx.nonfinite_loss is None:
                ctx.nonfinite_loss = p
            continue
        t = p.at if finite(p.at) else now
        ctx.loss_samples.append(t, float(p.loss))
        if ctx.early_eligible is None:
            # Only a run watched from its start has "first 100 logged steps" to judge.
            if step is not None:
                ctx.early_eligible = step < th.close_watch_steps
            else:
                ctx.early_eligible = p.line_no is not None and p.line_no <= th.close_watch_steps
        if ctx.early_eligible and ctx.early_count < th.loss_early_steps:
            ctx.early_count += 1
            if len(ctx.early_losses) < EARLY_HEAD:
                ctx.early_losses.append(float(p.loss))
    if pts and start < len(pts):
        ctx.last_point = pts[-1]
    ctx.ingested = pts
    if not any_step and ctx.max_step is None and snap.progress is not None:
        _note_step(ctx, snap.progress.current)  # no step in the metrics: the progress counter
    horizon = now - (th.loss_flat_windows + 0.5) * th.patrol_window_s
    ctx.loss_samples.drop_before(horizon)
    _update_phase(ctx, th)


def _note_step(ctx: RunContext, step: int) -> None:
    if ctx.base_step is None:
        ctx.base_step = step
    ctx.max_step = step if ctx.max_step is None else max(ctx.max_step, step)


def _update_phase(ctx: RunContext, th: Thresholds) -> None:
    if ctx.phase is Phase.PATROL or ctx.max_step is None or ctx.base_step is None:
        return
    # After an observed restart (a resume from a checkpoint) the close watch counts from where the
    # new process began; a run we merely attached to mid-way is counted from step 0.
    origin = ctx.base_step if ctx.restarts else 0
    if ctx.max_step - origin >= th.close_watch_steps:
        ctx.phase = Phase.PATROL


# ----------------------------------------------------------------------------- metrics checks


def check_loss(ctx: RunContext, th: Thresholds, now: float) -> CheckResult | None:
    bad = ctx.nonfinite_loss
    if bad is not None:
        where = f" at step {bad.step}" if bad.step is not None else ""
        line = f" (log line {bad.line_no})" if bad.line_no is not None else ""
        return verdict("loss", State.CRIT, f"loss was {bad.loss}{where}{line}: the run diverged — "
                       "lower the LR, clip gradients, check the data", (LOG,), step=bad.step)
    if not ctx.loss_samples:
        return None
    latest = ctx.loss_samples[-1][1]
    n_early = th.loss_early_steps
    if n_early >= 2 and ctx.early_count >= n_early:  # (the config refuses < 2: nothing to compare)
        # first k early losses vs the newest k: k = 10 for the default 100, fewer for a short N
        # (k <= N/2 when N >= 2, so the two means never start out as the same points)
        k = max(1, min(EARLY_HEAD, n_early // 10))
        recent = ctx.loss_samples.newest_values(k)
        first = mean(ctx.early_losses[:k])
        last = mean(recent)
        if first is not None and last is not None \
                and improvement(first, last) < th.loss_flat_pct / 100:
            return verdict("loss", State.WARN, f"loss not falling over the first {n_early} "
                           f"logged steps (mean {first:.4g} → {last:.4g})", (LOG,),
                           kind="not_falling")
    if ctx.phase is Phase.PATROL:
        flat = _plateau(ctx, th, now)
        if flat is not None:
            return flat
    step = f" at step {ctx.max_step}" if ctx.max_step is not None else ""
    return verdict("loss", State.OK, f"loss {latest:.4g}{step} ({ctx.phase.value.replace('_', ' ')})",
                   (LOG,), latest=latest)


def _plateau(ctx: RunContext, th: Thresholds, now: float) -> CheckResult | None:
    """WARN when, over ``loss_flat_windows`` patrol windows, the windowed mean improved less than
    ``loss_flat_pct``: the newest window's mean against the oldest one's (2: the window before)."""
    w = th.patrol_window_s
    n = th.loss_flat_windows
    samples = ctx.loss_samples
    if w <= 0 or n < 2 or not samples or samples[0][0] > now - n * w + 0.1 * w:
        return None  # less than n windows of history: no verdict
    cur = samples.values_in(now - w, now)
    old_end = now - (n - 1) * w
    prev = samples.values_in(old_end - w, old_end)
    if len(cur) < 2 or len(prev) < 2:
        return None
    a, b = mean(prev), mean(cur)
    if a is None or b is None:
        return None
    imp = improvement(a, b)
    if imp < th.loss_flat_pct / 100:
        before = f"the {age(w)} before" if n == 2 else f"in the window {age((n - 1) * w)} earlier"
        return verdict("loss", State.WARN, f"loss flat: mean {b:.4g} over the last {age(w)} vs "
                       f"{a:.4g} {before} ({-100 * imp:+.1f}%)", (LOG,), kind="plateau",
                       improvement=imp)
    return None


GRAD_NORM_LOOKBACK = 200  # a run that logs grad norms logs them on most metric lines


def check_grad_norm(snap: HostSnapshot, th: Thresholds) -> CheckResult | None:
    from gpudash.training.series import values

    pts = snap.metrics[-GRAD_NORM_LOOKBACK:]
    grads = values(pts, "grad_norm")  # from the columns: no point object per look
    for k in range(len(grads) - 1, -1, -1):
        g = grads[k]
        if g is None:
            continue
        p = pts[k]
        where = f" at step {p.step}" if p.step is not None else ""
        if not finite(g):
            return verdict("grad_norm", State.CRIT, f"grad norm {g}{where}: gradients blew up",
                           (LOG,), step=p.step)
        if g > th.grad_norm_warn:
            return verdict("grad_norm", State.WARN, f"grad norm {g:.4g}{where} (warn above "
                           f"{th.grad_norm_warn:g})", (LOG,), value=g)
        return verdict("grad_norm", State.OK, f"grad norm {g:.4g}{where}", (LOG,), value=g)
    return None


# ----------------------------------------------------------------------------- run checks


def _newest_checkpoint_mtime(snap: HostSnapshot) -> float | None:
    listing = snap.checkpoints
    if listing is None or not listing.exists:
        return None
    newest = listing.newest
    return newest.mtime if newest is not None and finite(newest.mtime) else None


def check_checkpoint_age(snap: HostSnapshot, th: Thresholds, ctx: RunContext, now: float,
                         alive: bool | None) -> CheckResult | None:
    if snap.checkpoints is None:
        return None
    probes = (FILES, JOBS)
    limit = th.checkpoint_age_warn_s
    mtime = _newest_checkpoint_mtime(snap)
    if alive is False:
        return verdict("checkpoint.age", State.OK, "run not running: checkpoint age not judged",
                       probes)
    if mtime is None:
        started = ctx.run_started_at
        if alive and started is not None and now - started > limit:
            return verdict("checkpoint.age", State.WARN, f"no checkpoint yet, and the run started "
                           f"{age(now - started)} ago (warn after {age(limit)})", probes)
        return verdict("checkpoint.age", State.OK, "no checkpoint yet", probes)
    old = now - mtime
    if old > limit:
        return verdict("checkpoint.age", State.WARN, f"newest checkpoint is {age(old)} old (warn "
                       f"after {age(limit)})", probes, age_s=old)
    return verdict("checkpoint.age", State.OK, f"newest checkpoint {age(old)} old", probes,
                   age_s=old)


def check_log_silent(snap: HostSnapshot, th: Thresholds, ctx: RunContext, now: float,
                     alive: bool | None) -> CheckResult | None:
    probes = (LOG, JOBS)
    if snap.log_error:
        low = snap.log_error.lower()
        reason = Reason.NOT_FOUND if ("no such file" in low or "missing" in low) else Reason.PROBE_ERROR
        return verdict("log.silent", State.UNKNOWN, f"run log unreadable: {snap.log_error}",
                       probes, reason=reason)
    if snap.log_path is None:
        return None
    if alive is not True:
        return verdict("log.silent", State.OK, "the run is not live: log silence not judged",
                       probes)
    refs = [t for t in (snap.log_grew_at, ctx.run_started_at) if finite(t)]
    if not refs:
        return verdict("log.silent", State.OK, "no log growth seen yet", probes)
    ref = max(refs)
    silent = now - ref
    close = ctx.phase is Phase.CLOSE_WATCH
    limit = th.log_silent_close_watch_s if close else th.log_silent_warn_s
    if silent < limit:
        return verdict("log.silent", State.OK, f"log grew {age(silent)} ago", probes,
                       silent_s=silent)
    ck = _newest_checkpoint_mtime(snap)
    if ck is not None and ck > ref:
        return verdict("log.silent", State.WARN,
                       f"log silent for {age(silent)} but a checkpoint landed {age(now - ck)} ago: "
                       "block-buffered stdout (use python -u / PYTHONUNBUFFERED=1)",
                       probes, kind="block_buffered", silent_s=silent)
    phase = " in the close-watch phase" if close else ""
    return verdict("log.silent", State.WARN,
                   f"log silent for {age(silent)} while the process lives{phase} — stalled?",
                   probes, kind="stalled", silent_s=silent)


def _scheduler_word(snap: HostSnapshot) -> str:
    for j in snap.slurm:
        if job_category(j.state, "slurm") == COMPLETED:
            return f" (Slurm says {j.state}, but exit 0 is not a completion)"
    for r in snap.ray:
        if job_category(r.status, "ray") == COMPLETED:
            return f" (Ray says {r.status}, but that is not a completion line)"
    return ""


def check_run_ended(snap: HostSnapshot, th: Thresholds, ctx: RunContext, now: float,
                    alive: bool | None) -> CheckResult | None:
    probes = (JOBS,)
    if alive is None:
        return None
    completed = ctx.completion_seen or ctx.marker_seen or any(m.exists for m in snap.markers)
    started = ctx.run_started_at
    if alive:
        ran = f" for {age(now - started)}" if started is not None else ""
        return verdict("run.ended", State.OK, f"running{ran}", probes, category=RUNNING)
    if not ctx.seen_alive:
        if completed:
            return verdict("run.ended", State.OK, "run completed (its end was seen after the fact)",
                           probes, category=COMPLETED)
        return None  # nothing was ever seen running: nothing ended
    if not completed:
        return verdict("run.ended", State.CRIT,
                       "the run's process is gone with neither a completion line nor a marker"
                       f"{_scheduler_word(snap)} — see triage", probes, category="failed")
    ended = ctx.ended_at if ctx.ended_at is not None else now
    dur = ended - started if started is not None else None
    exp = ctx.expected_duration_s
    frac = th.early_end_fraction
    if dur is not None and finite(exp) and exp > 0 and dur < exp * frac:
        under = "half" if frac == 0.5 else f"{100 * frac:g}% of"
        return verdict("run.ended", State.WARN, f"run ended after {age(dur)}, under {under} its "
                       f"expected {age(exp)} — probable failure", probes, category=COMPLETED,
                       duration_s=dur)
    took = f" after {age(dur)}" if dur is not None else ""
    return verdict("run.ended", State.OK, f"run completed{took}", probes, category=COMPLETED)


def check_script_edited(ctx: RunContext, now: float, alive: bool | None) -> CheckResult | None:
    mtime, start = ctx.script_mtime, ctx.run_started_at
    if not finite(mtime) or not finite(start):
        return None
    probes = (JOBS,)
    name = (ctx.script_path or "the training script").rsplit("/", 1)[-1]
    if alive is True and mtime > start + SCRIPT_SLACK_S:
        return verdict("script.edited", State.WARN,
                       f"{name} changed at {clock(mtime)}, after the run started at {clock(start)} — "
                       "edited under a live run: the next launch will differ", probes,
                       mtime=mtime)
    return verdict("script.edited", State.OK, f"{name} unchanged since the run started", probes)

