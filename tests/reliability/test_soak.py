"""Soak: many thousand probe rounds at a fast cadence over several hosts, with faults injected
periodically, and nothing may grow: RSS, open fds, asyncio tasks, SSH channels, box processes.

The hosts: the six demo boxes (real recorded traces behind the replay transport, time-compressed,
for volume) plus a few boxes behind the in-process SSH server (real /bin/sh, real sessions and
channels). Every watcher runs its real loops (``HostWatcher.run``). A *tick* is one probe round
of one group on one host (one ``Transport.run`` call); every one is timed against the deadline
the watcher gave the transport.

Faults, on a fixed schedule by tick count: replay boxes go down, hang their GPU probe, print
nvidia-smi errors or random bytes; SSH boxes lose their link, hang nvidia-smi, and their logs are
rotated, truncated and deleted under the watcher.

Measuring: at a quiet point (probes paused, no round in flight, idle sessions closed — so only
growth that no live session explains is counted) after warm-up, and again at the end. After the
fleet is closed: no channel, connection or box process may be left.

The default run does a short version (~500 ticks); ``@pytest.mark.slow`` runs 10,000
(``scripts/reliability.py --soak-ticks N`` sets the count).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
import time
from dataclasses import dataclass, field

import pytest

from gpudash.health.thresholds import Thresholds
from gpudash.model import Reason
from gpudash.transport.base import Step, StepResult, Transport
from gpudash.transport.replay import ReplayTransport
from gpudash.watch.fleet import Fleet
from gpudash.watch.spec import Cadence
from tests.reliability.conftest import Kit, fast_spec
from tests.reliability.figures import GRACE_S
from tests.services.ssh_server import BIN, wait_until_gone

SHORT_TICKS = 500
FULL_TICKS = int(os.environ.get("GD_SOAK_TICKS", "10000"))
RSS_TOLERANCE_MB = 10.0
FD_TOLERANCE = 3  # the loop's own selector/self-pipe churn; a leak grows with every fault
TASK_TOLERANCE = 3

REPLAY_CADENCE = Cadence(gpu=0.01, log=0.01, disk=0.02, memory=0.02, jobs=0.03, files=0.05,
                         ray=60, probe_timeout=1.0)
SSH_CADENCE = Cadence(gpu=0.1, log=0.1, disk=0.2, memory=0.2, jobs=0.3, files=0.5, ray=60,
                      probe_timeout=1.5)


# ----------------------------------------------------------------------------- instruments


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Counting(Transport):
    """Counts ticks and times every call against the deadline it was given."""

    def __init__(self, inner: Transport, meter: "Meter") -> None:
        super().__init__(inner.host)
        self.inner = inner
        self.kind = inner.kind
        self.meter = meter

    @property
    def link(self):
        return getattr(self.inner, "link", None)

    async def run(self, steps, *, deadline):
        m = self.meter
        m.in_flight += 1
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            return await self.inner.run(steps, deadline=deadline)
        finally:
            elapsed = loop.time() - t0
            m.in_flight -= 1
            m.ticks += 1
            m.worst = max(m.worst, elapsed / deadline)
            if elapsed > deadline + GRACE_S:
                m.overruns.append((self.host, round(elapsed, 2), deadline))

    def stream(self, step, *, sample_timeout, lifetime):
        return self.inner.stream(step, sample_timeout=sample_timeout, lifetime=lifetime)

    async def close(self):
        await self.inner.close()


@dataclass
class Meter:
    ticks: int = 0
    in_flight: int = 0
    worst: float = 0.0
    overruns: list = field(default_factory=list)


class FaultyBox:
    """A demo box with a switchable fault (set by the soak's schedule)."""

    def __init__(self, inner, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng
        self.mode: str | None = None

    def link_error(self, now):
        if self.mode == "down":
            return Reason.UNREACHABLE, "soak: the box went away"
        return self.inner.link_error(now)

    def answer(self, step: Step, now: float) -> StepResult:
        gpu = step.key.startswith("gpu")
        if self.mode == "hang" and gpu:
            return StepResult(step.key, b"", b"", None)
        if self.mode == "nvsmi" and gpu:
            return StepResult(step.key, b"Failed to initialize NVML: Driver/library version "
                              b"mismatch\n", b"", 18)
        if self.mode == "garbage":
            return StepResult(step.key, self.rng.randbytes(self.rng.randint(0, 3000)),
                              self.rng.randbytes(self.rng.randint(0, 100)),
                              self.rng.choice([0, 1, 2, 124, 127, None]))
        return self.inner.answer(step, now)


# ----------------------------------------------------------------------------- the soak


@dataclass
class SshHost:
    name: str
    server: object
    kit: Kit
    log: object  # Path


async def _ssh_hosts(make_box, tmp_path, n: int) -> list[SshHost]:
    hosts = []
    for i in range(n):
        server = await make_box(f"soak{i}")
        kit = Kit(tmp_path / f"kit{i}")
        server.extra_env["PATH"] = f"{kit.bin}:{BIN}:{os.environ['PATH']}"
        log = tmp_path / f"soak{i}.log"
        log.write_text("step 0 loss 2.0\n")
        hosts.append(SshHost(f"soak{i}", server, kit, log))
    return hosts


async def quiesce(fleet: Fleet, meter: Meter, ssh: dict, needles: list[str]) -> dict:
    """Pause every probe loop, let the rounds in flight end, count, resume."""
    for w in fleet.watchers.values():
        w.paused = True
    end = time.monotonic() + 30
    while meter.in_flight and time.monotonic() < end:
        await asyncio.sleep(0.02)
    channels_live = sum(t.inner._pool.sessions for t in ssh.values())
    for t in ssh.values():  # idle sessions are live state, not leaks: close them to compare
        await t.inner._pool.aclose()
    # The in-process boxes live in this process: their session shells (and a step still inside
    # its remote bound) hold pipes and tasks here until they end. Let them end.
    for needle in needles:
        await wait_until_gone(needle, within=15)
    await asyncio.sleep(0.3)
    gc.collect()
    tasks = []
    for _ in range(5):  # the loops' wait_for() makes short-lived tasks: take the median
        await asyncio.sleep(0.01)
        tasks.append(len(asyncio.all_tasks()))
    tasks.sort()
    snap = {"rss_mb": round(rss_mb(), 1), "fds": open_fds(), "tasks": tasks[len(tasks) // 2],
            "channels": channels_live, "ticks": meter.ticks, "objects": len(gc.get_objects())}
    for w in fleet.watchers.values():
        w.paused = False
    return snap


async def run_soak(ticks: int, make_box, tmp_path, *, ssh_hosts: int = 2,
                   kinds: tuple[str, ...] = ()) -> dict:
    from gpudash.demo.box import SimBox
    from gpudash.demo.scenarios import build

    rng = random.Random(1234)
    meter = Meter()
    immediate = Thresholds(hysteresis_results=1, hysteresis_s=0.0)
    specs, transports, boxes = [], {}, {}
    now = time.time()
    for sc in build(7):
        box = FaultyBox(SimBox(sc, start=now, speed=20.0), rng)
        boxes[sc.name] = box
        spec = fast_spec(sc.name, transport="replay", log=sc.log_path, tmux_session=sc.tmux_session,
                         pgrep="train", mounts=tuple(m[1] for m in sc.mounts),
                         checkpoint_dir=sc.checkpoint_dir, thresholds=immediate)
        specs.append(spec.__class__(**{**spec.__dict__, "cadence": REPLAY_CADENCE}))
        transports[sc.name] = Counting(ReplayTransport(sc.name, box, latency=0.0), meter)
    hosts = await _ssh_hosts(make_box, tmp_path, ssh_hosts)
    ssh = {}
    for h in hosts:
        spec = fast_spec(h.name, log=str(h.log), thresholds=immediate)
        specs.append(spec.__class__(**{**spec.__dict__, "cadence": SSH_CADENCE}))
        from gpudash.transport.ssh import SshTransport

        ssh[h.name] = Counting(SshTransport(h.name, backoff_initial=0.1, backoff_max=0.5), meter)
        transports[h.name] = ssh[h.name]
    fleet = Fleet(specs, transports=transports)
    needles = [h.server.needle for h in hosts]
    faults: list[str] = []
    run_task = asyncio.create_task(fleet.run())

    async def until_ticks(n: int) -> None:
        while meter.ticks < n:
            assert not run_task.done(), f"the fleet stopped: {run_task.exception()!r}"
            await asyncio.sleep(0.01)

    warm = max(100, ticks // 5)
    every = max(25, ticks // 40)
    cleared_at = int(ticks * 0.85)  # no new fault after this: the end state must be healthy
    try:
        await until_ticks(warm)
        start = await quiesce(fleet, meter, ssh, needles)
        next_fault, i = meter.ticks + every, 0
        active: list[tuple[int, callable]] = []  # (tick to undo at, undo)
        while meter.ticks < start["ticks"] + ticks:
            await until_ticks(min(next_fault, start["ticks"] + ticks))
            for due, undo in [a for a in active if a[0] <= meter.ticks]:
                undo()
                active.remove((due, undo))
            if meter.ticks >= next_fault and meter.ticks < start["ticks"] + cleared_at:
                name, undo, dur = inject(i, rng, boxes, hosts, kinds or FAULT_KINDS)
                faults.append(name)
                if undo is not None:
                    active.append((meter.ticks + dur, undo))
                i += 1
                next_fault += every
            elif meter.ticks >= next_fault:
                next_fault += every
        for _, undo in active:
            undo()
        # a few clean rounds after the last fault, then the end state
        await until_ticks(meter.ticks + 60)
        await asyncio.sleep(1.0)
        end = await quiesce(fleet, meter, ssh, needles)
        views = {n: fleet.view(n) for n in fleet.host_names()}
    finally:
        run_task.cancel()
        await asyncio.gather(run_task, return_exceptions=True)
        await fleet.close()
    after = {
        "channels": sum(t.inner._pool.sessions for t in ssh.values()),
        "connections": sum(len(h.server.connections) for h in hosts),
        "box_processes": 0,
    }
    left_behind = []
    for h in hosts:
        h.kit.gpu(None)
        for pid in await wait_until_gone(h.server.needle, within=25):
            left_behind.append(_describe(pid))
    after["box_processes"] = len(left_behind)
    after_detail = left_behind
    return {"start": start, "end": end, "after_close": after, "ticks": meter.ticks - start["ticks"],
            "overruns": meter.overruns, "worst_deadline_use": round(meter.worst, 3),
            "faults": faults, "views": views, "left_behind": after_detail, "ssh_hosts": [h.name for h in hosts],
            "hosts": len(specs)}


FAULT_KINDS = ("replay_down", "ssh_drop", "replay_hang", "ssh_log_rotate", "replay_nvsmi",
               "ssh_gpu_hang", "replay_garbage", "ssh_log_truncate", "ssh_nvsmi_error",
               "ssh_log_delete")
#: the short soak leaves out the SSH hang: its remote bound (9 s) would be most of the run
#: (test_faults.py hangs nvidia-smi on its own)
SHORT_KINDS = tuple(k for k in FAULT_KINDS if k != "ssh_gpu_hang")


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:300]
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return f"{pid} [{state}] {cmd}"
    except OSError:
        return f"{pid} (gone)"


def inject(i: int, rng: random.Random, boxes: dict, hosts: list[SshHost], kinds):
    """The i-th fault of the schedule: (name, undo or None, duration in ticks)."""
    kind = kinds[i % len(kinds)]
    if kind.startswith("replay_"):
        box = boxes[rng.choice(sorted(boxes))]
        box.mode = kind.split("_", 1)[1]

        def undo(b=box):
            b.mode = None
        return kind, undo, 40
    h = hosts[i % len(hosts)]
    if kind == "ssh_drop":
        h.server.drop_connections()
        return kind, None, 0
    if kind == "ssh_gpu_hang":
        h.kit.gpu("hang")
        return kind, (lambda k=h.kit: k.gpu(None)), 30
    if kind == "ssh_nvsmi_error":
        h.kit.gpu(rng.choice(["nvml", "lost", "nodev", "noload"]))
        return kind, (lambda k=h.kit: k.gpu(None)), 30
    if kind == "ssh_log_rotate":
        h.log.rename(h.log.with_suffix(".log.1"))
        h.log.write_text("rotated: step 1 loss 1.9\n")
    elif kind == "ssh_log_truncate":
        h.log.write_text("truncated: step 2 loss 1.8\n")
    elif kind == "ssh_log_delete":
        h.log.unlink()
        return kind, (lambda p=h.log: p.write_text("recreated: step 3 loss 1.7\n")), 20
    return kind, None, 0


# ----------------------------------------------------------------------------- verdicts


def check_and_record(result: dict, figures, label: str, *, rss_tolerance: float) -> None:
    s, e, after = result["start"], result["end"], result["after_close"]
    figures.soak(**{label: {
        "ticks": result["ticks"], "hosts": result["hosts"], "faults_injected": len(result["faults"]),
        "fault_kinds": sorted(set(result["faults"])), "deadline_overruns": len(result["overruns"]),
        "worst_deadline_use": result["worst_deadline_use"], "start": s, "end": e,
        "after_close": after, "rss_tolerance_mb": rss_tolerance,
    }})
    for kind in ("fds", "tasks"):
        figures.leak(kind, max(0, e[kind] - s[kind] - (FD_TOLERANCE if kind == "fds" else TASK_TOLERANCE)))
    figures.leak("channels", after["channels"] + after["connections"])
    figures.leak("processes", after["box_processes"])
    for over in result["overruns"]:
        figures.deadline(f"soak round on {over[0]}", over[1], over[2])
    assert result["overruns"] == [], result["overruns"]
    assert e["rss_mb"] - s["rss_mb"] < rss_tolerance, (s, e)
    assert e["fds"] - s["fds"] <= FD_TOLERANCE, (s, e)
    assert e["tasks"] - s["tasks"] <= TASK_TOLERANCE, (s, e)
    assert e["channels"] <= 3 * len(result["ssh_hosts"]), "more channels than the pools allow"
    assert after == {"channels": 0, "connections": 0, "box_processes": 0}, (after,
                                                                             result["left_behind"])
    for name in result["ssh_hosts"]:  # after the faults stopped, the SSH boxes are fine again
        v = result["views"][name]
        assert v.snapshot.link.ok and v.snapshot.gpus and v.snapshot.gpu_error is None, (
            name, v.snapshot.link, v.snapshot.gpu_error)


async def test_short_soak(make_box, tmp_path, figures):
    result = await run_soak(SHORT_TICKS, make_box, tmp_path, kinds=SHORT_KINDS)
    assert result["ticks"] >= SHORT_TICKS
    assert set(result["faults"]) == set(SHORT_KINDS), result["faults"]
    check_and_record(result, figures, "short", rss_tolerance=RSS_TOLERANCE_MB)


@pytest.mark.slow
async def test_full_soak(make_box, tmp_path, figures):
    result = await run_soak(FULL_TICKS, make_box, tmp_path, ssh_hosts=3)
    assert result["ticks"] >= FULL_TICKS
    assert set(result["faults"]) == set(FAULT_KINDS), result["faults"]
    check_and_record(result, figures, "full", rss_tolerance=RSS_TOLERANCE_MB)
