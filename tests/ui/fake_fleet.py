"""A FleetLike test double of the DATA SOURCE, built from the real captured outputs in
tests/fixtures/ (H100 nvidia-smi CSVs, df, tmux, squeue, real training logs and failures).

It does not parse with the project's probes on purpose: the UI tests must not depend on the
data path being finished. The numbers are the fixtures' numbers, read with a few lines of
csv/whitespace splitting. Tests push new views and events with `push()` / `push_event()`.

`python -m tests.ui.fake_fleet [--live]` runs the real TUI on it (used to look at it in tmux).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gpudash.model import (CheckResult, ComputeApp, DiskUsage, Event, GpuHealthFields, GpuSample,
                           HostSnapshot, LinkStatus, MemorySample, MetricPoint, ProcessInfo, Progress,
                           Reason, SlurmJob, State, TmuxSession)
from gpudash.sanitize import clean_line
from gpudash.watch.view import HostView

FIX = Path(__file__).resolve().parent.parent / "fixtures"
# A fixed clock for deterministic screens: 2026-11-22 14:30:00 UTC.
T0 = datetime(2026, 11, 22, 14, 30, 0, tzinfo=timezone.utc).timestamp()
UTC = timezone.utc


def _num(s: str) -> float | None:
    s = s.strip()
    if s.startswith("[") or s in ("N/A", ""):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _hex(s: str) -> int | None:
    s = s.strip()
    return int(s, 16) if s.startswith("0x") else None


def gpu_from_query(name: str) -> tuple[GpuSample, GpuHealthFields]:
    """h100/query-*-nounits.csv (the full field list in fixtures/README.md)."""
    f = [x.strip() for x in (FIX / "h100" / name).read_text().strip().split(",")]
    g = GpuSample(index=int(f[0]), uuid=f[1], name=f[2], bus_id=f[3], driver=f[4], pstate=f[5],
                  temp_c=_num(f[6]), mem_temp_c=_num(f[7]), util_pct=_num(f[8]),
                  mem_util_pct=_num(f[9]), mem_total_mib=_num(f[10]), mem_used_mib=_num(f[11]),
                  mem_free_mib=_num(f[12]), power_w=_num(f[13]), power_limit_w=_num(f[14]),
                  sm_clock_mhz=_num(f[15]), mem_clock_mhz=_num(f[16]), max_sm_clock_mhz=_num(f[17]),
                  fan_pct=_num(f[18]), mig_mode=f[22], compute_mode=f[23])
    return g, GpuHealthFields(index=g.index, ecc_uncorrected=int(_num(f[19]) or 0)
                              if _num(f[19]) is not None else None, throttle_mask=_hex(f[20]))


def series() -> tuple[list[float | None], list[float | None]]:
    """h100/series-lms500-nounits.csv: util % and memory used % per sample."""
    util, mem = [], []
    for line in (FIX / "h100" / "series-lms500-nounits.csv").read_text().splitlines():
        f = [x.strip() for x in line.split(",")]
        util.append(_num(f[3]))
        total, used = _num(f[5]), _num(f[6])
        mem.append(100.0 * used / total if total and used is not None else None)
    return util, mem


def disks(bytes_file: str, inodes_file: str) -> tuple[DiskUsage, ...]:
    rows: dict[str, dict] = {}
    for line in (FIX / "h100" / bytes_file).read_text().splitlines()[1:]:
        fs, size, used, avail, _cap, mount = line.split(None, 5)
        rows[mount] = dict(mount=mount, filesystem=fs, size_bytes=int(size), used_bytes=int(used),
                           avail_bytes=int(avail))
    for line in (FIX / "h100" / inodes_file).read_text().splitlines()[1:]:
        fs, total, used, free, _pct, mount = line.split(None, 5)
        rows.setdefault(mount, dict(mount=mount, filesystem=fs)).update(
            inodes_total=int(total), inodes_used=int(used), inodes_free=int(free))
    return tuple(DiskUsage(**r) for r in rows.values())


def log_lines(name: str, folder: str = "logs") -> tuple[str, ...]:
    raw = (FIX / folder / name).read_bytes()
    return tuple(clean_line(line) for line in raw.split(b"\n") if line.strip())


_HF = re.compile(r"\{'loss': '([\d.eE+-]+)', 'grad_norm': '([\d.eE+-]+)', 'learning_rate': '([\d.eE+-]+)', 'epoch': '([\d.]+)'\}")
_PLAIN = re.compile(r"step (\d+) loss ([\d.]+)(?: lr ([\d.eE+-]+))?")


def hf_metrics() -> tuple[MetricPoint, ...]:
    """The dict lines of logs/hf-trainer.log (64 steps, 2 epochs: step = epoch × 32)."""
    pts = []
    for i, line in enumerate((FIX / "logs" / "hf-trainer.log").read_text().split("\n"), 1):
        for m in _HF.finditer(line):
            epoch = float(m.group(4))
            pts.append(MetricPoint(step=round(epoch * 32), epoch=epoch, loss=float(m.group(1)),
                                   grad_norm=float(m.group(2)), lr=float(m.group(3)), line_no=i))
    return tuple(pts)


def plain_metrics(name: str) -> tuple[MetricPoint, ...]:
    pts = []
    for i, line in enumerate((FIX / "logs" / name).read_text().splitlines(), 1):
        m = _PLAIN.search(line)
        if m:
            pts.append(MetricPoint(step=int(m.group(1)), loss=float(m.group(2)),
                                   lr=float(m.group(3)) if m.group(3) else None, line_no=i))
    return tuple(pts)


def tmux_sessions() -> tuple[TmuxSession, ...]:
    panes = {}
    for line in (FIX / "local" / "tmux-list-panes-F.txt").read_text().splitlines():
        name, pid, cmd, dead, status = line.split("|")
        panes[name] = (cmd, dead == "1", int(status) if status else None)
    out = []
    for line in (FIX / "local" / "tmux-list-sessions-F.txt").read_text().splitlines():
        name, created, windows, attached, pid, dead = line.split("|")
        cmd, pdead, status = panes.get(name, ("", False, None))
        out.append(TmuxSession(name=name, created_epoch=int(created), windows=int(windows),
                               attached=attached != "0", pane_pid=int(pid), pane_dead=pdead,
                               pane_dead_status=status, pane_command=cmd))
    return tuple(out)


def slurm_jobs() -> tuple[SlurmJob, ...]:
    out = []
    for line in (FIX / "slurm" / "squeue-format.txt").read_text().splitlines():
        jid, name, user, state, elapsed, limit, nodes, reason = line.split("|")
        out.append(SlurmJob(job_id=jid, name=name, user=user, state=state, elapsed=elapsed,
                            time_limit=limit, nodes=nodes, reason=reason))
    return tuple(out)


def apps(name: str) -> tuple[ComputeApp, ...]:
    out = []
    for line in (FIX / "h100" / name).read_text().splitlines():
        pid, pname, mem, uuid = [x.strip() for x in line.split(",")]
        out.append(ComputeApp(pid=int(pid), process_name=pname, used_mib=_num(mem), gpu_uuid=uuid))
    return tuple(out)


def processes() -> tuple[ProcessInfo, ...]:
    out = []
    for line in (FIX / "h100" / "pgrep.txt").read_text().splitlines():
        pid, cmd = line.split(" ", 1)
        out.append(ProcessInfo(pid=int(pid), command=cmd, elapsed_s=754, cpu_pct=98.0, rss_kb=3_145_728,
                               threads=24))
    return tuple(out)


def meminfo() -> MemorySample:
    """h100/cgroup.txt: no cgroup v2 files at the root; /proc/meminfo, nproc and uptime."""
    text = (FIX / "h100" / "cgroup.txt").read_text()
    total = int(re.search(r"MemTotal:\s+(\d+) kB", text).group(1)) * 1024
    avail = int(re.search(r"MemAvailable:\s+(\d+) kB", text).group(1)) * 1024
    load = re.search(r"load average: ([\d.]+), ([\d.]+), ([\d.]+)", text)
    nproc = re.search(r"^(\d+)$", text, re.M)
    return MemorySample(source="meminfo", host_total_bytes=total, host_available_bytes=avail,
                        load1=float(load.group(1)) if load else None,
                        nproc=int(nproc.group(1)) if nproc else None)


# ----------------------------------------------------------------------------- triage double


@dataclass(frozen=True)
class FakeEvidence:
    line_no: int
    text: str


@dataclass(frozen=True)
class FakeTriage:
    """Mirrors the attribute contract of gpudash.triage's result (cls, category, …)."""

    cls: str
    category: str = ""
    summary: str = ""
    explanation: str = ""
    remediation: str = ""
    evidence: tuple = ()
    cause: str = ""


