"""Resource checks: the SSH link, GPUs, disks (bytes and inodes apart), memory and the OOM killer.

Each function reads a snapshot and returns raw verdicts (no hysteresis). A field the tool could not
report (None) yields no check rather than a guess: an unsupported sensor is not a health problem.
"""

from __future__ import annotations

import math

from gpudash.format import human_bytes
from gpudash.health.context import RunContext
from gpudash.health.thresholds import GB, Intervals, Thresholds
from gpudash.health.verdict import DISK, GPU, JOBS, MEMORY, age, clock, finite, mean_count, verdict
from gpudash.model import CheckResult, DiskUsage, HostSnapshot, Reason, State


def check_link(snap: HostSnapshot, now: float) -> CheckResult:
    link = snap.link
    if link.ok:
        return verdict("link", State.OK, f"connected ({snap.transport})")
    reason = link.reason or Reason.UNREACHABLE
    when = ""
    if link.since is not None:
        when = f" since {clock(link.since)} ({age(now - link.since)})"
    msg = f": {link.message}" if link.message else ""
    return verdict("link", State.UNKNOWN, f"{reason.value}{when}{msg}", reason=reason,
                   since=link.since, last_ok=link.last_ok)


# ----------------------------------------------------------------------------- GPU


def check_gpus(
    snap: HostSnapshot,
    th: Thresholds,
    iv: Intervals,
    now: float,
    *,
    job_running: bool | None,
    run_started_at: float | None,
) -> list[CheckResult]:
    out: list[CheckResult] = []
    err = snap.gpu_error
    if err is not None:
        # no_gpu is a normal state of a CPU box: UNKNOWN with its reason, never CRIT.
        text = err.message or err.reason.advice
        out.append(verdict("gpu.probe", State.UNKNOWN, f"{err.reason.value}: {text}", (GPU,),
                           reason=err.reason, exit_code=err.exit_code))
    elif snap.gpus:
        n = len(snap.gpus)
        out.append(verdict("gpu.probe", State.OK, f"{n} GPU{'s' if n != 1 else ''} answering",
                           (GPU,)))
    health = {h.index: h for h in snap.gpu_health}
    for pos, g in enumerate(snap.gpus):
        i = g.index
        if finite(g.temp_c):
            st = State.WARN if g.temp_c >= th.gpu_temp_warn_c else State.OK
            out.append(verdict(f"gpu.temp:{i}", st, f"GPU {i} at {g.temp_c:.0f} °C"
                               + (f" (warn at {th.gpu_temp_warn_c:.0f} °C)" if st is State.WARN else ""),
                               (GPU,), value=g.temp_c))
        if finite(g.mem_used_mib) and finite(g.mem_total_mib) and g.mem_total_mib > 0:
            pct = 100.0 * g.mem_used_mib / g.mem_total_mib
            st = State.WARN if pct >= th.gpu_mem_warn_pct else State.OK
            out.append(verdict(f"gpu.mem:{i}", st,
                               f"GPU {i} memory {pct:.1f}% used ({g.mem_used_mib / 1024:.1f} of "
                               f"{g.mem_total_mib / 1024:.1f} GiB)", (GPU,), pct=pct))
        h = health.get(i)
        if h is not None and h.ecc_uncorrected is not None:
            if h.ecc_uncorrected > 0:
                out.append(verdict(f"gpu.ecc:{i}", State.CRIT,
                                   f"GPU {i} has {h.ecc_uncorrected} uncorrectable ECC errors: "
                                   "move off this box and report it", (GPU,),
                                   count=h.ecc_uncorrected))
            else:
                out.append(verdict(f"gpu.ecc:{i}", State.OK, f"GPU {i}: no uncorrectable ECC errors",
                                   (GPU,), count=0))
        if h is not None and h.xid:
            out.append(_xid_check(i, h.xid))
        hist = snap.util_history[pos] if pos < len(snap.util_history) else ()
        out.append(_util_check(snap, g, hist, th, iv, now, job_running, run_started_at))
    return out


# Xids that mean the GPU or its links failed (NVIDIA's Xid catalogue): the box needs a drain and
# a report. Others (13, 31, 43, 45 …) are most often the application's own fault: a warning.
_XID_HARDWARE = {
    48: "double-bit ECC error", 63: "ECC page retirement/row remap event", 64: "row remap failure",
    74: "NVLink error", 79: "GPU has fallen off the bus", 92: "high single-bit ECC rate",
    94: "contained ECC error", 95: "uncontained ECC error", 119: "GSP RPC timeout",
    120: "GSP error", 140: "unrecovered ECC error",
}
_XID_APP = {13: "graphics engine exception", 31: "GPU memory page fault", 43: "GPU stopped processing",
            45: "preemptive cleanup after a killed process"}


