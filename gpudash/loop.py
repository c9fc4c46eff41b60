"""The event loop the long-running watch (the TUI) runs on: uvloop where it is installed, else
asyncio's own.

Why: a big fleet's client CPU is mostly many small reads, timers and callbacks — the loop's own
work. With 500 hosts at a 2 s cadence (benchmarks/scale.py, no UI, the same load generator,
alternated) uvloop took the client from 38.5 to 35.9% of a core. The code is the same on both
loops (asyncio's API; the transport tests run on each). ``GPUDASH_LOOP=asyncio`` forces the
standard loop, e.g. to rule the loop out when chasing a bug. One-shot commands (`status`,
`wait`, …) keep ``asyncio.run``: one host for a few seconds gains nothing from it.

The same run also spaces out CPython's cyclic garbage collector (:data:`GC_THRESHOLDS`).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "GPUDASH_LOOP"
GC_ENV = "GPUDASH_GC"

#: CPython's defaults are (700, 10, 10): a young collection every 700 net allocations. A watch
#: allocates steadily (samples, views, frames) but makes almost no cyclic garbage (measured: ~0
#: objects found per collection), and its views and samples live a few seconds, long enough to
#: be promoted and then to trigger full collections over every live object (~260,000 with 500
#: hosts, ~0.4 s of CPU each). With 500 hosts at 2 s that was 8% of a core of the client's
#: ~40%; with these thresholds, 1-2% (benchmarks/README, "The garbage collector").
#: ``GPUDASH_GC=default`` keeps CPython's.
GC_THRESHOLDS = (10_000, 20, 20)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's ``new_event_loop`` when it imports and is not turned off, else asyncio's."""
    if os.environ.get(ENV, "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # not installed (or no wheel for this platform): the standard loop
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio`` (what a benchmark ran on; what a test asserts it ran on)."""
    return "uvloop" if type(loop).__module__.split(".")[0] == "uvloop" else "asyncio"


def gc_thresholds() -> tuple[int, int, int]:
    """What the watch's run sets: :data:`GC_THRESHOLDS`, CPython's current ones under
    ``GPUDASH_GC=default``, or three numbers of one's own (``GPUDASH_GC=10000,100,20``: what
    the benchmarks compare). Anything else is ignored: a tuning knob must not stop a watch."""
    raw = os.environ.get(GC_ENV, "").strip().lower()
    if raw == "default":
        return gc.get_threshold()
    parts = raw.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
        a, b, c = (int(p) for p in parts)
        if a > 0 and b > 0 and c > 0:
            return a, b, c
    return GC_THRESHOLDS


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the loop :func:`loop_factory` picks (remaining tasks cancelled, async
    generators and the default executor shut down, the loop closed — as ``asyncio.run`` does),
    with the collector at :func:`gc_thresholds` until it returns."""
    before = gc.get_threshold()
    gc.set_threshold(*gc_thresholds())
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main)
    finally:
        gc.set_threshold(*before)
