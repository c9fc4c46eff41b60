"""`gpudash demo --hosts N`: a Prometheus-sized fleet offline — N synthetic hosts × 8 GPUs fed
through the real PrometheusFleet (overlay → HostSnapshot → health → alerts → UI).

The source stands in for the Prometheus HTTP API and answers with the same typed
:class:`PromHostData` a real one assembles. GPU numbers replay the recorded H100 trace (each GPU
at its own offset); a few hosts run hot, one fills its disk, a few idle, and one stops
reporting (its series go STALE, never 0). Deterministic for a given seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from gpudash.demo import traces
from gpudash.model import DiskUsage, GpuSample, LinkStatus, MemorySample
from gpudash.sources.prom_data import PromHistory, PromHostData
from gpudash.sources.promql import HostMapping

GPUS = 8
INTERVAL = 2.0  # the demo's "scrape interval" (a real Prometheus: 15 s)
TB = 1_000_000_000_000
POOLS = ("train", "train", "train", "infer", "eval")


class SimClusterSource:
    kind = "prometheus"

    def __init__(self, hosts: int = 125, *, seed: int = 7, clock: Callable[[], float] = time.time,
                 start: float | None = None) -> None:
        self.clock = clock
        self.start = clock() if start is None else start
        self.mapping = HostMapping("Hostname", {})
        self.answered: frozenset = frozenset()
        self.link = LinkStatus(ok=True)
        self.down: dict = {}
        self.rows = traces.series()
        rng = random.Random(seed)
        self.hosts = []
        for i in range(hosts):
            rack = i // 8
            self.hosts.append({
                "name": f"gpu-r{rack:02d}-n{i % 8:02d}",
                "labels": {"rack": f"r{rack:02d}", "pool": POOLS[rack % len(POOLS)], "job": "dcgm"},
                "offset": [rng.randrange(len(self.rows)) for _ in range(GPUS)],
                # GPU 2 runs past the 85 °C warning line (two hosts) or the critical one (one)
                "hot": 94.0 if i == 48 else 88.0 if i % 41 == 7 else None,
                "idle": i % 29 == 11,
                "disk_fill": i == 3,  # the root disk fills over the first minutes
                "gone_after": 40.0 if i == 17 else None,  # stops reporting: STALE, not zero
            })

    def _at(self, t: float) -> int:
        return int((t - self.start) / 0.5)

    def _host(self, h: dict, now: float) -> PromHostData:
        tick = self._at(now)
        gpus = []
        for j, off in enumerate(h["offset"]):
            row = self.rows[(tick + off) % len(self.rows)]
            util = 0.0 if h["idle"] else row.util
            temp = h["hot"] + row.temp % 2 if h["hot"] and j == 2 else row.temp
            gpus.append(GpuSample(index=j, uuid=f"GPU-{h['name']}-{j}", name=row.name,
                                  util_pct=util, mem_total_mib=row.mem_total,
                                  mem_used_mib=0.0 if h["idle"] else row.mem_used,
                                  mem_free_mib=row.mem_total - (0.0 if h["idle"] else row.mem_used),
                                  temp_c=temp, power_w=row.power, power_limit_w=row.power_limit,
                                  sm_clock_mhz=row.sm_clock))
        used = 0.41 * TB
        if h["disk_fill"]:
            used = min(0.995 * TB, 0.80 * TB + (now - self.start) * 0.002 * TB)
        disk = DiskUsage("/", "/dev/nvme0n1p1", TB, int(used), int(TB - used),
                         60_000_000, 2_400_000, 57_600_000)
        mem = MemorySample("node_exporter", host_total_bytes=2_000_000_000_000,
                           host_available_bytes=1_300_000_000_000)
        return PromHostData(name=h["name"], gpus=tuple(gpus), gpu_at=now, disks=(disk,),
                            disk_at=now, memory=mem, memory_at=now, labels=dict(h["labels"]))

    async def refresh(self) -> dict[str, PromHostData]:
        return self.data()

    def data(self) -> dict[str, PromHostData]:
        now = self.clock()
        self.answered = frozenset({"gpu", "disk", "memory"})
        self.link = LinkStatus(ok=True, since=self.start, last_ok=now)
        return {h["name"]: self._host(h, now) for h in self.hosts
                if h["gone_after"] is None or now - self.start < h["gone_after"]}

    async def history(self, host: str, seconds: float, *, step: float | None = None) -> PromHistory | None:
        h = next((h for h in self.hosts if h["name"] == host), None)
        if h is None:
            return None
        step = step or INTERVAL
        n = int(seconds / step)
        now = self._at(self.clock())
        per = max(1, int(step / 0.5))
        util, mem = {}, {}
        for j, off in enumerate(h["offset"]):
            rows = [self.rows[(now - (n - k) * per + off) % len(self.rows)] for k in range(n)]
            util[j] = tuple(0.0 if h["idle"] else r.util for r in rows)
            mem[j] = tuple(0.0 if h["idle"] else 100.0 * r.mem_used / r.mem_total for r in rows)
        return PromHistory(step=step, util=util, mem_pct=mem)

    async def history_all(self, seconds: float, *, step: float | None = None) -> dict[str, PromHistory]:
        return {}  # as a host screen opens (load_history), like a big real fleet

    def retry_delay(self, interval: float) -> float:
        return interval

    async def close(self) -> None:
        pass


def cluster_fleet(hosts: int, *, seed: int = 7, clock: Callable[[], float] = time.time,
                  start: float | None = None):
    from gpudash.demo.fleet import demo_thresholds
    from gpudash.watch.prom_fleet import PrometheusFleet

    source = SimClusterSource(hosts, seed=seed, clock=clock, start=start)
    return PrometheusFleet([], source, interval=INTERVAL, clock=clock, seed_history=False,
                           thresholds=demo_thresholds(),
                           initial=source.data())  # every host listed from the first frame
