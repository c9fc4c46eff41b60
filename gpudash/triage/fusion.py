"""Fusion: the log's verdict combined with what the live probes see (issue 3, part 2).

The log alone often cannot tell: ENOSPC is the same error for bytes and inodes; a host OOM leaves
no line in the training log (the parent shell prints `Killed`, elsewhere); a scheduler's verdict
lives in `sacct`, not in the log. The probes can. Fusion never invents a failure from a healthy
log except where the product asks for it (a dead process with no completion → probable failure,
an `oom_kill` event → host OOM); everything else becomes a *diagnosis*: a note that explains a
symptom (block-buffered stdout, a data-bound run, zombie VRAM, a hung driver, a noisy neighbour,
thread oversubscription, a script edited under a live run) without being a failure class.
"""

from __future__ import annotations

import math
from dataclasses import replace

from gpudash.frozen import frozen
from gpudash.sanitize import clean_field
from gpudash.triage.result import TriageResult

INODES_FULL_PCT = 99.0  # "≈100%": df rounds, and a few inodes are reserved
BYTES_FULL_PCT = 97.0  # the CRIT threshold for bytes (product.md)
DATA_BOUND_UTIL_PCT = 50.0
NOISY_LOAD_PER_CORE = 1.0
OVERSUBSCRIBED_THREADS = 2.0  # threads per core of the job's CPU quota
SILENT_S = 600.0

# Classes that are often only the symptom, so a live fact about the real cause may replace them.
_SYMPTOMS = frozenset({"none", "unknown_error", "nccl", "network", "preempted", "cancelled"})
_SLURM = {
    "TIMEOUT": "time_limit", "DEADLINE": "time_limit", "PREEMPTED": "preempted", "NODE_FAIL": "node_failure",
    "BOOT_FAIL": "node_failure", "OUT_OF_MEMORY": "host_oom", "CANCELLED": "cancelled", "COMPLETED": "completed",
}
_EXIT_STATUS = {137: "host_oom", 139: "segfault", 143: "preempted", 130: "cancelled", 129: "cancelled"}


@frozen
class LiveFacts:
    """What the live probes know about the run. None everywhere means "unknown", never 0/False."""

    mount: str | None = None  # the mount the run writes to (its checkpoint dir's), for messages
    bytes_pct: float | None = None
    inode_pct: float | None = None
    process_gone: bool | None = None  # the job's process was seen alive and is now gone
    oom_kills_delta: int | None = None  # new oom_kill events in the job's cgroup since it started
    pane_dead_status: int | None = None  # tmux remain-on-exit status of the run's pane
    slurm_state: str | None = None  # sacct/scontrol terminal state, e.g. OUT_OF_MEMORY, TIMEOUT
    completion_marker: bool | None = None  # a *_DONE / completion marker file exists
    log_silent_s: float | None = None  # seconds since the log last grew
    checkpoint_advanced: bool | None = None  # the newest checkpoint is newer than the last log line
    gpu_util_window: float | None = None  # GPU util averaged over the window, %
    steps_advancing: bool | None = None  # the step counter moved within the window
    gpu_mem_held_without_process: bool | None = None  # memory used, compute-apps list empty
    nvidia_smi_timed_out: bool | None = None
    load_per_core: float | None = None  # host load1 / cores
    cgroup_mem_pct: float | None = None
    threads_vs_quota: float | None = None  # the job's threads / its cgroup CPU quota (cores)
    script_mtime_after_start: bool | None = None
    run_elapsed_s: float | None = None
    expected_duration_s: float | None = None
    silent_threshold_s: float = SILENT_S
    # The user's thresholds (the health engine's, from the config) where triage shares one with a
    # health check: a disk the user calls full at 95 % is full here too.
    bytes_full_pct: float = BYTES_FULL_PCT
    data_bound_util_pct: float = DATA_BOUND_UTIL_PCT
    early_end_fraction: float = 0.5


def _pct(v: float | None) -> str:
    """Rounded up, as df prints its Use% (a 1.2% full disk reads 2%, a 99.1% one 100%)."""
    return "?" if v is None else f"{math.ceil(v - 1e-9):.0f}%"


def _on(facts: LiveFacts) -> str:
    return f" on {clean_field(facts.mount, max_len=120)}" if facts.mount else ""


