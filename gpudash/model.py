"""Frozen value types shared by every layer: probe samples, states, reasons.

Nothing here imports Textual, asyncssh or any I/O module: the data path and every consumer
(TUI, `status`, `triage`, `teardown`) speak these types. A value that a tool could not report
(`[N/A]`, `[Not Supported]`, `N/A`) is ``None`` — never 0.
"""

from __future__ import annotations

import enum
from dataclasses import field

from gpudash.frozen import frozen


class State(str, enum.Enum):
    """Health of one check or one host (product.md, "Health model")."""

    OK = "OK"
    WARN = "WARN"
    CRIT = "CRIT"
    UNKNOWN = "UNKNOWN"
    STALE = "STALE"

    @property
    def rank(self) -> int:
        """Badness for "a host's state is its worst check"."""
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """Nagios plugin codes, as `gpudash status` returns them."""
        return _EXIT[self]


_RANK = {State.OK: 0, State.STALE: 1, State.UNKNOWN: 2, State.WARN: 3, State.CRIT: 4}
_EXIT = {State.OK: 0, State.WARN: 1, State.CRIT: 2, State.UNKNOWN: 3, State.STALE: 3}
_OK = State.OK


def worst(states) -> State:
    """The worst of several states; OK for none."""
    # Runs over every check of every host on each refresh. On Python 3.11 `State.OK` costs
    # ~0.5 µs (EnumType defines __getattr__, which slows every attribute lookup on the class) and
    # the `rank` property another ~0.3: a plain dict lookup per state instead.
    out, top, rank = _OK, 0, _RANK
    for s in states:
        r = rank[s]
        if r > top:
            out, top = s, r
    return out


def exit_code_for(states) -> int:
    """2 if any CRIT, else 1 if any WARN, else 3 if any UNKNOWN/STALE, else 0."""
    states = list(states)
    if State.CRIT in states:
        return 2
    if State.WARN in states:
        return 1
    if State.UNKNOWN in states or State.STALE in states:
        return 3
    return 0


class Reason(str, enum.Enum):
    """Why a host or check is UNKNOWN. Each has its own plain-language explanation."""

    UNREACHABLE = "unreachable"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_CHANGED = "host_key_changed"
    AUTH_FAILED = "auth_failed"
    EXEC_UNSUPPORTED = "exec_unsupported"
    TIMEOUT = "timeout"
    NO_GPU = "no_gpu"
    NVIDIA_SMI_ERROR = "nvidia_smi_error"
    DRIVER_HUNG = "driver_hung"
    PROBE_ERROR = "probe_error"
    NOT_FOUND = "not_found"
    NOT_CONFIGURED = "not_configured"
    NOT_VISIBLE = "not_visible"

    @property
    def advice(self) -> str:
        return REASON_ADVICE[self]


REASON_ADVICE: dict[Reason, str] = {
    Reason.UNREACHABLE: "cannot reach the box — check the provider's console: only it shows "
    "balance, power state and a changed SSH port",
    Reason.HOST_KEY_UNKNOWN: "the host key is not in known_hosts — run `ssh HOST` once to check "
    "and accept it",
    Reason.HOST_KEY_CHANGED: "the host key CHANGED — the box may have been re-created, or this is "
    "not the box you think; run `ssh HOST` once to check it",
    Reason.AUTH_FAILED: "authentication failed — check the key (ssh-add -l) and the user name",
    Reason.EXEC_UNSUPPORTED: "this SSH endpoint offers only an interactive shell (a proxied "
    "'basic SSH' gateway) — use the box's direct TCP SSH port",
    Reason.TIMEOUT: "the probe did not answer before its deadline",
    Reason.NO_GPU: "no NVIDIA GPU or no nvidia-smi on this box",
    Reason.NVIDIA_SMI_ERROR: "nvidia-smi failed — see the driver's own message",
    Reason.DRIVER_HUNG: "nvidia-smi is stuck past its deadline — the driver is possibly hung "
    "(after an Xid); no second nvidia-smi is started while it is stuck",
    Reason.PROBE_ERROR: "the probe's output could not be read",
    Reason.NOT_FOUND: "not found on the box",
    Reason.NOT_CONFIGURED: "not configured for this host",
    Reason.NOT_VISIBLE: "processes not visible (container): memory is held but the process "
    "list is empty",
}


