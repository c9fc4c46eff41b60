"""Where the first frame of a newly opened host goes (a companion to (e), by hand).

    python -m benchmarks.ui_paint [--hosts 50] [--opens 12] [--out OUT.json]

The same app as (e): 50 hosts over replay transports, headless 160×50, every host paused (no
updates arriving, so only the open itself is measured). Each time: `j` to the next host, then
`enter`. Per open it times, without a profiler: `show_host` (gpudash filling the reused host
screen's panels), the first layout refresh of the host screen (Textual's reflow + the full paint
of every widget), and inside that paint each widget's own rendering (`StylesCache.render_widget`:
its lines, borders, padding and styles). Not part of `benchmarks.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time

from benchmarks.common import median, write_out


async def measure(hosts: int, opens: int) -> dict:
    from textual._compositor import Compositor
    from textual._styles_cache import StylesCache
    from textual.screen import Screen

    from benchmarks.ui import fleet_of
    from gpudash.ui.app import GpudashApp
    from gpudash.ui.screens.host import HostScreen
    from gpudash.ui.screens.overview import OverviewScreen

    per_widget: dict[str, float] = collections.defaultdict(float)
    runs: list[dict] = []
    state = {"armed": False, "in_paint": False, "cur": None}
    patched = []

    def patch(cls, name, make):
        orig = getattr(cls, name)
        patched.append((cls, name, orig))
        setattr(cls, name, make(orig))

    def show_host(orig):
        def wrapped(self, *a, **kw):
            t = time.perf_counter()
            try:
                return orig(self, *a, **kw)
            finally:
                if state["cur"] is not None:
                    state["cur"]["show_host_ms"] = (time.perf_counter() - t) * 1e3
        return wrapped

    def refresh_layout(orig):
        def wrapped(self, *a, **kw):
            if not (state["armed"] and isinstance(self, HostScreen)):
                return orig(self, *a, **kw)
            state["armed"], state["in_paint"] = False, True
            t = time.perf_counter()
            try:
                return orig(self, *a, **kw)
            finally:
                state["in_paint"] = False
                state["cur"]["first_layout_and_paint_ms"] = (time.perf_counter() - t) * 1e3
        return wrapped

    def reflow(orig):
        def wrapped(self, *a, **kw):
            t = time.perf_counter()
            try:
                return orig(self, *a, **kw)
            finally:
                if state["in_paint"]:
                    state["cur"]["reflow_ms"] = (time.perf_counter() - t) * 1e3
        return wrapped

    def render_widget(orig):
        def wrapped(self, widget, crop):
            t = time.perf_counter()
            try:
                return orig(self, widget, crop)
            finally:
                if state["in_paint"]:
                    name = type(widget).__name__ + (f"#{widget.id}" if widget.id else "")
                    per_widget[name] += (time.perf_counter() - t) * 1e3
        return wrapped

    patch(HostScreen, "show_host", show_host)
    patch(Screen, "_refresh_layout", refresh_layout)
    patch(Compositor, "reflow", reflow)
    patch(StylesCache, "render_widget", render_widget)
    fleet = fleet_of(hosts)
    app = GpudashApp(fleet)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            end = time.perf_counter() + 30
            while len(app.views) < hosts and time.perf_counter() < end:
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)
            for h in fleet.host_names():
                fleet.set_paused(h, True)
            await asyncio.sleep(1.5)
            for i in range(opens + 2):  # the first two warm up
                while not isinstance(app.screen, OverviewScreen):
                    await pilot.press("escape")
                    await asyncio.sleep(0.2)
                await pilot.press("j")
                await asyncio.sleep(0.3)
                state["cur"] = cur = {}
                state["armed"] = True
                if i < 2:
                    saved = dict(per_widget)
                await pilot.press("enter")
                await asyncio.sleep(0.4)
                state["armed"] = False
                if i < 2:
                    per_widget.clear()
                    per_widget.update(saved)
                elif "first_layout_and_paint_ms" in cur:
                    runs.append(cur)
            await pilot.press("q")
    finally:
        for cls, name, orig in patched:
            setattr(cls, name, orig)
        await fleet.close()
    n = max(1, len(runs))
    widgets = {k: v / n for k, v in sorted(per_widget.items(), key=lambda kv: -kv[1])}
    return {
        "hosts": hosts, "opens": len(runs),
        "show_host_ms_median": median([r.get("show_host_ms", 0) for r in runs]),
        "first_layout_and_paint_ms_median": median([r["first_layout_and_paint_ms"] for r in runs]),
        "reflow_ms_median": median([r.get("reflow_ms", 0) for r in runs]),
        "widgets_paint_ms_mean": sum(widgets.values()),
        "per_widget_ms_mean": widgets,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--opens", type=int, default=12)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    res = asyncio.run(measure(a.hosts, a.opens))
    print(f"{res['opens']} opens of another host, medians: show_host {res['show_host_ms_median']:.1f} ms, "
          f"first layout + paint {res['first_layout_and_paint_ms_median']:.1f} ms "
          f"(reflow {res['reflow_ms_median']:.1f} ms; widgets' own painting {res['widgets_paint_ms_mean']:.1f} ms, mean)")
    for name, v in res["per_widget_ms_mean"].items():
        if v >= 0.5:
            print(f"  {v:6.1f} ms  {name}")
    if a.out:
        write_out(a.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
