"""Fusion of the log's verdict with live probes (issue 3, part 2), on real fixture values."""

from gpudash.model import DiskUsage, GpuSample, HostSnapshot, MemorySample, TmuxSession
from gpudash.sanitize import is_inert
from gpudash.triage import classify, classify_file
from gpudash.triage.fusion import LiveFacts, facts_from_snapshot, fuse
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"


def df_small():
    """bytes and inode use of the real 64 MiB / 200-inode tmpfs filled until ENOSPC (df -P -B1, df -Pi)."""
    b = (FIXTURES / "h100/df-PB1-small.txt").read_text().split("\n")[1].split()
    i = (FIXTURES / "h100/df-Pi-small.txt").read_text().split("\n")[1].split()
    used, avail = int(b[2]), int(b[3])
    return DiskUsage(mount=b[5], filesystem=b[0], size_bytes=int(b[1]), used_bytes=used, avail_bytes=avail,
                     inodes_total=int(i[1]), inodes_used=int(i[2]), inodes_free=int(i[3]))


def test_enospc_with_inodes_at_100_percent_says_inodes_not_bytes():
    disk = df_small()
    r = fuse(classify_file(LOGS / "fail-inodes.log"),
             LiveFacts(mount=disk.mount, bytes_pct=disk.bytes_pct, inode_pct=disk.inodes_pct))
    assert r.cls == "disk_full"
    assert r.cause == "inodes"
    assert r.confirmed
    assert r.summary.startswith("inodes ran out, bytes are fine (inodes 100%, bytes 2% used on /mnt/small)")
    assert r.evidence[0].line_no == 3  # the log's own evidence stays
    assert r.to_json()["cause"] == "inodes"


def test_enospc_with_bytes_full_says_bytes():
    r = fuse(classify_file(LOGS / "fail-disk-full-write.log"), LiveFacts(bytes_pct=99.5, inode_pct=12.0))
    assert r.cause == "bytes"


def test_quota_from_the_log_is_kept():
    r = fuse(classify("OSError: [Errno 122] Disk quota exceeded\n"), LiveFacts(bytes_pct=99.5, inode_pct=100.0))
    assert r.cause == "quota"


def test_log_that_just_stops_plus_oom_kill_event_is_confirmed_host_oom():
    r = fuse(classify_file(LOGS / "stall-pattern.log"), LiveFacts(process_gone=True, oom_kills_delta=1))
    assert r.cls == "host_oom"
    assert r.confirmed
    assert "oom_kill" in r.summary and "the log just stops" in r.summary
    assert r.remediation.startswith("Size DataLoader workers")


def test_bare_killed_in_the_log_is_confirmed_by_the_pane_status():
    r = fuse(classify_file(LOGS / "fail-killed.log"), LiveFacts(pane_dead_status=137))
    assert r.cls == "host_oom" and r.confirmed
    assert r.evidence[0].line_no == 2


def test_slurm_out_of_memory_state_over_a_symptom_in_the_log():
    log = ("[E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL("
           "SeqNum=5, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1802212 milliseconds before timing out.\n")
    r = fuse(classify(log), LiveFacts(slurm_state="OUT_OF_MEMORY"))
    assert r.cls == "host_oom"
    assert "the log showed nccl" in r.summary


def test_a_physical_failure_in_the_log_is_not_overridden():
    r = fuse(classify_file(LOGS / "fail-cuda-oom.log"), LiveFacts(oom_kills_delta=2, process_gone=True))
    assert r.cls == "cuda_oom"


def test_scheduler_state_and_pane_status_decide_a_silent_log():
    stall = classify_file(LOGS / "stall-pattern.log")
    assert fuse(stall, LiveFacts(slurm_state="TIMEOUT")).cls == "time_limit"
    assert fuse(stall, LiveFacts(slurm_state="NODE_FAIL")).cls == "node_failure"
    assert fuse(stall, LiveFacts(pane_dead_status=139)).cls == "segfault"
    assert fuse(stall, LiveFacts(pane_dead_status=143)).cls == "preempted"


