"""PromQL for a whole fleet, and pure readers of the Prometheus HTTP API's answers.

One query per metric per refresh, never per host. Each instant query also carries the age of the
host's samples in the same request::

    M or label_replace(max by (H, instance) (time() - timestamp(M)), "gpudash_age", "1", ...)

An instant query reports its evaluation time, not the sample's; ``time() - timestamp(M)`` is the
age of the newest sample as Prometheus sees it, so a clock difference between this machine and the
server cannot make data look fresh or stale. The ``max by`` keeps the age series small: one per
host, the oldest of its series.

Everything here is pure and never raises on any input (remote JSON and labels are hostile).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from gpudash.model import ProbeError, Reason
from gpudash.sanitize import clean_field

AGE_LABEL = "gpudash_age"

# DCGM field -> GpuSample attribute ("xid": kept apart, it is an error code, not a gauge reading)
GPU_METRICS: dict[str, str] = {
    "DCGM_FI_DEV_GPU_UTIL": "util_pct",
    "DCGM_FI_DEV_FB_USED": "mem_used_mib",
    "DCGM_FI_DEV_FB_FREE": "mem_free_mib",
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_SM_CLOCK": "sm_clock_mhz",
    "DCGM_FI_DEV_XID_ERRORS": "xid",
}
FS_METRICS: dict[str, str] = {
    "node_filesystem_size_bytes": "size",
    "node_filesystem_avail_bytes": "avail",
    # free (not avail) gives df's Used = size - free: ext4 reserves blocks for root, and
    # size - avail would overstate use by that reserve (5% by default, far more on some boxes)
    "node_filesystem_free_bytes": "free",
    "node_filesystem_files": "files",
    "node_filesystem_files_free": "files_free",
}
MEM_METRICS: dict[str, str] = {
    "node_memory_MemTotal_bytes": "total",
    "node_memory_MemAvailable_bytes": "available",
    # host-wide OOM-killer counter (node_exporter's vmstat collector, on by default)
    "node_vmstat_oom_kill": "oom_kills",
}
FAMILY = {**{m: "gpu" for m in GPU_METRICS}, **{m: "disk" for m in FS_METRICS},
          **{m: "memory" for m in MEM_METRICS}}

# Memory-backed or virtual filesystems: not where a run's outputs fill a disk. `overlay` is NOT
# here: a container's root is an overlay, and it is the disk that fills.
SKIP_FSTYPES = (
    "tmpfs", "devtmpfs", "ramfs", "squashfs", "nsfs", "autofs", "proc", "sysfs", "cgroup",
    "cgroup2", "devpts", "mqueue", "tracefs", "debugfs", "securityfs", "pstore", "bpf", "fusectl",
    "configfs", "hugetlbfs", "binfmt_misc", "efivarfs", "rpc_pipefs", "fuse.lxcfs", "iso9660",
)

# Labels that name one GPU, one pod or one scrape rather than the host: never host labels.
_NOT_HOST_LABELS = frozenset({
    "__name__", "gpu", "UUID", "device", "pci_bus_id", "GPU_I_ID", "GPU_I_PROFILE", "err_code",
    "err_msg", "container", "pod", "namespace", "instance", "DCGM_FI_DRIVER_VERSION",
    "DCGM_FI_PROCESS_NAME", "modelName", AGE_LABEL,
})
MAX_HOST_LABELS = 16


# ----------------------------------------------------------------------------- PromQL text


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (Go escaping): no value can break out of it."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{out}"'


def regex_literal(value: str) -> str:
    """``value`` matched literally inside a PromQL (RE2) regex."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def selector(metric: str, include_fstypes: tuple[str, ...] = ()) -> str:
    """The series selector of one metric; filesystems are filtered by type on the server."""
    if metric in FS_METRICS:
        if include_fstypes:
            alt = "|".join(regex_literal(t) for t in include_fstypes)
            return f"{metric}{{fstype=~{promql_string(alt)}}}"
        alt = "|".join(regex_literal(t) for t in SKIP_FSTYPES)
        return f"{metric}{{fstype!~{promql_string(alt)}}}"
    return metric


# Labels each family needs besides the host's; every other label (driver version, PCI id, pod
# attribution…) is dropped on the server by `max by`, halving what a 1,000-GPU refresh downloads.
# DCGM_FI_DEV_GPU_UTIL keeps all its labels: the GPU's name, bus id and the host's labels come
# from it.
KEEP_LABELS = {
    "gpu": ("gpu", "UUID", "GPU_I_ID", "GPU_I_PROFILE"),
    "disk": ("mountpoint", "device", "fstype"),
    "memory": (),
}
FULL_LABELS = "DCGM_FI_DEV_GPU_UTIL"


