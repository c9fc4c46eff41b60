"""The Slurm probes against a REAL single-node Slurm (no slurmdbd), scripts run by real /bin/sh.

Kept short (a few seconds): one job that runs and is cancelled carries most assertions.
"""

from __future__ import annotations

import dataclasses

import pytest

from gpudash.model import ProbeError, Reason
from gpudash.probes.discovery import Discovery, best_log, discover_step, parse_discovery
from gpudash.probes.slurm import (
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    sacct_step,
    scontrol_step,
    slurm_job_state,
    squeue_step,
)
from tests.services.slurm import slurm, slurm_up  # noqa: F401 - fixtures
from tests.services.tmux import run_step

pytestmark = pytest.mark.slurm


def squeue(job_id):
    r = run_step(squeue_step(job_id=job_id))
    return parse_squeue(r.stdout, r.stderr, r.exit_code)


def scontrol(job_id):
    r = run_step(scontrol_step(job_id))
    return parse_scontrol(r.stdout, r.stderr, r.exit_code)


def sacct(job_id):
    r = run_step(sacct_step(job_id))
    return parse_sacct(r.stdout, r.stderr, r.exit_code)


def test_running_job_then_cancelled(slurm, tmp_path):
    out = tmp_path / "job-%j.out"
    job = slurm.sbatch(
        "-J", "tr|ain job", "-o", str(out), "-D", str(tmp_path), "-t", "30",
        "--wrap", "echo step 1 loss 0.9; echo step 2 loss 0.8; sleep 120",
    )
    log = tmp_path / f"job-{job}.out"

    def is_running():
        jobs = squeue(job)
        assert isinstance(jobs, tuple), jobs
        return next((j for j in jobs if j.state == "RUNNING"), None)

    running = slurm.wait_for(is_running, "the job to be RUNNING")
    assert running.job_id == job and running.name == "tr|ain job" and running.user == "root"
    assert running.nodes == "1" and running.time_limit == "30:00" and running.source == "squeue"

    sc = scontrol(job)
    assert isinstance(sc, tuple) and len(sc) == 1
    assert sc[0].job_id == job and sc[0].state == "RUNNING" and sc[0].name == "tr|ain job"
    assert sc[0].stdout_path == str(log)  # where the run's log is: the whole point
    slurm.wait_for(lambda: log.exists() and "step 2 loss 0.8" in log.read_text(), "the job's output")

    # No slurmdbd here: sacct says so, and the caller falls back to scontrol.
    sa = sacct(job)
    assert sa == ProbeError(Reason.NOT_FOUND, "no slurmdbd", 1)
    combined = slurm_job_state(squeue(job), sa, sc)
    assert combined.state == "RUNNING" and combined.stdout_path == str(log)

    slurm.scancel(job)
    cancelled = slurm.wait_for(
        lambda: (lambda p: p[0] if isinstance(p, tuple) and p and p[0].state == "CANCELLED" else None)(scontrol(job)),
        "scontrol to report CANCELLED",
    )
    assert cancelled.stdout_path == str(log)
    gone = slurm.wait_for(lambda: (lambda p: p if p == () else None)(squeue(job)) is not None, "the queue to drop it")
    assert gone
    final = slurm_job_state(squeue(job), sacct(job), scontrol(job))
    assert final.state == "CANCELLED" and final.source == "scontrol"


def test_unknown_job_is_aged_out_not_failed(slurm_up):
    sc = scontrol("987654")
    assert sc == (dataclasses.replace(sc[0], job_id="987654", state="", source="aged_out"),)
    assert squeue("987654") == ()  # `Invalid job id specified` from squeue: not in the queue
    state = slurm_job_state(squeue("987654"), sacct("987654"), sc)
    assert state.source == "aged_out" and state.state == "" and state.job_id == "987654"


def test_hostile_job_ids_stay_literal(slurm_up, tmp_path):
    # squeue reads a leading number leniently: `squeue -j "5;touch pwned"` lists job 5, rc 0,
    # while job 5 is known (a fresh CI machine's first test job is job 1, which made this flaky).
    # What matters is that the rest never reaches a shell; an id with no leading number must be
    # rejected outright.
    for bad in ("1;touch pwned", "$(touch pwned)", "1' ; touch pwned; '", "x;touch pwned",
                "x' ; touch pwned; '"):
        for step in (squeue_step(job_id=bad), scontrol_step(bad), sacct_step(bad)):
            r = run_step(step, cwd=str(tmp_path))
            if not bad[0].isdigit():
                assert r.exit_code != 0  # Slurm rejected the literal id
    assert not (tmp_path / "pwned").exists()
    r = run_step(squeue_step(user="nosuchuser$(touch pwned)"), cwd=str(tmp_path))
    err = parse_squeue(r.stdout, r.stderr, r.exit_code)
    assert isinstance(err, ProbeError) and "nosuchuser$(touch pwned)" in err.message
    assert not (tmp_path / "pwned").exists()


def test_discovery_lists_the_users_jobs_with_stdout(slurm, tmp_path):
    job = slurm.sbatch("-J", "disc", "-o", str(tmp_path / "d-%j.out"), "--wrap", "sleep 120")
    want = str(tmp_path / f"d-{job}.out")

    def found():
        r = run_step(discover_step(user="root"))
        d = parse_discovery(r.stdout, r.stderr, r.exit_code)
        assert isinstance(d, Discovery), d
        mine = [j for j in d.slurm_jobs if j.job_id == job]
        return (d, mine[0]) if mine and mine[0].stdout_path else None

    d, j = slurm.wait_for(found, "discovery to list the job")
    assert j.name == "disc" and j.state in ("PENDING", "RUNNING") and j.stdout_path == want
    assert any(c.source == "slurm" and c.slurm_job_id == job and c.log_path == want for c in d.candidates)
    # With no process writing to a file, Slurm's StdOut is the log.
    only = Discovery(candidates=tuple(c for c in d.candidates if c.slurm_job_id == job), slurm_jobs=(j,))
    assert best_log(only) == (want, f"slurm:{job}")
