"""Health thresholds and probe intervals: the ONE definition of both, with product.md's defaults.

The config (gpudash.config) builds these very classes from ``[defaults.thresholds]`` /
``[host.thresholds]`` and the cadence keys; field names are the config's key names, and
config/schema.py asserts that every field has a key. Health owns them because health is what
judges with them: it never imports the config, and a field added here that the config does not
accept fails at import. Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1_000_000_000  # "10 GB free" is decimal gigabytes, as df -H and providers print them

PROBES = ("gpu", "log", "disk", "memory", "jobs", "files", "ray")


@dataclass(frozen=True)
class Thresholds:
    """When a check turns WARN/CRIT, the watch phases, hysteresis and flapping (product.md)."""

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
    loss_flat_pct: float = 1.0  # less improvement than this (%) is "flat" / "not falling"
    loss_flat_windows: int = 2  # the plateau compares the newest patrol window with N-1 before
    loss_early_steps: int = 100  # "not falling over the first N logged losses"
    checkpoint_age_warn_s: float = 7200.0
    log_silent_warn_s: float = 600.0
    log_silent_close_watch_s: float = 300.0
    early_end_fraction: float = 0.5  # ending under this fraction of expected_duration: WARN
    close_watch_steps: int = 1000
    patrol_window_s: float = 1800.0
    # debouncing
    hysteresis_results: int = 2
    hysteresis_s: float = 10.0
    flap_changes: int = 4
    flap_window_s: float = 600.0
    flap_stable_s: float = 600.0  # a flapping check's alerts are held until stable this long


@dataclass(frozen=True)
class Intervals:
    """Seconds between two samples of each probe, and STALE: last good data older than
    ``stale_after`` of its probe's intervals. Staleness lives here, with the cadences it counts
    (the config's ``stale_after`` sits with the ``*_interval`` keys too)."""

    gpu: float = 2.0
    log: float = 1.0
    disk: float = 10.0
    memory: float = 10.0
    jobs: float = 15.0
    files: float = 30.0
    ray: float = 60.0
    stale_after: float = 3.0  # intervals, not seconds

    def of(self, probe: str) -> float:
        """Interval of a probe by name (``gpu``, ``disk``, ...)."""
        return float(getattr(self, probe))

    def stale_after_s(self, probe: str) -> float:
        """Data of ``probe`` older than this many seconds is STALE."""
        return self.stale_after * self.of(probe)
