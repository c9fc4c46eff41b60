"""Prometheus-fed hosts in the fleet: overlay, STALE instead of 0, UNKNOWN with a reason, and
hosts that combine sources (log/jobs over a transport, GPU/disk/memory from Prometheus).

The source here is a stand-in that hands the fleet typed PromHostData on a controlled clock (the
HTTP side and the real engine have their own tests); the fleet, overlay, watcher and health
engine are the real ones.
"""

from __future__ import annotations

import dataclasses

import pytest

from gpudash.health.thresholds import Thresholds
from gpudash.model import DiskUsage, GpuSample, LinkStatus, MemorySample, Reason, State
from gpudash.sources.prom_data import PromHistory, PromHostData
from gpudash.sources.promql import HostMapping
from gpudash.transport.base import TransportError
from gpudash.transport.local import LocalTransport
from gpudash.watch.prom_fleet import PrometheusFleet, prometheus_fleet_from_args
from gpudash.watch.spec import WatchSpec

FAST = Thresholds(hysteresis_results=1, hysteresis_s=0.0)
IV = 5.0


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class StubSource:
    kind = "prometheus"

    def __init__(self, clock: Clock, label_map=None) -> None:
        self.clock = clock
        self.mapping = HostMapping("Hostname", label_map or {})
        self.answered: frozenset = frozenset()
        self.link = LinkStatus(ok=True)
        self.down: dict = {}
        self.data: dict = {}
        self.fail: TransportError | None = None
        self.history_asked: list = []

    async def refresh(self):
        if self.fail is not None:
            self.answered = frozenset()
            since = self.link.since if not self.link.ok else self.clock()
            self.link = LinkStatus(ok=False, reason=self.fail.reason, message=self.fail.message,
                                   since=since, last_ok=self.link.last_ok)
            raise self.fail
        self.answered = frozenset({"gpu", "disk", "memory"})
        self.link = LinkStatus(ok=True, since=self.clock(), last_ok=self.clock())
        return dict(self.data)

    async def history(self, host, seconds, *, step=None):
        self.history_asked.append((host, seconds, step))
        return PromHistory(step=step, util={0: (10.0, None, 30.0)}, mem_pct={0: (1.0, 2.0, 3.0)})

    async def history_all(self, seconds, *, step=None):
        return {}

    def retry_delay(self, interval):
        return interval

    async def close(self):
        pass


def host_data(name: str, at: float, *, util=(97.0, 12.0), temp=(60.0, 61.0), disks=True, mem=True):
    gpus = tuple(GpuSample(index=i, uuid=f"GPU-{name}-{i}", name="NVIDIA H100 80GB HBM3",
                           util_pct=u, mem_used_mib=1000.0, mem_free_mib=80559.0,
                           mem_total_mib=81559.0, temp_c=t) for i, (u, t) in enumerate(zip(util, temp)))
    return PromHostData(
        name=name, gpus=gpus, gpu_at=at if gpus else None,
        disks=(DiskUsage("/", "/dev/vda", 1000, 500, 500, 100, 10, 90),) if disks else (),
        disk_at=at if disks else None,
        memory=MemorySample("node_exporter", 10, None, 0, 100, 90) if mem else None,
        memory_at=at if mem else None, labels={"job": "dcgm"})


def checks(view, prefix=""):
    return {c.key: c for c in view.checks if c.key.startswith(prefix)}


@pytest.fixture
def clock():
    return Clock()


async def test_every_gpu_host_prometheus_knows_becomes_a_watched_host(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock()), "n2": host_data("n2", clock()),
                "storage": dataclasses.replace(host_data("storage", clock()), gpus=(), gpu_at=None)}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    assert fleet.host_names() == ["n1", "n2"]  # a host without GPUs is not a GPU box to watch
    v = fleet.view("n1")
    assert v.state is State.OK and v.snapshot.transport == "prometheus"
    assert [g.util_pct for g in v.snapshot.gpus] == [97.0, 12.0]
    assert v.snapshot.disks[0].mount == "/" and v.snapshot.memory.source == "node_exporter"
    assert v.labels == {"source": "prometheus", "job": "dcgm"}
    assert checks(v)["link"].summary == "connected (prometheus)"