def _relabel(r: TriageResult, cls: str, summary: str, **kw) -> TriageResult:
    keep_evidence = r.evidence if r.cls == cls else ()
    return r.with_class(cls, summary, evidence=keep_evidence, confirmed=True, **kw)


def _disk(r: TriageResult, f: LiveFacts, notes: list[str]) -> TriageResult:
    if r.cls != "disk_full" or r.cause == "quota":
        return r
    where = _on(f)
    if f.inode_pct is not None and f.inode_pct >= INODES_FULL_PCT:
        if f.bytes_pct is not None and f.bytes_pct >= f.bytes_full_pct:
            return replace(r, cause="bytes", confirmed=True,
                           summary=f"disk full: bytes {_pct(f.bytes_pct)} and inodes {_pct(f.inode_pct)} used{where} — {r.summary}")
        return replace(r, cause="inodes", confirmed=True,
                       summary=f"inodes ran out, bytes are fine (inodes {_pct(f.inode_pct)}, bytes "
                               f"{_pct(f.bytes_pct)} used{where}) — {r.summary}")
    if f.bytes_pct is not None and f.bytes_pct >= f.bytes_full_pct:
        return replace(r, cause="bytes", confirmed=True,
                       summary=f"bytes ran out ({_pct(f.bytes_pct)} used{where}) — {r.summary}")
    if f.bytes_pct is not None and f.inode_pct is not None:
        notes.append(f"the disk has room now (bytes {_pct(f.bytes_pct)}, inodes {_pct(f.inode_pct)}{where}): "
                     "files were deleted since, or the write went to another mount (a cache or /tmp)")
    return r


def _host_oom(r: TriageResult, f: LiveFacts) -> TriageResult | None:
    why = []
    if f.oom_kills_delta:
        why.append(f"{f.oom_kills_delta} oom_kill event(s) in the job's cgroup")
    if f.pane_dead_status == 137:
        why.append("the tmux pane exited with status 137 (SIGKILL)")
    if f.slurm_state and f.slurm_state.upper().startswith("OUT_OF_MEMORY"):
        why.append("Slurm says OUT_OF_MEMORY")
    if not why:
        return None
    if r.cls == "host_oom":
        return replace(r, confirmed=True, summary=f"{r.summary} — confirmed: {'; '.join(why)}")
    if r.cls in _SYMPTOMS and f.process_gone is not False:
        gone = "the process is gone and " if f.process_gone else ""
        return _relabel(r, "host_oom", f"host OOM confirmed by live probes: {gone}{'; '.join(why)}"
                                       + (" (the log just stops)" if r.cls == "none" else f" (the log showed {r.cls})"))
    return None


def _scheduler(r: TriageResult, f: LiveFacts) -> TriageResult | None:
    state = (f.slurm_state or "").upper().split()[0] if f.slurm_state else ""
    cls = _SLURM.get(state)
    if cls and cls != r.cls and r.cls in _SYMPTOMS:
        if cls == "completed" and r.cls != "none":
            return None
        if cls == "cancelled" and r.cls not in ("none", "unknown_error"):
            return None  # srun cancels a step after a failure: the log's class stays
        return _relabel(r, cls, f"Slurm job state {clean_field(state, max_len=40)}"
                                + ("" if r.cls == "none" else f" (the log showed {r.cls})"))
    status = f.pane_dead_status
    if status in _EXIT_STATUS and r.cls in ("none", "unknown_error") and _EXIT_STATUS[status] != "host_oom":
        return _relabel(r, _EXIT_STATUS[status], f"the run's tmux pane exited with status {status}")
    return None


def _gone(r: TriageResult, f: LiveFacts) -> TriageResult | None:
    if r.cls != "none":
        return None
    if f.completion_marker:
        return _relabel(r, "completed", "completion marker found")
    if f.process_gone and f.pane_dead_status == 0:
        return _relabel(r, "completed", "the run's process exited with status 0 (no completion line printed)")
    if f.process_gone:
        return _relabel(r, "unknown_error", "the process is gone with neither a completion line, a marker nor "
                                            "an error in the log (probable failure: check dmesg, the scheduler, "
                                            "the provider's console)")
    return None