OOM_TRIAGE = FakeTriage(
    cls="cuda_oom", category="size",
    summary="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 186.27 GiB.",
    explanation="The GPU's memory ran out while PyTorch allocated a tensor. This is a size "
                "problem, consistent across retries: the same config will fail the same way.",
    remediation="Reduce the per-device batch size (keep the effective batch with gradient "
                "accumulation), enable activation checkpointing, or use a larger GPU.",
    evidence=tuple(FakeEvidence(i, line) for i, line in enumerate(log_lines("fail-cuda-oom.log"), 1)
                   if i >= 2),
)
INODE_TRIAGE = FakeTriage(
    cls="disk_full", category="disk", summary="OSError: [Errno 28] No space left on device",
    explanation="Writing failed because the filesystem is full — here the INODES ran out "
                "(/mnt/small: 100% inodes used, 2% bytes used), not the bytes.",
    remediation="Prune old checkpoints and caches (keep `best`), write many small files into "
                "one archive, then retry; ask to grow the disk if pruning is not enough.",
    evidence=tuple(FakeEvidence(i, line) for i, line in enumerate(log_lines("fail-inodes.log"), 1)),
    cause="inodes",
)


# ----------------------------------------------------------------------------- views


def snapshot_h100(**over) -> HostSnapshot:
    g, h = gpu_from_query("query-busy-nounits.csv")
    util, mem = series()
    # the current sample is the series' last one (same H100, same run), so card and chart agree
    g = dataclasses.replace(g, util_pct=util[-1], mem_used_mib=round(mem[-1] * g.mem_total_mib / 100))
    base = dict(
        name="h100-train", transport="ssh", taken_at=T0 - 3,
        link=LinkStatus(ok=True, last_ok=T0 - 3),
        gpus=(g,), gpu_health=(h,), gpu_at=T0 - 3, apps=apps("apps-busy-nounits.csv"),
        util_history=(tuple(util),), mem_history=(tuple(mem),),
        disks=disks("df-PB1.txt", "df-Pi.txt"), disk_at=T0 - 5, memory=meminfo(), memory_at=T0 - 5,
        processes=processes(), tmux=tmux_sessions(), jobs_at=T0 - 10,
        log_path="/workspace/run/hf-trainer.log", log_lines=log_lines("hf-trainer.log"),
        log_grew_at=T0 - 3, log_at=T0 - 3, metrics=hf_metrics(),
        progress=Progress(current=31, total=64, rate_per_s=1.4, eta_s=23),
    )
    base.update(over)
    return HostSnapshot(**base)


