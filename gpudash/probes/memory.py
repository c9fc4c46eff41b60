"""Memory probe: the job's cgroup (v2 or v1), then the host's /proc/meminfo, nproc, loadavg.

Why the job's cgroup: the SSH session's own cgroup is not the job's, and the OOM killer acts on
the job's limit, not the host's RAM. The script reads ``/proc/PID/cgroup`` and follows it:

- v2 (``0::/path``): ``/sys/fs/cgroup/path/{memory.current,memory.max,memory.events,
  memory.stat,cpu.max}``;
- v1 (a ``memory`` controller line, which wins on hybrid hosts where memory is still on v1):
  ``/sys/fs/cgroup/memory/path/{memory.usage_in_bytes,memory.limit_in_bytes,
  memory.oom_control,memory.stat}`` and ``cpu/path/cpu.cfs_{quota,period}_us``;
- with no pid, a vanished pid, or a path not visible from here (a container without a cgroup
  namespace), the root ``/sys/fs/cgroup`` files — which many boxes lack: then meminfo only.

Output is one ``== LABEL`` line per section, the same shape as the capture in the fixture
``cgroup.txt``; a missing file is an empty section (normal, not an error).

``used_bytes`` is the working set — usage minus ``inactive_file`` from memory.stat, as kubelet
and ``docker stats`` count it — so a job streaming a big dataset through the page cache does not
look like it is about to be OOM-killed (the kernel reclaims that cache first).
"""

from __future__ import annotations

import re
import shlex

from gpudash.model import MemorySample, ProbeError, Reason
from gpudash.sanitize import clean_field, decode
from gpudash.transport.base import Step

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_ROOT = "/proc"
DEFAULT_TIMEOUT = 5.0
# v1 "no limit" is PAGE_COUNTER_MAX pages (9223372036854771712 on 4 KiB pages); anything this
# large is no real limit.
UNLIMITED_AT = 1 << 60

# The files are chosen with builtins (no fork), then printed by ONE `awk`, each under a
# `== PATH` header: a builtin `read` loop costs dash a read(2) per byte (~2.8 ms of box CPU for
# these files), `cat` a fork+exec per file, `nproc` another. The CPU count comes from the
# `Cpus_allowed_list` of awk's own /proc/self/status — the same affinity mask `nproc` reads.
# awk only prints a header for a file with a line in it, so an empty, missing or unreadable file
# is an absent section; the parser reads that as it read an empty one. Every path starts with
# "/" or "./" (_rooted), so awk never takes one for a `var=value` assignment. The
# stable files come first: if a cgroup file vanishes between the test and awk's open (the job
# ended), awk stops there and only the cgroup sections are lost for this round.
_SCRIPT = r"""P={pid}; C={cg}; R={proc}
v1=; v2=; c1=; g1=; g2=; g3=
set -- "$R/meminfo" "$R/loadavg" /proc/self/status
if [ -n "$P" ] && [ -r "$R/$P/cgroup" ]; then
  set -- "$@" "$R/$P/cgroup"
  # "4:memory:/a/b", "3:cpu,cpuacct:/a/b" (v1; the first match wins), "0::/a/b" (v2)
  while IFS=: read -r n c p || [ -n "$n" ]; do
    case ",$c," in *,memory,*) [ -n "$g1" ] || {{ g1=1; v1=$p; }};; esac
    case ",$c," in *,cpu,*) [ -n "$g3" ] || {{ g3=1; c1=$p; }};; esac
    if [ "$n" = 0 ] && [ -z "$c" ] && [ -z "$g2" ]; then g2=1; v2=$p; fi
  done 2>/dev/null < "$R/$P/cgroup"
fi
if [ -n "$v1" ] && [ -d "$C/memory" ]; then
  mode=v1; d="$C/memory${{v1%/}}"; [ -d "$d" ] || d="$C/memory"
elif [ -n "$v2" ]; then
  mode=v2; d="$C${{v2%/}}"; [ -d "$d" ] || d="$C"
elif [ ! -f "$C/cgroup.controllers" ] && [ -d "$C/memory" ]; then
  mode=v1; d="$C/memory"
else
  mode=v2; d="$C"
fi
if [ "$mode" = v2 ]; then
  for f in memory.current memory.max memory.events memory.stat cpu.max; do set -- "$@" "$d/$f"; done
else
  for f in memory.usage_in_bytes memory.limit_in_bytes memory.oom_control memory.stat; do
    set -- "$@" "$d/$f"
  done
  c="$C/cpu${{c1%/}}"; [ -d "$c" ] || c="$C/cpu"
  set -- "$@" "$c/cpu.cfs_quota_us" "$c/cpu.cfs_period_us"
fi
n=$#
while [ "$n" -gt 0 ]; do
  f=$1; shift; n=$((n - 1))
  [ -f "$f" ] && [ -r "$f" ] && set -- "$@" "$f"
done
if command -v awk >/dev/null 2>&1; then
  [ "$#" -eq 0 ] || awk 'FNR == 1 {{ print "== " FILENAME }}
    FILENAME != "/proc/self/status" || /^Cpus_allowed_list:/' "$@" 2>/dev/null
else
  for f; do
    echo "== $f"
    while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done 2>/dev/null < "$f"
  done
fi
[ -r /proc/self/status ] || {{ echo "== nproc"; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null; }}
exit 0
"""