@frozen
class ProbeError:
    """A probe that produced no sample. ``message`` is already sanitised."""

    reason: Reason
    message: str = ""
    exit_code: int | None = None


# ----------------------------------------------------------------------------- GPU


@frozen
class GpuSample:
    index: int
    uuid: str = ""
    name: str = ""
    util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_total_mib: float | None = None
    mem_used_mib: float | None = None
    mem_free_mib: float | None = None
    temp_c: float | None = None
    mem_temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    max_sm_clock_mhz: float | None = None
    fan_pct: float | None = None
    pstate: str | None = None
    bus_id: str | None = None
    driver: str | None = None
    mig_mode: str | None = None
    compute_mode: str | None = None


@frozen
class GpuHealthFields:
    """The fragile fields, queried separately so one unsupported field cannot sink the core query."""

    index: int
    ecc_uncorrected: int | None = None
    throttle_mask: int | None = None
    #: the last Xid the driver reported for this GPU (DCGM_FI_DEV_XID_ERRORS; 0/None: none)
    xid: int | None = None


@frozen
class ComputeApp:
    pid: int
    process_name: str
    used_mib: float | None
    gpu_uuid: str = ""


# ----------------------------------------------------------------------------- disk, memory


@frozen
class DiskUsage:
    mount: str
    filesystem: str = ""
    size_bytes: int | None = None
    used_bytes: int | None = None
    avail_bytes: int | None = None
    inodes_total: int | None = None
    inodes_used: int | None = None
    inodes_free: int | None = None

    @property
    def bytes_pct(self) -> float | None:
        if not self.size_bytes or self.used_bytes is None or self.avail_bytes is None:
            return None
        # df's own Capacity: used / (used + avail), which accounts for reserved blocks.
        denom = self.used_bytes + self.avail_bytes
        return 100.0 * self.used_bytes / denom if denom else None

    @property
    def inodes_pct(self) -> float | None:
        if not self.inodes_total or self.inodes_used is None:
            return None
        return 100.0 * self.inodes_used / self.inodes_total


@frozen
class MemorySample:
    """Memory as the job sees it: its cgroup when readable, else the whole host."""

    source: str  # "cgroup_v2" | "cgroup_v1" | "meminfo"
    used_bytes: int | None = None
    limit_bytes: int | None = None  # None: unlimited / unknown
    oom_kills: int | None = None
    host_total_bytes: int | None = None
    host_available_bytes: int | None = None
    load1: float | None = None
    load5: float | None = None
    load15: float | None = None
    nproc: int | None = None
    cpu_quota: float | None = None  # cores allowed by cpu.max; None = unlimited/unknown

    @property
    def used_pct(self) -> float | None:
        if self.limit_bytes and self.used_bytes is not None:
            return 100.0 * self.used_bytes / self.limit_bytes
        if self.host_total_bytes and self.host_available_bytes is not None:
            return 100.0 * (self.host_total_bytes - self.host_available_bytes) / self.host_total_bytes
        return None


# ----------------------------------------------------------------------------- jobs


@frozen
class ProcessInfo:
    pid: int
    command: str
    elapsed_s: int | None = None
    cpu_pct: float | None = None
    rss_kb: int | None = None
    threads: int | None = None
    start_epoch: float | None = None


@frozen
class TmuxSession:
    name: str
    created_epoch: int | None = None
    windows: int | None = None
    attached: bool = False
    pane_pid: int | None = None
    pane_dead: bool = False
    pane_dead_status: int | None = None
    pane_command: str = ""


@frozen
class SlurmJob:
    job_id: str
    name: str = ""
    user: str = ""
    state: str = ""  # as Slurm prints it: RUNNING, PENDING, COMPLETED, TIMEOUT, ...
    elapsed: str = ""
    time_limit: str = ""
    nodes: str = ""
    reason: str = ""  # squeue %R: node list or (Reason)
    stdout_path: str = ""
    exit_code: str = ""
    source: str = "squeue"  # squeue | sacct | scontrol | aged_out


@frozen
class RayJob:
    job_id: str
    status: str  # PENDING RUNNING SUCCEEDED FAILED STOPPED
    message: str = ""


SLURM_TERMINAL = frozenset(
    "COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL OUT_OF_MEMORY PREEMPTED BOOT_FAIL DEADLINE".split()
)
RAY_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


# ----------------------------------------------------------------------------- log, files