def test_srun_cancel_after_a_failure_keeps_the_log_class():
    r = fuse(classify(
        "[rank2]: KeyError: 'labels'\nslurmstepd: error: *** STEP 5.0 ON n1 CANCELLED AT 2026-01-01T00:00:00 ***\n"),
        LiveFacts(slurm_state="CANCELLED"))
    assert r.cls == "code_error"


def test_process_gone_without_completion_line_or_marker_is_a_probable_failure():
    stall = classify_file(LOGS / "stall-pattern.log")
    assert fuse(stall, LiveFacts(process_gone=True)).cls == "unknown_error"
    assert fuse(stall, LiveFacts(process_gone=True, completion_marker=True)).cls == "completed"
    assert fuse(stall, LiveFacts(process_gone=False)).cls == "none"


def test_non_failure_diagnoses():
    stall = classify_file(LOGS / "stall-pattern.log")
    notes = fuse(stall, LiveFacts(log_silent_s=900, checkpoint_advanced=True)).diagnoses
    assert any(n.startswith("block-buffered stdout") for n in notes)
    notes = fuse(stall, LiveFacts(gpu_util_window=12.0, steps_advancing=True)).diagnoses
    assert any(n.startswith("data-bound") for n in notes)
    notes = fuse(stall, LiveFacts(gpu_util_window=12.0, steps_advancing=True, threads_vs_quota=8.0)).diagnoses
    assert any(n.startswith("thread oversubscription") for n in notes)
    assert not any(n.startswith("data-bound") for n in notes)
    notes = fuse(stall, LiveFacts(gpu_mem_held_without_process=True, process_gone=True, completion_marker=True)).diagnoses
    assert any(n.startswith("zombie VRAM") for n in notes)
    notes = fuse(stall, LiveFacts(nvidia_smi_timed_out=True)).diagnoses
    assert any(n.startswith("driver possibly hung") for n in notes)
    notes = fuse(stall, LiveFacts(load_per_core=3.5, threads_vs_quota=0.5, cgroup_mem_pct=40.0)).diagnoses
    assert any(n.startswith("noisy neighbour") for n in notes)
    notes = fuse(stall, LiveFacts(script_mtime_after_start=True)).diagnoses
    assert any(n.startswith("edited under a live run") for n in notes)
    assert all(is_inert(n) for n in notes)


def test_no_diagnosis_without_facts():
    stall = classify_file(LOGS / "stall-pattern.log")
    assert fuse(stall, LiveFacts()) == stall
    assert fuse(stall, None) is stall


def test_zombie_vram_needs_the_process_confirmed_gone():
    # inside containers the apps list is empty while memory is held: that is "cannot see", not zombie
    notes = fuse(classify(""), LiveFacts(gpu_mem_held_without_process=True, process_gone=None)).diagnoses
    assert not any(n.startswith("zombie VRAM") for n in notes)


def test_facts_from_a_snapshot():
    disk = df_small()
    panes = (FIXTURES / "local/tmux-list-panes-F.txt").read_text().split("\n")[0].split("|")
    snap = HostSnapshot(
        name="box", taken_at=1000.0, disks=(disk,),
        memory=MemorySample(source="cgroup_v2", used_bytes=50, limit_bytes=100, oom_kills=1, load1=32.0, nproc=16),
        gpus=(GpuSample(index=0, mem_used_mib=40000.0),), apps=(),
        tmux=(TmuxSession(name=panes[0], pane_dead=True, pane_dead_status=137),),
        util_history=((10.0, 20.0, None),), log_grew_at=100.0,
    )
    f = facts_from_snapshot(snap)
    assert f.inode_pct == 100.0 and f.mount == "/mnt/small"
    assert f.pane_dead_status == 137
    assert f.gpu_util_window == 15.0
    assert f.log_silent_s == 900.0
    assert f.load_per_core == 2.0
    assert f.cgroup_mem_pct == 50.0
    assert f.gpu_mem_held_without_process is True
    r = fuse(classify_file(LOGS / "fail-inodes.log"), f)
    assert r.cls == "disk_full" and r.cause == "inodes"