def memory_step(pid: int | None, *, cgroup_root: str = CGROUP_ROOT, proc_root: str = PROC_ROOT,
                timeout: float = DEFAULT_TIMEOUT) -> Step:
    """One script (key ``memory``) printing the job's cgroup files, meminfo, nproc and loadavg.

    ``cgroup_root``/``proc_root`` exist for tests that build a fake tree; they are quoted.
    """
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0):
        raise ValueError(f"pid must be a positive int or None, not {pid!r}")
    script = _SCRIPT.format(
        pid="" if pid is None else str(pid),
        cg=shlex.quote(_rooted(cgroup_root)),
        proc=shlex.quote(_rooted(proc_root)),
    )
    return Step(key="memory", script=script, timeout=timeout, params={"pid": pid})


def _rooted(root: str) -> str:
    """A root that starts with "/" or "./" (never read by awk as a ``var=value`` operand)."""
    root = root.rstrip("/") or "/"
    return root if root.startswith("/") else "./" + root


# ----------------------------------------------------------------------------- parser

_MEMINFO = re.compile(r"^(MemTotal|MemAvailable|MemFree|Buffers|Cached):\s+([0-9]{1,20})\s*kB\s*$")
_LOAD_AVERAGE = re.compile(r"load averages?:\s*([0-9.]+),?\s+([0-9.]+),?\s+([0-9.]+)")
_KV = re.compile(r"^([A-Za-z_]+)\s+(-?[0-9]{1,25})$")


def _text(data: bytes | str) -> str:
    if isinstance(data, (bytes, bytearray)):
        return decode(bytes(data))
    return data if isinstance(data, str) else ""


