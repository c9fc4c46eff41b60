"""Health thresholds and probe cadences: the defaults of product.md's threshold table.

Both are plain frozen dataclasses so the config loader can build them with the same field names
(per-host overrides are `dataclasses.replace`). Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1_000_000_000  # "10 GB free" is decimal gigabytes, as df -H and providers print them


@dataclass(frozen=True)
class Thresholds:
    # disk bytes, per mount: WARN >= 90 % or < 10 GB free; CRIT >= 97 % or < the checkpoint's size
    disk_warn_pct: float = 90.0
    disk_crit_pct: float = 97.0
    disk_warn_free_gb: float = 10.0
    # inodes, per mount (judged separately from bytes: inodes die first on small files)
    inode_warn_pct: float = 90.0
    inode_crit_pct: float = 97.0
    # host or job cgroup memory, % of its limit
    mem_warn_pct: float = 90.0
    # GPU
    gpu_mem_warn_pct: float = 95.0
    gpu_util_low_pct: float = 50.0
    gpu_util_window_s: float = 300.0
    gpu_temp_warn_c: float = 85.0
    # training
    grad_norm_warn: float = 100.0
    checkpoint_age_warn_s: float = 7200.0
    log_silent_warn_s: float = 600.0
    log_silent_close_watch_s: float = 300.0
    close_watch_steps: int = 1000
    patrol_window_s: float = 1800.0
    # debouncing
    hysteresis_results: int = 2
    hysteresis_s: float = 10.0
    flap_changes: int = 4
    flap_window_s: float = 600.0
    stale_after_intervals: float = 3.0


@dataclass(frozen=True)
class Intervals:
    """Seconds between two samples of each probe; STALE = last good data older than 3 of them."""

    gpu: float = 2.0
    log: float = 1.0
    disk: float = 10.0
    memory: float = 10.0
    jobs: float = 15.0
    files: float = 30.0
    ray: float = 60.0

    def of(self, probe: str) -> float:
        """Interval of a probe by name (``gpu``, ``disk``, ...)."""
        return float(getattr(self, probe))