async def test_a_series_that_stops_keeps_its_last_value_and_turns_stale_never_zero(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock())}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    assert fleet.view("n1").state is State.OK
    src.data = {}  # the host's series are gone from Prometheus
    clock.t += 2 * IV
    await fleet.poll_once()
    assert fleet.view("n1").state is State.OK  # not yet 3 intervals old
    clock.t += 2 * IV
    await fleet.poll_once()
    v = fleet.view("n1")
    assert v.state is State.STALE
    assert [g.util_pct for g in v.snapshot.gpus] == [97.0, 12.0]  # the last values, not 0
    assert checks(v, "gpu.temp:0")["gpu.temp:0"].state is State.STALE
    assert checks(v, "disk.bytes:/")["disk.bytes:/"].state is State.STALE


async def test_one_gpu_that_stops_makes_the_hosts_gpu_data_stale(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock())}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    clock.t += 4 * IV
    one = host_data("n1", clock(), util=(97.0,), temp=(60.0,))
    src.data = {"n1": one}
    await fleet.poll_once()
    v = fleet.view("n1")
    assert len(v.snapshot.gpus) == 2  # GPU 1 did not silently drop out of the panel
    assert checks(v, "gpu.temp")["gpu.temp:1"].state is State.STALE
    assert checks(v, "disk")["disk.bytes:/"].state is State.OK


async def test_prometheus_unreachable_marks_its_hosts_unknown_with_the_reason(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock())}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    src.fail = TransportError(Reason.UNREACHABLE, "cannot reach Prometheus at prom:9090: refused")
    clock.t += 1
    await fleet.poll_once()
    v = fleet.view("n1")
    assert v.state is State.UNKNOWN and v.reason is Reason.UNREACHABLE
    assert "prom:9090" in checks(v)["link"].summary
    assert checks(v, "gpu.temp")["gpu.temp:0"].state is State.STALE


async def test_a_target_prometheus_cannot_scrape_is_unreachable_at_once(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock()), "n2": host_data("n2", clock())}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    src.data = {"n2": host_data("n2", clock())}
    src.down = {"n1": "Prometheus cannot scrape n1:9400 (job dcgm)", "n2": "cannot scrape n2:9100"}
    await fleet.poll_once()
    assert fleet.view("n1").reason is Reason.UNREACHABLE
    assert "n1:9400" in checks(fleet.view("n1"))["link"].summary
    # n2 still sends data: one exporter down is not the box unreachable
    assert fleet.view("n2").state is State.OK


async def test_wrong_label_mapping_is_unknown_with_a_reason_naming_the_label(clock):
    src = StubSource(clock, label_map={"trainer": "no-such-node"})
    src.data = {"n1": host_data("n1", clock())}
    spec = WatchSpec(name="trainer", transport="local", thresholds=FAST)
    fleet = PrometheusFleet([spec], src, interval=IV, clock=clock, thresholds=FAST,
                            transports={"trainer": LocalTransport("trainer")})
    await fleet.poll_once()
    v = fleet.view("trainer")
    gpu = checks(v)["gpu.probe"]
    assert gpu.state is State.UNKNOWN and gpu.reason is Reason.NOT_FOUND
    assert 'Hostname="no-such-node"' in gpu.summary and "label_map" in gpu.summary
    disk = checks(v)["disk.bytes:*"]
    assert disk.state is State.UNKNOWN and 'instance="no-such-node:PORT"' in disk.summary


async def test_a_site_without_node_exporter_is_not_a_disk_error(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock(), disks=False, mem=False)}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    v = fleet.view("n1")
    assert v.state is State.OK and not checks(v, "disk") and v.snapshot.disks == ()


