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

    def scaled(self, factor: float) -> "Cadence":
        """A time-compressed cadence (the demo)."""
        return Cadence(
            *(getattr(self, f) * factor for f in ("gpu", "log", "disk", "memory", "jobs", "files", "ray")),
            probe_timeout=self.probe_timeout,
            stale_after=self.stale_after,
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
    cadence: Cadence = field(default_factory=Cadence)
    thresholds: object | None = None  # gpudash.health Thresholds; None = defaults
    labels: dict = field(default_factory=dict, compare=False, hash=False)
    key_file: str | None = None
    insecure_known_hosts: bool = False
    connect_timeout: float = 10.0


def spec_from_host_config(hc) -> WatchSpec:
    """Adapt a config HostConfig (gpudash.config) to a WatchSpec, tolerant of optional fields."""
    g = lambda name, default=None: getattr(hc, name, default)  # noqa: E731
    intervals = g("intervals")
    cadence = Cadence()
    if intervals is not None:
        cadence = Cadence(
            gpu=getattr(intervals, "gpu", 2.0),
            log=getattr(intervals, "log", 1.0),
            disk=getattr(intervals, "disk", 10.0),
            memory=getattr(intervals, "memory", 10.0),
            jobs=getattr(intervals, "jobs", 15.0),
            files=getattr(intervals, "files", 30.0),
            ray=getattr(intervals, "ray", 60.0),
            probe_timeout=g("probe_timeout", None) or getattr(intervals, "probe_timeout", 8.0),
            stale_after=getattr(intervals, "stale_after", 3.0),
        )
    ckpt_gb = g("checkpoint_size_gb")
    transport = g("transport") or "ssh"
    return WatchSpec(
        name=g("name"),
        target=g("target") or g("name"),
        transport=transport,
        log=g("log"),
        tmux_session=g("tmux_session"),
        pgrep=g("pgrep"),
        slurm_user=g("slurm_user"),
        slurm_job=str(g("slurm_job")) if g("slurm_job") is not None else None,
        ray_job=g("ray_job"),
        ray_address=g("ray_address"),
        mounts=tuple(g("mounts") or ("/",)),
        markers=tuple(g("markers") or ()),
        completion_lines=tuple(g("completion_lines") or ()),
        checkpoint_dir=g("checkpoint_dir"),
        checkpoint_size_bytes=int(ckpt_gb * 1e9) if ckpt_gb else None,
        expected_duration_s=g("expected_duration_s") or g("expected_duration"),
        script=g("script"),
        notes=g("notes") or "",
        discover=not any(g(k) for k in ("log", "tmux_session", "pgrep", "slurm_user", "slurm_job", "ray_job")),
        cadence=cadence,
        thresholds=g("thresholds"),
        labels=dict(g("labels") or {}),
        key_file=g("key_file"),
        insecure_known_hosts=bool(g("insecure_known_hosts", False)),
        connect_timeout=g("connect_timeout", None) or 10.0,
    )