def instant_query(metric: str, host_label: str, include_fstypes: tuple[str, ...] = ()) -> str:
    """The one query for ``metric``: its values, plus per host the age of its oldest sample."""
    sel = selector(metric, include_fstypes)
    host = ", ".join(dict.fromkeys((host_label, "instance")))
    values = sel
    if metric != FULL_LABELS:
        keep = ", ".join(dict.fromkeys((host_label, "instance", *KEEP_LABELS[FAMILY[metric]])))
        values = f"max by ({keep}) ({sel})"
    return (f"{values} or label_replace(max by ({host}) (time() - timestamp({sel})), "
            f'"{AGE_LABEL}", "1", "__name__", ".*")')


def down_query() -> str:
    """Scrape targets Prometheus cannot reach right now (small: only the failing ones)."""
    return "up == 0"


# ----------------------------------------------------------------------------- HTTP answers


class Series(NamedTuple):
    """One series of an instant answer (a NamedTuple: a 1,000-GPU refresh makes ~10,000)."""

    labels: Mapping[str, str]
    value: float | None  # None: NaN, ±Inf or unreadable — unavailable, never 0


@dataclass(frozen=True)
class RangeSeries:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float | None], ...]


def _number(raw) -> float | None:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _labels(raw) -> dict[str, str]:
    if type(raw) is not dict:
        return {}
    # JSON object keys are always str; the values almost always are (checked at C speed)
    if set(map(type, raw.values())) <= {str}:
        return raw
    return {k: v for k, v in raw.items() if isinstance(v, str)}


def _payload(body: bytes | str, status: int) -> dict | ProbeError:
    """The ``data`` object of an API answer, or why there is none."""
    if status in (401, 403):
        return ProbeError(Reason.AUTH_FAILED, f"Prometheus answered HTTP {status}: check the "
                          "token or basic-auth file", exit_code=status)
    try:
        doc = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        what = f"HTTP {status}" if status else "no answer"
        return ProbeError(Reason.PROBE_ERROR, f"Prometheus: {what}, not an API answer",
                          exit_code=status or None)
    if doc.get("status") != "success":
        kind = clean_field(str(doc.get("errorType", "error")), max_len=64)
        msg = clean_field(str(doc.get("error", "")), max_len=300)
        reason = Reason.TIMEOUT if kind == "timeout" else Reason.PROBE_ERROR
        return ProbeError(reason, f"Prometheus {kind}: {msg}".rstrip(": "), exit_code=status or None)
    data = doc.get("data")
    if not isinstance(data, dict):
        return ProbeError(Reason.PROBE_ERROR, "Prometheus answer without data")
    return data


def parse_query(body: bytes | str, status: int = 200) -> tuple[tuple[Series, ...], dict[tuple, float]] | ProbeError:
    """An instant-vector answer → (value series, ages by their label set without the marker).

    Age series are recognised by the ``gpudash_age`` label; everything else is a value.
    """
    data = _payload(body, status)
    if isinstance(data, ProbeError):
        return data
    result = data.get("result")
    if data.get("resultType") != "vector" or not isinstance(result, list):
        return ProbeError(Reason.PROBE_ERROR, "Prometheus answer is not an instant vector")
    values: list[Series] = []
    ages: dict[tuple, float] = {}
    for item in result:
        if not isinstance(item, dict):
            continue
        labels = _labels(item.get("metric"))
        pair = item.get("value")
        raw = pair[1] if isinstance(pair, list) and len(pair) == 2 else None
        if labels.get(AGE_LABEL) == "1":
            age = _number(raw)
            if age is not None:
                labels.pop(AGE_LABEL)
                ages[tuple(sorted(labels.items()))] = max(0.0, age)
            continue
        values.append(Series(labels, _number(raw)))
    return tuple(values), ages


def parse_range(body: bytes | str, status: int = 200) -> tuple[RangeSeries, ...] | ProbeError:
    """A range-query (matrix) answer."""
    data = _payload(body, status)
    if isinstance(data, ProbeError):
        return data
    result = data.get("result")
    if data.get("resultType") != "matrix" or not isinstance(result, list):
        return ProbeError(Reason.PROBE_ERROR, "Prometheus answer is not a range vector")
    out = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            continue
        points = []
        for p in item["values"]:
            if isinstance(p, list) and len(p) == 2:
                t = _number(p[0])
                if t is not None:
                    points.append((t, _number(p[1])))
        out.append(RangeSeries(_labels(item.get("metric")), tuple(points)))
    return tuple(out)


