"""The TUI on gpudash's loop (uvloop where installed), as `gpudash demo` runs it: the demo fleet's
real watch path (replay transports, probes, health, triage) feeds the app; a host opens, closes,
and the app quits cleanly. The rest of the UI tests use Textual's `run_test` on asyncio's loop."""

from __future__ import annotations

import asyncio

from gpudash import loop as gl
from gpudash.demo.fleet import demo_fleet
from gpudash.ui.app import GpudashApp
from gpudash.ui.screens.host import HostScreen
from tests.services.require import require
from tests.ui.helpers import screen_text


async def _until(pilot, cond, tries: int = 400) -> bool:
    for _ in range(tries):  # bounded: a broken app fails here instead of hanging
        if cond():
            return True
        await pilot.pause(0.05)
    return cond()


def test_demo_on_gpudash_loop(monkeypatch):
    monkeypatch.delenv(gl.ENV, raising=False)
    try:
        import uvloop  # noqa: F401
    except ImportError:
        require(False, "uvloop is not installed (a dependency on Linux: pip install -e .)")
    app = GpudashApp(demo_fleet())
    seen: dict = {}

    async def pilot_fn(pilot):
        seen["loop"] = gl.loop_name(asyncio.get_running_loop())
        seen["data"] = await _until(pilot, lambda: "hf-a100" in screen_text(app)
                                    and "seen " in screen_text(app))
        await pilot.press("enter")
        seen["host"] = await _until(pilot, lambda: isinstance(app.screen, HostScreen)
                                    and "GPU0" in screen_text(app))
        await pilot.press("escape")
        seen["back"] = await _until(pilot, lambda: not isinstance(app.screen, HostScreen))
        await pilot.press("q")

    code = gl.run(app.run_async(headless=True, size=(120, 40), auto_pilot=pilot_fn))
    assert seen == {"loop": "uvloop", "data": True, "host": True, "back": True}
    assert not code and app.return_code in (None, 0)