def view_h100(**over) -> HostView:
    return HostView(snapshot=snapshot_h100(**over), state=State.OK,
                    checks=(CheckResult("disk.bytes:/", State.OK, "21% used"),
                            CheckResult("disk.inodes:/", State.OK, "1% inodes")),
                    triage=FakeTriage(cls="none"), job_summary="tmux train-llama: running")


def view_inodes() -> HostView:
    g, h = gpu_from_query("query-idle-nounits.csv")
    util, mem = series()
    snap = HostSnapshot(
        name="eval-box", transport="ssh", taken_at=T0 - 2, link=LinkStatus(ok=True, last_ok=T0 - 2),
        gpus=(g,), gpu_health=(h,), gpu_at=T0 - 2, apps=(), util_history=(tuple(util[:24]),),
        mem_history=(tuple(mem[:24]),),
        disks=disks("df-PB1.txt", "df-Pi.txt") + disks("df-PB1-small.txt", "df-Pi-small.txt"),
        disk_at=T0 - 2, memory=meminfo(), tmux=tmux_sessions()[:1], jobs_at=T0 - 2,
        log_path="/mnt/small/eval.log", log_lines=log_lines("fail-inodes.log"), log_at=T0 - 2,
    )
    return HostView(snapshot=snap, state=State.CRIT,
                    checks=(CheckResult("disk.inodes:/mnt/small", State.CRIT,
                                        "inodes 100% used (bytes only 2%)", since=T0 - 600),
                            CheckResult("disk.bytes:/mnt/small", State.OK, "2% used")),
                    triage=INODE_TRIAGE, job_summary="tmux eval: exited", alerts_unacked=1)