def parse_scrape_interval(body: bytes | str, status: int = 200, jobs=None) -> float | None:
    """The longest ``scrapeInterval`` among active targets (``/api/v1/targets``), in seconds —
    among those of ``jobs`` when given and any match (a slow unrelated job must not slow the
    GPU view down)."""
    data = _payload(body, status)
    if isinstance(data, ProbeError):
        return None
    targets = data.get("activeTargets")
    if not isinstance(targets, list):
        return None
    targets = [t for t in targets if isinstance(t, dict)]
    if jobs:
        mine = [t for t in targets if isinstance(t.get("labels"), dict)
                and t["labels"].get("job") in jobs]
        targets = mine or targets
    found = [go_duration(t.get("scrapeInterval")) for t in targets]
    found = [f for f in found if f is not None and f > 0]
    return max(found) if found else None


_GO_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h|d|w|y)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
         "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def go_duration(text) -> float | None:
    """Prometheus durations like ``15s``, ``1m30s``, ``500ms`` → seconds."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    pos, total = 0, 0.0
    for m in _GO_DUR.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else None


# ----------------------------------------------------------------------------- host identity


def strip_port(instance: str) -> str:
    """``node-1:9100`` → ``node-1``; ``[fe80::1]:9100`` → ``fe80::1``; a bare IPv6 stays whole."""
    if instance.startswith("["):
        end = instance.find("]")
        return instance[1:end] if end > 0 else instance
    if instance.count(":") == 1:
        host, port = instance.split(":")
        if port.isdigit():
            return host
    return instance


@dataclass(frozen=True)
class HostMapping:
    """Which gpudash host a series belongs to.

    The ``host_label`` (dcgm-exporter's ``Hostname``) names the host; a series without it (every
    node_exporter series) is named by its ``instance`` without the port, since dcgm-exporter
    (:9400) and node_exporter (:9100) differ only there. ``label_map`` renames: gpudash host name
    → the value Prometheus has (a Kubernetes pod name, an IP), matched against either.
    """

    host_label: str = "Hostname"
    label_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reverse", {v: k for k, v in dict(self.label_map).items()})
        object.__setattr__(self, "_cache", {})

    def host_of(self, labels: Mapping[str, str]) -> str | None:
        # The same few label values come back every refresh: remember their answer (bounded).
        key = (labels.get(self.host_label), labels.get("instance"))
        cache: dict = self._cache  # type: ignore[attr-defined]
        try:
            return cache[key]
        except KeyError:
            pass
        if len(cache) > 100_000:
            cache.clear()
        out = cache[key] = self._host_of(*key)
        return out

    def _host_of(self, value, inst) -> str | None:
        rev: dict = self._reverse  # type: ignore[attr-defined]
        if value:
            return rev.get(value) or clean_field(value, max_len=128)
        if inst:
            bare = strip_port(inst)
            return rev.get(inst) or rev.get(bare) or clean_field(bare, max_len=128)
        return None

    def label_value(self, host: str) -> str:
        """The Prometheus-side value that names ``host``."""
        return dict(self.label_map).get(host, host)

    def describe(self, host: str) -> str:
        v = self.label_value(host)
        return f'{self.host_label}="{v}" (or instance="{v}:PORT")'


def host_ages(ages: Mapping[tuple, float], mapping: HostMapping) -> dict[str, float]:
    """Age series (label sets) → the oldest age per host."""
    out: dict[str, float] = {}
    for key, age in ages.items():
        host = mapping.host_of(dict(key))
        if host is not None:
            out[host] = max(age, out.get(host, 0.0))
    return out


def host_labels(series: tuple[Series, ...], mapping: HostMapping) -> dict[str, dict[str, str]]:
    """Labels shared by all of a host's series (job, cluster, rack…), for grouping in the UI."""
    common: dict[str, dict[str, str]] = {}
    for s in series:
        host = mapping.host_of(s.labels)
        if host is None:
            continue
        mine = {k: v for k, v in s.labels.items()
                if k not in _NOT_HOST_LABELS and k != mapping.host_label}
        if host not in common:
            common[host] = mine
        else:
            common[host] = {k: v for k, v in common[host].items() if mine.get(k) == v}
    return {h: {clean_field(k, max_len=64): clean_field(v, max_len=128)
                for k, v in sorted(lbls.items())[:MAX_HOST_LABELS]}
            for h, lbls in common.items()}
