"""What a watcher needs to know about one host, independent of where it came from
(a config file, the command line, the demo, or Prometheus discovery)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cadence:
    """Seconds between probe rounds, by cost and change rate (product.md "Cadences")."""

    gpu: float = 2.0
    log: float = 1.0
    disk: float = 10.0
    memory: float = 10.0
    jobs: float = 15.0
    files: float = 30.0
    ray: float = 60.0
    probe_timeout: float = 8.0
    stale_after: float = 3.0  # intervals
    # While the log is quiet its reads back off from `log` (doubling) to at most this. 5 s: a
    # quiet log then costs the box ~1/5 of a read per second (a read is ~4 ms of CPU, mostly
    # fork+exec: 0.08% of a core instead of 0.4%), new lines still show within 5 s, and every
    # log-based verdict (a hang is minutes of silence) is far slower than that.
    log_quiet_max: float = 5.0
    # `procs` (pgrep + ps read all of /proc) and `gpu_apps` (a one-shot nvidia-smi) run on this
    # slower cadence when tmux or Slurm already identify the job; otherwise with every jobs
    # round (see HostWatcher._slow_due).
    procs: float = 60.0
    # The GPU health fields (uncorrectable ECC count, throttle reasons) change rarely, and their
    # query is a one-shot nvidia-smi: 27 ms of CPU per run on a real H100 — 0.27% of a core at
    # the disk group's 10 s, 0.045% at 60 s. It rides the disk rounds, at most this often.
    gpu_health: float = 60.0

    @property
    def log_slowest(self) -> float:
        """The longest gap between two log reads: doubling from ``log`` while nothing is
        appended, up to ``log_quiet_max`` but never past 8 × ``log`` (nor below ``log``).
        STALE for the log is judged against this, not against ``log``."""
        return max(self.log, min(8 * self.log, self.log_quiet_max))

    def scaled(self, factor: float) -> "Cadence":
        """A time-compressed cadence (the demo)."""
        return Cadence(
            *(getattr(self, f) * factor for f in ("gpu", "log", "disk", "memory", "jobs", "files", "ray")),
            probe_timeout=self.probe_timeout,
            stale_after=self.stale_after,
            log_quiet_max=self.log_quiet_max * factor,
            procs=self.procs * factor,
            gpu_health=self.gpu_health * factor,
        )


@dataclass(frozen=True)
class WatchSpec:
    name: str
    target: str = "localhost"
    transport: str = "local"  # local | ssh | replay
    log: str | None = None  # path or glob (newest wins)
    tmux_session: str | None = None
    pgrep: str | None = None
    slurm_user: str | None = None
    slurm_job: str | None = None
    ray_job: str | None = None
    ray_address: str | None = None
    mounts: tuple[str, ...] = ("/",)
    markers: tuple[str, ...] = ()
    completion_lines: tuple[str, ...] = ()
    checkpoint_dir: str | None = None
    checkpoint_size_bytes: int | None = None
    expected_duration_s: float | None = None
    script: str | None = None
    notes: str = ""
    discover: bool = False  # zero-config: find the run's processes and log ourselves
    gpu_stream: bool = True  # GPU samples from one long-lived stream, not a process per tick
    gpu_nvml: bool = True  # that stream reads NVML in one python3 (probes/nvml_stream.py) first
    log_follow: bool = True  # the log from one long-lived follower on the box (probes/logfollow.py)
    cadence: Cadence = field(default_factory=Cadence)
    thresholds: object | None = None  # gpudash.health Thresholds; None = defaults
    labels: dict = field(default_factory=dict, compare=False, hash=False)
    key_file: str | None = None
    insecure_known_hosts: bool = False
    connect_timeout: float = 10.0


def spec_from_host_config(hc) -> WatchSpec:
    """Adapt a config HostConfig (gpudash.config) to a WatchSpec."""
    t = hc.timing
    cadence = Cadence(
        gpu=t.gpu_interval, log=t.log_interval, disk=t.disk_interval, memory=t.memory_interval,
        jobs=t.jobs_interval, files=t.files_interval, ray=t.ray_interval,
        probe_timeout=t.probe_timeout, stale_after=t.stale_after,
    )
    return WatchSpec(
        name=hc.name,
        target=hc.target,
        transport=hc.transport,
        log=hc.log,
        tmux_session=hc.tmux_session,
        pgrep=hc.pgrep,
        slurm_user=hc.slurm_user,
        slurm_job=str(hc.slurm_job) if hc.slurm_job is not None else None,
        ray_job=hc.ray_job,
        ray_address=hc.ray_address,
        mounts=tuple(hc.mounts) or ("/",),
        markers=marker_paths(hc.markers, hc.log, hc.checkpoint_dir),
        completion_lines=tuple(hc.completion_lines),
        checkpoint_dir=hc.checkpoint_dir,
        checkpoint_size_bytes=int(hc.checkpoint_size_gb * 1e9) if hc.checkpoint_size_gb else None,
        expected_duration_s=hc.expected_duration,
        script=hc.script,
        notes=hc.notes or "",
        discover=bool(hc.discover) or not any(
            (hc.log, hc.tmux_session, hc.pgrep, hc.slurm_user, hc.slurm_job, hc.ray_job)),
        cadence=cadence,
        thresholds=health_thresholds(hc.thresholds, t.stale_after),
        labels=dict(hc.labels or {}) | ({"group": hc.group} if hc.group else {}),
        key_file=str(hc.key_file) if hc.key_file else None,
        insecure_known_hosts=bool(hc.insecure_known_hosts),
        connect_timeout=t.connect_timeout,
        log_follow=bool(getattr(hc, "log_follow", True)),
        gpu_nvml=bool(getattr(hc, "gpu_nvml", True)),
    )


def marker_paths(markers, log: str | None, checkpoint_dir: str | None) -> tuple[str, ...]:
    """A marker pattern without a `/` (like `*_DONE`) is looked for beside the log and in the
    checkpoint dir; one with a `/` is used as it is."""
    import posixpath

    dirs = [d for d in ((posixpath.dirname(log) if log and "/" in log else None), checkpoint_dir) if d]
    out: list[str] = []
    for m in markers:
        if "/" in m:
            out.append(m)
        else:
            out.extend(posixpath.join(d, m) for d in dirs)
    return tuple(dict.fromkeys(out))


def health_thresholds(config_thresholds, stale_after: float | None = None):
    """The config's thresholds for the health engine. They are already health's own class
    (gpudash.health.thresholds.Thresholds, built by gpudash.config), so nothing is translated and
    no key can be dropped on the way; None means the defaults.

    ``stale_after`` is not a threshold: it travels as ``Cadence.stale_after`` into health's
    Intervals. The parameter is only accepted so existing callers keep working."""
    from gpudash.health.thresholds import Thresholds

    if config_thresholds is None:
        return Thresholds()
    if not isinstance(config_thresholds, Thresholds):
        raise TypeError(f"expected gpudash.health Thresholds, got {type(config_thresholds).__name__}")
    return config_thresholds