def _xid_check(i: int, xid: int) -> CheckResult:
    if xid in _XID_HARDWARE:
        return verdict(f"gpu.xid:{i}", State.CRIT,
                       f"GPU {i} reported Xid {xid} ({_XID_HARDWARE[xid]}): a hardware fault — drain "
                       "this GPU and report it", (GPU,), xid=xid)
    what = _XID_APP.get(xid, "driver-reported error")
    return verdict(f"gpu.xid:{i}", State.WARN,
                   f"GPU {i} reported Xid {xid} ({what}): often the program's own fault; look at "
                   "its log", (GPU,), xid=xid)


def _util_check(snap, g, hist, th, iv, now, job_running, run_started_at) -> CheckResult:
    """Util judged over a full window while a job runs, never on one sample (a 3 s loader stall
    at 0 % inside a busy run is normal; a whole window under 50 % is a data-bound run)."""
    key, i = f"gpu.util:{g.index}", g.index
    probes = (GPU, JOBS)
    win_s = th.gpu_util_window_s
    n = max(2, math.ceil(win_s / iv.gpu - 1e-9)) if iv.gpu > 0 else 2
    if job_running is not True:
        return verdict(key, State.OK, f"GPU {i}: no job running, util not judged", probes)
    if snap.apps and g.uuid and all(a.gpu_uuid and a.gpu_uuid != g.uuid for a in snap.apps):
        return verdict(key, State.OK, f"GPU {i}: no compute process on it, util not judged", probes)
    if run_started_at is not None and now - run_started_at < win_s:
        return verdict(key, State.OK, f"GPU {i}: job younger than the {age(win_s)} util window",
                       probes)
    if len(hist) < n:
        return verdict(key, State.OK, f"GPU {i}: util window not full yet ({len(hist)} of {n} "
                       "samples)", probes)
    avg, k = mean_count(hist[-n:])
    if avg is None or k < n / 2:
        return verdict(key, State.OK, f"GPU {i}: too few util samples in the window ({k} of {n})",
                       probes)
    if avg < th.gpu_util_low_pct:
        return verdict(key, State.WARN,
                       f"GPU {i} util averaged {avg:.0f}% over {age(win_s)} while the job runs — "
                       "data-bound? (CPU or data loading is starving the GPU)", probes, avg=avg)
    return verdict(key, State.OK, f"GPU {i} util averaged {avg:.0f}% over {age(win_s)}", probes,
                   avg=avg)


# ----------------------------------------------------------------------------- disk


def mount_of(path: str | None, mounts) -> str | None:
    """The mount holding ``path`` (longest prefix), or None."""
    if not path:
        return None
    best = None
    for m in mounts:
        if m == "/" or path == m or path.startswith(m.rstrip("/") + "/"):
            if best is None or len(m) > len(best):
                best = m
    return best


def check_disks(
    snap: HostSnapshot, th: Thresholds, *, checkpoint_size: int | None, checkpoint_dir: str | None
) -> list[CheckResult]:
    out: list[CheckResult] = []
    mounts = [d.mount for d in snap.disks]
    ckpt_mount = mount_of(checkpoint_dir, mounts)
    for d in snap.disks:
        # The "next checkpoint fits" rule belongs to the checkpoint's own mount. Without a known
        # location, every watched mount big enough to hold a checkpoint must fit one.
        if ckpt_mount is not None:
            fits_rule = checkpoint_size if ckpt_mount == d.mount else None
        else:
            fits_rule = checkpoint_size if (d.size_bytes or 0) > (checkpoint_size or 0) else None
        out.append(_bytes_check(d, th, fits_rule))
        inode = _inode_check(d, th)
        if inode is not None:
            out.append(inode)
    seen = set(mounts)
    for mount, message in snap.disk_errors:
        if mount in seen:
            continue
        seen.add(mount)
        reason = Reason.NOT_FOUND if "no such file" in message.lower() else Reason.PROBE_ERROR
        out.append(verdict(f"disk.bytes:{mount}", State.UNKNOWN, f"{mount}: {message}", (DISK,),
                           reason=reason))
    return out


