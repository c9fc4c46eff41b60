"""The typed, frozen result of loading a config. Every consumer reads these, never raw TOML.

Field names are the config's key names, so docs/config.md, the TOML and the code say the same
thing. ``Thresholds`` and the cadence defaults are defined once, in gpudash.health.thresholds.
A host's ``timing`` and ``thresholds`` are fully resolved: ``[defaults]`` merged with that host's
own overrides, so no consumer ever has to merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

# Thresholds is health's own class, not a copy: the config builds exactly what health judges with
# (re-exported here as gpudash.config.Thresholds).
from gpudash.health.thresholds import PROBES, Intervals, Thresholds

from .frozen_map import FrozenMap
from .targets import Target, is_local_target, parse_target

TRANSPORTS = ("ssh", "local")
PRESETS = ("runpod", "vastai", "lambda", "autodl", "paperspace", "ssh", "slurm")
SEVERITIES = ("info", "warning", "critical")
SINKS = ("file", "screen", "bell", "desktop", "tmux", "webhook")
STOP_RUNS_ON = ("local", "box")

DEFAULT_MARKERS = ("*_DONE",)
DEFAULT_COMPLETION_LINES = ("Training completed", "Early stopping", "FINISHED", "QUEUE DONE")
DEFAULT_MOUNTS = ("/",)
LOCAL_HOST_NAME = "localhost"

_EMPTY: Mapping[str, str] = FrozenMap({})


# The cadence defaults are health's Intervals (one definition); Timing adds what only the
# transport needs. Its field names are the config's keys (``gpu_interval``, …).
_IV = Intervals()


@dataclass(frozen=True)
class Timing:
    """Cadences, timeouts and staleness, in seconds (``stale_after`` counts intervals)."""

    gpu_interval: float = _IV.gpu
    log_interval: float = _IV.log
    disk_interval: float = _IV.disk
    memory_interval: float = _IV.memory
    jobs_interval: float = _IV.jobs
    files_interval: float = _IV.files
    ray_interval: float = _IV.ray
    probe_timeout: float = 8.0
    connect_timeout: float = 10.0
    keepalive_interval: float = 15.0
    stale_after: float = _IV.stale_after

    def intervals(self) -> Intervals:
        """These cadences as the health engine's Intervals (what STALE is judged against)."""
        return Intervals(**{p: getattr(self, f"{p}_interval") for p in PROBES},
                         stale_after=self.stale_after)

    def interval(self, probe: str) -> float:
        """Seconds between samples of ``probe`` (gpu, log, disk, memory, jobs, files, ray)."""
        return self.intervals().of(probe)

    def stale_after_s(self, probe: str) -> float:
        """Data of ``probe`` older than this is STALE (``stale_after`` intervals)."""
        return self.intervals().stale_after_s(probe)


@dataclass(frozen=True)
class Defaults:
    """The ``[defaults]`` section: what every host gets unless it overrides a key."""

    timing: Timing = field(default_factory=Timing)
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class TeardownConfig:
    """``[host.teardown]``: the gate before paying to stop a box. Nothing here runs by itself."""

    artifacts_dir: str | None = None
    artifacts_glob: str = "*"
    expected_count: int | None = None
    min_artifact_bytes: int = 1
    local_dir: Path | None = None
    verify_command: str | None = None
    preset: str | None = None
    stop_command: str | None = None
    stop_runs_on: str | None = None  # None: the preset decides
    instance_id: str | None = None