def _sections(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """``== LABEL`` sections keyed by the label's last path component ("memory.max",
    "meminfo", "nproc"), plus every line in order. Error lines (`cat: …`) are dropped."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    lines = []
    for raw in text.split("\n"):
        line = raw.strip().replace("\r", "")[:4096]
        if line.startswith("== "):
            current = sections.setdefault(line[3:].rstrip("/").rsplit("/", 1)[-1], [])
            continue
        if not line or line.startswith("cat:"):
            continue
        lines.append(line)
        if current is not None:
            current.append(line)
    return sections, lines


def _int(s: str | None) -> int | None:
    if s is None or not re.fullmatch(r"-?[0-9]{1,25}", s):
        return None
    return int(s)


def _first_int(sections: dict[str, list[str]], name: str) -> int | None:
    body = sections.get(name)
    return _int(body[0]) if body else None


def _kv(sections: dict[str, list[str]], name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in sections.get(name, ()):
        m = _KV.match(line)
        if m:
            out.setdefault(m[1], int(m[2]))
    return out


def _limit(v: int | None) -> int | None:
    return None if v is None or v <= 0 or v >= UNLIMITED_AT else v


def _working_set(usage: int | None, stat: dict[str, int], key: str) -> int | None:
    if usage is None or usage < 0:
        return None
    inactive = stat.get(key)
    if inactive is not None and 0 <= inactive <= usage:
        return usage - inactive
    return usage


def _quota(quota: int | None, period: int | None) -> float | None:
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def _cpu_max(sections: dict[str, list[str]]) -> float | None:
    body = sections.get("cpu.max")
    if not body:
        return None
    parts = body[0].split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    return _quota(_int(parts[0]), _int(parts[1]))


def _host(sections: dict[str, list[str]], lines: list[str]):
    meminfo: dict[str, int] = {}
    last_meminfo = -1
    for i, line in enumerate(lines):
        m = _MEMINFO.match(line)
        if m:
            meminfo.setdefault(m[1], int(m[2]) * 1024)
            last_meminfo = i
    total = meminfo.get("MemTotal")
    avail = meminfo.get("MemAvailable")
    if avail is None and "MemFree" in meminfo:  # kernels before 3.14
        avail = meminfo["MemFree"] + meminfo.get("Buffers", 0) + meminfo.get("Cached", 0)

    nproc = _first_int(sections, "nproc")
    if nproc is None:
        nproc = _cpus_allowed(sections.get("status", ()))
    if nproc is None and last_meminfo >= 0:
        # an unlabelled capture (fixture cgroup.txt): nproc is the bare number after meminfo
        nproc = next((_int(ln) for ln in lines[last_meminfo + 1 :] if _int(ln) is not None), None)
    if nproc is not None and nproc <= 0:
        nproc = None

    load: tuple[float | None, ...] = (None, None, None)
    body = sections.get("loadavg")
    m = None
    if body:
        m = re.match(r"^([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", body[0])
    if m is None:
        m = next((x for x in (_LOAD_AVERAGE.search(ln) for ln in lines) if x), None)
    if m is not None:
        load = tuple(_float(g) for g in m.groups())
    return total, avail, nproc, load


_CPU_LIST = re.compile(r"^Cpus_allowed_list:\s*([0-9,\-]{1,4000})$")


def _cpus_allowed(status: list[str]) -> int | None:
    """``Cpus_allowed_list:\t0-3,8,10-11`` (the process's affinity, what `nproc` counts) → 7."""
    m = next((x for x in map(_CPU_LIST.match, status) if x), None)
    if m is None:
        return None
    n = 0
    for part in m[1].split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or len(lo) > 7 or len(hi) > 7:
            return None
        first, last = int(lo), int(hi or lo)
        if last < first:
            return None
        n += last - first + 1
    return n or None


def _float(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if 0 <= v < 1e9 else None


def parse_memory(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0
                 ) -> MemorySample | ProbeError:
    """The memory script's output (or the fixture's capture) → a MemorySample."""
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, "the memory probe did not finish before its deadline",
                          exit_code)
    sections, lines = _sections(_text(stdout))
    total, avail, nproc, (l1, l5, l15) = _host(sections, lines)

    v2_usage = _first_int(sections, "memory.current")
    v1_usage = _first_int(sections, "memory.usage_in_bytes")
    if v2_usage is not None and v2_usage >= 0:
        source = "cgroup_v2"
        used = _working_set(v2_usage, _kv(sections, "memory.stat"), "inactive_file")
        max_body = sections.get("memory.max")
        limit = _limit(_int(max_body[0])) if max_body else None
        oom = _kv(sections, "memory.events").get("oom_kill")
        cpu = _cpu_max(sections)
    elif v1_usage is not None and v1_usage >= 0:
        source = "cgroup_v1"
        stat = _kv(sections, "memory.stat")
        used = _working_set(v1_usage, stat, "total_inactive_file" if "total_inactive_file" in stat
                            else "inactive_file")
        limit = _limit(_first_int(sections, "memory.limit_in_bytes"))
        oom = _kv(sections, "memory.oom_control").get("oom_kill")
        cpu = _quota(_first_int(sections, "cpu.cfs_quota_us"),
                     _first_int(sections, "cpu.cfs_period_us"))
    elif total is not None:
        source, limit, oom, cpu = "meminfo", None, None, None
        used = total - avail if avail is not None and 0 <= avail <= total else None
    else:
        err = next((ln.strip() for ln in _text(stderr).split("\n") if ln.strip()), "")
        msg = "no memory figures (no cgroup files and no /proc/meminfo)"
        return ProbeError(Reason.PROBE_ERROR, msg + (f": {clean_field(err, max_len=300)}"
                                                     if err else ""), exit_code)
    return MemorySample(
        source=source,
        used_bytes=used,
        limit_bytes=limit,
        oom_kills=oom if oom is None or oom >= 0 else None,
        host_total_bytes=total if total else None,
        host_available_bytes=avail,
        load1=l1, load5=l5, load15=l15,
        nproc=nproc,
        cpu_quota=cpu,
    )
