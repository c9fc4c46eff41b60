"""Random snapshots (NaN, infinities, None, negative and huge numbers, odd states) never make the
health engine raise, and its output keeps its invariants."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudash.health import HealthEngine, RunContext, Thresholds, evaluate, host_state, summarize_jobs
from gpudash.model import (
    ComputeApp,
    DirListing,
    DiskUsage,
    FileInfo,
    GpuHealthFields,
    GpuSample,
    HostSnapshot,
    LinkStatus,
    MemorySample,
    MetricPoint,
    ProbeError,
    ProcessInfo,
    Progress,
    RayJob,
    Reason,
    SlurmJob,
    State,
    TmuxSession,
)

NOW = 1_800_000_000.0
num = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                st.floats(-1e3, 1e3), st.integers(-10, 10**6).map(float))
count = st.one_of(st.none(), st.integers(-5, 10**15))
when = st.one_of(st.none(), st.floats(NOW - 10**5, NOW + 100), st.floats(allow_nan=True))
text = st.text(max_size=12)
states = st.sampled_from(["RUNNING", "PENDING", "COMPLETED", "FAILED", "CANCELLED by 0",
                          "TIMEOUT", "SUCCEEDED", "STOPPED", "", "x"])

gpus = st.builds(GpuSample, index=st.integers(0, 3), uuid=text, util_pct=num, mem_total_mib=num,
                 mem_used_mib=num, temp_c=num)
disks = st.builds(DiskUsage, mount=st.sampled_from(["/", "/data", "/data/x", "/dev/shm"]),
                  size_bytes=count, used_bytes=count, avail_bytes=count, inodes_total=count,
                  inodes_used=count, inodes_free=count)
memory = st.builds(MemorySample, source=st.sampled_from(["cgroup_v2", "meminfo"]),
                   used_bytes=count, limit_bytes=count, oom_kills=count, host_total_bytes=count,
                   host_available_bytes=count)
points = st.builds(MetricPoint, step=st.one_of(st.none(), st.integers(-10, 10**7)), loss=num,
                   grad_norm=num, line_no=st.one_of(st.none(), st.integers(0, 10**6)), at=when)
procs = st.builds(ProcessInfo, pid=st.integers(1, 10**6), command=text,
                  elapsed_s=st.one_of(st.none(), st.integers(-5, 10**7)), start_epoch=when)
files = st.builds(FileInfo, path=st.sampled_from(["/data/ckpt/a", "/x"]), exists=st.booleans(),
                  size=count, mtime=when)

snapshots = st.builds(
    HostSnapshot,
    name=st.just("box"),
    taken_at=st.floats(NOW - 100, NOW),
    link=st.builds(LinkStatus, ok=st.booleans(),
                   reason=st.one_of(st.none(), st.sampled_from(list(Reason))), since=when),
    gpus=st.lists(gpus, max_size=3).map(tuple),
    gpu_health=st.lists(st.builds(GpuHealthFields, index=st.integers(0, 3),
                                  ecc_uncorrected=count), max_size=2).map(tuple),
    gpu_error=st.one_of(st.none(), st.builds(ProbeError, reason=st.sampled_from(list(Reason)))),
    gpu_at=when,
    apps=st.one_of(st.none(), st.lists(st.builds(ComputeApp, pid=st.integers(1, 9),
                                                 process_name=text, used_mib=num, gpu_uuid=text),
                                       max_size=2).map(tuple)),
    util_history=st.lists(st.lists(num, max_size=40).map(tuple), max_size=3).map(tuple),
    disks=st.lists(disks, max_size=3).map(tuple),
    disk_errors=st.lists(st.tuples(st.sampled_from(["/", "/gone"]), text), max_size=2).map(tuple),
    disk_at=when,
    memory=st.one_of(st.none(), memory),
    memory_at=when,
    processes=st.lists(procs, max_size=3).map(tuple),
    tmux=st.lists(st.builds(TmuxSession, name=text, pane_dead=st.booleans(),
                            pane_dead_status=count, pane_command=text), max_size=2).map(tuple),
    slurm=st.lists(st.builds(SlurmJob, job_id=text, state=states,
                             source=st.sampled_from(["squeue", "aged_out"])), max_size=2).map(tuple),
    ray=st.lists(st.builds(RayJob, job_id=text, status=states), max_size=2).map(tuple),
    jobs_at=when,
    log_path=st.one_of(st.none(), st.just("/data/run.log")),
    log_error=st.one_of(st.none(), text),
    log_grew_at=when,
    log_at=when,
    metrics=st.lists(points, max_size=40).map(tuple),
    progress=st.one_of(st.none(), st.builds(Progress, current=st.integers(-5, 10**6))),
    markers=st.lists(files, max_size=2).map(tuple),
    checkpoints=st.one_of(st.none(), st.builds(DirListing, path=st.just("/data/ckpt"),
                                               exists=st.booleans(),
                                               files=st.lists(files, max_size=3).map(tuple))),
    files_at=when,
)


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(snapshots, min_size=1, max_size=2),
       st.builds(RunContext, expected_duration_s=num, checkpoint_size_bytes=count,
                 script_mtime=when, completion_seen=st.booleans()))
def test_random_snapshots_never_raise(snaps, ctx):
    eng = HealthEngine(Thresholds())
    for i, s in enumerate(snaps):
        now = NOW + 15 * i
        raw = evaluate(s, eng.thresholds, eng.intervals, now, context=ctx)
        keys = [c.key for c in raw]
        assert len(keys) == len(set(keys))
        assert not [k for k in keys if k.startswith("health.error")], raw
        for c in raw:
            assert isinstance(c.state, State) and isinstance(c.summary, str) and c.summary
            if c.state is State.UNKNOWN:
                assert c.reason is not None
        checks, events = eng.update(s.name, raw, now)
        assert {c.key for c in checks} == set(keys)
        state, reason = host_state(checks)
        assert (reason is not None) == (state is State.UNKNOWN)
        assert isinstance(summarize_jobs(s), str)
        for e in events:
            assert e.new is not State.STALE and not (isinstance(e.at, float) and math.isnan(e.at))
