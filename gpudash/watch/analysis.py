"""Turns a host's raw samples into judgement: training metrics from the log, triage of the run's
own log (fused with live probes), and health checks through hysteresis. Pure computation: the
watcher feeds it, the view comes out. No I/O, no UI."""

from __future__ import annotations

from collections import deque

from gpudash.model import Event, HostSnapshot, LogChunk, State
from gpudash.training.series import MetricLog
from gpudash.watch.spec import WatchSpec
from gpudash.watch.view import HostView

RAW_TAIL_LINES = 4000  # raw (unsanitised) lines kept for triage and metrics
METRIC_POINTS = 2000
TRIAGE_MIN_GAP_S = 3.0  # re-classify at most this often while the log grows


class HostAnalysis:
    def __init__(self, spec: WatchSpec) -> None:
        from gpudash.health import engine as health_engine

        self.spec = spec
        self.raw_tail: deque[str] = deque(maxlen=RAW_TAIL_LINES)
        self.raw_line_no = 0  # line number of the newest raw line within what we read
        self.metrics = MetricLog(METRIC_POINTS)  # columns, not objects (training/series.py)
        self.progress = None
        self.completion: tuple[int, str] | None = None
        self.wandb_url: str | None = None
        self.triage = None  # the log's verdict fused with the live probes (what views carry)
        self._classified = None  # the log's verdict alone
        self._triage_dirty = False
        self._triage_at = 0.0
        self.triage_gap = TRIAGE_MIN_GAP_S  # the Fleet widens it for big fleets
        self.triage_runs = 0  # times the log was classified (benchmarks count them)
        self._triage_memo = None  # the classifier's per-line memo, made with the first triage
        self.script_mtime: float | None = None
        self.events: deque[Event] = deque(maxlen=1000)
        self.unacked = 0
        self.engine = health_engine.HealthEngine(self._thresholds(), self._intervals())
        self.context = health_engine.RunContext()
        self._configure_context()

    # ------------------------------------------------------------------ log

    def reset_log(self) -> None:
        self.raw_tail.clear()
        self.raw_line_no = 0
        self.metrics.clear()
        self.progress = None
        self.completion = None
        self._triage_dirty = True

    def feed_log(self, lines, chunk: LogChunk, now: float) -> None:
        from gpudash.training import metrics as tm

        raws = [getattr(line, "raw", line) for line in lines]
        if not raws:
            return
        first_no = self.raw_line_no + 1
        self.raw_line_no += len(raws)
        self.raw_tail.extend(raws)
        # only the points the buffer can keep: from the end of a big read, as far back as needed
        self.metrics.extend(tm.parse_metrics(raws, start_line_no=first_no, newest=self.metrics.cap), at=now)
        prog = tm.parse_progress(raws)
        if prog is not None:
            self.progress = prog
        done = tm.completion_line("\n".join(raws), extra=self.spec.completion_lines)
        if done is not None:
            self.completion = done
        if self.wandb_url is None:
            self.wandb_url = tm.find_wandb_url("\n".join(raws))
        self._triage_dirty = True

    def metrics_view(self):
        """The metric points as one immutable sequence, the same object until a point is added
        or the log is reset: every refresh's snapshot carries it (up to 2,000 points), and
        checks that depend only on it are judged again only when it changes
        (health.engine.judged)."""
        return self.metrics.view()

    def _maybe_triage(self, snap: HostSnapshot, now: float) -> None:
        if self._triage_dirty and now - self._triage_at >= self.triage_gap:
            from gpudash.triage.classifier import ScanMemo, classify_lines

            self._triage_dirty = False
            self._triage_at = now
            self.triage_runs += 1
            if self._triage_memo is None:
                self._triage_memo = ScanMemo()
            # the same tail again with a few new lines: the memo searches only those (and
            # holds the tail's own strings, not copies)
            self._classified = classify_lines(self.raw_tail, source=snap.log_path or "",
                                              memo=self._triage_memo)
        # Live facts change every round: fuse them into the log's verdict afresh each time
        # (fusing an already fused result would stack its notes).
        if self._classified is not None:
            self.triage = self._fuse(self._classified, snap)

    def _fuse(self, result, snap: HostSnapshot):
        try:
            from gpudash.triage.fusion import fuse, facts_from_snapshot
        except ImportError:
            return result
        return fuse(result, facts_from_snapshot(snap, self.context, self.engine.thresholds))

    # ------------------------------------------------------------------ view

    def view(self, snap: HostSnapshot, *, paused: bool, now: float, history_note: str = "",
             restarts: int | None = None) -> HostView:
        from gpudash.health import engine as health_engine

        self._maybe_triage(snap, now)
        ctx = self.context
        ctx.completion_seen = self.completion is not None
        ctx.marker_seen = any(m.exists for m in snap.markers)
        ctx.script_mtime = self.script_mtime
        raw = health_engine.evaluate(snap, self.engine.thresholds, self.engine.intervals, now,
                                     context=ctx)
        checks, events = self.engine.update(snap.name, raw, now)
        triage_cls = getattr(self.triage, "cls", None)
        for ev in events:
            if ev.new in (State.CRIT, State.WARN) and triage_cls not in (None, "none", "completed"):
                ev = Event(ev.at, ev.host, ev.key, ev.old, ev.new, ev.message, triage_cls)
            self.events.append(ev)
            if ev.new in (State.WARN, State.CRIT):
                self.unacked += 1
        state, reason = health_engine.host_state(checks)
        return HostView(
            snapshot=snap,
            state=state,
            reason=reason,
            checks=checks,
            triage=self.triage,
            # a pure function of the jobs round's samples: judged again only when they change
            job_summary=health_engine.judged(
                ctx, "job_summary", (snap.slurm, snap.ray, snap.tmux, bool(snap.processes)),
                lambda: health_engine.summarize_jobs(snap)),
            alerts_unacked=self.unacked,
            paused=paused,
            notes=self.spec.notes,
            labels=self.spec.labels,
            history_note=history_note,
            wandb_url=self.wandb_url,
            restarts=restarts,
        )

    def drain_events(self) -> list[Event]:
        out = list(self.events)
        self.events.clear()
        return out

    # ------------------------------------------------------------------ config

    def _thresholds(self):
        from gpudash.health.thresholds import Thresholds

        return self.spec.thresholds if self.spec.thresholds is not None else Thresholds()

    def _intervals(self):
        from gpudash.health.thresholds import Intervals

        c = self.spec.cadence
        return Intervals(gpu=c.gpu, log=c.log_slowest, disk=c.disk, memory=c.memory, jobs=c.jobs,
                         files=c.files, ray=c.ray, stale_after=c.stale_after)

    def _configure_context(self) -> None:
        ctx = self.context
        for name, value in (
            ("expected_duration_s", self.spec.expected_duration_s),
            ("checkpoint_size_bytes", self.spec.checkpoint_size_bytes),
        ):
            if value is not None and hasattr(ctx, name):
                setattr(ctx, name, value)