def view_oom() -> HostView:
    g, h = gpu_from_query("query-idle-nounits.csv")
    snap = HostSnapshot(
        name="oom-box", transport="ssh", taken_at=T0 - 4, link=LinkStatus(ok=True, last_ok=T0 - 4),
        gpus=(g,), gpu_health=(h,), gpu_at=T0 - 4, apps=(), util_history=((0.0,) * 20,),
        mem_history=((0.0,) * 20,), disks=disks("df-PB1.txt", "df-Pi.txt"), disk_at=T0 - 4,
        memory=meminfo(), jobs_at=T0 - 4, log_path="/workspace/oom/train.log",
        log_lines=log_lines("fail-cuda-oom.log"), log_at=T0 - 4,
    )
    return HostView(snapshot=snap, state=State.CRIT,
                    checks=(CheckResult("job", State.CRIT, "the run failed: cuda_oom", since=T0 - 900),),
                    triage=OOM_TRIAGE, job_summary="process gone", alerts_unacked=2)


def view_slurm() -> HostView:
    snap = HostSnapshot(
        name="slurm-login", transport="ssh", taken_at=T0 - 1, link=LinkStatus(ok=True, last_ok=T0 - 1),
        gpu_error=None, disks=disks("df-PB1.txt", "df-Pi.txt")[1:], disk_at=T0 - 1,
        slurm=slurm_jobs(), jobs_at=T0 - 1, log_path="/scratch/exp/job-timelimit.out",
        log_lines=log_lines("job-timelimit.out", "slurm"), log_at=T0 - 1,
        metrics=plain_metrics("train-healthy.log"), progress=Progress(current=100, total=None),
    )
    return HostView(snapshot=snap, state=State.WARN,
                    checks=(CheckResult("gpu", State.UNKNOWN, "GPUs are on the compute node",
                                        reason=Reason.NOT_VISIBLE),
                            CheckResult("job", State.WARN, "job 2 hit its time limit")),
                    triage=FakeTriage(cls="none"), job_summary="1 running, 1 pending")


def view_gone() -> HostView:
    g, h = gpu_from_query("query-busy-nounits.csv")
    snap = HostSnapshot(
        name="gone-box", transport="ssh", taken_at=T0 - 1680,
        link=LinkStatus(ok=False, reason=Reason.UNREACHABLE, message="connect timeout after 10s",
                        since=T0 - 1680, last_ok=T0 - 1690),
        gpus=(g,), gpu_health=(h,), gpu_at=T0 - 1690, disks=disks("df-PB1.txt", "df-Pi.txt"),
        disk_at=T0 - 1690, log_path="/workspace/run/train.log",
        log_lines=log_lines("train-healthy.log")[:12], log_at=T0 - 1690,
    )
    return HostView(snapshot=snap, state=State.UNKNOWN, reason=Reason.UNREACHABLE,
                    checks=(CheckResult("link", State.UNKNOWN, "cannot reach the box",
                                        reason=Reason.UNREACHABLE, since=T0 - 1680),),
                    job_summary="unknown (unreachable)")


def all_views() -> list[HostView]:
    return [view_h100(), view_inodes(), view_oom(), view_slurm(), view_gone()]


# ----------------------------------------------------------------------------- the fleet


