"""`gpudash wait`: 0 completed, 2 failed (with the triage), 124 timed out; an unreachable host is
not a failure. The waiter's rounds are real probe rounds (HostWatcher over the LocalTransport or
SSH); the clock and the sleep between rounds are injected, so the run's events happen "between
rounds" deterministically and no test waits for real minutes."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from gpudash.commands.wait import COMPLETED, FAILED, TIMED_OUT, WaitState, judge, print_triage, \
    wait_for
from gpudash.model import HostSnapshot, LinkStatus, ProcessInfo, RayJob, Reason, SlurmJob
from gpudash.transport.local import LocalTransport
from gpudash.triage.result import Evidence, TriageResult
from gpudash.watch.spec import WatchSpec
from gpudash.watch.view import HostView
from tests.services.ssh_server import BIN

REPO = Path(__file__).resolve().parents[2]


class FakeTime:
    """A clock that only moves when the waiter sleeps; ``between`` runs at each sleep (the run
    doing something between two probe rounds)."""

    def __init__(self, between=None) -> None:
        self.now = 1000.0
        self.sleeps = 0
        self.between = between

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.between is not None:
            await self.between(self.sleeps)


@pytest.fixture
async def local_box():
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               GD_FAKE_GPU="idle")
    t = LocalTransport(env=env)
    yield t
    await t.close()


@pytest.fixture
async def run_process():
    """A stand-in training process, found by a unique pgrep pattern."""
    tag = f"gd-wait-run-{secrets.token_hex(4)}"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c",
                                                "import time; time.sleep(120)", tag)
    yield tag, proc
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


def spec(tag: str, marker: Path) -> WatchSpec:
    return WatchSpec(name="local", transport="local", pgrep=tag, markers=(str(marker),))


async def test_exits_0_when_the_completion_marker_appears(tmp_path, local_box, run_process):
    tag, proc = run_process
    marker = tmp_path / "TRAIN_DONE"

    async def finish(n: int) -> None:
        if n == 2:
            marker.write_text("")

    t = FakeTime(finish)
    code, view, verdict = await wait_for(spec(tag, marker), local_box, timeout=3600,
                                         interval=30, clock=t.clock, sleep=t.sleep)
    assert code == COMPLETED and t.sleeps == 2
    assert str(marker) in verdict.reason


async def test_exits_2_when_the_process_vanishes_without_completing(tmp_path, local_box,
                                                                    run_process):
    tag, proc = run_process

    async def crash(n: int) -> None:
        proc.kill()
        await proc.wait()

    t = FakeTime(crash)
    code, view, verdict = await wait_for(spec(tag, tmp_path / "NEVER"), local_box, timeout=3600,
                                         interval=30, clock=t.clock, sleep=t.sleep)
    assert code == FAILED and "neither a completion line nor a marker" in verdict.reason
    out = io.StringIO()
    print_triage(view, verdict.reason, out)
    assert "FAILED" in out.getvalue() and "triage: none" in out.getvalue()


async def test_exits_124_at_the_timeout_while_the_run_goes_on(tmp_path, local_box, run_process):
    tag, _ = run_process
    t = FakeTime()
    code, view, verdict = await wait_for(spec(tag, tmp_path / "NEVER"), local_box, timeout=100,
                                         interval=30, clock=t.clock, sleep=t.sleep)
    assert code == TIMED_OUT and t.sleeps == 4  # rounds at 0, 30, 60, 90; the last sleep is 10
    assert view.snapshot.processes  # it was still running


async def test_an_unreachable_host_is_not_a_failure(ssh_home, free_closed_port):
    from gpudash.transport.ssh import SshTransport

    target = f"nobody@127.0.0.1:{free_closed_port}"
    s = WatchSpec(name=target, target=target, transport="ssh", pgrep="train.py")
    transport = SshTransport(target, connect_timeout=2)
    t = FakeTime()
    try:
        code, view, verdict = await wait_for(s, transport, timeout=120, interval=30,
                                             clock=t.clock, sleep=t.sleep)
    finally:
        await transport.close()
    assert code == TIMED_OUT
    assert "cannot reach" in verdict.reason and "not a dead job" in verdict.reason


# ----------------------------------------------------------------------------- the verdict


def view(*, link=True, slurm=(), ray=(), processes=(), triage=None, jobs_at=5.0) -> HostView:
    snap = HostSnapshot(name="box", link=LinkStatus(ok=link, reason=None if link else
                                                    Reason.UNREACHABLE),
                        slurm=tuple(slurm), ray=tuple(ray), processes=tuple(processes),
                        jobs_at=jobs_at)
    return HostView(snapshot=snap, triage=triage)


OOM = TriageResult(cls="cuda_oom", category="size", summary="CUDA out of memory",
                   explanation="…", remediation="smaller batch with gradient accumulation",
                   evidence=(Evidence(41, "torch.OutOfMemoryError: CUDA out of memory."),))
DONE = TriageResult(cls="completed", category="success", summary="Training completed",
                    explanation="", remediation="")


@pytest.mark.parametrize("v,code", [
    (view(slurm=[SlurmJob(job_id="7", state="COMPLETED", source="sacct")]), COMPLETED),
    (view(slurm=[SlurmJob(job_id="7", state="TIMEOUT", source="sacct")]), FAILED),
    (view(slurm=[SlurmJob(job_id="7", state="CANCELLED by 1000", source="sacct")]), FAILED),
    (view(slurm=[SlurmJob(job_id="7", state="RUNNING")]), None),
    (view(ray=[RayJob(job_id="r", status="SUCCEEDED")]), COMPLETED),
    (view(ray=[RayJob(job_id="r", status="FAILED")]), FAILED),
    (view(triage=DONE), COMPLETED),
    (view(triage=OOM), FAILED),
    (view(triage=OOM, processes=[ProcessInfo(pid=9, command="python train.py")]), None),
    (view(triage=OOM, link=False), None),
])
def test_judge(v, code):
    assert judge(v, WaitState()).code == code


def test_the_failure_prints_the_triage():
    out = io.StringIO()
    print_triage(view(triage=OOM), "CUDA out of memory", out)
    text = out.getvalue()
    assert "triage: cuda_oom (size): CUDA out of memory" in text
    assert "line 41: torch.OutOfMemoryError" in text
    assert "remediation: smaller batch" in text


# ----------------------------------------------------------------------------- the CLI


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               GD_FAKE_GPU="idle", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "gpudash", "wait", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_exit_codes(tmp_path, run_process):
    tag, _ = run_process
    marker = tmp_path / "DONE"
    config = tmp_path / "gpudash.toml"
    config.write_text(f'[[host]]\nname = "here"\ntransport = "local"\npgrep = "{tag}"\n'
                      f'markers = ["{marker}"]\n')
    late = cli(tmp_path, "here", "--config", str(config), "--timeout", "2s", "--interval", "1s")
    assert late.returncode == 124, late.stdout + late.stderr
    assert "timed out after 2s" in late.stdout
    marker.write_text("")
    done = cli(tmp_path, "here", "--config", str(config), "--timeout", "1m", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "here: completed" in done.stdout and str(marker) in done.stdout
    bad = cli(tmp_path, "here", "--config", str(config), "--timeout", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


LOGS = REPO / "tests" / "fixtures" / "logs"


@pytest.mark.parametrize("log,code,needle", [
    ("fail-cuda-oom.log", FAILED, "triage: cuda_oom"),
    ("train-healthy.log", COMPLETED, ""),
])
async def test_the_runs_own_log_decides_through_the_triage(tmp_path, local_box, log, code, needle):
    run_log = tmp_path / "train.log"
    run_log.write_bytes((LOGS / log).read_bytes())
    s = WatchSpec(name="local", transport="local", pgrep=f"gd-gone-{secrets.token_hex(4)}",
                  log=str(run_log))
    t = FakeTime()
    got, view, verdict = await wait_for(s, local_box, timeout=600, interval=30, clock=t.clock,
                                        sleep=t.sleep)
    assert got == code, verdict
    if code == FAILED:
        out = io.StringIO()
        print_triage(view, verdict.reason, out)
        assert needle in out.getvalue() and "remediation:" in out.getvalue()
