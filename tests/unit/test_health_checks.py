"""Resource checks at their thresholds: disk bytes vs inodes, memory and the OOM killer, GPUs,
the SSH link (never CRIT), STALE data."""

from pathlib import Path

import pytest

from gpudash.health import Intervals, RunContext, Thresholds, evaluate, host_state
from gpudash.model import (
    DirListing,
    DiskUsage,
    FileInfo,
    GpuHealthFields,
    GpuSample,
    HostSnapshot,
    LinkStatus,
    MemorySample,
    ProbeError,
    ProcessInfo,
    Reason,
    State,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "h100"
NOW = 1_800_000_000.0
TB = 10**13  # a big disk, so the "< 10 GB free" floor stays out of the percentage tests


def snap(**kw) -> HostSnapshot:
    base = dict(name="box", transport="ssh", taken_at=NOW, gpu_at=NOW, disk_at=NOW,
                memory_at=NOW, jobs_at=NOW, log_at=NOW, files_at=NOW)
    base.update(kw)
    return HostSnapshot(**base)


def run(s: HostSnapshot, ctx: RunContext | None = None, th: Thresholds | None = None,
        iv: Intervals | None = None, now: float = NOW) -> dict:
    checks = evaluate(s, th or Thresholds(), iv or Intervals(), now, context=ctx or RunContext())
    return {c.key: c for c in checks}


def disk(mount="/data", used=0, avail=0, size=None, itotal=None, iused=None):
    return DiskUsage(mount=mount, filesystem="/dev/x", size_bytes=size or used + avail,
                     used_bytes=used, avail_bytes=avail, inodes_total=itotal, inodes_used=iused,
                     inodes_free=None if itotal is None else itotal - iused)


# ----------------------------------------------------------------------------- disk


@pytest.mark.parametrize("used_permille,expected", [
    (899, State.OK), (900, State.WARN), (969, State.WARN), (970, State.CRIT), (1000, State.CRIT),
])
def test_disk_bytes_percent_boundaries(used_permille, expected):
    used = TB * used_permille // 1000
    c = run(snap(disks=(disk(used=used, avail=TB - used),)))["disk.bytes:/data"]
    assert c.state is expected, c.summary
    assert f"{100 * used_permille / 1000:.1f}% used" in c.summary


@pytest.mark.parametrize("avail,expected", [(9_999_999_999, State.WARN), (10_000_000_000, State.OK)])
def test_disk_free_floor_10_gb(avail, expected):
    # 50 GB disk, ~80 % used: only the free-space floor can warn
    c = run(snap(disks=(disk(used=50 * 10**9 - avail, avail=avail),)))["disk.bytes:/data"]
    assert c.state is expected, c.summary


def test_disk_crit_when_the_next_checkpoint_does_not_fit():
    d = disk(used=TB // 2, avail=TB // 2)  # 50 %: fine by percentage
    ctx = RunContext(checkpoint_size_bytes=TB // 2 + 1)
    c = run(snap(disks=(d,)), ctx)["disk.bytes:/data"]
    assert c.state is State.CRIT and "will not fit" in c.summary
    ctx = RunContext(checkpoint_size_bytes=TB // 2)
    assert run(snap(disks=(d,)), ctx)["disk.bytes:/data"].state is State.OK


def test_checkpoint_size_from_the_newest_checkpoint_applies_to_its_own_mount_only():
    ckpts = DirListing("/data/ckpt", True, (
        FileInfo("/data/ckpt/step-100.pt", True, size=10, mtime=NOW - 600),
        FileInfo("/data/ckpt/step-200.pt", True, size=TB // 2 + 1, mtime=NOW - 60),
    ))
    disks = (disk("/", used=TB // 2, avail=TB // 2), disk("/data", used=TB // 2, avail=TB // 2))
    checks = run(snap(disks=disks, checkpoints=ckpts))
    assert checks["disk.bytes:/data"].state is State.CRIT
    assert checks["disk.bytes:/"].state is State.OK


def _df_numbers(name: str) -> list[int]:
    row = (FIX / name).read_text().splitlines()[1].split()
    return [int(x) for x in row[1:4]]


def test_inode_trap_on_the_real_small_tmpfs_numbers():
    """df-PB1-small / df-Pi-small: bytes 2 % used, inodes 100 %: inodes CRIT, bytes OK."""
    size, used, avail = _df_numbers("df-PB1-small.txt")
    itotal, iused, ifree = _df_numbers("df-Pi-small.txt")
    d = DiskUsage("/mnt/small", "tmpfs", size, used, avail, itotal, iused, ifree)
    checks = run(snap(disks=(d,)))
    assert checks["disk.bytes:/mnt/small"].state is State.OK, checks["disk.bytes:/mnt/small"].summary
    ino = checks["disk.inodes:/mnt/small"]
    assert ino.state is State.CRIT
    assert "100.0%" in ino.summary and "inodes, not bytes" in ino.summary
    assert host_state(checks.values()) == (State.CRIT, None)


@pytest.mark.parametrize("iused,expected", [
    (899, State.OK), (900, State.WARN), (969, State.WARN), (970, State.CRIT),
])
def test_inode_boundaries(iused, expected):
    d = disk(used=TB // 10, avail=TB - TB // 10, itotal=1000, iused=iused)
    assert run(snap(disks=(d,)))["disk.inodes:/data"].state is expected


def test_filesystem_without_an_inode_table_has_no_inode_check():
    d = disk(used=1, avail=TB, itotal=0, iused=0)
    assert "disk.inodes:/data" not in run(snap(disks=(d,)))


def test_unreadable_mount_is_unknown_with_its_reason():
    checks = run(snap(disk_errors=(("/gone", "df: /gone: No such file or directory"),)))
    c = checks["disk.bytes:/gone"]
    assert c.state is State.UNKNOWN and c.reason is Reason.NOT_FOUND


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize("used,expected", [(899, State.OK), (900, State.WARN)])
def test_memory_percent_of_the_cgroup_limit(used, expected):
    m = MemorySample("cgroup_v2", used_bytes=used * 10**6, limit_bytes=1000 * 10**6,
                     host_total_bytes=10**12, host_available_bytes=10**12)
    c = run(snap(memory=m))["memory"]
    assert c.state is expected and "cgroup limit" in c.summary


def test_memory_falls_back_to_the_host_when_no_cgroup_limit():
    m = MemorySample("meminfo", host_total_bytes=1000, host_available_bytes=100)
    c = run(snap(memory=m))["memory"]
    assert c.state is State.WARN and "host memory" in c.summary


def test_memory_from_the_real_meminfo_fixture_is_ok():
    kb = {}
    for line in (FIX / "cgroup.txt").read_text().splitlines():
        if line.startswith("Mem"):
            k, v = line.split(":")
            kb[k] = int(v.split()[0]) * 1024
    m = MemorySample("meminfo", host_total_bytes=kb["MemTotal"],
                     host_available_bytes=kb["MemAvailable"])
    assert run(snap(memory=m))["memory"].state is State.OK


def test_oom_crit_only_on_a_new_kill_and_held_for_a_patrol_window():
    ctx = RunContext()
    th = Thresholds()

    def oom(n: int, t: float):
        m = MemorySample("cgroup_v2", used_bytes=1, limit_bytes=100, oom_kills=n)
        return run(snap(memory=m, memory_at=t), ctx, now=t)["memory.oom"]

    # an old count at start is history, not an alert
    assert oom(3, NOW).state is State.OK
    assert oom(3, NOW + 10).state is State.OK
    c = oom(4, NOW + 20)
    assert c.state is State.CRIT and "3 → 4" in c.summary
    # the counter stays at 4: still CRIT (so hysteresis can confirm it) within the window
    assert oom(4, NOW + 30).state is State.CRIT
    later = NOW + 20 + th.patrol_window_s
    assert oom(4, later).state is State.OK
    # a restart clears it too
    assert oom(5, later + 10).state is State.CRIT
    ctx.reset_run()
    assert oom(5, later + 20).state is State.OK

# ----------------------------------------------------------------------------- GPU


def gpu(i=0, **kw):
    base = dict(index=i, uuid=f"GPU-{i}", name="NVIDIA H100 80GB HBM3", util_pct=90.0,
                mem_total_mib=81559.0, mem_used_mib=1000.0, temp_c=40.0)
    base.update(kw)
    return GpuSample(**base)


@pytest.mark.parametrize("temp,expected", [(84.9, State.OK), (85.0, State.WARN)])
def test_gpu_temperature(temp, expected):
    assert run(snap(gpus=(gpu(temp_c=temp),)))["gpu.temp:0"].state is expected


@pytest.mark.parametrize("pct,expected", [(94.9, State.OK), (95.0, State.WARN)])
def test_gpu_memory(pct, expected):
    g = gpu(mem_total_mib=1000.0, mem_used_mib=pct * 10)
    assert run(snap(gpus=(g,)))["gpu.mem:0"].state is expected


def test_gpu_ecc_and_unavailable_fields():
    s = snap(gpus=(gpu(temp_c=None),), gpu_health=(GpuHealthFields(0, ecc_uncorrected=2),))
    checks = run(s)
    assert checks["gpu.ecc:0"].state is State.CRIT
    assert "gpu.temp:0" not in checks  # [N/A] is unavailable, not 0 °C and not a problem


def test_no_gpu_is_unknown_no_gpu_and_never_crit():
    s = snap(gpu_error=ProbeError(Reason.NO_GPU, "nvidia-smi: command not found"), gpu_at=None)
    checks = run(s)
    assert checks["gpu.probe"].state is State.UNKNOWN
    assert checks["gpu.probe"].reason is Reason.NO_GPU
    assert host_state(checks.values()) == (State.UNKNOWN, Reason.NO_GPU)


def test_driver_hung_is_unknown_and_old_gpu_data_goes_stale():
    s = snap(gpus=(gpu(temp_c=90.0),), gpu_at=NOW - 7,
             gpu_error=ProbeError(Reason.DRIVER_HUNG, "nvidia-smi stuck past 8 s"))
    checks = run(s)
    assert checks["gpu.probe"].state is State.UNKNOWN
    assert checks["gpu.probe"].reason is Reason.DRIVER_HUNG
    assert checks["gpu.temp:0"].state is State.STALE  # 7 s > 3 x 2 s
    assert "last: WARN" in checks["gpu.temp:0"].summary


# ----------------------------------------------------------------------------- link, STALE


def test_unreachable_link_is_unknown_and_never_makes_gpu_or_job_crit():
    since = NOW - 120
    ctx = RunContext()
    alive = snap(processes=(ProcessInfo(1, "python train.py", start_epoch=NOW - 3600),),
                 taken_at=since - 5, jobs_at=since - 5)
    run(alive, ctx, now=since - 5)
    assert ctx.seen_alive
    hot = (gpu(temp_c=95.0, mem_used_mib=81000.0),)
    down = snap(link=LinkStatus(ok=False, reason=Reason.UNREACHABLE, message="connect timed out",
                                since=since, last_ok=since - 5),
                gpus=hot, gpu_error=ProbeError(Reason.UNREACHABLE),
                disks=(disk(used=TB, avail=0),), processes=(),
                gpu_at=since - 3, disk_at=since - 8, jobs_at=since - 5, memory_at=since - 8,
                log_at=since - 1, files_at=since - 20)
    checks = run(down, ctx)
    assert checks["link"].state is State.UNKNOWN and checks["link"].reason is Reason.UNREACHABLE
    assert not [c for c in checks.values() if c.state is State.CRIT]
    assert checks["disk.bytes:/data"].state is State.STALE
    assert checks["gpu.temp:0"].state is State.STALE
    assert ctx.ended_at is None  # a dropped link never declares the job dead
    assert host_state(checks.values()) == (State.UNKNOWN, Reason.UNREACHABLE)


def test_fresh_data_from_another_source_stays_live_while_ssh_is_down():
    down = snap(link=LinkStatus(ok=False, reason=Reason.UNREACHABLE, since=NOW - 60),
                gpus=(gpu(temp_c=90.0),), gpu_at=NOW - 1)  # e.g. from Prometheus
    assert run(down)["gpu.temp:0"].state is State.WARN


@pytest.mark.parametrize("age,expected", [(30.0, State.OK), (30.5, State.STALE)])
def test_stale_after_three_intervals(age, expected):
    s = snap(disks=(disk(used=TB // 2, avail=TB // 2),), disk_at=NOW - age)
    c = run(s)["disk.bytes:/data"]
    assert c.state is expected
    if expected is State.STALE:
        assert c.detail["last_state"] == "OK"


def test_stale_intervals_follow_the_probe_cadence():
    iv = Intervals(disk=2.0)
    s = snap(disks=(disk(used=TB // 2, avail=TB // 2),), disk_at=NOW - 7)
    assert run(s, iv=iv)["disk.bytes:/data"].state is State.STALE
    assert run(s)["disk.bytes:/data"].state is State.OK
    s = snap(disks=(disk(used=TB // 2, avail=TB // 2),), disk_at=NOW - 11)
    assert run(s)["disk.bytes:/data"].state is State.OK
    assert run(s, iv=Intervals(stale_after=1))["disk.bytes:/data"].state is State.STALE
