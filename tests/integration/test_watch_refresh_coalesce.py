"""The loops' view refreshes are coalesced: data landing together costs one health + triage
pass, the first view is never held back, and a held-back one still shows the newest data.

A real watcher over the local transport and its real analysis (health, triage) on a real log
read. No timing assertions: counts of views and what they show.
"""

from __future__ import annotations

import asyncio

from gpudash.transport.local import LocalTransport
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import WatchSpec


async def test_bursts_cost_one_refresh_now_and_one_at_the_window_end(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("step 1\n")
    t = LocalTransport()
    w = HostWatcher(WatchSpec(name="b", transport="local", log=str(log)), t)
    views = []
    w.subscribe(views.append)
    try:
        await asyncio.wait_for(w.round("log"), 60)
        w._refresh_soon()
        assert len(views) == 1  # the first view at once
        assert views[0].snapshot.log_lines[-1:] == ("step 1",)
        # New state in the same window (no await in between, so no time passes to speak of):
        # no refresh now, one pending, and only one.
        w.paused = True
        for _ in range(5):
            w._refresh_soon()
        assert len(views) == 1
        async with asyncio.timeout(30):
            while len(views) < 2:
                await asyncio.sleep(0.02)
        assert views[1].paused  # the newest state, not the one of the first call
        assert w._refresh_handle is None
        # An explicit refresh() (status, the UI) is immediate and absorbs a pending one.
        w._refresh_soon()
        n = len(views)
        w.refresh()
        assert len(views) == n + 1 and w._refresh_handle is None
    finally:
        await t.close()
