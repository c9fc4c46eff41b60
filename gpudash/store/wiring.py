"""Connecting the history to the watchers, without the watchers knowing about it.

``restore_watcher`` runs once per host before the watcher starts (sparklines, log read position);
``attach_fleet`` subscribes the store (and optionally a Notifier) to a Fleet's views and events;
``gap_summary`` is the "not watched 23:10–07:42; meanwhile: …" line for the host view and
``status``.
"""

from __future__ import annotations

import time
from collections import deque

from gpudash.store.journal import JournalEntry
from gpudash.store.store import Store


def restore_watcher(watcher, store: Store, *, now: float | None = None,
                    window_s: float | None = None) -> dict:
    """Fill a not-yet-started HostWatcher from history: the GPU util/mem ring buffers with the
    samples of the last ``window_s`` (default: what the buffers hold at the GPU cadence) and the
    log read position, so the first log read fetches exactly the bytes written since the last
    session (bounded by the watcher's per-read cap, which reports what it skipped).

    Returns ``{"points": n, "log": position dict or None}``."""
    from gpudash.watch.host import HISTORY

    now = time.time() if now is None else now
    host = watcher.spec.name
    if window_s is None:
        window_s = HISTORY * max(0.5, float(watcher.spec.cadence.gpu))
    hist = store.history(host, since=now - window_s, until=now)
    points = 0
    for name, target in (("gpu_util", watcher.util_hist), ("gpu_mem", watcher.mem_hist)):
        for idx, series in hist[name].items():
            if not isinstance(idx, int):
                continue
            buf = target.setdefault(idx, deque(maxlen=HISTORY))
            old = list(buf)
            buf.clear()
            buf.extend([v for _, v in series] + old)
            points += len(series)
    pos = store.log_position(host)
    restored = None
    if pos is not None and (watcher.spec.log is None or pos["path"] == watcher.spec.log):
        # A configured log must match; a discovered one is taken back until discovery says
        # otherwise (the watcher then resets to the new file).
        watcher.log_path = pos["path"]
        watcher.log_offset = int(pos["offset"])
        watcher.log_inode = pos["inode"]
        restored = pos
    return {"points": points, "log": restored}


def attach_fleet(fleet, store: Store, notifier=None) -> None:
    """Persist every view (samples, jobs, cleared checks, log position) and route every event:
    through ``notifier.submit`` (which claims it in the store, so two instances never both
    notify) or, without a notifier, claimed into the journal directly."""

    def on_view(view) -> None:
        store.record_samples(view.name, view.snapshot)
        store.observe_checks(view.name, view.checks)
        w = getattr(fleet, "watchers", {}).get(view.name)
        if w is not None and w.log_path and w.log_started:
            store.save_log_position(view.name, w.log_path, w.log_offset, w.log_inode)

    def on_event(event) -> None:
        if notifier is not None:
            notifier.submit(event)
        else:
            # claimed, not just recorded: a restarted engine re-reports conditions that still
            # hold, and the journal must not list them twice
            store.claim_alert(event)

    fleet.subscribe(on_view, on_event)


def _hm(t: float) -> str:
    return time.strftime("%H:%M", time.localtime(t))


def gap_summary(store: Store, host: str, *, now: float | None = None, max_items: int = 5) -> str | None:
    """"not watched 23:10–07:42; meanwhile: …" — None when there was no gap and nothing new."""
    gap = store.unwatched_gap(host, now=now)
    entries: list[JournalEntry] = store.since_you_last_looked(host, now=now)
    if gap is None and not entries:
        return None
    parts = []
    if gap is not None:
        parts.append(f"not watched {_hm(gap[0])}–{_hm(gap[1])}")
    if entries:
        shown = [e.message for e in entries[-max_items:]]
        more = len(entries) - len(shown)
        parts.append("meanwhile: " + "; ".join(shown) + (f" (+{more} more)" if more > 0 else ""))
    return "; ".join(parts)
