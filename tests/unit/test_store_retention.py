"""Downsampling and retention: raw samples for an hour, minute means for 7 days, then gone."""

from __future__ import annotations

from gpudash.model import GpuSample, HostSnapshot
from gpudash.store import Store

T0 = 1_700_000_040.0  # a minute boundary


def snap(t: float, util: float) -> HostSnapshot:
    return HostSnapshot(name="a", gpus=(GpuSample(0, util_pct=util, mem_used_mib=40,
                                                  mem_total_mib=80),), gpu_at=t)


def rows(st: Store, res: int) -> int:
    return st.conn.execute("SELECT count(*) FROM samples WHERE res = ?", (res,)).fetchone()[0]


def test_old_raw_samples_become_minute_means(tmp_path):
    now = [T0]
    st = Store.open(tmp_path / "h.sqlite3", clock=lambda: now[0])
    # 2 hours at one sample every 2 s; util = 10 in even minutes, 30 in odd ones
    for i in range(3600):
        t = T0 + 2 * i
        st.record_samples("a", snap(t, 10.0 if (i // 30) % 2 == 0 else 30.0))
    end = T0 + 7200
    st.maintain(end)
    assert rows(st, 60) == 60  # the first hour: 60 minute rows
    assert rows(st, 0) == 1800  # the last hour kept raw
    h = st.history("a", since=T0, until=T0 + 3599)
    means = [v for _, v in h["gpu_util"][0]]
    assert means[:4] == [10.0, 30.0, 10.0, 30.0]
    assert h["gpu_mem"][0][0][1] == 50.0
    # maintenance again changes nothing
    st.maintain(end)
    assert (rows(st, 60), rows(st, 0)) == (60, 1800)
    # 8 days later everything is beyond retention
    st.maintain(end + 8 * 86400)
    assert rows(st, 60) == 0 and rows(st, 0) == 0
    st.close()


def test_a_minute_folded_twice_merges_weighted(tmp_path):
    st = Store.open(tmp_path / "h.sqlite3", clock=lambda: T0)
    for i in range(10):
        st.record_samples("a", snap(T0 + i, 10.0))
    st.maintain(T0 + 3600 + 120)
    # a late writer (another instance) adds samples of the same minute, folded later
    st._last_t.clear()
    for i in range(30):
        st.record_samples("a", snap(T0 + 20 + i, 50.0))
    st.maintain(T0 + 3600 + 180)
    h = st.history("a", since=0)
    assert h["gpu_util"][0] == [(T0, 40.0)]  # (10*10 + 30*50) / 40
    assert st.conn.execute("SELECT n FROM samples WHERE res = 60").fetchall() == [(40,)]
    st.close()


def test_unavailable_values_do_not_drag_means_to_zero(tmp_path):
    st = Store.open(tmp_path / "h.sqlite3", clock=lambda: T0)
    for i in range(20):  # util unavailable in half the samples ([N/A] is None, never 0)
        st.record_samples("a", snap(T0 + i, 80.0 if i % 2 else None))
    st.maintain(T0 + 3600 + 120)
    assert st.history("a", since=0)["gpu_util"][0] == [(T0, 80.0)]
    st._last_t.clear()
    for i in range(20, 30):  # a second fold of the same minute with nothing known
        st.record_samples("a", snap(T0 + i, None))
    st.maintain(T0 + 3600 + 180)
    assert st.history("a", since=0)["gpu_util"][0] == [(T0, 80.0)]
    st.close()


def test_record_samples_runs_maintenance_on_its_own(tmp_path):
    now = [T0]
    st = Store.open(tmp_path / "h.sqlite3", clock=lambda: now[0])
    for i in range(100):
        st.record_samples("a", snap(T0 + 60 * i, 1.0))
        now[0] = T0 + 60 * i
    # 100 minutes of samples with maintenance every 5 min: older than 1 h are minute rows
    assert rows(st, 60) >= 30
    assert rows(st, 0) <= 65
    st.close()


def test_history_in_buckets(tmp_path):
    from gpudash.model import DiskUsage, MemorySample

    st = Store.open(tmp_path / "h.sqlite3", clock=lambda: T0)
    for i in range(120):  # 4 minutes at 2 s: util 0..119, two GPUs, a disk, memory
        t = T0 + 2 * i
        st.record_samples("a", HostSnapshot(
            name="a", gpu_at=t, gpus=(GpuSample(0, util_pct=float(i)), GpuSample(1, util_pct=None)),
            disks=(DiskUsage("/", size_bytes=100, used_bytes=i, inodes_total=10, inodes_used=1),),
            disk_at=t, memory=MemorySample("meminfo", used_bytes=i, host_total_bytes=1000),
            memory_at=t))
    h = st.history("a", since=0, step_s=60)
    assert [p[1] for p in h["gpu_util"][0]] == [14.5, 44.5, 74.5, 104.5]  # means of 30 samples
    assert [p[1] for p in h["gpu_util"][1]] == [None] * 4  # unavailable stays unavailable
    assert h["disk"]["/"][0] == (T0, 14.5, 100.0, 1.0, 10.0)
    assert h["memory"][0] == (T0, 14.5, 1000.0)
    st.close()