def _diagnoses(r: TriageResult, f: LiveFacts, notes: list[str]) -> None:
    alive = f.process_gone is not True
    if alive and f.log_silent_s is not None and f.log_silent_s >= f.silent_threshold_s:
        mins = f.log_silent_s / 60
        if f.checkpoint_advanced:
            notes.append(f"block-buffered stdout: the log has been silent for {mins:.0f} min but the checkpoint "
                         "advances — run with `python -u` / PYTHONUNBUFFERED=1; not a hang")
        elif f.checkpoint_advanced is False or f.gpu_util_window is not None:
            notes.append(f"log silent for {mins:.0f} min while the process lives — possibly stalled "
                         "(`py-spy dump`, GPU util, a dead rank)")
    if alive and f.gpu_util_window is not None and f.gpu_util_window < f.data_bound_util_pct and f.steps_advancing:
        if f.threads_vs_quota is not None and f.threads_vs_quota >= OVERSUBSCRIBED_THREADS:
            notes.append(f"thread oversubscription: {f.threads_vs_quota:.1f} threads per core of the job's CPU "
                         f"quota with GPU at {f.gpu_util_window:.0f}% — set OMP_NUM_THREADS (and torch threads) "
                         "to the quota")
        else:
            notes.append(f"data-bound: GPU at {f.gpu_util_window:.0f}% over the window while steps advance — "
                         "more DataLoader workers, faster storage, pin_memory, prefetching")
    if f.gpu_mem_held_without_process and f.process_gone:
        notes.append("zombie VRAM: GPU memory is still held with no live compute process — a leftover "
                     "process or worker holds it (`fuser -v /dev/nvidia*`)")
    if f.nvidia_smi_timed_out:
        notes.append("driver possibly hung: nvidia-smi timed out (after an Xid it can hang in D state) — "
                     "do not start another one; check `dmesg` for Xid; the box may need a reboot")
    if f.load_per_core is not None and f.load_per_core >= NOISY_LOAD_PER_CORE \
            and (f.threads_vs_quota is None or f.threads_vs_quota < 1.0) \
            and (f.cgroup_mem_pct is None or f.cgroup_mem_pct < 90.0):
        notes.append(f"noisy neighbour: host load is {f.load_per_core:.1f} per core while the job's cgroup "
                     "has room — another tenant is busy, not your job")
    if f.script_mtime_after_start:
        notes.append("edited under a live run: the training script changed after the process started — "
                     "the next launch will differ from this one")
    if f.process_gone and f.run_elapsed_s is not None and f.expected_duration_s \
            and f.run_elapsed_s < f.expected_duration_s * f.early_end_fraction \
            and r.cls in ("completed", "none", "unknown_error"):
        share = "half" if f.early_end_fraction == 0.5 else f"{f.early_end_fraction:.0%}"
        notes.append(f"ended after {f.run_elapsed_s / 60:.0f} min, under {share} of its expected "
                     f"{f.expected_duration_s / 60:.0f} min: probable failure")


def fuse(result: TriageResult, facts: LiveFacts | None) -> TriageResult:
    """The log's verdict refined by live facts. Pure; never raises on partial facts."""
    if facts is None:
        return result
    notes: list[str] = []
    r = _disk(result, facts, notes)
    for step in (_host_oom, _scheduler, _gone):
        changed = step(r, facts)
        if changed is not None:
            r = changed
            break
    _diagnoses(r, facts, notes)
    merged = tuple(dict.fromkeys(result.diagnoses + tuple(notes)))
    if r is result and merged == result.diagnoses:
        return result  # the facts changed nothing (the usual refresh of a healthy run)
    return replace(r, diagnoses=merged, past=result.past)


# ----------------------------------------------------------------------------- from a snapshot


