"""(e) Key press → screen update with 50 live hosts, measured with Textual's Pilot.

    python -m benchmarks.ui [--hosts 50] [--presses 30] --out OUT.json

The fleet is the real :class:`gpudash.watch.fleet.Fleet` over 50 replay transports (the demo's
simulated boxes, recorded H100 traces, the demo's 1-s GPU and log cadences): every host sends a
new view at least twice a second, through the same parsers, health and triage as a live host.
The app runs headless at 160×50 (Textual's ``run_test``), so what is timed is Textual's own
pipeline up to the compositor's update — not a terminal's drawing.

Per press: ``t0`` before ``pilot.press(key)``; the action's handler stamps when it ran; the
first compositor update (``App._display`` with a renderable) after that stamp ends the
measurement. Keys: ``j``/``k`` (move the selection: two cards repaint), ``enter``/``escape``
(open the selected host's screen and come back; the same host each time) and ``enter`` on the
next host each time (``enter_next_host``: every panel of the host screen filled anew). Baselines in the same app: the same
keys with every host paused (no updates arriving: an idle app), and the idle frame itself
(``screen.refresh()`` → the next update).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.common import median, pct, write_out
from gpudash import loop as gl


def fleet_of(n: int):
    import dataclasses

    from gpudash.demo.box import SimBox
    from gpudash.demo.fleet import spec_for
    from gpudash.demo.scenarios import build
    from gpudash.transport.replay import ReplayTransport
    from gpudash.watch.fleet import Fleet

    scenarios = build(7)
    specs, transports = [], {}
    start = time.time()
    for i in range(n):
        sc = scenarios[i % len(scenarios)]
        name = f"{sc.name}-{i:02d}"
        spec = dataclasses.replace(spec_for(sc), name=name)
        specs.append(spec)
        transports[name] = ReplayTransport(name, SimBox(sc, start=start - i * 3), latency=0.002)
    return Fleet(specs, transports=transports)


async def measure(hosts: int, presses: int) -> dict:
    """Two apps: one for the selection moves and the idle frame, one for opening hosts (a crash
    while a screen is composed must not cost the other numbers)."""
    res: dict = {"hosts": hosts, "size": [160, 50]}
    for part in ("move", "open"):
        try:
            await _measure(hosts, presses, part, res)
        except Exception as exc:  # noqa: BLE001 - an app crash is a result too
            import traceback

            res[f"{part}_error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-800:]
    return res


async def _measure(hosts: int, presses: int, part: str, res: dict) -> None:
    from gpudash.ui.app import GpudashApp
    from gpudash.ui.screens.host import HostScreen
    from gpudash.ui.screens.overview import OverviewScreen

    fleet = fleet_of(hosts)
    app = GpudashApp(fleet)
    frames: list[float] = []
    acted: list[float] = []
    views = {"n": 0}
    orig_display = app._display

    def display(screen, renderable):
        if renderable is not None:
            frames.append(time.perf_counter())
        return orig_display(screen, renderable)

    app._display = display
    restore = []

    def stamp(cls, name):
        orig = getattr(cls, name)
        restore.append((cls, name, orig))

        def wrapped(self, *a, **kw):
            acted.append(time.perf_counter())
            return orig(self, *a, **kw)

        setattr(cls, name, wrapped)

    stamp(OverviewScreen, "action_cursor")
    stamp(OverviewScreen, "action_open")
    stamp(HostScreen, "action_back")
    fleet.subscribe(lambda v: views.__setitem__("n", views["n"] + 1), lambda e: None)

    async def frame_after(t: float, timeout: float = 5.0) -> float | None:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if acted and acted[-1] >= t:
                after = [f for f in frames if f >= acted[-1]]
                if after:
                    return after[0]
            await asyncio.sleep(0.0005)
        return None

    async def press(pilot, key: str) -> float | None:
        t0 = time.perf_counter()
        if app._exit_renderables or not app.is_running:
            raise RuntimeError("the app is no longer running")
        await asyncio.wait_for(pilot.press(key), 15)
        f = await frame_after(t0)
        return None if f is None else f - t0

    def stats(xs):
        ok = [x for x in xs if x is not None]
        return {"median_ms": (median(ok) or 0) * 1e3, "p95_ms": (pct(ok, 95) or 0) * 1e3,
                "max_ms": max(ok) * 1e3 if ok else None, "n": len(ok), "lost": len(xs) - len(ok)}

    async def to_overview(pilot) -> None:
        # A selected host that shows a NEW failure opens its triage by itself: back first.
        for _ in range(5):
            if isinstance(app.screen, OverviewScreen):
                return
            await asyncio.wait_for(pilot.press("escape"), 15)
            await asyncio.sleep(0.2)

    async def moves(pilot) -> dict:
        # j/k, not the arrows: with 50 cards the overview's scroll container is focused and
        # scrollable, and it takes the arrow keys for scrolling (the selection does not move).
        out = []
        for i in range(presses):
            await to_overview(pilot)
            out.append(await press(pilot, "j" if i % 10 < 5 else "k"))
            await asyncio.sleep(0.05)
        return {"down": stats(out)}

    async def opens(pilot) -> dict:
        enter, back, other = [], [], []
        for _ in range(max(3, presses // 4)):
            await to_overview(pilot)
            enter.append(await press(pilot, "enter"))
            await asyncio.sleep(0.3)
            back.append(await press(pilot, "escape"))
            await asyncio.sleep(0.3)
        # the same host each time above (the host screen keeps its data); here the next host
        # each time: every panel is filled anew
        for _ in range(max(3, presses // 4)):
            await to_overview(pilot)
            await asyncio.wait_for(pilot.press("j"), 15)
            await asyncio.sleep(0.2)
            other.append(await press(pilot, "enter"))
            await asyncio.sleep(0.3)
            await asyncio.wait_for(pilot.press("escape"), 15)
            await asyncio.sleep(0.3)
        return {"enter_open_host": stats(enter), "escape_back": stats(back),
                "enter_next_host": stats(other)}

    run = moves if part == "move" else opens
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            t_end = time.perf_counter() + 30
            while len(app.views) < hosts and time.perf_counter() < t_end:
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)
            res["hosts_on_screen"] = len(app.views)
            v0, f0, c0, t0 = views["n"], len(frames), time.process_time(), time.perf_counter()
            res.setdefault("live", {}).update(await run(pilot))
            el = time.perf_counter() - t0
            if part == "move":
                res["live_views_per_s"] = (views["n"] - v0) / el
                res["live_frames_per_s"] = (len(frames) - f0) / el
                res["live_cpu_pct"] = (time.process_time() - c0) / el * 100
            for h in fleet.host_names():  # idle: every host paused, the last updates settled
                fleet.set_paused(h, True)
            await asyncio.sleep(1.5)
            res.setdefault("idle", {}).update(await run(pilot))
            if part == "move":
                idle_frames = []
                for _ in range(presses):
                    t = time.perf_counter()
                    n0 = len(frames)
                    app.screen.refresh()
                    end = t + 2
                    while len(frames) == n0 and time.perf_counter() < end:
                        await asyncio.sleep(0.0005)
                    if len(frames) > n0:
                        idle_frames.append(frames[n0] - t)
                    await asyncio.sleep(0.05)
                res["idle_frame"] = {"median_ms": (median(idle_frames) or 0) * 1e3,
                                     "p95_ms": (pct(idle_frames, 95) or 0) * 1e3, "n": len(idle_frames)}
            await pilot.press("q")
    finally:
        for cls, name, orig in restore:
            setattr(cls, name, orig)
        await fleet.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    write_out(a.out, gl.run(measure(a.hosts, a.presses)))  # the TUI's own loop (gpudash/loop.py)
    return 0


def section_e(quick: bool) -> dict:
    from benchmarks.common import run_worker

    return run_worker("ui", ["--hosts", "50", "--presses", "12" if quick else "24"], timeout=900)


if __name__ == "__main__":
    raise SystemExit(main())
