"""A simulated box: answers each probe step with the bytes the real tool would print for the
scenario at the simulated time. The formats are the real ones (nvidia-smi CSV from the recorded
H100 series, `df -P`, `/proc/meminfo`, tmux `-F` lines, `ps` rows, the log's own bytes)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gpudash.demo import traces
from gpudash.demo.scenarios import Scenario, unreachable_error
from gpudash.model import Reason
from gpudash.transport.base import Step, StepResult


class SimBox:
    def __init__(self, scenario: Scenario, *, start: float | None = None, speed: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.sc = scenario
        self.start = clock() if start is None else start
        self.speed = speed
        self.clock = clock

    # ------------------------------------------------------------------ time

    def t(self, now: float) -> float:
        return (now - self.start) * self.speed

    def link_error(self, now: float) -> tuple[Reason, str] | None:
        return unreachable_error(self.sc, self.t(now))

    # ------------------------------------------------------------------ answers

    def answer(self, step: Step, now: float) -> StepResult:
        t = self.t(now)
        render = getattr(self, f"_{step.key}", None)
        if render is None:
            return StepResult(step.key, b"", b"", 0)
        out = render(step, t)
        if isinstance(out, StepResult):
            return out
        return StepResult(step.key, out.encode() if isinstance(out, str) else out, b"", 0)

    def _row(self, t: float):
        sc = self.sc
        if not sc.alive(t):
            return traces.idle_rows()[0]
        return sc.gpu_rows[int(t / sc.gpu_period) % len(sc.gpu_rows)]

    def _gpu(self, step: Step, t: float) -> str:
        row = self._row(t)
        temp = row.temp + (self.sc.temp_offset if self.sc.alive(t) else 0)
        return traces.nvidia_smi_core_line(row, uuid=self.sc.uuid, name=self.sc.gpu_name, temp=temp) + "\n"

    def _gpu_health(self, step: Step, t: float) -> str:
        return traces.nvidia_smi_health_line(self._row(t)) + "\n"

    def _gpu_apps(self, step: Step, t: float) -> str:
        if not self.sc.alive(t):
            return ""
        row = self._row(t)
        return f"{self.sc.pid}, python3, {row.mem_used:.0f}, {self.sc.uuid}\n"

    def _df_bytes(self, step: Step, t: float) -> str:
        rows = []
        for fs, mount, size, used_at, _itotal, _iused_at in self.sc.mounts:
            used = int(used_at(t))
            rows.append((fs, size, used, max(0, size - used), mount))
        return traces.df_bytes_text(rows)

    def _df_inodes(self, step: Step, t: float) -> str:
        rows = []
        for fs, mount, _size, _used_at, itotal, iused_at in self.sc.mounts:
            used = int(iused_at(t))
            rows.append((fs, itotal, used, max(0, itotal - used), mount))
        return traces.df_inodes_text(rows)

    def _log(self, step: Step, t: float) -> bytes:
        """The log step's record (see gpudash.probes.logtail), decided as the box's script would:
        from the offset, or only the newest `max_bytes` when more are pending."""
        p = step.params
        size = self.sc.log.size_at(t)
        off = int(p.get("offset", 0))
        reset = 1 if size < off else 0
        if reset:
            off = 0
        start, skipped = off, 0
        if size - off > int(p["max_bytes"]):
            start = size - int(p["max_bytes"])
            skipped = start - off
        data = bytes(self.sc.log.data[start:size])
        head = f"LOG\t{size}\t{self.sc.pid}\t{int(self.start)}\t{start}\t{len(data)}\t{reset}\t{skipped}\n"
        return head.encode() + self.sc.log_path.encode() + b"\0" + data

    def _memory(self, step: Step, t: float) -> str:
        # The real capture of a box without cgroup v2 files (fixture cgroup.txt): meminfo fallback.
        return traces.read("cgroup.txt")

    def _tmux(self, step: Step, t: float) -> str:
        """tmux's own -F rows in the probe's block format (gpudash.probes.tmux)."""
        sc = self.sc
        alive = sc.alive(t)
        dead_status = "" if alive else ("0" if sc.finished_at is not None else "1")
        n = "demo"
        created = int(self.start) - 3600
        return (
            f"@@gd:{n}\n@@gd:{n}:sessions\n$1\t{created}\t1\t0\t{sc.tmux_session}\n"
            f"@@gd:{n}:panes\n$1\t1\t1\t{sc.pid - 1}\t{0 if alive else 1}\t{dead_status}\t/dev/pts/1\t"
            f"{'python3' if alive else 'bash'}\n"
        )

    def _procs(self, step: Step, t: float) -> str:
        """`ps -o pid=,etimes=,pcpu=,rss=,nlwp=,lstart=,args=` under TZ=UTC0."""
        sc = self.sc
        if not sc.alive(t):
            return ""
        started = time.gmtime(self.start - 3600)
        lstart = time.strftime("%a %b %d %H:%M:%S %Y", started).replace(" 0", "  ", 1)
        etimes = int(3600 + t)
        return f"{sc.pid:>7} {etimes:>8} {97.5:>5} {18_432_112:>9} {42:>4} {lstart} {sc.command}\n"

    def _alive(self, step: Step, t: float) -> str:
        """Which of the asked pids live (gpudash.probes.processes.proc_alive_step)."""
        alive = self.sc.alive(t) and self.sc.pid in step.params.get("pids", ())
        return f"{self.sc.pid}\n" if alive else ""

    def _files(self, step: Step, t: float) -> bytes:
        """Marker records (gpudash.probes.files): KIND\\tINDEX\\tSIZE\\tMTIME\\tPATH\\0."""
        out = b""
        for i, p in enumerate(step.params.get("paths", [])):
            done = self.sc.finished_at is not None and t >= self.sc.finished_at
            if done:
                out += f"F\t{i}\t0\t{self.start + self.sc.finished_at / self.speed:.0f}\t{p}\0".encode()
            else:
                out += f"M\t{i}\t\t\t{p}\0".encode()
        return out

    def _ckpt(self, step: Step, t: float) -> bytes:
        """A checkpoint folder listing (gpudash.probes.files.dir_step): EXISTS, then records."""
        sc = self.sc
        out = b"EXISTS\n" + (sc.checkpoint_dir or "").encode() + b"\0"
        for n, at in enumerate(x for x in sc.checkpoints_at if x <= t):
            mtime = self.start + at / self.speed
            out += f"d\t4096\t{mtime:.1f}\tcheckpoint-{(n + 1) * 500}\0".encode()
            out += f"f\t{sc.checkpoint_bytes}\t{mtime:.1f}\tcheckpoint-{(n + 1) * 500}/model.safetensors\0".encode()
        return out

    # `nvidia-smi -lms` prints the same line per interval as the one-shot query
    _gpu_stream = _gpu
