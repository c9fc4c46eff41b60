"""CPU accounting from /proc: what a process tree has burnt, reaped children included.

Why a tree and not one pid: the box's cost of a probe is sshd's per-connection processes, the
login shell it starts, and every command that shell runs. A live process's ``utime+stime`` is
its own CPU; its ``cutime+cstime`` is the CPU of the children it has already reaped (and of
theirs). Summing ``utime+stime+cutime+cstime`` over every LIVE process of the tree counts each
CPU-second exactly once: a dead process is counted in its reaper's ``cutime``, a live one by
itself. What escapes: processes re-parented to init (daemonised) — none of our probes do that.

Times are in clock ticks (``SC_CLK_TCK``, 100/s): 10 ms resolution per process, so per-tick
costs are always measured over many ticks and divided.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    own: float  # utime + stime, seconds
    children: float  # cutime + cstime (reaped children), seconds
    rss_kb: int


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    lp, rp = raw.find(b"("), raw.rfind(b")")
    comm = raw[lp + 1 : rp].decode("utf-8", "replace")
    f = raw[rp + 2 :].split()
    # fields after comm: 0 state, 1 ppid, ... 11 utime, 12 stime, 13 cutime, 14 cstime, 21 rss
    return ProcStat(
        pid=pid,
        ppid=int(f[1]),
        comm=comm,
        own=(int(f[11]) + int(f[12])) / TICK,
        children=(int(f[13]) + int(f[14])) / TICK,
        rss_kb=int(f[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024),
    )


def all_stats() -> dict[int, ProcStat]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out[st.pid] = st
    return out


def tree(root: int, stats: dict[int, ProcStat] | None = None) -> list[ProcStat]:
    """``root`` and all its live descendants."""
    stats = all_stats() if stats is None else stats
    kids: dict[int, list[int]] = {}
    for st in stats.values():
        kids.setdefault(st.ppid, []).append(st.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        st = stats.get(pid)
        if st is None:
            continue
        out.append(st)
        todo.extend(kids.get(pid, ()))
    return out


def tree_cpu(root: int) -> float:
    """Seconds of CPU the tree under ``root`` has used so far (own + reaped children)."""
    return sum(st.own + st.children for st in tree(root))


def reaped_tree_cpu(reaper: int) -> float:
    """CPU of everything under a subreaper (:mod:`benchmarks.reaper`), not counting the reaper's
    own time: what it reaped (``cutime``) plus every live descendant."""
    sts = tree(reaper)
    return sum(st.children if st.pid == reaper else st.own + st.children for st in sts)


def tree_size(root: int) -> int:
    return len(tree(root))


def proc_cpu(pid: int) -> float:
    st = read_stat(pid)
    return 0.0 if st is None else st.own + st.children


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    rss = hwm = 0.0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm
