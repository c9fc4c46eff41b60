"""Safe restart: the pure gates (flapping, the same class after a retry, auto-resume limits) on an
injected clock, and the probes and detached launches for real on this machine (LocalTransport),
with the 60 s / 2 min waits injected."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from pathlib import Path

import pytest

from gpudash.restart import (
    Restarter,
    RestartEntry,
    RestartLedger,
    RestartPolicy,
    decide,
    launch,
    launch_script,
    preflight,
)
from gpudash.transport.local import LocalTransport

NOW = 1_000_000.0


def ledger(*entries) -> RestartLedger:
    return RestartLedger([RestartEntry(at, cls, auto, "nohup") for at, cls, auto in entries])


P = RestartPolicy(resume_command="python train.py --resume", pgrep="train.py")


# ----------------------------------------------------------------------------- decide (pure)


def test_a_confirmed_manual_restart_is_allowed_and_counted():
    d = decide(P, RestartLedger(), "cuda_error", NOW, automatic=False)
    assert d.allowed and "restart #1" in d.reason


def test_no_resume_command_or_a_completed_run_refuses():
    assert not decide(RestartPolicy(resume_command=None), RestartLedger(), "network", NOW,
                      automatic=False).allowed
    assert "completed" in decide(P, RestartLedger(), "completed", NOW, automatic=False).reason


def test_flapping_refuses_and_old_restarts_do_not_count():
    recent = ledger((NOW - 600, "network", False), (NOW - 300, "nccl", False),
                    (NOW - 60, "preempted", False))
    d = decide(P, recent, "preempted", NOW, automatic=False)
    assert not d.allowed and d.reason.startswith("flapping: 3 restarts in the last 30 min")
    old = ledger((NOW - 7200, "network", False), (NOW - 5000, "nccl", False),
                 (NOW - 60, "preempted", False))
    assert decide(P, old, "preempted", NOW, automatic=False).allowed


def test_the_same_class_after_a_retry_refuses():
    d = decide(P, ledger((NOW - 900, "nan_loss", False)), "nan_loss", NOW, automatic=False)
    assert not d.allowed and "same failure (nan_loss) came back" in d.reason
    assert decide(P, ledger((NOW - 900, "network", False)), "nan_loss", NOW,
                  automatic=False).allowed
    # a spot box preempted again is the market, not the run: the caps bound it instead
    assert decide(P, ledger((NOW - 900, "preempted", False)), "preempted", NOW,
                  automatic=False).allowed


@pytest.mark.parametrize("cls,allowed,needle", [
    ("preempted", True, ""), ("time_limit", True, ""), ("network", True, ""),
    ("cancelled", False, "never resumed automatically"),
    ("cuda_oom", False, "not a probabilistic failure"),
    (None, False, "not a probabilistic failure"),
])
def test_auto_resume_only_for_probabilistic_classes(cls, allowed, needle):
    on = RestartPolicy(resume_command="x", pgrep="x", auto_resume=True, auto_resume_max=2)
    d = decide(on, RestartLedger(), cls, NOW, automatic=True)
    assert d.allowed is allowed and needle in d.reason


def test_auto_resume_needs_opt_in_and_stops_at_its_maximum():
    off = RestartPolicy(resume_command="x", pgrep="x")
    assert "auto-resume is off" in decide(off, RestartLedger(), "preempted", NOW,
                                          automatic=True).reason
    on = RestartPolicy(resume_command="x", pgrep="x", auto_resume=True, auto_resume_max=2)
    two = ledger((NOW - 9000, "preempted", True), (NOW - 8000, "network", True))
    d = decide(on, two, "preempted", NOW, automatic=True)
    assert not d.allowed and "maximum reached (2" in d.reason
    assert decide(on, two, "preempted", NOW, automatic=False).allowed  # by hand, still fine


def test_the_ledger_round_trips_through_json():
    lg = ledger((NOW, "network", True))
    again = RestartLedger.from_json(lg.to_json() + [{"bad": 1}])
    assert again.entries == lg.entries and again.automatic_count() == 1


# ----------------------------------------------------------------------------- on a real box


@pytest.fixture
async def box(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), TMUX_TMPDIR=str(tmp_path))
    t = LocalTransport(env=env)
    yield t
    await t.close()


@pytest.fixture
def launched():
    """Process groups started by a test, killed afterwards (they were detached on purpose)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


async def until(predicate, within: float = 10.0) -> None:
    """An injected "wait": lets time pass until the job did what the check looks at."""
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_preflight_refuses_while_the_job_runs_and_when_the_marker_exists(tmp_path, box):
    tag = f"gd-restart-run-{secrets.token_hex(4)}"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c",
                                                "import time; time.sleep(60)", tag)
    try:
        pre = await preflight(box, RestartPolicy(resume_command="x", pgrep=tag))
        assert not pre.ok and "still runs" in pre.reason and "double-launch" in pre.reason
    finally:
        proc.kill()
        await proc.wait()
    done = tmp_path / "TRAIN_DONE"
    done.write_text("")
    pre = await preflight(box, RestartPolicy(resume_command="x", pgrep=tag,
                                             markers=(str(done),)))
    assert not pre.ok and "marker" in pre.reason
    done.unlink()
    pre = await preflight(box, RestartPolicy(resume_command="x", pgrep=tag,
                                             markers=(str(done),)))
    assert pre.ok and "no completion marker" in pre.evidence
    assert not (await preflight(box, RestartPolicy(resume_command="x"))).ok


