"""gpudash against a REAL Prometheus server scraping a REAL node_exporter and a dcgm-exporter-format
test exporter (3 synthetic hosts × 2 GPUs replaying the recorded H100 trace), all on loopback.

The numbers the exporters serve must arrive through Prometheus's HTTP API into gpudash's typed
samples, unchanged; a host whose series stop becomes STALE with its last values (never 0); a host
whose exporter cannot be scraped is UNKNOWN(unreachable); a wrong label mapping is UNKNOWN with a
reason. Skipped when prometheus or node_exporter is absent — a failure under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from gpudash.health.thresholds import Thresholds
from gpudash.model import Reason, State
from gpudash.sources.prometheus import PrometheusSource
from gpudash.transport.local import LocalTransport
from gpudash.watch.prom_fleet import fleet_with_prometheus, prometheus_fleet_from_args
from gpudash.watch.spec import WatchSpec
from tests.services.dcgm_exporter import DcgmExporter
from tests.services.prometheus import (
    NodeExporter, PrometheusServer, ScrapeJob, node_exporter_binary, prometheus_binary,
)
from tests.services.require import require

pytestmark = pytest.mark.prometheus

HOSTS = ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
FAST = Thresholds(hysteresis_results=1, hysteresis_s=0.0)
GIB = 1024**3


class Stack:
    def __init__(self, workdir) -> None:
        prom, node = prometheus_binary(), node_exporter_binary()
        require(prom is not None, "prometheus is not installed (apt-get install prometheus; "
                                  "see .ci/setup-prometheus.sh)")
        require(node is not None, "prometheus-node-exporter is not installed (apt-get install "
                                  "prometheus-node-exporter)")
        self.dcgm = DcgmExporter(HOSTS, 2).start()
        self.solo = DcgmExporter(["gpu-node-4"], 1).start()  # a box of its own, to be killed
        self.node = NodeExporter(workdir, node).start()
        self.node4 = NodeExporter(workdir, node).start()  # gpu-node-4's own, killed with it
        self.prom = PrometheusServer(workdir, prom, [
            ScrapeJob("dcgm", [(self.dcgm.address, {})], honor_labels=True),
            ScrapeJob("dcgm-solo", [(self.solo.address, {"instance": "gpu-node-4:9400"})],
                      honor_labels=True),
            # one real node_exporter stands in for each host's own, as Prometheus sees them:
            # `instance` = host:9100 (dcgm-exporter's is host:9400)
            ScrapeJob("node", [(self.node.address, {"instance": f"{h}:9100"}) for h in HOSTS]
                      + [(self.node4.address, {"instance": "gpu-node-4:9100"})]),
        ]).start()
        self.prom.wait_for("DCGM_FI_DEV_GPU_UTIL", 7)
        self.prom.wait_for('node_filesystem_size_bytes{mountpoint="/"}', 4)
        self.prom.wait_for("node_memory_MemAvailable_bytes", 4)

    def settle(self, tick: int, hidden=()) -> None:
        """Serve ``tick`` (and hide ``hidden``) and wait until Prometheus has ingested it."""
        after = self.dcgm.set(tick=tick, hidden=hidden)
        assert self.dcgm.wait_scrapes(after, 2), "Prometheus stopped scraping the exporter"

    def stop(self) -> None:
        self.prom.stop()
        self.node.stop()
        self.node4.stop()
        self.dcgm.stop()
        self.solo.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("prometheus"))
    yield s
    s.stop()


@pytest.fixture
def stack_reset(stack):
    yield stack
    stack.settle(0, hidden=())


async def test_the_numbers_the_exporter_served_arrive_unchanged(stack_reset):
    stack = stack_reset
    stack.settle(tick=26)
    expected = {(h, g): stack.dcgm.expected(h, g) for h in HOSTS for g in (0, 1)}
    # the trace rows differ per GPU: a mix-up of hosts or GPUs cannot pass
    assert len({e.power for e in expected.values()}) == 6
    src = PrometheusSource(stack.prom.url)
    try:
        data = await src.refresh()
    finally:
        await src.close()
    assert set(HOSTS) <= set(data)
    for (h, g), e in expected.items():
        got = data[h].gpus[g]
        assert (got.index, got.uuid, got.name) == (g, e.uuid, e.name)
        assert got.util_pct == e.util
        assert got.mem_used_mib == e.fb_used and got.mem_free_mib == e.fb_free
        assert got.mem_total_mib == 81559.0  # the H100's memory.total in the trace
        assert got.temp_c == e.temp and got.power_w == e.power and got.sm_clock_mhz == e.sm_clock
        assert data[h].gpu_at is not None and abs(time.time() - data[h].gpu_at) < 30
    assert src.link.ok and src.answered == {"gpu", "disk", "memory"}


async def test_node_exporter_disk_and_memory_match_this_machine(stack):
    src = PrometheusSource(stack.prom.url)
    try:
        data = await src.refresh()
    finally:
        await src.close()
    st = os.statvfs("/")
    with open("/proc/meminfo") as fh:
        mem_total = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemTotal:"))
    for h in HOSTS:
        root = next(d for d in data[h].disks if d.mount == "/")
        assert root.size_bytes == st.f_blocks * st.f_frsize
        # other processes write while we look: free space within 2 GiB, inodes within 1%
        assert abs(root.avail_bytes - st.f_bavail * st.f_frsize) < 2 * GIB
        assert abs((root.size_bytes - root.used_bytes) - st.f_bfree * st.f_frsize) < 2 * GIB
        if st.f_files:
            assert root.inodes_total == st.f_files
            assert abs(root.inodes_free - st.f_ffree) <= st.f_files // 100
        assert not any(d.filesystem == "tmpfs" for d in data[h].disks)
        assert data[h].memory.host_total_bytes == mem_total
        assert data[h].memory.oom_kills is not None


async def test_a_host_whose_series_stop_turns_stale_with_its_last_values(stack_reset):
    stack = stack_reset
    stack.settle(tick=44)
    before = {g: stack.dcgm.expected("gpu-node-3", g) for g in (0, 1)}
    src = PrometheusSource(stack.prom.url)
    fleet = fleet_with_prometheus([], src, interval=1.0, thresholds=FAST, seed_history=False)
    try:
        await fleet.poll_once()
        assert fleet.view("gpu-node-3").state is State.OK
        stack.settle(tick=44, hidden={"gpu-node-3"})
        # Prometheus itself forgot the series (staleness markers) ...
        assert stack.prom.query('DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-node-3"}') == []
        view = None
        for _ in range(40):  # bounded: 3 intervals of 1 s make it stale
            await fleet.poll_once()
            view = fleet.view("gpu-node-3")
            if view.state is State.STALE:
                break
            await asyncio.sleep(0.25)
        # ... gpudash did not: STALE, with the last values Prometheus had, never 0
        assert view.state is State.STALE
        assert [g.util_pct for g in view.snapshot.gpus] == [before[0].util, before[1].util]
        assert [g.temp_c for g in view.snapshot.gpus] == [before[0].temp, before[1].temp]
        assert {c.state for c in view.checks if c.key.startswith("gpu.temp")} == {State.STALE}
        assert fleet.view("gpu-node-1").state is State.OK
    finally:
        await fleet.close()


async def test_a_box_prometheus_cannot_scrape_is_unreachable(stack):
    src = PrometheusSource(stack.prom.url)
    fleet = fleet_with_prometheus([], src, interval=1.0, thresholds=FAST, seed_history=False)
    try:
        await fleet.poll_once()
        assert fleet.view("gpu-node-4").state is State.OK
        # the box dies: both its exporters are gone, Prometheus's scrapes fail (up == 0)
        stack.solo.stop()
        stack.node4.stop()
        stack.prom.wait_for('up{instance=~"gpu-node-4:.*"} == 0', 2)
        await fleet.poll_once()
        view = fleet.view("gpu-node-4")
        assert view.state is State.UNKNOWN and view.reason is Reason.UNREACHABLE
        link = next(c for c in view.checks if c.key == "link")
        assert "Prometheus cannot scrape gpu-node-4:9" in link.summary
        assert [g.util_pct for g in view.snapshot.gpus] == [stack.solo.expected("gpu-node-4", 0).util]
    finally:
        await fleet.close()


async def test_wrong_label_mapping_is_unknown_with_a_reason(stack):
    src = PrometheusSource(stack.prom.url, label_map={"trainer-x": "no-such-node"})
    spec = WatchSpec(name="trainer-x", transport="local", thresholds=FAST)
    fleet = fleet_with_prometheus([spec], src, interval=1.0, thresholds=FAST, seed_history=False,
                                  transports={"trainer-x": LocalTransport("trainer-x")})
    views = {v.name: v for v in await fleet.one_round(deadline=30)}
    gpu = next(c for c in views["trainer-x"].checks if c.key == "gpu.probe")
    assert gpu.state is State.UNKNOWN and gpu.reason is Reason.NOT_FOUND
    assert 'Hostname="no-such-node"' in gpu.summary
    assert views["trainer-x"].snapshot.gpus == ()  # nothing invented, no zeros
    assert {"gpu-node-1", "gpu-node-2", "gpu-node-3"} <= set(views)


async def test_without_the_host_label_the_instance_names_the_host(stack):
    src = PrometheusSource(stack.prom.url, host_label="kubernetes_node")
    try:
        data = await src.refresh()
    finally:
        await src.close()
    # dcgm-exporter's gpu-node-1:9400 and node_exporter's gpu-node-1:9100 meet as one host
    for h in HOSTS:
        assert len(data[h].gpus) == 2 and data[h].disks and data[h].memory is not None


async def test_a_host_combines_prometheus_metrics_and_its_own_log(stack_reset, tmp_path):
    stack = stack_reset
    stack.settle(tick=51)
    log = tmp_path / "train.log"
    log.write_text("step 1 loss 3.0\nstep 2 loss 2.9\n")
    spec = WatchSpec(name="gpu-node-2", transport="local", log=str(log), thresholds=FAST)
    src = PrometheusSource(stack.prom.url)
    fleet = fleet_with_prometheus([spec], src, interval=1.0, thresholds=FAST, seed_history=False,
                                  transports={"gpu-node-2": LocalTransport("gpu-node-2")})
    views = {v.name: v for v in await fleet.one_round(deadline=30)}
    v = views["gpu-node-2"]
    assert v.snapshot.transport == "local+prometheus"
    assert v.snapshot.log_lines[-1] == "step 2 loss 2.9"
    assert [g.util_pct for g in v.snapshot.gpus] == [stack.dcgm.expected("gpu-node-2", g).util
                                                    for g in (0, 1)]
    assert v.snapshot.memory.source == "node_exporter"


async def test_history_for_sparklines_comes_from_query_range(stack_reset):
    stack = stack_reset
    stack.settle(tick=60)
    time.sleep(2.5)  # a few scrapes of the same row
    src = PrometheusSource(stack.prom.url)
    try:
        hist = await src.history("gpu-node-1", 20, step=1)
    finally:
        await src.close()
    e = stack.dcgm.expected("gpu-node-1", 1)
    tail = [x for x in hist.util[1] if x is not None][-2:]
    assert tail == [e.util, e.util]
    mem = [x for x in hist.mem_pct[1] if x is not None][-1]
    assert abs(mem - 100 * e.fb_used / (e.fb_used + e.fb_free)) < 1e-9


def test_cli_entry_discovers_every_host_before_the_ui_starts(stack):
    class Args:
        prometheus = stack.prom.url
        hosts: list = []

    local = WatchSpec(name="localhost", transport="local", discover=True)
    fleet = prometheus_fleet_from_args(Args(), None, [local])
    try:
        assert set(HOSTS) <= set(fleet.host_names()) and "localhost" not in fleet.host_names()
        assert fleet.interval == 1.0  # the scrape interval of the jobs serving the GPU hosts
        for h in HOSTS:
            view = fleet.view(h)
            assert view is not None and len(view.snapshot.gpus) == 2
    finally:
        asyncio.run(fleet.close())