def _bytes_check(d: DiskUsage, th: Thresholds, checkpoint_size: int | None) -> CheckResult:
    key = f"disk.bytes:{d.mount}"
    pct, avail = d.bytes_pct, d.avail_bytes
    if pct is None and avail is None:
        return verdict(key, State.UNKNOWN, f"{d.mount}: usage could not be read", (DISK,),
                       reason=Reason.PROBE_ERROR)
    size = d.size_bytes or ((d.used_bytes or 0) + (avail or 0))
    floor = th.disk_warn_free_gb * GB
    state, why = State.OK, ""
    if pct is not None and pct >= th.disk_crit_pct:
        state, why = State.CRIT, f" (crit at {th.disk_crit_pct:g}%)"
    elif checkpoint_size and avail is not None and avail < checkpoint_size:
        state, why = State.CRIT, f": the next checkpoint ({human_bytes(checkpoint_size)}) will not fit"
    elif pct is not None and pct >= th.disk_warn_pct:
        state, why = State.WARN, f" (warn at {th.disk_warn_pct:g}%)"
    elif avail is not None and size > floor and avail < floor:
        # The free-space floor only means something on a mount bigger than the floor itself: a
        # 64 MiB tmpfs would otherwise be WARN forever.
        state, why = State.WARN, f": under {th.disk_warn_free_gb:g} GB free"
    used = f"{pct:.1f}% used" if pct is not None else "usage unknown"
    return verdict(key, state, f"{d.mount}: {used}, {human_bytes(avail)} free{why}", (DISK,),
                   pct=pct, avail_bytes=avail)


def _inode_check(d: DiskUsage, th: Thresholds) -> CheckResult | None:
    pct = d.inodes_pct
    if pct is None:
        return None  # filesystems without a fixed inode table (btrfs, some FUSE) report 0
    state = State.OK
    if pct >= th.inode_crit_pct:
        state = State.CRIT
    elif pct >= th.inode_warn_pct:
        state = State.WARN
    tail = " — inodes, not bytes, are running out" if state is not State.OK else ""
    free = f"{d.inodes_free:,} free" if d.inodes_free is not None else "free unknown"
    return verdict(f"disk.inodes:{d.mount}", state, f"{d.mount}: inodes {pct:.1f}% used ({free}){tail}",
                   (DISK,), pct=pct)


# ----------------------------------------------------------------------------- memory


def check_memory(snap: HostSnapshot, th: Thresholds, ctx: RunContext, now: float) -> list[CheckResult]:
    m = snap.memory
    if m is None:
        return []
    out: list[CheckResult] = []
    pct = m.used_pct
    what = "cgroup limit" if m.limit_bytes else "host memory"
    if pct is None or not math.isfinite(pct):
        out.append(verdict("memory", State.UNKNOWN, "memory use could not be read", (MEMORY,),
                           reason=Reason.PROBE_ERROR))
    else:
        total = m.limit_bytes or m.host_total_bytes
        st = State.WARN if pct >= th.mem_warn_pct else State.OK
        out.append(verdict("memory", st, f"memory {pct:.1f}% of its {human_bytes(total)} {what}"
                           + (f" (warn at {th.mem_warn_pct:g}%)" if st is State.WARN else ""),
                           (MEMORY,), pct=pct, source=m.source))
    oom = _oom_check(m.oom_kills, th, ctx, now)
    if oom is not None:
        out.append(oom)
    return out


def _oom_check(count: int | None, th: Thresholds, ctx: RunContext, now: float) -> CheckResult | None:
    """CRIT on a NEW oom_kill (the counter rose since the previous snapshot); an old count is
    history. The CRIT is held for one patrol window (or until the run restarts) so that hysteresis
    can confirm it and a person can see it."""
    if count is not None:
        prev = ctx.prev_oom_kills
        if prev is not None and count > prev:
            ctx.oom_new_at = now
            ctx.oom_note = f"{count - prev} new oom_kill{'s' if count - prev > 1 else ''} " \
                           f"(counter {prev} → {count})"
        ctx.prev_oom_kills = count
    if ctx.oom_new_at is not None and now - ctx.oom_new_at < th.patrol_window_s:
        return verdict("memory.oom", State.CRIT,
                       f"the OOM killer struck {age(now - ctx.oom_new_at)} ago: {ctx.oom_note}",
                       (MEMORY,), at=ctx.oom_new_at)
    if count is None:
        return None
    return verdict("memory.oom", State.OK, f"no new oom_kill (counter {count})", (MEMORY,),
                   count=count)