class FakeFleet:
    """FleetLike over fixed views; records every action the UI asks for."""

    def __init__(self, views: list[HostView] | None = None, *, live: bool = False, clock=None) -> None:
        self.views = {v.name: v for v in (views if views is not None else all_views())}
        self.order = list(self.views)
        self.on_view = None
        self.on_event = None
        self.calls: list[tuple] = []
        self.live = live
        self.clock = clock or (lambda: T0)
        self.running = False

    def host_names(self) -> list[str]:
        return list(self.order)

    def view(self, host: str) -> HostView | None:
        return self.views.get(host)

    def subscribe(self, on_view, on_event) -> None:
        self.on_view, self.on_event = on_view, on_event

    async def run(self) -> None:
        self.running = True
        try:
            if self.live:
                await self._simulate()
            else:
                await asyncio.Event().wait()  # until cancelled, like a real watcher
        finally:
            self.running = False

    def probe_now(self, host: str | None = None) -> None:
        self.calls.append(("probe_now", host))

    def set_paused(self, host: str, paused: bool) -> None:
        self.calls.append(("set_paused", host, paused))

    def acknowledge(self, host: str | None = None) -> None:
        self.calls.append(("acknowledge", host))

    # test side
    def push(self, view: HostView) -> None:
        if view.name not in self.views:
            self.order.append(view.name)
        self.views[view.name] = view
        if self.on_view is not None:
            self.on_view(view)

    def push_event(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def _simulate(self) -> None:
        """For looking at it live: replay the H100 series on h100-train and grow its log."""
        util, mem = series()
        lines = log_lines("hf-trainer.log")
        t = self.clock()
        self.push_event(Event(t - 600, "eval-box", "disk.inodes:/mnt/small", State.WARN, State.CRIT,
                              "inodes 100% used on /mnt/small (bytes 2%)", "disk_full"))
        self.push_event(Event(t - 900, "oom-box", "job", State.OK, State.CRIT,
                              "the run failed: CUDA out of memory", "cuda_oom"))
        self.push_event(Event(t - 1680, "gone-box", "link", State.OK, State.UNKNOWN,
                              "cannot reach the box (connect timeout)", None))
        i = 0
        while True:
            await asyncio.sleep(0.5)
            i += 1
            v = self.views["h100-train"]
            snap = v.snapshot
            now = self.clock()
            hist_u = (snap.util_history[0] + (util[i % len(util)],))[-120:]
            hist_m = (snap.mem_history[0] + (mem[i % len(mem)],))[-120:]
            gpu = dataclasses.replace(snap.gpus[0], util_pct=util[i % len(util)])
            new_lines = (snap.log_lines + (f"step {i}: {lines[i % len(lines)][:60]}",))[-500:]
            snap = dataclasses.replace(snap, util_history=(hist_u,), mem_history=(hist_m,), gpus=(gpu,),
                                       log_lines=new_lines, taken_at=now,
                                       link=LinkStatus(ok=True, last_ok=now),
                                       progress=Progress(current=min(64, 31 + i // 4), total=64, eta_s=23))
            if i >= 40:  # the run dies: a new failure of (usually) the selected host
                v = dataclasses.replace(v, triage=OOM_TRIAGE, state=State.CRIT, job_summary="process gone")
            self.push(dataclasses.replace(v, snapshot=snap))
            if i == 40:
                self.push_event(Event(now, "h100-train", "job", State.OK, State.CRIT,
                                      "the run failed: CUDA out of memory", "cuda_oom"))
            if i == 20:
                self.push_event(Event(now, "h100-train", "gpu.util:0", State.OK, State.WARN,
                                      "GPU0 util under 20% over 60s while the log advances", None))


def main() -> int:
    import argparse
    import time

    from gpudash.ui.run import run_tui

    p = argparse.ArgumentParser()
    p.add_argument("--live", action="store_true", help="keep pushing new samples")
    p.add_argument("--theme", default=None)
    args = p.parse_args()
    config = {"theme": args.theme} if args.theme else None
    start = time.monotonic()

    def clock() -> float:  # the fixtures' moment, advancing in real time
        return T0 + (time.monotonic() - start)

    return run_tui(FakeFleet(live=args.live, clock=clock), config=config, tz=UTC, clock=clock)


if __name__ == "__main__":
    raise SystemExit(main())
