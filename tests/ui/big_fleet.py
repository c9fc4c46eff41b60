"""Real HostViews for a Prometheus-sized fleet: `gpudash demo --hosts N`'s synthetic cluster (the
H100 trace replayed per GPU) through the real PrometheusFleet — overlay, health engine, alerts —
on a frozen clock advanced round by round. States come from the engine, never set by hand:
after 30 rounds (60 s) one host's disk is filling (WARN), three GPUs run hot (WARN), one host
stopped reporting (STALE)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from gpudash.demo.cluster import INTERVAL, cluster_fleet
from gpudash.watch.view import HostView
from tests.ui.fake_fleet import T0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def advanced_fleet(hosts: int = 125, rounds: int = 30):
    clock = Clock(T0 - rounds * INTERVAL)
    fleet = cluster_fleet(hosts, clock=clock, start=clock.t)

    async def run() -> None:
        for _ in range(rounds):
            clock.t += INTERVAL
            await fleet.poll_once()

    # its own loop in its own thread: callers are often inside a test's running loop
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    return fleet, clock


@lru_cache(maxsize=4)
def cluster_views(hosts: int = 125, rounds: int = 30) -> tuple[HostView, ...]:
    fleet, _ = advanced_fleet(hosts, rounds)
    return tuple(fleet.view(h) for h in fleet.host_names())
