"""The demo fleet: the simulated boxes behind replay transports, watched by the real Fleet —
same probes, parsers, health engine and triage as a live host."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from gpudash.demo.box import SimBox
from gpudash.demo.scenarios import Scenario, build
from gpudash.transport.replay import ReplayTransport
from gpudash.watch.fleet import Fleet
from gpudash.watch.spec import Cadence, WatchSpec

# Time-compressed cadences so that every panel moves and an alert fires within about a minute.
DEMO_CADENCE = Cadence(gpu=1.0, log=1.0, disk=2.0, memory=2.0, jobs=3.0, files=4.0, ray=60.0,
                       probe_timeout=4.0)


def demo_thresholds():
    from gpudash.health.thresholds import Thresholds

    # The util window is 5 minutes on a real box; the demo compresses it to 20 s so the
    # loader-bound box shows its "data-bound?" warning within the minute.
    return dataclasses.replace(Thresholds(), gpu_util_window_s=20.0)


def spec_for(sc: Scenario) -> WatchSpec:
    return WatchSpec(
        name=sc.name,
        target=f"demo:{sc.name}",
        transport="replay",
        log=sc.log_path,
        tmux_session=sc.tmux_session,
        pgrep="train|eval|accelerate",
        mounts=tuple(m[1] for m in sc.mounts),
        markers=(sc.log_path.rsplit("/", 1)[0] + "/DONE",),
        checkpoint_dir=sc.checkpoint_dir,
        checkpoint_size_bytes=sc.checkpoint_bytes or None,
        notes=sc.notes,
        cadence=DEMO_CADENCE,
        thresholds=demo_thresholds(),
        labels=dict(sc.labels),
    )


def demo_fleet(*, speed: float = 1.0, seed: int = 7, clock: Callable[[], float] = time.time,
               start: float | None = None) -> Fleet:
    start = clock() if start is None else start
    specs, transports = [], {}
    for sc in build(seed):
        box = SimBox(sc, start=start, speed=speed, clock=clock)
        spec = spec_for(sc)
        specs.append(spec)
        transports[spec.name] = ReplayTransport(spec.name, box, clock=clock)
    return Fleet(specs, transports=transports, clock=clock)
