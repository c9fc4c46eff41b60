"""Small helpers shared by the benchmark sections: statistics, CPU clocks, worker processes.

Every measured variant runs in its OWN Python process (``python -m benchmarks.<module> …``) so
its client CPU (``time.process_time``) and RSS are its own, not the harness's, and a variant
cannot warm another's caches. A worker writes one JSON object to the path given by ``--out``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def median(xs) -> float | None:
    xs = list(xs)
    return statistics.median(xs) if xs else None


def pct(xs, q: float) -> float | None:
    """The q-th percentile (nearest rank), q in 0..100."""
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(q / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu() -> float:
    return time.process_time()


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    import asyncssh
    import textual

    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "mem_mb": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "asyncssh": asyncssh.__version__, "textual": getattr(textual, "__version__", "?"),
            "loadavg_at_start": os.getloadavg(), "speed_at_start": speed()}


def speed(rounds: int = 5) -> dict:
    """How fast this machine is right now, in three fixed pieces of work (best of ``rounds``): a
    pure-Python loop (what gpudash's own code is made of), a 300,000-entry table built and read
    out of order (what a neighbour's use of the shared cache slows), and spawning ``/bin/true``
    (what a command on the box costs). A shared VM's speed drifts from hour to hour (the same code's
    asyncssh round trip measured 0.38 ms one hour and 0.83 ms two hours later), so figures from
    two runs compare only next to these; ratios within a run do not need them."""
    def loop() -> None:
        s = 0
        for i in range(1_000_000):
            s += i

    def spawn() -> None:
        for _ in range(20):
            subprocess.run(["/bin/true"])

    def table() -> None:  # tens of MB of objects, visited out of order: sensitive to the shared cache
        d = {i: str(i) for i in range(300_000)}
        for i in range(0, 300_000 * 7919, 7919):
            d[i % 300_000]

    out = {}
    for name, work, per in (("python_loop_1m_ms", loop, 1), ("python_table_300k_ms", table, 1),
                            ("spawn_true_ms", spawn, 20)):
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            work()
            best = min(best, (time.perf_counter() - t) / per)
        out[name] = round(best * 1e3, 3)
    return out


def run_worker(module: str, args: list[str], *, timeout: float = 600, env: dict | None = None) -> dict:
    """Run ``python -m benchmarks.<module> ARGS --out TMP`` and return its JSON."""
    fd, out = tempfile.mkstemp(prefix="gdbench-", suffix=".json")
    os.close(fd)
    try:
        cmd = [sys.executable, "-m", f"benchmarks.{module}", *args, "--out", out]
        p = subprocess.run(cmd, cwd=ROOT, timeout=timeout, capture_output=True, text=True,
                           env={**os.environ, **(env or {})})
        if p.returncode != 0:
            return {"error": f"{module} {' '.join(args)} exited {p.returncode}: {p.stderr[-3000:]}"}
        with open(out) as f:
            return json.load(f)
    except subprocess.TimeoutExpired:
        return {"error": f"{module} {' '.join(args)} timed out after {timeout:.0f}s"}
    finally:
        os.unlink(out)


def write_out(path: str, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)


def ms(x: float | None) -> float | None:
    return None if x is None else x * 1e3


class SshCounter:
    """Counts what crosses the SSH socket in this process: raw bytes and SSH packets, both ways.

    Installed by wrapping asyncssh's connection methods (``data_received`` for raw bytes in,
    ``_send`` for raw bytes out, ``_recv_packet``/``send_packet`` for packets). Measurement only.
    """

    def __init__(self) -> None:
        self.bytes_in = self.bytes_out = self.packets_in = self.packets_out = 0

    def install(self) -> "SshCounter":
        import asyncssh.connection as c

        cls = c.SSHConnection
        me = self
        orig_dr, orig_send, orig_rp, orig_sp = cls.data_received, cls._send, cls._recv_packet, cls.send_packet

        def data_received(self, data, datatype=None):
            me.bytes_in += len(data)
            return orig_dr(self, data, datatype)

        def _send(self, data):
            me.bytes_out += len(data)
            return orig_send(self, data)

        def _recv_packet(self):
            r = orig_rp(self)
            me.packets_in += bool(r)
            return r

        def send_packet(self, pkttype, *args, **kw):
            me.packets_out += 1
            return orig_sp(self, pkttype, *args, **kw)

        cls.data_received, cls._send, cls._recv_packet, cls.send_packet = (
            data_received, _send, _recv_packet, send_packet)
        return self

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.bytes_in, self.bytes_out, self.packets_in, self.packets_out

    def per(self, before: tuple, n: int) -> dict:
        d = [(a - b) / n for a, b in zip(self.snapshot(), before)]
        return {"ssh_bytes_in": d[0], "ssh_bytes_out": d[1], "ssh_packets_in": d[2], "ssh_packets_out": d[3]}
