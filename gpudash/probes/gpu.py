"""GPU probe: `nvidia-smi --query-*` step builders and pure parsers.

Why three queries: one invalid field fails a whole query (exit 2, on stdout), and the fragile
fields (ECC counters, clock-event reasons) are the ones old drivers and vGPUs reject. So the core
query never asks for them; `gpu_health` does, separately; compute apps are a third query.

Every value nvidia-smi could not report (`[N/A]`, `[Not Supported]`, MIG's bare `N/A`, any
`[...]` placeholder) becomes ``None``, never 0. Every string is sanitised. Parsers never raise.

The parsers accept both CSV forms: `--format=csv,noheader,nounits` (what the steps ask for; the
column order is ``fields``) and `--format=csv` (a header line names the columns, values carry
units such as ``81559 MiB``). A header line, wherever it appears, re-defines the columns, so a
capture with a different field list (the fixtures) parses by its own header.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from collections.abc import Callable, Iterable, Sequence

from gpudash.model import ComputeApp, GpuHealthFields, GpuSample, ProbeError, Reason
from gpudash.sanitize import clean_field, decode
from gpudash.transport.base import Step

CORE_FIELDS: tuple[str, ...] = (
    "index", "uuid", "name", "pci.bus_id", "driver_version", "pstate", "temperature.gpu",
    "temperature.memory", "utilization.gpu", "utilization.memory", "memory.total", "memory.used",
    "memory.free", "power.draw", "power.limit", "clocks.sm", "clocks.mem", "clocks.max.sm",
    "fan.speed", "mig.mode.current", "compute_mode",
)  # fmt: skip
# The throttle spelling: drivers before 535 reject `clocks_event_reasons.*` (domain.md).
HEALTH_FIELDS: tuple[str, ...] = (
    "index", "ecc.errors.uncorrected.volatile.total", "clocks_throttle_reasons.active",
)  # fmt: skip
APPS_FIELDS: tuple[str, ...] = ("pid", "process_name", "used_memory", "gpu_uuid")

#: printed by the guarded script instead of running a second nvidia-smi next to a stuck one
STUCK_MARKER = "@@GD_NVSMI_STUCK"

DEFAULT_TIMEOUT = 8.0

# A GPU holding less than this with no compute app is just the driver's own reservation.
APPS_MEM_SLACK_MIB = 100.0

# ----------------------------------------------------------------------------- step builders

# A still-living nvidia-smi is only "stuck" in uninterruptible sleep (state D): our previous one
# was SIGKILLed by `timeout -k`, so if it survived it is in D — the hung-driver signature. A live
# nvidia-smi in any other state is someone's `nvidia-smi dmon` or our own `-lms` stream, which
# must not block probing forever. A healthy nvidia-smi passes through D for milliseconds (a
# driver call, a page-in): it counts as stuck only when it is still in D a second later.
# gpudash's own NVML sampler (probes/nvml_stream.py, a `python3` whose source says NONVML) is
# looked at the same way: a hung driver leaves it in D inside an NVML call. The pattern's
# bracket keeps it from matching this very script's command line.
_GUARD = (
    "gd_d() { [ \"$(sed -n 's/^.*) \\([A-Z]\\).*$/\\1/p' \"/proc/$1/stat\" 2>/dev/null)\" = D ]; }; "
    'for p in $(pgrep -u "$(id -u)" -x nvidia-smi 2>/dev/null) '
    '$(pgrep -u "$(id -u)" -f \'NONV[M]L\' 2>/dev/null); do '
    f'if gd_d "$p" && sleep 1 && gd_d "$p"; then echo {STUCK_MARKER}; exit 0; fi; '
    "done; "
)


def _nvsmi_script(args: Sequence[str], srun_jobid: str | None, guard_hung: bool,
                  *, stream: bool = False) -> str:
    cmd = "nvidia-smi " + " ".join(shlex.quote(a) for a in args)
    inner = f"{_GUARD}exec {cmd}" if guard_hung else cmd
    if srun_jobid is None:
        return inner
    jobid = str(srun_jobid)
    if not jobid.strip():
        raise ValueError("srun_jobid must be a non-empty Slurm job id")
    # GPU data must come from the job's compute node, never the login node. One node, one task:
    # a multi-task job would otherwise run (and print) one nvidia-smi per task.
    prefix = f"srun {shlex.quote('--jobid=' + jobid)} --overlap --nodes=1 --ntasks=1"
    if stream:
        prefix += " --unbuffered"  # slurmstepd would otherwise hold the lines in a pipe buffer
    if guard_hung:
        # The stuck process lives on the compute node: look for it there.
        return f"{prefix} /bin/sh -c {shlex.quote(inner)}"
    return f"{prefix} {cmd}"


def _query_args(flag: str, fields: Sequence[str]) -> list[str]:
    return [f"{flag}={','.join(fields)}", "--format=csv,noheader,nounits"]


def gpu_step(*, srun_jobid: str | None = None, guard_hung: bool = False,
             timeout: float = DEFAULT_TIMEOUT) -> Step:
    """The core GPU query (key ``gpu``). ``guard_hung`` after a previous nvidia-smi timed out."""
    return Step(
        key="gpu",
        script=_nvsmi_script(_query_args("--query-gpu", CORE_FIELDS), srun_jobid, guard_hung),
        timeout=timeout,
        params={"srun_jobid": srun_jobid, "guard_hung": guard_hung},
    )


def gpu_health_step(*, srun_jobid: str | None = None, guard_hung: bool = False,
                    timeout: float = DEFAULT_TIMEOUT) -> Step:
    """ECC + clock-event reasons (key ``gpu_health``), apart so they cannot sink the core query."""
    return Step(
        key="gpu_health",
        script=_nvsmi_script(_query_args("--query-gpu", HEALTH_FIELDS), srun_jobid, guard_hung),
        timeout=timeout,
        params={"srun_jobid": srun_jobid, "guard_hung": guard_hung},
    )


def gpu_apps_step(*, srun_jobid: str | None = None, guard_hung: bool = False,
                  timeout: float = DEFAULT_TIMEOUT) -> Step:
    """Compute apps (key ``gpu_apps``)."""
    return Step(
        key="gpu_apps",
        script=_nvsmi_script(
            _query_args("--query-compute-apps", APPS_FIELDS), srun_jobid, guard_hung
        ),
        timeout=timeout,
        params={"srun_jobid": srun_jobid, "guard_hung": guard_hung},
    )


def gpu_stream_step(interval_ms: int, *, srun_jobid: str | None = None) -> Step:
    """One long-lived `nvidia-smi … -lms N` (key ``gpu_stream``): a line per GPU per interval.

    nvidia-smi has no sample count with ``-lms`` (``-c`` with a query exits 255): the stream is
    ended by the transport's lifetime (``timeout -k``) or by SIGPIPE once its channel closes.
    Lines go to :func:`parse_gpu_line`; a line that is not a sample (an error printed mid-stream)
    can be classified with :func:`parse_gpu`.
    """
    ms = max(50, int(interval_ms))
    args = [*_query_args("--query-gpu", CORE_FIELDS), "-lms", str(ms)]
    return Step(
        key="gpu_stream",
        script=_nvsmi_script(args, srun_jobid, False, stream=True),
        timeout=DEFAULT_TIMEOUT,
        params={"interval_ms": ms, "srun_jobid": srun_jobid},
    )


# ----------------------------------------------------------------------------- error mapping

_EXIT_MEANING = {
    2: "invalid argument or field",
    3: "the requested operation is not available on this GPU",
    4: "no permission to query the GPU",
    6: "the query failed",
    9: "the NVIDIA driver is not loaded",
    12: "the NVML library was not found (driver not installed, or a container without GPU access)",
    15: "the GPU has fallen off the bus",
    18: "driver/library version mismatch",
    255: "nvidia-smi failed (other error)",
}


def _first_line(lines: Iterable[str]) -> str:
    for line in lines:
        if line.strip():
            return clean_field(line.strip(), max_len=300)
    return ""


def _with(line: str, text: str) -> str:
    return f"{text}: {line}" if line and line != text else text


def nvidia_smi_error(lines: Sequence[str], exit_code: int | None) -> ProbeError | None:
    """Classify nvidia-smi's failure from its exit code and the lines that are not data.

    nvidia-smi prints its errors on stdout; ``lines`` should hold the unparsed stdout lines and
    stderr. Text is trusted only on lines that did not parse as data (a process may be *named*
    "No devices were found"). Returns None when nothing says the run failed.
    """
    text = [ln.strip() for ln in lines if ln.strip()]
    first = _first_line(text)

    def has(needle: str) -> str | None:
        for ln in text:
            if needle.lower() in ln.lower():
                return clean_field(ln, max_len=300)
        return None

    if STUCK_MARKER in text:
        return ProbeError(Reason.DRIVER_HUNG, "a previous nvidia-smi (or NVML sampler) is still "
                          "stuck (uninterruptible): the driver is possibly hung", exit_code)
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.DRIVER_HUNG, "nvidia-smi did not finish before its deadline: "
                          "the driver is possibly hung (after an Xid?)", exit_code)
    missing = has("nvidia-smi: not found") or has("nvidia-smi: command not found") or has(
        "nvidia-smi: No such file")
    if exit_code == 127 or missing:
        return ProbeError(Reason.NO_GPU, "no nvidia-smi on this box", exit_code)
    if has("No devices were found"):
        return ProbeError(Reason.NO_GPU, "nvidia-smi found no NVIDIA GPU", exit_code)
    if line := has("Failed to initialize NVML"):
        msg = line
        if "mismatch" in line.lower():
            msg += " (the driver was updated without a reboot: reboot or reload the module)"
        return ProbeError(Reason.NVIDIA_SMI_ERROR, msg, exit_code)
    if (line := has("GPU is lost")) or exit_code == 15:
        return ProbeError(Reason.NVIDIA_SMI_ERROR,
                          _with(line or first, "the GPU has fallen off the bus (GPU is lost)"),
                          exit_code)
    if line := has("is not a valid field to query"):
        return ProbeError(Reason.NVIDIA_SMI_ERROR,
                          f"this driver rejects a query field: {line}", exit_code)
    if line := has("srun: error"):
        return ProbeError(Reason.PROBE_ERROR, f"srun could not reach the job's node: {line}",
                          exit_code)
    if exit_code != 0:
        meaning = _EXIT_MEANING.get(exit_code, f"nvidia-smi exited {exit_code}")
        return ProbeError(Reason.NVIDIA_SMI_ERROR, _with(first, meaning), exit_code)
    for needle in ("Unable to determine the device handle", "NVIDIA-SMI has failed",
                   "Unknown Error"):
        if line := has(needle):
            return ProbeError(Reason.NVIDIA_SMI_ERROR, line, exit_code)
    return None


# ----------------------------------------------------------------------------- value parsing

_GPU_ALIASES = {
    "gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
    "clocks.current.sm": "clocks.sm", "clocks.current.memory": "clocks.mem",
    "clocks.max.memory": "clocks.max.mem", "gpu.power.requested_limit": "power.limit",
    "clocks_event_reasons.active": "clocks_throttle_reasons.active",
}  # fmt: skip
_APPS_ALIASES = {"name": "process_name", "used_gpu_memory": "used_memory"}


_INT_RE = re.compile(r"-?[0-9]+")


def _is_placeholder(s: str) -> bool:
    return not s or s == "N/A" or (s.startswith("[") and s.endswith("]"))


def _token(s: str) -> str | None:
    """The number part of a value: ``81559 MiB`` → ``81559``; placeholders → None."""
    s = s.strip()
    if _is_placeholder(s):
        return None
    tok = s.split()[0]
    return tok if len(tok) <= 40 else None


def _float(s: str) -> float | None:
    # Most fields are plain numbers (the queries ask for `nounits`): float() takes them as they
    # are, surrounding blanks included. Anything else (N/A, [Not Supported], a unit, a value
    # longer than a token may be) goes the careful way; the same answer either way (a test).
    if len(s) <= 40:
        try:
            v = float(s)
        except ValueError:
            pass
        else:
            return v if math.isfinite(v) else None
    return _float_token(s)


def _float_token(s: str) -> float | None:
    tok = _token(s)
    if tok is None:
        return None
    try:
        v = float(tok)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _int(s: str) -> int | None:
    tok = _token(s)
    if tok is None or not _INT_RE.fullmatch(tok):
        return None
    return int(tok)


def _hex(s: str) -> int | None:
    tok = _token(s)
    if tok is None:
        return None
    if tok[:2].lower() == "0x":
        digits = tok[2:]
        if digits and len(digits) <= 16 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return int(digits, 16)
        return None
    v = _int(tok)
    return v if v is not None and v >= 0 else None


@functools.lru_cache(maxsize=1024)
def _text(s: str) -> str | None:
    # cached: a GPU's text fields (uuid, name, bus id, driver, pstate, modes) repeat in every
    # streamed sample, and sanitising them was a third of parsing one (a bounded cache)
    s = s.strip()
    return None if _is_placeholder(s) else clean_field(s)


def _canon(name: str, aliases: dict[str, str]) -> str:
    name = name.strip()
    if name.endswith("]") and " [" in name:  # "memory.used [MiB]"
        name = name[: name.rindex(" [")]
    return aliases.get(name, name)


def _split(line: str, ncols: int, free: int | None) -> list[str] | None:
    """Split a CSV row. nvidia-smi does not quote: extra commas belong to the free-text column
    (a GPU or process name), which is re-joined."""
    parts = line.split(",")
    extra = len(parts) - ncols
    if extra > 0 and free is not None:
        parts[free : free + extra + 1] = [",".join(parts[free : free + extra + 1])]
    if len(parts) != ncols:
        return None
    return [p.strip() for p in parts]


def _as_text(data: bytes | str) -> str:
    if isinstance(data, (bytes, bytearray)):
        return decode(bytes(data))
    return data if isinstance(data, str) else ""


def _lines(data: bytes | str) -> list[str]:
    return [ln.strip().replace("\r", "") for ln in _as_text(data).split("\n")]


class _Table:
    """Column mapping for one query kind: header detection, aliases, the free-text column."""

    def __init__(self, fields: Sequence[str], aliases: dict[str, str], key_field: str,
                 free_field: str, build: Callable[[dict[str, str]], object]) -> None:
        self.aliases = aliases
        self.key_field = key_field
        self.free_field = free_field
        self.build = build
        self.set_columns([_canon(f, aliases) for f in fields])

    def set_columns(self, cols: list[str]) -> None:
        self.cols = cols
        self.free = cols.index(self.free_field) if self.free_field in cols else None

    def header(self, line: str) -> bool:
        first = line.split(",", 1)[0]
        if _canon(first, self.aliases) != self.key_field:
            return False
        self.set_columns([_canon(c, self.aliases) for c in line.split(",")])
        return True

    def row(self, line: str):
        parts = _split(line, len(self.cols), self.free)
        if parts is None:
            return None
        return self.build(dict(zip(self.cols, parts)))


def _sample(v: dict[str, str]) -> GpuSample | None:
    index = _int(v.get("index", ""))
    if index is None or index < 0:
        return None
    g = lambda k: v.get(k, "")  # noqa: E731
    # Columns shifted (a tool printing other fields than we asked for) must not pass as data:
    # a 1041 % utilisation is a lie. Reject the row instead.
    util, mem_util = _float(g("utilization.gpu")), _float(g("utilization.memory"))
    fan = _float(g("fan.speed"))
    for p in (util, mem_util, fan):
        if p is not None and not 0 <= p <= 100:
            return None
    pstate = _text(g("pstate"))
    if pstate and not (pstate[:1] == "P" and pstate[1:].isdigit()):
        return None
    return GpuSample(
        index=index,
        uuid=_text(g("uuid")) or "",
        name=_text(g("name")) or "",
        util_pct=util,
        mem_util_pct=mem_util,
        mem_total_mib=_float(g("memory.total")),
        mem_used_mib=_float(g("memory.used")),
        mem_free_mib=_float(g("memory.free")),
        temp_c=_float(g("temperature.gpu")),
        mem_temp_c=_float(g("temperature.memory")),
        power_w=_float(g("power.draw")),
        power_limit_w=_float(g("power.limit")),
        sm_clock_mhz=_float(g("clocks.sm")),
        mem_clock_mhz=_float(g("clocks.mem")),
        max_sm_clock_mhz=_float(g("clocks.max.sm")),
        fan_pct=fan,
        pstate=pstate,
        bus_id=_text(g("pci.bus_id")),
        driver=_text(g("driver_version")),
        mig_mode=_text(g("mig.mode.current")),
        compute_mode=_text(g("compute_mode")),
    )


def _health(v: dict[str, str]) -> GpuHealthFields | None:
    index = _int(v.get("index", ""))
    if index is None or index < 0:
        return None
    ecc = _int(v.get("ecc.errors.uncorrected.volatile.total", ""))
    return GpuHealthFields(
        index=index,
        ecc_uncorrected=ecc if ecc is None or ecc >= 0 else None,
        throttle_mask=_hex(v.get("clocks_throttle_reasons.active", "")),
    )


def _app(v: dict[str, str]) -> ComputeApp | None:
    pid = _int(v.get("pid", ""))
    if pid is None or pid < 0:
        return None
    used = _float(v.get("used_memory", ""))
    return ComputeApp(
        pid=pid,
        process_name=_text(v.get("process_name", "")) or "",
        used_mib=used if used is None or used >= 0 else None,
        gpu_uuid=_text(v.get("gpu_uuid", "")) or "",
    )


def _parse(stdout, stderr, exit_code, table: _Table, *, empty_ok: bool):
    items, unparsed = [], []
    for line in _lines(stdout):
        if not line or table.header(line):
            continue
        item = table.row(line)
        (unparsed.append(line) if item is None else items.append(item))
    err = nvidia_smi_error(unparsed + _lines(stderr), exit_code)
    if err is not None:
        return err
    if items:
        return tuple(items)
    if unparsed:
        return ProbeError(Reason.PROBE_ERROR,
                          f"unreadable nvidia-smi output: {_first_line(unparsed)}", exit_code)
    if empty_ok:
        return ()
    return ProbeError(Reason.PROBE_ERROR, "nvidia-smi printed nothing", exit_code)


# ----------------------------------------------------------------------------- parsers


def parse_gpu(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0,
              *, fields: Sequence[str] = CORE_FIELDS) -> tuple[GpuSample, ...] | ProbeError:
    """The core query's output → one sample per GPU, or the error nvidia-smi reported.

    ``fields`` is the column order of a headerless capture (the step's own by default).
    """
    return _parse(stdout, stderr, exit_code, _Table(fields, _GPU_ALIASES, "index", "name",
                                                    _sample), empty_ok=False)


def parse_gpu_line(line: bytes | str, *,
                   fields: Sequence[str] = CORE_FIELDS) -> GpuSample | None:
    """One line of the `-lms` stream → a sample, or None for anything else (header, error)."""
    text = _as_text(line).strip().replace("\r", "")
    if not text:
        return None
    table = _line_table(tuple(fields))
    if _canon(text.split(",", 1)[0], table.aliases) == table.key_field:
        return None  # a header line: a stream's rows always follow the asked-for columns
    return table.row(text)


@functools.lru_cache(maxsize=8)
def _line_table(fields: tuple[str, ...]) -> _Table:
    """One column map per field list, kept: building it (~20 names canonicalised) was a third
    of the cost of every streamed line. ``row`` only reads it."""
    return _Table(fields, _GPU_ALIASES, "index", "name", _sample)


def parse_gpu_health(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0,
                     *, fields: Sequence[str] = HEALTH_FIELDS
                     ) -> tuple[GpuHealthFields, ...] | ProbeError:
    """ECC + clock-event reasons per GPU (any capture that has those columns parses)."""
    return _parse(stdout, stderr, exit_code, _Table(fields, _GPU_ALIASES, "index", "",
                                                    _health), empty_ok=False)


def parse_gpu_apps(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0,
                   *, fields: Sequence[str] = APPS_FIELDS) -> tuple[ComputeApp, ...] | ProbeError:
    """Compute apps. Empty output with exit 0 is a real, empty list (errors.txt)."""
    return _parse(stdout, stderr, exit_code, _Table(fields, _APPS_ALIASES, "pid", "process_name",
                                                    _app), empty_ok=True)


# ----------------------------------------------------------------------------- interpretation

#: clocks_event_reasons bits (nvml.h `nvmlClocksEventReason*`, help-query-gpu.txt) → (id, label)
THROTTLE_BITS: tuple[tuple[int, str, str], ...] = (
    (0x1, "gpu_idle", "GPU idle"),
    (0x2, "applications_clocks_setting", "applications clocks setting"),
    (0x4, "sw_power_cap", "SW power cap"),
    (0x8, "hw_slowdown", "HW slowdown"),
    (0x10, "sync_boost", "sync boost"),
    (0x20, "sw_thermal_slowdown", "SW thermal slowdown"),
    (0x40, "hw_thermal_slowdown", "HW thermal slowdown"),
    (0x80, "hw_power_brake_slowdown", "HW power brake slowdown"),
    (0x100, "display_clock_setting", "display clock setting"),
)
_KNOWN_BITS = sum(bit for bit, _, _ in THROTTLE_BITS)


def decode_throttle(mask: int | None) -> tuple[str, ...]:
    """Human names of the active clock-event reasons; ``()`` for none or unknown."""
    if not isinstance(mask, int) or mask <= 0:
        return ()
    names = [label for bit, _, label in THROTTLE_BITS if mask & bit]
    if mask & ~_KNOWN_BITS:
        names.append(f"other (0x{mask & ~_KNOWN_BITS:x})")
    return tuple(names)


def apps_visibility(gpus: Sequence[GpuSample] | ProbeError | None,
                    apps: Sequence[ComputeApp] | ProbeError | None) -> str:
    """"visible", "none" (no app and no memory held), "not_visible" (no app listed while memory
    is held: a container hides the PIDs — not "no processes"), or "unknown" (no app list, or no
    memory figure to judge by)."""
    if apps is None or isinstance(apps, ProbeError):
        return "unknown"
    if len(apps) > 0:
        return "visible"
    if gpus is None or isinstance(gpus, ProbeError):
        return "unknown"
    used = [g.mem_used_mib for g in gpus if g.mem_used_mib is not None]
    if any(u > APPS_MEM_SLACK_MIB for u in used):
        return "not_visible"
    return "none" if used else "unknown"
