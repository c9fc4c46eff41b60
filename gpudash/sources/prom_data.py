"""Prometheus answers → the same typed samples an SSH probe yields (GpuSample, DiskUsage,
MemorySample), one :class:`PromHostData` per host. Pure: no I/O, no clock (``now`` is passed in).

A value Prometheus does not have is ``None`` (unavailable), never 0. Each ``*_at`` is the time of
the host's OLDEST sample of that family (``now`` minus the age Prometheus reported), so health can
judge it STALE exactly as it judges an SSH probe that stopped answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpudash.model import DiskUsage, GpuSample, MemorySample
from gpudash.sanitize import clean_field
from gpudash.sources.promql import (
    FS_METRICS, GPU_METRICS, MEM_METRICS, HostMapping, RangeSeries, Series, host_ages, host_labels,
)


DCGM_BLANK = 0x7FFFFFF0


@dataclass(frozen=True)
class PromHostData:
    name: str
    gpus: tuple[GpuSample, ...] = ()
    gpu_at: float | None = None
    disks: tuple[DiskUsage, ...] = ()
    disk_at: float | None = None
    memory: MemorySample | None = None
    memory_at: float | None = None
    #: (GPU index, last Xid code) for GPUs whose DCGM_FI_DEV_XID_ERRORS is not 0
    xid_errors: tuple[tuple[int, int], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class PromHistory:
    """Per-GPU series oldest-first, aligned on a ``step`` grid (None: no sample at that step)."""

    step: float
    util: Mapping[int, tuple[float | None, ...]] = field(default_factory=dict)
    mem_pct: Mapping[int, tuple[float | None, ...]] = field(default_factory=dict)


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def gpu_key(labels: Mapping[str, str]) -> tuple[str, str, str]:
    """One GPU (or MIG instance) across metrics: its index, UUID and GPU instance id. Other labels
    (Kubernetes pod attribution, the Xid's err_code/err_msg) differ between metrics."""
    return (labels.get("gpu", ""), labels.get("UUID", ""), labels.get("GPU_I_ID", ""))


def assemble(
    answers: Mapping[str, tuple[tuple[Series, ...], dict[tuple, float]]],
    mapping: HostMapping,
    now: float,
) -> dict[str, PromHostData]:
    """Answers by metric name → data per host. Metrics missing from ``answers`` were not asked
    or failed; their fields stay None."""
    gpus: dict[str, dict[tuple, dict]] = {}
    disks: dict[str, dict[str, dict]] = {}
    mems: dict[str, dict] = {}
    ages: dict[str, dict[str, float]] = {"gpu": {}, "disk": {}, "memory": {}}

    def note_ages(family: str, metric_ages) -> None:
        for host, age in host_ages(metric_ages, mapping).items():
            ages[family][host] = max(age, ages[family].get(host, 0.0))

    for metric, attr in GPU_METRICS.items():
        if metric not in answers:
            continue
        series, metric_ages = answers[metric]
        note_ages("gpu", metric_ages)
        for s in series:
            host = mapping.host_of(s.labels)
            if host is None:
                continue
            g = gpus.setdefault(host, {}).setdefault(gpu_key(s.labels), {"labels": s.labels})
            g[attr] = _dcgm_value(s.value)
    for metric, attr in FS_METRICS.items():
        if metric not in answers:
            continue
        series, metric_ages = answers[metric]
        note_ages("disk", metric_ages)
        for s in series:
            host, mount = mapping.host_of(s.labels), s.labels.get("mountpoint")
            if host is None or not mount:
                continue
            d = disks.setdefault(host, {}).setdefault(mount, {"device": s.labels.get("device", "")})
            d.setdefault(attr, s.value)  # a mount listed twice (bind mounts): the first wins
    for metric, attr in MEM_METRICS.items():
        if metric not in answers:
            continue
        series, metric_ages = answers[metric]
        note_ages("memory", metric_ages)
        for s in series:
            host = mapping.host_of(s.labels)
            if host is not None:
                mems.setdefault(host, {}).setdefault(attr, s.value)

    util = answers.get("DCGM_FI_DEV_GPU_UTIL")
    labels = host_labels(util[0], mapping) if util else {}
    out: dict[str, PromHostData] = {}
    for host in sorted(set(gpus) | set(disks) | set(mems)):
        g_samples, xids = _gpus(gpus.get(host, {}))
        out[host] = PromHostData(
            name=host,
            gpus=g_samples,
            gpu_at=_at(now, ages["gpu"], host) if g_samples else None,
            disks=_disks(disks.get(host, {})),
            disk_at=_at(now, ages["disk"], host) if host in disks else None,
            memory=_memory(mems.get(host)),
            memory_at=_at(now, ages["memory"], host) if host in mems else None,
            xid_errors=xids,
            labels=labels.get(host, {}),
        )
    return out


def _dcgm_value(v: float | None) -> float | None:
    """DCGM reports an unsupported or not-yet-sampled field as a "blank" sentinel at or above
    DCGM_INT32_BLANK (0x7ffffff0; the int64 and fp64 blanks are larger): unavailable, not a value."""
    return None if v is None or v >= DCGM_BLANK else v


def _at(now: float, ages: dict[str, float], host: str) -> float:
    # No age series for a host that has values cannot happen with one query per metric, but if
    # it does the data is judged as of now rather than invented old.
    return now - ages.get(host, 0.0)


def _gpus(found: dict[tuple, dict]) -> tuple[tuple[GpuSample, ...], tuple[tuple[int, int], ...]]:
    samples, xids = [], []
    for pos, ((idx_raw, uuid, gi), v) in enumerate(sorted(found.items(), key=_gpu_order)):
        labels = v["labels"]
        index = _int(idx_raw)
        index = pos if index is None else index
        used, free = v.get("mem_used_mib"), v.get("mem_free_mib")
        name = clean_field(labels.get("modelName", ""), max_len=128)
        if gi:
            prof = labels.get("GPU_I_PROFILE", "")
            name = f"{name} [MIG {clean_field(prof, max_len=32)} #{clean_field(gi, max_len=8)}]"
        samples.append(GpuSample(
            index=index,
            uuid=clean_field(uuid, max_len=128),
            name=name,
            util_pct=v.get("util_pct"),
            mem_used_mib=used,
            mem_free_mib=free,
            mem_total_mib=used + free if used is not None and free is not None else None,
            temp_c=v.get("temp_c"),
            power_w=v.get("power_w"),
            sm_clock_mhz=v.get("sm_clock_mhz"),
            bus_id=clean_field(labels["pci_bus_id"], max_len=32) if "pci_bus_id" in labels else None,
            mig_mode="Enabled" if gi else None,
        ))
        xid = v.get("xid")
        if xid is not None and xid != 0:
            xids.append((index, int(xid)))
    return tuple(samples), tuple(xids)


def _gpu_order(item) -> tuple:
    (idx, uuid, gi), _ = item
    n = _int(idx)
    return (n if n is not None else 1 << 30, idx, uuid, _int(gi) or 0, gi)


def _whole(v: float | None) -> int | None:
    return int(v) if v is not None and v >= 0 else None


def _disks(found: dict[str, dict]) -> tuple[DiskUsage, ...]:
    out = []
    for mount in sorted(found):
        v = found[mount]
        size, avail, free = _whole(v.get("size")), _whole(v.get("avail")), _whole(v.get("free"))
        files, files_free = _whole(v.get("files")), _whole(v.get("files_free"))
        spare = free if free is not None else avail
        used = size - spare if size is not None and spare is not None and spare <= size else None
        out.append(DiskUsage(
            mount=clean_field(mount),
            filesystem=clean_field(v.get("device", "")),
            size_bytes=size,
            used_bytes=used,
            avail_bytes=avail,
            # filesystems without a fixed inode table report 0 files: unknown, not 100% used
            inodes_total=files or None,
            inodes_used=files - files_free if files and files_free is not None else None,
            inodes_free=files_free if files else None,
        ))
    return tuple(out)


def _memory(found: dict | None) -> MemorySample | None:
    if not found:
        return None
    total, avail = _whole(found.get("total")), _whole(found.get("available"))
    return MemorySample(
        source="node_exporter",
        used_bytes=total - avail if total is not None and avail is not None else None,
        host_total_bytes=total,
        host_available_bytes=avail,
        oom_kills=_whole(found.get("oom_kills")),
    )


def assemble_history(
    util: tuple[RangeSeries, ...], used: tuple[RangeSeries, ...], free: tuple[RangeSeries, ...],
    mapping: HostMapping, start: float, step: float, points: int,
) -> dict[str, PromHistory]:
    """Range answers → per host, per GPU index, util % and memory used % on the step grid."""
    def grid(rows: tuple[RangeSeries, ...]) -> dict[str, dict[tuple, list]]:
        out: dict[str, dict[tuple, list]] = {}
        for s in rows:
            host = mapping.host_of(s.labels)
            if host is None:
                continue
            cells: list = [None] * points
            for t, v in s.points:
                i = round((t - start) / step) if step > 0 else -1
                if 0 <= i < points:
                    cells[i] = v
            out.setdefault(host, {})[gpu_key(s.labels)] = cells
        return out

    u, us, fr = grid(util), grid(used), grid(free)
    result: dict[str, PromHistory] = {}
    for host in set(u) | set(us):
        keys = sorted(set(u.get(host, {})) | set(us.get(host, {})), key=lambda k: (_int(k[0]) or 0, k))
        util_h, mem_h = {}, {}
        for pos, key in enumerate(keys):
            index = _int(key[0])
            index = pos if index is None else index
            if key in u.get(host, {}):
                util_h[index] = tuple(u[host][key])
            a, b = us.get(host, {}).get(key), fr.get(host, {}).get(key)
            if a is not None and b is not None:
                mem_h[index] = tuple(100.0 * x / (x + y) if x is not None and y is not None and x + y > 0
                                     else None for x, y in zip(a, b))
        result[host] = PromHistory(step=step, util=util_h, mem_pct=mem_h)
    return result