@frozen
class LogChunk:
    """New bytes of the run's log since the last read.

    ``reset`` is True when the file was rotated or truncated (its inode changed or it shrank):
    readers must forget partial lines. ``skipped`` counts bytes deliberately not read because
    more than the per-tick bound arrived (the newest bytes win).
    """

    path: str
    start: int
    end: int
    size: int
    inode: int | None
    data: bytes
    reset: bool = False
    skipped: int = 0
    missing: bool = False


@frozen
class FileInfo:
    path: str
    exists: bool
    size: int | None = None
    mtime: float | None = None


@frozen
class DirListing:
    """A directory's regular files (names, sizes, mtimes): counts, never `test -d`."""

    path: str
    exists: bool
    files: tuple[FileInfo, ...] = ()

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def newest(self) -> FileInfo | None:
        return max(self.files, key=lambda f: f.mtime or 0.0, default=None)


# ----------------------------------------------------------------------------- checks


@frozen
class CheckResult:
    """One health check's verdict (already through hysteresis when it comes from the engine)."""

    key: str  # stable id, e.g. "disk.bytes:/", "gpu.temp:0", "link"
    state: State
    summary: str
    reason: Reason | None = None
    flapping: bool = False
    since: float | None = None
    detail: dict = field(default_factory=dict, compare=False, hash=False)


# ----------------------------------------------------------------------------- training metrics


@frozen
class MetricPoint:
    """One metrics line parsed from the run's log (plain, HF Trainer dict, Lightning, tqdm)."""

    step: int | None = None
    epoch: float | None = None
    loss: float | None = None
    grad_norm: float | None = None
    lr: float | None = None
    line_no: int | None = None
    at: float | None = None  # wall time it was read, when known


@frozen
class Progress:
    """`~current/max` exactly as the log printed it (total None: `~current/unknown`)."""

    current: int
    total: int | None = None
    rate_per_s: float | None = None
    eta_s: float | None = None

    def label(self) -> str:
        return f"~{self.current}/{self.total if self.total is not None else 'unknown'}"


# ----------------------------------------------------------------------------- host snapshot


@frozen
class LinkStatus:
    """The transport's view: reachable or not, why, and since when (epoch seconds)."""

    ok: bool = True
    reason: Reason | None = None
    message: str = ""
    since: float | None = None
    last_ok: float | None = None


@frozen
class HostSnapshot:
    """Everything known about one host at one moment: what health, UI and `status` consume.

    Each ``*_at`` is the epoch time of the last *good* sample of that probe (None: never), so
    consumers can mark data STALE. Histories are oldest-first and bounded by the watcher.
    """

    name: str
    transport: str = "?"
    taken_at: float = 0.0
    link: LinkStatus = LinkStatus()
    # GPU
    gpus: tuple[GpuSample, ...] = ()
    gpu_health: tuple[GpuHealthFields, ...] = ()
    gpu_error: ProbeError | None = None
    gpu_at: float | None = None
    apps: tuple[ComputeApp, ...] | None = None  # None: unknown
    util_history: tuple[tuple[float | None, ...], ...] = ()  # per GPU index order
    mem_history: tuple[tuple[float | None, ...], ...] = ()  # used % per GPU
    # disk / memory
    disks: tuple[DiskUsage, ...] = ()
    disk_errors: tuple[tuple[str, str], ...] = ()  # (mount, message)
    disk_at: float | None = None
    memory: MemorySample | None = None
    memory_at: float | None = None
    # jobs
    processes: tuple[ProcessInfo, ...] = ()
    tmux: tuple[TmuxSession, ...] = ()
    slurm: tuple[SlurmJob, ...] = ()
    ray: tuple[RayJob, ...] = ()
    jobs_at: float | None = None
    # log
    log_path: str | None = None
    log_lines: tuple[str, ...] = ()  # sanitised, newest last
    log_error: str | None = None
    log_grew_at: float | None = None  # last time new bytes arrived
    log_at: float | None = None  # last successful read
    log_skipped: int = 0
    metrics: tuple[MetricPoint, ...] = ()
    progress: Progress | None = None
    # files
    markers: tuple[FileInfo, ...] = ()
    checkpoints: DirListing | None = None
    files_at: float | None = None


@frozen
class Event:
    """A state change worth telling someone about (alerts fire on changes only)."""

    at: float
    host: str
    key: str
    old: State | None
    new: State
    message: str
    triage_class: str | None = None