@dataclass(frozen=True)
class HostConfig:
    """One watched box, with everything resolved."""

    name: str
    target: str
    transport: str = "ssh"
    address: Target | None = None  # parsed ``target``; None for the local transport
    key_file: Path | None = None
    insecure_known_hosts: bool = False
    log: str | None = None
    log_follow: bool = True  # follow the log with one python3 on the box (else polled reads)
    gpu_nvml: bool = True  # GPU samples from NVML in one python3 on the box (else nvidia-smi -lms)
    tmux_session: str | None = None
    pgrep: str | None = None
    slurm_user: str | None = None
    slurm_job: str | None = None
    ray_job: str | None = None
    ray_address: str | None = None
    mounts: tuple[str, ...] = DEFAULT_MOUNTS
    markers: tuple[str, ...] = DEFAULT_MARKERS
    completion_lines: tuple[str, ...] = DEFAULT_COMPLETION_LINES
    checkpoint_dir: str | None = None
    checkpoint_size_gb: float | None = None
    expected_duration: float | None = None  # seconds
    script: str | None = None
    resume_command: str | None = None
    auto_resume: bool = False
    auto_resume_max: int = 2
    notes: str = ""
    group: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    timing: Timing = field(default_factory=Timing)
    thresholds: Thresholds = field(default_factory=Thresholds)
    teardown: TeardownConfig = field(default_factory=TeardownConfig)
    discover: bool = False  # True: made from the command line, jobs and log are to be discovered

    @property
    def is_local(self) -> bool:
        return self.transport == "local"

    @classmethod
    def from_cli(cls, target: str, defaults: Defaults | None = None) -> "HostConfig":
        """A host straight from the command line: an SSH alias, ``user@host:port``, or
        ``local``/``localhost`` for this machine. Raises ``ConfigError`` for a bad target."""
        from .errors import ConfigError, Problem

        defaults = defaults or Defaults()
        if is_local_target(target):
            return cls.local(defaults, discover=True)
        try:
            address = parse_target(target)
        except ValueError as exc:
            raise ConfigError([Problem("<command line>", 0, "target", str(exc))]) from None
        return cls(name=target, target=target, transport="ssh", address=address,
                   timing=defaults.timing, thresholds=defaults.thresholds, discover=True)

    @classmethod
    def local(cls, defaults: Defaults | None = None, *, discover: bool = True) -> "HostConfig":
        """This machine through the local transport (no SSH)."""
        defaults = defaults or Defaults()
        return cls(name=LOCAL_HOST_NAME, target=LOCAL_HOST_NAME, transport="local",
                   timing=defaults.timing, thresholds=defaults.thresholds, discover=discover)


@dataclass(frozen=True)
class AlertsConfig:
    """``[alerts]``: which sinks get which severity. The webhook URL itself is never in here."""

    routes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: FrozenMap({
        # issue 5's defaults; the webhook joins critical when a URL file/env is set
        "info": ("file",),
        "warning": ("screen", "file"),
        "critical": ("screen", "bell", "desktop", "tmux", "file"),
    }))
    webhook_url_file: Path | None = None
    webhook_url_env: str | None = None
    log_file: Path | None = None  # None: the store's default location

    def sinks_for(self, severity: str) -> tuple[str, ...]:
        return self.routes.get(severity, ())


@dataclass(frozen=True)
class PrometheusConfig:
    """``[prometheus]``: a metrics backend for fleets. Credentials only by file or env var."""

    url: str
    host_label: str = "Hostname"
    token_file: Path | None = None
    token_env: str | None = None
    basic_auth_file: Path | None = None
    include_fstypes: tuple[str, ...] = ()  # empty: every filesystem type
    label_map: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # gpudash host name → value of host_label
    timeout: float = 5.0


@dataclass(frozen=True)
class UiConfig:
    theme: str = "gpudash-dark"
    refresh_hz: float = 4.0


@dataclass(frozen=True)
class Config:
    """A whole loaded config. ``hosts`` is never empty: no host means this machine."""

    hosts: tuple[HostConfig, ...]
    defaults: Defaults = field(default_factory=Defaults)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    keymap: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    prometheus: PrometheusConfig | None = None
    ui: UiConfig = field(default_factory=UiConfig)
    path: Path | None = None  # the file it came from; None for the embedded default

    @classmethod
    def default_local(cls) -> "Config":
        """The embedded default: watch this machine through the local transport, mounts ["/"]."""
        return cls(hosts=(HostConfig.local(discover=True),))

    def host(self, name: str) -> HostConfig:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def select(self, targets: Sequence[str]) -> tuple[HostConfig, ...]:
        """Hosts for command-line arguments: a configured host by name, else ``from_cli``.

        No arguments: every configured host. Raises ``ConfigError`` for a malformed target.
        """
        if not targets:
            return self.hosts
        by_name = {h.name: h for h in self.hosts}
        out = []
        for t in targets:
            h = by_name.get(t) or HostConfig.from_cli(t, self.defaults)
            out.append(h)
        return tuple(out)

    def with_hosts(self, hosts: Sequence[HostConfig]) -> "Config":
        return replace(self, hosts=tuple(hosts))
