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


async def test_a_big_fleet_rebuilds_each_view_at_most_once_per_gpu_interval(tmp_path):
    """Past BIG_FLEET hosts a view burst is held to the GPU interval (a log growing every second
    costs one health pass per host per GPU sample, not one per line burst), and the log is
    re-classified at most every 5 GPU intervals."""
    from gpudash.watch.fleet import Fleet
    from gpudash.watch.host import BIG_FLEET, REFRESH_WINDOW
    from gpudash.watch.spec import Cadence

    def fleet_of(n: int) -> Fleet:
        specs = [WatchSpec(name=f"h{i}", transport="local", cadence=Cadence(gpu=2.0)) for i in range(n)]
        return Fleet(specs, transports={s.name: LocalTransport() for s in specs})

    small, big = fleet_of(3), fleet_of(BIG_FLEET + 1)
    from gpudash.watch.analysis import TRIAGE_MIN_GAP_S

    assert {w.refresh_window for w in small.watchers.values()} == {REFRESH_WINDOW}
    assert {w.analysis.triage_gap for w in small.watchers.values()} == {TRIAGE_MIN_GAP_S}
    assert {w.refresh_window for w in big.watchers.values()} == {2.0}
    assert {w.analysis.triage_gap for w in big.watchers.values()} == {10.0}
    assert {w.follow_interval for w in small.watchers.values()} == {0.0}
    assert {w.follow_interval for w in big.watchers.values()} == {2.0}
    w = big.watchers["h0"]
    views = []
    w.subscribe(views.append)
    loop = asyncio.get_running_loop()
    w._refresh_soon()
    w._refresh_soon()
    assert len(views) == 1 and w._refresh_handle is not None
    # the held-back refresh is scheduled at the end of the GPU interval, not REFRESH_WINDOW's
    assert w._refresh_handle.when() - loop.time() > REFRESH_WINDOW
    w._refresh_handle.cancel()
    for f in (small, big):
        await f.close()


async def test_a_big_fleet_reclassifies_a_growing_log_at_most_every_five_gpu_intervals():
    from gpudash.model import LogChunk
    from gpudash.watch.fleet import Fleet
    from gpudash.watch.host import BIG_FLEET
    from gpudash.watch.spec import Cadence

    now = [1000.0]
    specs = [WatchSpec(name=f"h{i}", transport="local", cadence=Cadence(gpu=2.0))
             for i in range(BIG_FLEET + 1)]
    fleet = Fleet(specs, transports={s.name: LocalTransport() for s in specs}, clock=lambda: now[0])
    w = fleet.watchers["h0"]
    passes = []

    def grow_and_look(t: float) -> None:
        now[0] = t
        line = f"step {int(t)} loss 1.0"
        w.analysis.feed_log([line], LogChunk(path="/x", start=0, end=1, size=1, inode=1, data=b""), t)
        before = w.analysis._triage_at
        w.refresh()
        passes.append(w.analysis._triage_at != before)

    for t in (1000.0, 1002.0, 1004.0, 1008.0, 1010.0, 1012.0):
        grow_and_look(t)
    assert passes == [True, False, False, False, True, False]
    await fleet.close()


async def test_in_a_big_fleet_gpu_samples_time_the_views(tmp_path):
    """A log line landing just before a GPU sample must not take the interval's one refresh and
    leave the sample for the next one (at 1,000 hosts × 1 s, ~1% of samples reached their view
    an interval late): samples refresh at once, other data wait for the next sample, with a
    fallback at 1.5 windows if it does not come."""
    import time

    from gpudash.watch.fleet import Fleet
    from gpudash.watch.host import BIG_FLEET
    from gpudash.watch.spec import Cadence

    specs = [WatchSpec(name=f"h{i}", transport="local", cadence=Cadence(gpu=2.0))
             for i in range(BIG_FLEET + 1)]
    fleet = Fleet(specs, transports={s.name: LocalTransport() for s in specs})
    loop = asyncio.get_running_loop()
    w = fleet.watchers["h0"]
    assert w.gpu_leads and w.refresh_window == 2.0
    views = []
    w.subscribe(views.append)
    try:
        w._refresh_soon(gpu=True)  # the first sample: at once
        assert len(views) == 1
        # 1.9 s later (of a 2 s interval) a log chunk lands while samples flow: it waits for
        # the next sample (fallback at 1.5 windows after the last refresh), not 0.1 s
        w._refreshed_at = w._gpu_led_at = time.monotonic() - 1.9
        w._refresh_soon()
        assert len(views) == 1 and w._refresh_handle is not None
        assert w._refresh_handle.when() - loop.time() > 0.5
        # the sample comes: one refresh now, which covers the log chunk too
        w._refresh_soon(gpu=True)
        assert len(views) == 2 and w._refresh_handle is None
        # a second sample within half a window of that refresh waits (one view per interval)
        w._refresh_soon(gpu=True)
        assert len(views) == 2 and w._refresh_handle is not None
        w._refresh_handle.cancel()
        w._refresh_handle = None
        # no sample for two windows (the stream is down): other data keep the plain window
        w._refreshed_at = w._gpu_led_at = time.monotonic() - 4.5
        w._refresh_soon()
        assert len(views) == 3
        w._refreshed_at = time.monotonic() - 1.9
        w._refresh_soon()
        assert len(views) == 3 and w._refresh_handle.when() - loop.time() < 0.5
        w._refresh_handle.cancel()
        w._refresh_handle = None
        # a small fleet: samples do not lead, a log chunk takes the window as before
        small = Fleet(specs[:2], transports={s.name: LocalTransport() for s in specs[:2]})
        s0 = small.watchers["h0"]
        assert not s0.gpu_leads
        s0._refreshed_at = s0._gpu_led_at = time.monotonic() - 0.2
        s0._refresh_soon()
        assert s0._refresh_handle is not None and s0._refresh_handle.when() - loop.time() < 0.2
        s0._refresh_handle.cancel()
        await small.close()
    finally:
        await fleet.close()
