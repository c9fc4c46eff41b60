"""Jobs across Slurm, Ray, tmux and bare processes: categories, per-job checks, the aggregate line."""

from pathlib import Path

import pytest

from gpudash.health import RunContext, evaluate, job_category, summarize_jobs
from gpudash.model import HostSnapshot, ProcessInfo, RayJob, Reason, SlurmJob, State, TmuxSession

FIX = Path(__file__).resolve().parent.parent / "fixtures"
NOW = 1_800_000_000.0


def squeue_jobs() -> tuple[SlurmJob, ...]:
    """The real `squeue -h -o '%i|%j|%u|%T|%M|%l|%D|%R'` capture: one PENDING, one RUNNING."""
    out = []
    for line in (FIX / "slurm" / "squeue-format.txt").read_text().splitlines():
        i, name, user, state, elapsed, limit, nodes, reason = line.split("|")
        out.append(SlurmJob(i, name, user, state, elapsed, limit, nodes, reason))
    return tuple(out)


def tmux_panes() -> tuple[TmuxSession, ...]:
    out = []
    for line in (FIX / "local" / "tmux-list-panes-F.txt").read_text().splitlines():
        name, pid, cmd, dead, status = line.split("|")
        out.append(TmuxSession(name, pane_pid=int(pid), pane_command=cmd, pane_dead=dead == "1",
                               pane_dead_status=int(status) if status else None))
    return tuple(out)


def test_summary_line_from_states_as_printed():
    assert summarize_jobs(["COMPLETED", "COMPLETED", "RUNNING", "FAILED"]) == \
        "2 of 4 completed, 1 running, 1 failed"
    assert summarize_jobs([]) == "no jobs"


def test_summary_from_a_snapshot_with_the_real_squeue_and_tmux_captures():
    s = HostSnapshot("box", slurm=squeue_jobs(), ray=(RayJob("raysubmit_1", "SUCCEEDED"),),
                     tmux=tmux_panes())
    # squeue: PENDING + RUNNING; Ray: SUCCEEDED; tmux: two panes running `sleep`
    assert summarize_jobs(s) == "1 of 5 completed, 3 running, 1 pending"


def test_bare_processes_count_only_when_nothing_else_describes_the_run():
    proc = (ProcessInfo(1, "python train.py"),)
    assert summarize_jobs(HostSnapshot("box", processes=proc)) == "0 of 1 completed, 1 running"
    s = HostSnapshot("box", processes=proc, tmux=(TmuxSession("t", pane_command="python"),))
    assert summarize_jobs(s) == "0 of 1 completed, 1 running"
    idle = HostSnapshot("box", tmux=(TmuxSession("shell", pane_command="bash"),))
    assert summarize_jobs(idle) == "no jobs"


@pytest.mark.parametrize("state,source,category", [
    ("RUNNING", "slurm", "running"), ("COMPLETING", "slurm", "running"),
    ("PENDING", "slurm", "pending"), ("COMPLETED", "slurm", "completed"),
    ("TIMEOUT", "slurm", "failed"), ("NODE_FAIL", "slurm", "failed"),
    ("OUT_OF_MEMORY", "slurm", "failed"), ("CANCELLED by 1000", "slurm", "cancelled"),
    ("CANCELLED+", "slurm", "cancelled"), ("PD", "slurm", "pending"),
    ("SUCCEEDED", "ray", "completed"), ("STOPPED", "ray", "cancelled"),
    ("FAILED", "ray", "failed"), ("STOPPED", "any", "cancelled"), ("WEIRD", "slurm", "unknown"),
])
def test_categories(state, source, category):
    assert job_category(state, source) == category


def test_mixed_summary_with_tuples_and_cancelled():
    items = [("slurm", "CANCELLED by 0"), ("ray", "STOPPED"), ("ray", "RUNNING"), "PENDING"]
    assert summarize_jobs(items) == "0 of 4 completed, 1 running, 1 pending, 2 cancelled"


def _checks(**kw):
    s = HostSnapshot("box", taken_at=NOW, jobs_at=NOW, **kw)
    return {c.key: c for c in evaluate(s, now=NOW, context=RunContext())}


def test_job_checks_by_state():
    jobs = (SlurmJob("7", state="FAILED"), SlurmJob("8", state="TIMEOUT"),
            SlurmJob("9", state="PREEMPTED"), SlurmJob("10", state="CANCELLED by 0"),
            SlurmJob("11", state="COMPLETED"), SlurmJob("12", source="aged_out"))
    c = _checks(slurm=jobs, ray=(RayJob("raysubmit_x", "FAILED", "exit 1"),))
    assert c["job:7"].state is State.CRIT and c["job:8"].state is State.CRIT
    assert c["job:9"].state is State.WARN
    assert c["job:10"].state is State.OK and "not a failure" in c["job:10"].summary
    assert c["job:11"].state is State.OK
    assert c["job:12"].state is State.UNKNOWN and c["job:12"].reason is Reason.NOT_FOUND
    assert "not FAILED" in c["job:12"].summary
    assert c["job:raysubmit_x"].state is State.CRIT


def test_tmux_pane_exit_status():
    panes = (TmuxSession("a", pane_dead=True, pane_dead_status=137),
             TmuxSession("b", pane_dead=True, pane_dead_status=0))
    c = _checks(tmux=panes)
    assert c["job:tmux:a"].state is State.CRIT and "OOM" in c["job:tmux:a"].summary
    assert c["job:tmux:b"].state is State.OK


@pytest.mark.parametrize("text,seconds", [
    ("0:03", 3), ("12:00:00", 43200), ("1-02:03:04", 93784), ("UNLIMITED", None), ("", None),
    ("INVALID", None), ("1:2:3:4", None),
])
def test_slurm_elapsed(text, seconds):
    from gpudash.health.jobs_summary import slurm_elapsed_s

    assert slurm_elapsed_s(text) == seconds


def test_a_slurm_run_starts_when_squeue_says_not_when_first_seen():
    ctx = RunContext(expected_duration_s=4 * 3600)
    job = SlurmJob("4", "train-llm", state="RUNNING", elapsed="3:00:00")
    s = HostSnapshot("box", taken_at=NOW, jobs_at=NOW, slurm=(job,))
    evaluate(s, now=NOW, context=ctx)
    assert ctx.run_started_at == NOW - 3 * 3600
    done = SlurmJob("4", "train-llm", state="COMPLETED", elapsed="4:00:00")
    later = NOW + 3600
    ctx.completion_seen = True
    s = HostSnapshot("box", taken_at=later, jobs_at=later, slurm=(done,))
    c = {c.key: c for c in evaluate(s, now=later, context=ctx)}["run.ended"]
    assert c.state is State.OK, c.summary  # 4 h of an expected 4 h: not a fast finish


def test_without_any_start_time_a_short_watch_is_no_probable_failure():
    ctx = RunContext(expected_duration_s=4 * 3600)
    s = HostSnapshot("box", taken_at=NOW, jobs_at=NOW, tmux=(TmuxSession("t", pane_command="python"),))
    evaluate(s, now=NOW, context=ctx)
    assert ctx.seen_alive and ctx.run_started_at is None
    ctx.completion_seen = True
    s = HostSnapshot("box", taken_at=NOW + 600, jobs_at=NOW + 600)
    c = {c.key: c for c in evaluate(s, now=NOW + 600, context=ctx)}["run.ended"]
    assert c.state is State.OK
