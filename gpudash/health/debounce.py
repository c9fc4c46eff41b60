"""Hysteresis, flapping and change-only alerts for one host's checks.

- A check changes state only after the new state held for ``hysteresis_results`` consecutive
  results AND at least ``hysteresis_s`` seconds; the first result ever is taken at once.
- ``flap_changes`` changes within ``flap_window_s`` mark it flapping: its alerts are held until it
  has been stable for ``flap_stable_s``, then ONE alert tells the settled state.
- Alerts fire on changes only, measured against the last state a person was told about, so
  OK → STALE → OK says nothing. STALE itself is never alerted: the link or probe check that
  caused it carries the alert; changes into or out of STALE do not count towards flapping
  (a flaky link must not hold back a real CRIT).
- An UNKNOWN whose reason changes (unreachable → host_key_changed) is a change too.
- A check that disappears (a mount removed) is dropped quietly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gpudash.health.thresholds import Thresholds
from gpudash.model import CheckResult, Reason, State


# What the debouncer tracks: the state, plus the reason when UNKNOWN, because
# UNKNOWN(unreachable) → UNKNOWN(host_key_changed) is news a person must get.
Ident = tuple  # (State, Reason | None)


# looked up once: on Python 3.11 an enum member's lookup costs ~0.5 µs, and `feed` runs for every
# check of every host on each refresh
_UNKNOWN = State.UNKNOWN


def ident(c: CheckResult) -> Ident:
    return (c.state, c.reason if c.state is _UNKNOWN else None)


@dataclass
class Alert:
    """A change worth telling (the engine turns it into a model.Event)."""

    key: str
    old: State | None
    new: State
    result: CheckResult
    note: str = ""
    old_reason: Reason | None = None


@dataclass
class _Track:
    shown: Ident
    since: float
    result: CheckResult
    alerted: Ident | None
    pending: Ident | None = None
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
        tracks = self._tracks
        for raw in raw_checks:
            key = raw.key
            if key in seen:
                continue  # one result per key per round
            seen.add(key)
            tr = tracks.get(key)
            if tr is None:
                tr = tracks[key] = self._first(raw, now, alerts)
            elif (not tr.flapping and tr.pending is None and raw.state is tr.shown[0]
                  and (raw.state is not _UNKNOWN or raw.reason is tr.shown[1])):
                tr.result = raw  # the usual round: the shown state again, nothing pending
            else:
                self._step(tr, raw, now, alerts)
            out.append(self._shown(tr))
        if len(tracks) != len(seen):
            for key in [k for k in tracks if k not in seen]:
                del tracks[key]  # gone quietly
        return tuple(out), alerts

    # ------------------------------------------------------------------ internals

    def _first(self, raw: CheckResult, now: float, alerts: list[Alert]) -> _Track:
        new = ident(raw)
        alerted = None if raw.state is State.STALE else new
        if raw.state not in (State.OK, State.STALE):
            alerts.append(Alert(raw.key, None, raw.state, raw))
        return _Track(shown=new, since=now, result=raw, alerted=alerted)

    def _step(self, tr: _Track, raw: CheckResult, now: float, alerts: list[Alert]) -> None:
        th = self.th
        new = ident(raw)
        if new == tr.shown:
            tr.result = raw
            tr.pending, tr.pending_count, tr.pending_result = None, 0, None
        else:
            if new == tr.pending:
                tr.pending_count += 1
            else:
                tr.pending, tr.pending_count, tr.pending_since = new, 1, now
            tr.pending_result = raw
            if tr.pending_count >= th.hysteresis_results and now - tr.pending_since >= th.hysteresis_s:
                self._flip(tr, raw, now, alerts)
        self._maybe_release(tr, now, alerts)

    def _flip(self, tr: _Track, raw: CheckResult, now: float, alerts: list[Alert]) -> None:
        th = self.th
        old, new = tr.shown, ident(raw)
        tr.shown, tr.since, tr.result = new, now, raw
        tr.pending, tr.pending_count, tr.pending_result = None, 0, None
        if State.STALE not in (old[0], new[0]):
            tr.changes.append(now)
        while tr.changes and tr.changes[0] <= now - th.flap_window_s:
            tr.changes.popleft()
        if len(tr.changes) >= th.flap_changes:
            tr.flapping = True
        if tr.flapping or raw.state is State.STALE or new == tr.alerted:
            return  # held, not alerted, or nothing new for a person
        self._alert(tr, raw, alerts)

    def _alert(self, tr: _Track, raw: CheckResult, alerts: list[Alert], note: str = "") -> None:
        old_state, old_reason = tr.alerted if tr.alerted is not None else (None, None)
        alerts.append(Alert(raw.key, old_state, raw.state, raw, note=note, old_reason=old_reason))
        tr.alerted = ident(raw)

    def _maybe_release(self, tr: _Track, now: float, alerts: list[Alert]) -> None:
        if not tr.flapping:
            return
        if now - tr.since < self.th.flap_stable_s:  # since: the latest change of any kind
            return
        tr.flapping = False
        tr.changes.clear()
        if tr.shown[0] is State.STALE:
            return
        self._alert(tr, tr.result, alerts, note=f"settled at {tr.shown[0].value} after flapping")

    def _shown(self, tr: _Track) -> CheckResult:
        detail = tr.result.detail
        if tr.pending is not None and tr.pending_result is not None:
            detail = dict(detail, pending=tr.pending[0].value,
                          pending_summary=tr.pending_result.summary)
        r = tr.result
        if r.since == tr.since and r.flapping == tr.flapping and detail is r.detail:
            return r
        # the constructor, not dataclasses.replace: this runs for every check of every host on
        # every refresh, and replace() costs ~5x as much (field introspection per call)
        return CheckResult(r.key, r.state, r.summary, r.reason, tr.flapping, tr.since, detail)