async def test_a_detached_relaunch_is_checked_alive_and_its_log_moving(tmp_path, box, launched):
    log = tmp_path / "resume.log"
    log.write_text("old run\n")
    tag = f"gd-restart-none-{secrets.token_hex(4)}"
    policy = RestartPolicy(resume_command="echo resumed from checkpoint-900; sleep 30",
                           pgrep=tag, log_path=str(log), launch_timeout=5)
    relaunched: list[bool] = []
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        await until(lambda: "resumed" in log.read_text())

    r = Restarter(box, policy, clock=lambda: NOW, sleep=wait,
                  on_relaunch=lambda: relaunched.append(True))
    report = await r.restart("preempted", confirmed=True)
    if report.launch and report.launch.pid:
        launched.append(report.launch.pid)
    assert report.status == "healthy", report
    assert waits == [60.0, 60.0]  # checked at ~60 s and again at ~2 min
    assert relaunched == [True] and r.ledger.count == 1
    assert alive(report.launch.pid)
    assert report.launch.log_size == len("old run\n")
    assert log.read_text().startswith("old run\n")  # appended, never clobbered


async def test_an_immediate_failure_is_reported_as_died(tmp_path, box, launched):
    log = tmp_path / "resume.log"
    policy = RestartPolicy(resume_command="echo Traceback; exit 1",
                           pgrep=f"gd-none-{secrets.token_hex(4)}", log_path=str(log))
    started = await launch(box, policy)
    assert started.ok and started.pid
    launched.append(started.pid)

    async def wait(seconds: float) -> None:
        await until(lambda: not alive(started.pid))

    r = Restarter(box, policy, clock=lambda: NOW, sleep=wait)
    report = await r.restart("network", confirmed=True)
    if report.launch and report.launch.pid:
        launched.append(report.launch.pid)
    assert report.status == "died" and "died within 60 s" in report.reason


async def test_a_launch_that_keeps_the_channel_is_reported_not_left_hanging(box):
    policy = RestartPolicy(resume_command="sleep 30", method="sbatch", pgrep="x",
                           launch_timeout=1)
    started = await launch(box, policy)
    assert not started.ok and "did not let go of the channel" in started.reason


async def test_sbatch_reports_the_new_job_id(box):
    policy = RestartPolicy(resume_command="echo Submitted batch job 4242", method="sbatch",
                           slurm_job="4100")
    started = await launch(box, policy)
    assert started.ok and started.job_id == "4242" and started.log_path is None


async def test_a_manual_restart_needs_confirmation(box):
    report = await Restarter(box, P).restart("network")
    assert report.status == "refused" and "confirmation" in report.reason


async def test_configured_values_are_quoted_in_the_launch(tmp_path, box, launched):
    # no "/" in the hostile part, so the name is a possible file name; if it were run it would
    # `cd` to the box's HOME (tmp_path) and create "pwned" there
    policy = RestartPolicy(resume_command="sleep 5", pgrep="x",
                           log_path=f"{tmp_path}/log; cd; touch pwned $(touch pwned) #",
                           method="nohup")
    started = await launch(box, policy)
    assert started.ok
    launched.append(started.pid)
    await until(lambda: Path(policy.log_path).exists())
    assert not list(tmp_path.glob("pwned*"))
    assert Path(policy.log_path).exists()  # the odd name is just a file name


async def test_tmux_relaunch_in_a_detached_session(tmp_path, box):
    from tests.services.require import require_binary

    require_binary("tmux", "the tmux relaunch method")
    log = tmp_path / "t.log"
    policy = RestartPolicy(resume_command="echo in tmux; sleep 30", tmux_session="gd-resume",
                           log_path=str(log))
    started = await launch(box, policy)
    try:
        assert started.ok, started.reason
        assert started.method == "tmux" and started.pid
        await until(lambda: log.exists() and "in tmux" in log.read_text())
        assert "in tmux" in log.read_text() and alive(started.pid)
        again = await launch(box, policy)  # the session exists: no second launch
        assert not again.ok and "already exists" in again.reason
        pwned = tmp_path / "pwned"
        hostile = RestartPolicy(resume_command="sleep 5", tmux_session="s'; cd; touch pwned; '",
                                log_path=str(log))
        assert "touch" in launch_script(hostile)  # the name is in the script, quoted
        odd = await launch(box, hostile)
        assert odd.ok and not pwned.exists()
    finally:
        proc = await asyncio.create_subprocess_exec(
            "tmux", "kill-server", env=dict(os.environ, TMUX_TMPDIR=str(tmp_path)),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()