def facts_from_snapshot(snap, context=None, thresholds=None) -> LiveFacts:
    """LiveFacts from a gpudash.model.HostSnapshot (and the health engine's RunContext and
    Thresholds, when given). Tolerates missing pieces: anything not known stays None."""
    g = (lambda name, default=None: getattr(context, name, default)) if context is not None else (lambda n, d=None: d)
    disk = _relevant_disk(getattr(snap, "disks", ()) or (), g("checkpoint_dir"))
    mem = getattr(snap, "memory", None)
    taken = getattr(snap, "taken_at", None) or None
    grew = getattr(snap, "log_grew_at", None)
    ckpt = getattr(snap, "checkpoints", None)
    newest = ckpt.newest if ckpt is not None and getattr(ckpt, "files", None) else None
    util_window = _mean_of(getattr(snap, "util_history", ()) or ())
    gpus = getattr(snap, "gpus", ()) or ()
    apps = getattr(snap, "apps", None)
    gpu_err = getattr(snap, "gpu_error", None)
    reason = getattr(getattr(gpu_err, "reason", None), "value", None)
    tmux = [t for t in (getattr(snap, "tmux", ()) or ()) if getattr(t, "pane_dead", False)]
    slurm = [j for j in (getattr(snap, "slurm", ()) or ()) if getattr(j, "state", "")]
    procs = getattr(snap, "processes", ()) or ()
    threads = max((p.threads for p in procs if getattr(p, "threads", None)), default=None)
    quota = getattr(mem, "cpu_quota", None) if mem is not None else None
    started = g("run_started_at") or g("proc_start")
    script_mtime = g("script_mtime")
    ended = g("ended_at")
    oom_new = g("oom_new_at")
    return LiveFacts(
        mount=getattr(disk, "mount", None),
        bytes_pct=getattr(disk, "bytes_pct", None) if disk is not None else None,
        inode_pct=getattr(disk, "inodes_pct", None) if disk is not None else None,
        process_gone=(ended is not None) if g("seen_alive", False) or ended is not None else None,
        oom_kills_delta=(1 if oom_new is not None else (0 if getattr(mem, "oom_kills", None) is not None else None)),
        pane_dead_status=getattr(tmux[0], "pane_dead_status", None) if tmux else None,
        slurm_state=slurm[0].state.split()[0] if slurm else None,
        completion_marker=any(getattr(m, "exists", False) for m in (getattr(snap, "markers", ()) or ())) or None,
        log_silent_s=(taken - grew) if taken and grew else None,
        checkpoint_advanced=(newest.mtime > grew) if newest is not None and newest.mtime and grew else None,
        gpu_util_window=util_window,
        steps_advancing=_steps_advancing(getattr(snap, "metrics", ()) or ()),
        gpu_mem_held_without_process=(apps is not None and len(apps) == 0
                                      and any((x.mem_used_mib or 0) > 1024 for x in gpus)) or None,
        nvidia_smi_timed_out=True if reason in ("driver_hung", "timeout") else None,
        load_per_core=(mem.load1 / mem.nproc) if mem is not None and mem.load1 is not None and mem.nproc else None,
        cgroup_mem_pct=mem.used_pct if mem is not None and str(getattr(mem, "source", "")).startswith("cgroup") else None,
        threads_vs_quota=(threads / quota) if threads and quota else None,
        script_mtime_after_start=(script_mtime > started) if script_mtime and started else None,
        run_elapsed_s=((ended or taken) - started) if started and (ended or taken) else None,
        expected_duration_s=g("expected_duration_s"),
        **_threshold_facts(thresholds),
    )


def _threshold_facts(th) -> dict:
    if th is None:
        return {}
    return {"bytes_full_pct": th.disk_crit_pct, "data_bound_util_pct": th.gpu_util_low_pct,
            "silent_threshold_s": th.log_silent_warn_s, "early_end_fraction": th.early_end_fraction}


def _mean_of(histories) -> float | None:
    """The mean of every known value in several series (the GPUs' utilisation windows, hundreds
    of values each, on every view refresh): summed at C speed while a series is all numbers."""
    total, n = 0.0, 0
    for hist in histories:
        try:
            total += sum(hist)
            n += len(hist)
        except TypeError:  # a None (no reading) among them
            vals = [v for v in hist if v is not None]
            total += sum(vals)
            n += len(vals)
    return total / n if n else None


def _relevant_disk(disks, checkpoint_dir):
    if not disks:
        return None
    if checkpoint_dir:
        best = None
        for d in disks:
            m = d.mount.rstrip("/") or "/"
            if checkpoint_dir == m or checkpoint_dir.startswith(m.rstrip("/") + "/") or m == "/":
                if best is None or len(m) > len(best.mount):
                    best = d
        if best is not None:
            return best
    return max(disks, key=lambda d: max(d.inodes_pct or 0.0, d.bytes_pct or 0.0))


def _steps_advancing(points) -> bool | None:
    from gpudash.training.series import MetricSeries

    tail = points[-20:]
    if isinstance(tail, MetricSeries):  # from the column: a refresh per GPU sample made 20 points here
        steps = [s for s in tail.values("step") if s is not None]
    else:
        steps = [p.step for p in tail if getattr(p, "step", None) is not None]
    if len(steps) < 2:
        return None
    return steps[-1] > steps[0]