class Recording(LocalTransport):
    """The real local transport, remembering which probe steps it was asked to run."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.keys: list[str] = []

    async def run(self, steps, *, deadline):
        self.keys += [s.key for s in steps]
        return await super().run(steps, deadline=deadline)


async def test_a_host_combines_prometheus_metrics_with_its_own_log_and_jobs(clock, tmp_path):
    log = tmp_path / "train.log"
    log.write_text("step 10 loss 2.5\nstep 20 loss 2.1\n")
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock()), "n2": host_data("n2", clock())}
    spec = WatchSpec(name="n1", transport="local", log=str(log), thresholds=FAST)
    transport = Recording("n1")
    fleet = PrometheusFleet([spec], src, interval=IV, clock=clock, thresholds=FAST,
                            transports={"n1": transport}, initial=src.data)
    src.answered = frozenset({"gpu", "disk", "memory"})
    views = {v.name: v for v in await fleet.one_round(deadline=30)}
    assert set(views) == {"n1", "n2"}
    v = views["n1"]
    assert v.snapshot.transport == "local+prometheus"
    assert [g.util_pct for g in v.snapshot.gpus] == [97.0, 12.0]  # from Prometheus
    assert v.snapshot.log_lines[-1] == "step 20 loss 2.1"  # from its own transport
    assert transport.keys and "log" in transport.keys
    assert not {"gpu", "gpu_health", "df_bytes", "df_inodes", "memory"} & set(transport.keys)
    # the combined host is judged on Prometheus's cadence, not nvidia-smi's 2 s
    assert fleet.watchers["n1"].analysis.engine.intervals.gpu == IV


async def test_history_on_open_fills_the_sparklines(clock):
    src = StubSource(clock)
    src.data = {"n1": host_data("n1", clock())}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    v = await fleet.load_history("n1", 600)
    assert src.history_asked == [("n1", 600, IV)]
    assert v.snapshot.util_history[0] == (10.0, None, 30.0)
    assert v.snapshot.mem_history[0] == (1.0, 2.0, 3.0)
    assert await fleet.load_history("nope") is None


def test_no_prometheus_asked_means_no_prometheus_fleet():
    class Args:
        prometheus = None
        hosts: list = []

    assert prometheus_fleet_from_args(Args(), None, []) is None


def test_unreachable_prometheus_as_the_only_source_is_an_error_to_print():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Args:
        prometheus = f"http://127.0.0.1:{port}"
        hosts: list = []

    local = WatchSpec(name="localhost", transport="local", discover=True)
    with pytest.raises(ValueError, match=f"127.0.0.1:{port}"):
        prometheus_fleet_from_args(Args(), None, [local])


async def test_an_xid_from_dcgm_becomes_a_gpu_alert_hardware_crit_application_warn(clock):
    src = StubSource(clock)
    src.data = {"n1": dataclasses.replace(host_data("n1", clock()), xid_errors=((1, 79),)),
                "n2": dataclasses.replace(host_data("n2", clock()), xid_errors=((0, 13),)),
                "n3": host_data("n3", clock())}
    fleet = PrometheusFleet([], src, interval=IV, clock=clock, thresholds=FAST)
    await fleet.poll_once()
    n1, n2, n3 = (fleet.view(h) for h in ("n1", "n2", "n3"))
    xid = checks(n1, "gpu.xid")
    assert list(xid) == ["gpu.xid:1"] and xid["gpu.xid:1"].state is State.CRIT
    assert "Xid 79" in xid["gpu.xid:1"].summary and "fallen off the bus" in xid["gpu.xid:1"].summary
    assert n1.state is State.CRIT
    assert checks(n2, "gpu.xid")["gpu.xid:0"].state is State.WARN and n2.state is State.WARN
    assert checks(n3, "gpu.xid") == {} and n3.state is State.OK
    # the Xid gauge back to 0 (no series with a value): the alert clears
    src.data["n1"] = host_data("n1", clock())
    clock.t += IV
    await fleet.poll_once()
    assert checks(fleet.view("n1"), "gpu.xid") == {} and fleet.view("n1").state is State.OK
