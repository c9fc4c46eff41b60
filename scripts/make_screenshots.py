"""Render the README's screenshots from `gpudash demo` (SVG, plus PNG when cairosvg is there).

The demo's simulated boxes are advanced to one minute of simulated time with full probe rounds
(the same pipeline as the live demo), then the real app is driven with Textual's Pilot and each
screen is saved. Deterministic: a frozen clock, UTC, a fixed seed.

    python scripts/make_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class FrozenClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def advance(fleet, clock: FrozenClock, seconds: float, step: float = 1.0) -> None:
    end = clock.t + seconds
    while clock.t < end:
        for w in fleet.watchers.values():
            await w.full_round()
        clock.t += step


async def shoot(out: Path) -> list[Path]:
    from gpudash.commands.watch import teardown_for
    from gpudash.demo.fleet import demo_fleet
    from gpudash.ui.app import GpudashApp

    clock = FrozenClock(1_795_400_000.0)
    fleet = demo_fleet(clock=clock, start=clock.t)
    await advance(fleet, clock, 62.0)
    saved: list[Path] = []

    def save(app, name: str) -> None:
        app.save_screenshot(f"{name}.svg", path=str(out))
        saved.append(out / f"{name}.svg")

    async def session(size, script):
        app = GpudashApp(fleet, clock=clock, tz=timezone.utc, teardown=teardown_for(fleet, None))
        async with app.run_test(size=size) as pilot:
            await pilot.pause(1.5)
            await script(app, pilot)
            await pilot.press("q")

    async def overview_host_triage(app, pilot):
        save(app, "overview")
        await pilot.press("enter")  # hf-a100: a healthy HF Trainer run
        await pilot.pause(1.0)
        save(app, "host")
        await pilot.press("escape")
        app.show_triage("oom-h100")  # the CUDA OOM crash
        await pilot.pause(1.0)
        save(app, "triage")
        await pilot.press("escape")
        await pilot.press("t")  # the selected host's teardown checklist
        await pilot.pause(3.0)
        save(app, "teardown")

    async def small(app, pilot):
        save(app, "overview-80x24")

    async def split(app, pilot):
        await pilot.press("s")
        await pilot.pause(1.0)
        save(app, "split")

    await session((160, 48), overview_host_triage)
    await session((80, 24), small)
    await session((180, 50), split)

    # `gpudash demo --hosts 125`: 1,000 GPUs from the synthetic Prometheus-fed cluster, one
    # minute in, grouped by state (one line per host, a summary per group)
    from gpudash.demo.cluster import INTERVAL, cluster_fleet

    cclock = FrozenClock(clock.t)
    cluster = cluster_fleet(125, clock=cclock, start=cclock.t)
    for _ in range(30):
        cclock.t += INTERVAL
        await cluster.poll_once()
    app = GpudashApp(cluster, clock=cclock, tz=timezone.utc)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.5)
        await pilot.press("g")
        await pilot.pause(0.5)
        save(app, "overview-fleet")
        await pilot.press("q")
    return saved


def to_png(svgs: list[Path]) -> None:
    try:
        import cairosvg  # optional
    except ImportError:
        print("cairosvg not installed: SVG only")
        return
    for svg in svgs:
        cairosvg.svg2png(url=str(svg), write_to=str(svg.with_suffix(".png")))


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    saved = asyncio.run(shoot(out))
    to_png(saved)
    for p in saved:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
