"""Hysteresis, flapping and change-only alerts for one host's checks.

- A check changes state only after the new state held for ``hysteresis_results`` consecutive
  results AND at least ``hysteresis_s`` seconds; the first result ever is taken at once.
- ``flap_changes`` changes within ``flap_window_s`` mark it flapping: its alerts are held until it
  has been stable for ``flap_window_s``, then ONE alert tells the settled state.
- Alerts fire on changes only, measured against the last state a person was told about, so
  OK → STALE → OK says nothing. STALE itself is never alerted: the link or probe check that
  caused it carries the alert; changes into or out of STALE do not count towards flapping
  (a flaky link must not hold back a real CRIT).
- A check that disappears (a mount removed) is dropped quietly.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

from gpudash.health.thresholds import Thresholds
from gpudash.model import CheckResult, State


@dataclass
class Alert:
    """A change worth telling (the engine turns it into a model.Event)."""

    key: str
    old: State | None
    new: State
    result: CheckResult
    note: str = ""


@dataclass
class _Track:
    state: State
    since: float
    result: CheckResult
    alerted: State | None
    pending: State | None = None
    pending_count: int = 0
    pending_since: float = 0.0
    pending_result: CheckResult | None = None
    changes: deque = field(default_factory=deque)
    flapping: bool = False


class Debouncer:
    """Per-host state of every check through hysteresis and flapping."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.th = thresholds or Thresholds()
        self._tracks: dict[str, _Track] = {}

    def feed(self, raw_checks, now: float) -> tuple[tuple[CheckResult, ...], list[Alert]]:
        alerts: list[Alert] = []
        out: list[CheckResult] = []
        seen: set[str] = set()
        for raw in raw_checks:
            if raw.key in seen:
                continue  # one result per key per round
            seen.add(raw.key)
            tr = self._tracks.get(raw.key)
            if tr is None:
                tr = self._tracks[raw.key] = self._first(raw, now, alerts)
            else:
                self._step(tr, raw, now, alerts)
            out.append(self._shown(tr))
        for key in [k for k in self._tracks if k not in seen]:
            del self._tracks[key]  # gone quietly
        return tuple(out), alerts

    # ------------------------------------------------------------------ internals

    def _first(self, raw: CheckResult, now: float, alerts: list[Alert]) -> _Track:
        alerted = None if raw.state is State.STALE else raw.state
        if raw.state not in (State.OK, State.STALE):
            alerts.append(Alert(raw.key, None, raw.state, raw))
        return _Track(state=raw.state, since=now, result=raw, alerted=alerted)

    def _step(self, tr: _Track, raw: CheckResult, now: float, alerts: list[Alert]) -> None:
        th = self.th
        if raw.state is tr.state:
            tr.result = raw
            tr.pending, tr.pending_count, tr.pending_result = None, 0, None
        else:
            if raw.state is tr.pending:
                tr.pending_count += 1
            else:
                tr.pending, tr.pending_count, tr.pending_since = raw.state, 1, now
            tr.pending_result = raw
            if tr.pending_count >= th.hysteresis_results and now - tr.pending_since >= th.hysteresis_s:
                self._flip(tr, raw, now, alerts)
        self._maybe_release(tr, now, alerts)

    def _flip(self, tr: _Track, raw: CheckResult, now: float, alerts: list[Alert]) -> None:
        th = self.th
        old = tr.state
        tr.state, tr.since, tr.result = raw.state, now, raw
        tr.pending, tr.pending_count, tr.pending_result = None, 0, None
        if State.STALE not in (old, raw.state):
            tr.changes.append(now)
        while tr.changes and tr.changes[0] <= now - th.flap_window_s:
            tr.changes.popleft()
        if len(tr.changes) >= th.flap_changes:
            tr.flapping = True
        if tr.flapping or raw.state is State.STALE or raw.state is tr.alerted:
            return  # held, not alerted, or nothing new for a person
        alerts.append(Alert(raw.key, tr.alerted, raw.state, raw))
        tr.alerted = raw.state

    def _maybe_release(self, tr: _Track, now: float, alerts: list[Alert]) -> None:
        if not tr.flapping:
            return
        if now - tr.since < self.th.flap_window_s:  # since: the latest change of any kind
            return
        tr.flapping = False
        tr.changes.clear()
        if tr.state is State.STALE:
            return
        alerts.append(Alert(tr.result.key, tr.alerted, tr.state, tr.result,
                            note=f"settled at {tr.state.value} after flapping"))
        tr.alerted = tr.state

    def _shown(self, tr: _Track) -> CheckResult:
        detail = tr.result.detail
        if tr.pending is not None and tr.pending_result is not None:
            detail = dict(detail, pending=tr.pending.value, pending_summary=tr.pending_result.summary)
        return dataclasses.replace(tr.result, since=tr.since, flapping=tr.flapping, detail=detail)
