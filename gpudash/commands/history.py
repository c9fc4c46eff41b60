"""History and alert routing around a Fleet, shared by `watch` (the TUI) and `status`.

The store is optional by design: a locked or broken history file must never stop the
dashboard, so any StoreError leaves the fleet running without history (and says so once).
"""

from __future__ import annotations

import sys


def attach_history(fleet, config, *, screen=None, writer=None, use_store: bool = True):
    """Open the store, restore every watcher (sparklines, log offsets), subscribe store and
    notifier to the fleet. Returns (store | None, notifier)."""
    from gpudash.notify.notifier import Notifier

    store = None
    if use_store:
        from gpudash.store.store import Store, StoreError
        from gpudash.store.wiring import attach_fleet, gap_summary, restore_watcher

        try:
            store = Store.open()
        except (StoreError, OSError) as exc:
            print(f"gpudash: history disabled: {exc}", file=sys.stderr)
            store = None
        if store is not None:
            for w in fleet.watchers.values():
                restore_watcher(w, store)
                note = gap_summary(store, w.spec.name)
                if note:
                    w.history_note = note
                w.analysis.unacked = store.unacked(w.spec.name)
    alerts = getattr(config, "alerts", None) if config is not None else None
    notifier = Notifier(alerts, store, screen=screen, writer=writer)
    if store is not None:
        attach_fleet(fleet, store, notifier)
    else:
        fleet.subscribe(lambda view: None, notifier.submit)
    return store, notifier


async def close_history(store, notifier) -> None:
    if notifier is not None:
        await notifier.drain()
    if store is not None:
        store.close()
