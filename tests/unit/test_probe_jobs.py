"""Job probes: processes, tmux, Slurm, Ray, discovery — parsers on real captures, step scripts
run by real /bin/sh with real pgrep/ps, hostile arguments, and never-raise properties."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import ProbeError, ProcessInfo, RayJob, Reason, SlurmJob, TmuxSession
from gpudash.probes import slurm
from gpudash.probes.discovery import (
    Discovery,
    best_log,
    best_tmux_session,
    discover_step,
    is_training_command,
    parse_discovery,
)
from gpudash.probes.processes import (
    lstart_epoch,
    parse_alive,
    parse_processes,
    proc_alive_step,
    processes_step,
    split_blocks,
)
from gpudash.probes.ray import parse_ray, ray_step
from gpudash.probes.slurm import (
    expand_stdout,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    sacct_step,
    scontrol_step,
    slurm_job_state,
    squeue_step,
)
from gpudash.probes.tmux import parse_tmux, parse_tmux_capture, tmux_capture_step, tmux_step
from gpudash.sanitize import is_inert
from tests.conftest import FIXTURES
from tests.services.tmux import run_step

H100 = FIXTURES / "h100"
LOCAL = FIXTURES / "local"
SLURM = FIXTURES / "slurm"


def framed(*blocks: tuple[str, str], nonce: str = "n0nce") -> str:
    """Output shaped as the step scripts print it: a nonce line, then `@@gd:NONCE:HEADER` blocks."""
    out = [f"@@gd:{nonce}"]
    for header, body in blocks:
        out.append(f"@@gd:{nonce}:{header}")
        if body:
            out.append(body.rstrip("\n"))
    return "\n".join(out) + "\n"


# ============================================================================ block framing


def test_blocks_only_trust_the_nonce_of_the_first_line():
    text = "@@gd:abc\n@@gd:abc:ps\nrow1\n@@gd:evil:ps\nrow2\n@@gd:abc:cwd 5\n/x\n"
    assert split_blocks(text) == [(["ps"], "row1\n@@gd:evil:ps\nrow2"), (["cwd", "5"], "/x\n")]
    assert split_blocks("plain\noutput") == [([], "plain\noutput")]


# ============================================================================ processes


def test_pgrep_fixture_row():
    got = parse_processes((H100 / "pgrep.txt").read_bytes())
    assert got == (ProcessInfo(pid=436, command="python3 /tmp/tmp.8UKssQFpTI/fx/../train.py 1e-4 30"),)


def test_ps_row_with_every_field():
    row = "  4242    3725  98.5 5123456   37 Sun Nov 22 19:16:49 2026 python train.py --lr 1e-4 |x"
    (p,) = parse_processes(framed(("ps", row)))
    assert p == ProcessInfo(
        pid=4242, command="python train.py --lr 1e-4 |x", elapsed_s=3725, cpu_pct=98.5,
        rss_kb=5123456, threads=37, start_epoch=1795375009.0,
    )


def test_lstart_is_utc_epoch():
    assert lstart_epoch("Thu Jan  1 00:00:00 1970".split()) == 0.0
    assert lstart_epoch("Sun Nov 22 19:16:49 2026".split()) == 1795375009.0
    assert lstart_epoch("Sun Foo 22 19:16:49 2026".split()) is None


@pytest.mark.parametrize(
    "code, stderr, reason",
    [(2, b"pgrep: regex error: Unmatched ( or \\(\n", Reason.PROBE_ERROR), (127, b"", Reason.NOT_FOUND),
     (124, b"", Reason.TIMEOUT), (None, b"", Reason.TIMEOUT)],
)
def test_process_errors(code, stderr, reason):
    err = parse_processes(b"@@gd:x\n", stderr, code)
    assert isinstance(err, ProbeError) and err.reason is reason and err.exit_code == code
    if stderr:
        assert err.message == "pgrep: regex error: Unmatched ( or \\("


def test_other_gpudash_probes_are_not_processes():
    row = " 77 1 0.0 100 1 Sun Nov 22 19:16:49 2026 /bin/sh -c : gpudash-probe pgrep -f -- train"
    assert parse_processes(framed(("ps", row))) == ()


def _start_epoch_from_proc(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    btime = next(int(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def fake_run(tmp_path):
    """A real process whose command line looks like a run, with stdout to a file."""
    token = f"gd_train_{uuid.uuid4().hex[:12]}"
    log = tmp_path / "run.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(120)", f"{token}.py"],
            stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    try:
        yield proc, token, log
    finally:
        proc.kill()
        proc.wait()


def test_real_pgrep_finds_the_run_and_excludes_its_own_tree(fake_run):
    proc, token, _ = fake_run
    # The probe's `sh -c` and the `timeout` around it carry the pattern in their command lines:
    # only the real process may come back.
    res = run_step(processes_step(token), env={**os.environ, "TZ": "Asia/Kolkata"})
    got = parse_processes(res.stdout, res.stderr, res.exit_code)
    assert [p.pid for p in got] == [proc.pid]
    (p,) = got
    assert token in p.command and p.threads >= 1 and p.rss_kb > 0 and p.elapsed_s >= 0
    # lstart printed under TZ=UTC0 whatever the box's zone: the kernel's own start time agrees.
    assert abs(p.start_epoch - _start_epoch_from_proc(proc.pid)) <= 1.0


def test_real_pgrep_with_only_itself_matching_is_empty():
    token = f"nothing_runs_this_{uuid.uuid4().hex}"
    res = run_step(processes_step(token))
    assert res.exit_code == 0
    # The script itself dropped its shell, the `timeout` above it and its subshells: no ps block
    # at all (the parser's marker filter is a second line of defence, tested on its own).
    assert [h for h, _ in split_blocks(res.stdout) if h] == []
    assert parse_processes(res.stdout, res.stderr, res.exit_code) == ()


def test_an_ancestor_that_is_not_a_probe_is_still_found():
    # A container whose PID 1 is the run and which started the SSH server: the run is an
    # ancestor of the probe. Only the ancestors that carry the probe's script are excluded.
    token = f"ancestor_run_{uuid.uuid4().hex[:12]}"
    step = processes_step(token)
    launcher = ("import os, subprocess, sys; "
                "r = subprocess.run(['timeout', '-k', '1', '8', '/bin/sh', '-c', os.environ['GD_SCRIPT']], "
                "capture_output=True); sys.stdout.buffer.write(r.stdout); print(os.getpid(), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", launcher, token], capture_output=True,
                          env={**os.environ, "GD_SCRIPT": step.script}, timeout=30)
    got = parse_processes(proc.stdout, b"", proc.returncode)
    assert [p.pid for p in got] == [int(proc.stderr.decode().split()[-1])]
    assert token in got[0].command and "gpudash-probe" not in got[0].command


def test_real_pgrep_bad_regex_is_an_error():
    res = run_step(processes_step("train("))
    err = parse_processes(res.stdout, res.stderr, res.exit_code)
    assert isinstance(err, ProbeError) and err.reason is Reason.PROBE_ERROR and "regex" in err.message


def test_alive_sees_live_not_zombie_not_gone(fake_run):
    proc, _, _ = fake_run
    zombie = subprocess.Popen(["true"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        res = run_step(proc_alive_step([proc.pid, zombie.pid, gone.pid]))
        assert parse_alive(res.stdout, res.stderr, res.exit_code) == frozenset({proc.pid})
    finally:
        zombie.wait()


def test_alive_step_takes_only_integers():
    with pytest.raises(ValueError):
        proc_alive_step(["1; touch pwned"])
    assert proc_alive_step([3, 1, 3]).params["pids"] == (1, 3)


# ============================================================================ tmux


def test_tmux_fixture_rows():
    out = framed(("sessions", (LOCAL / "tmux-list-sessions-F.txt").read_text()),
                 ("panes", (LOCAL / "tmux-list-panes-F.txt").read_text()))
    assert parse_tmux(out) == (
        TmuxSession(name="eval", created_epoch=1795375030, windows=1, attached=False, pane_pid=19284,
                    pane_dead=False, pane_dead_status=None, pane_command="sleep"),
        TmuxSession(name="train-llama", created_epoch=1795375030, windows=1, attached=False, pane_pid=19281,
                    pane_dead=False, pane_dead_status=None, pane_command="sleep"),
    )


def test_tmux_rows_as_our_step_prints_them():
    sessions = "$0\t1795375030\t2\t1\tname|with|bars\n$1\t1795375031\t1\t0\t\\033[31mred"
    panes = ("$0\t0\t1\t100\t0\t\t/dev/pts/1\tbash\n$0\t1\t1\t101\t0\t\t/dev/pts/2\tpython3\n"
             "$1\t1\t1\t200\t1\t137\t/dev/pts/3\tpython3")
    a, b = parse_tmux(framed(("sessions", sessions), ("panes", panes)))
    assert a == TmuxSession("name|with|bars", 1795375030, 2, True, 101, False, None, "python3")
    assert b == TmuxSession("\\033[31mred", 1795375031, 1, False, 200, True, 137, "python3")


@pytest.mark.parametrize("stderr", [
    (H100 / "tmux-ls.txt").read_bytes(),
    b"no server running on /tmp/tmux-1000/default\n",
])
def test_tmux_without_server_is_empty(stderr):
    assert parse_tmux(b"@@gd:n\n@@gd:n:sessions\n", stderr, 1) == ()


def test_tmux_other_errors():
    err = parse_tmux(b"", b"tmux: need UTF-8 locale\n", 1)
    assert isinstance(err, ProbeError) and err.reason is Reason.PROBE_ERROR and "UTF-8" in err.message
    missing = parse_tmux(b"@@gd:n\n@@gd:n:no_tmux\n", b"", 127)
    assert isinstance(missing, ProbeError) and missing.reason is Reason.NOT_FOUND


def test_tmux_capture_drops_blank_screen_rows_and_sanitises():
    assert parse_tmux_capture(b"step 1\n\x1b[1mbold\x1b[0m\n\n\n\n") == ("step 1", "bold")
    err = parse_tmux_capture(b"", b"can't find session: x\n", 1)
    assert isinstance(err, ProbeError) and err.reason is Reason.NOT_FOUND


# ============================================================================ Slurm


def test_squeue_fixture():
    assert parse_squeue((SLURM / "squeue-format.txt").read_bytes()) == (
        SlurmJob("5", "eval", "root", "PENDING", "0:00", "UNLIMITED", "1", "(Resources)"),
        SlurmJob("4", "train-llm", "root", "RUNNING", "0:03", "UNLIMITED", "1", "vm"),
    )


def test_squeue_name_with_bars_and_errors():
    (j,) = parse_squeue(framed(("squeue", "12|a|b|c|alice|RUNNING|1:02|1:00:00|2|node[1-2]")))
    assert (j.job_id, j.name, j.user, j.nodes, j.reason) == ("12", "a|b|c", "alice", "2", "node[1-2]")
    assert parse_squeue(b"", b"slurm_load_jobs error: Invalid job id specified\n", 1) == ()
    down = parse_squeue(b"", b"slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n", 1)
    assert isinstance(down, ProbeError) and "Unable to contact" in down.message
    missing = parse_squeue(b"@@gd:n\n@@gd:n:no_squeue\n", b"", 127)
    assert isinstance(missing, ProbeError) and missing.reason is Reason.NOT_FOUND


def test_scontrol_fixture_every_state():
    jobs = parse_scontrol((SLURM / "scontrol-show-job-o.txt").read_bytes())
    got = [(j.job_id, j.name, j.state, j.reason, j.exit_code, j.stdout_path) for j in jobs]
    assert got == [
        ("1", "job.sh", "COMPLETED", "vm", "0:0", "/scratch/exp/job-1.out"),
        ("2", "tlimit", "TIMEOUT", "(TimeLimit)", "0:15", "/scratch/exp/tlimit-2.out"),
        ("3", "tocancel", "CANCELLED", "vm", "0:15", "/scratch/exp/cancel-3.out"),
        ("4", "train-llm", "RUNNING", "vm", "0:0", "/scratch/exp/run-4.out"),
        ("5", "eval", "PENDING", "(Resources)", "0:0", "/scratch/exp/run-5.out"),
    ]
    assert all(j.source == "scontrol" and j.user == "root" for j in jobs)
    assert jobs[1].elapsed == "00:01:04" and jobs[1].time_limit == "00:01:00"


def test_scontrol_invalid_id_is_aged_out_with_the_asked_id():
    out = "@@gd:n\n@@gd:n:job 4242\n@@gd:n:scontrol\n"
    got = parse_scontrol(out, b"slurm_load_jobs error: Invalid job id specified\n", 1)
    assert got == (SlurmJob(job_id="4242", state="", source="aged_out"),)


def test_scontrol_values_with_spaces_and_patterns():
    line = ("JobId=9 ArrayJobId=9 ArrayTaskId=3 JobName=my run x UserId=bob(1000) JobState=RUNNING "
            "Reason=None ExitCode=0:0 RunTime=00:00:09 NodeList=n1 BatchHost=n1 StdOut=/h/%x-%A_%a.%j.out Power=")
    (j,) = parse_scontrol(line)
    assert j.name == "my run x" and j.user == "bob" and j.stdout_path == "/h/my run x-9_3.9.out"
    assert expand_stdout("/o/%4j-%%-%u-%N.log", {"JobId": "7", "UserId": "a(1)", "BatchHost": "n"}) == "/o/0007-%-a-n.log"


def test_sacct_without_dbd_falls_back():
    text = (SLURM / "sacct-no-dbd.txt").read_bytes().split(b"\n")[0] + b"\n"
    assert parse_sacct(b"", text, 1) == ProbeError(Reason.NOT_FOUND, "no slurmdbd", 1)
    assert parse_sacct(framed(("job 3", ""), ("sacct", "")), text, 1) == ProbeError(Reason.NOT_FOUND, "no slurmdbd", 1)


def test_sacct_rows():
    body = "3|to|cancel|CANCELLED by 0|0:15|00:00:31\n2|tlimit|TIMEOUT|0:15|00:01:04\n4|run|RUNNING|0:0|00:00:03"
    got = parse_sacct(framed(("sacct", body)))
    assert [(j.job_id, j.name, j.state, j.exit_code, j.elapsed) for j in got] == [
        ("3", "to|cancel", "CANCELLED", "0:15", "00:00:31"),
        ("2", "tlimit", "TIMEOUT", "0:15", "00:01:04"),
        ("4", "run", "RUNNING", "0:0", "00:00:03"),
    ]
    assert all(j.source == "sacct" for j in got)


def test_state_prefers_sacct_for_the_end_then_scontrol_then_squeue():
    sq = (SlurmJob("4", "train", "root", "COMPLETING", reason="vm"),)
    sa = (SlurmJob("4", "train", state="COMPLETED", exit_code="0:0", source="sacct"),)
    sc = (SlurmJob("4", "train", state="COMPLETED", stdout_path="/o/4.out", source="scontrol"),)
    # squeue lags in COMPLETING; sacct says it ended, and the StdOut comes from scontrol.
    j = slurm_job_state(sq, sa, sc)
    assert (j.state, j.source, j.stdout_path, j.user) == ("COMPLETED", "sacct", "/o/4.out", "root")
    no_dbd = ProbeError(Reason.NOT_FOUND, "no slurmdbd")
    assert slurm_job_state(sq, no_dbd, sc).source == "scontrol"
    assert slurm_job_state(sq, no_dbd, ProbeError(Reason.PROBE_ERROR)).state == "COMPLETING"
    running_sa = (SlurmJob("4", state="RUNNING", source="sacct"),)
    assert slurm_job_state((), running_sa, (SlurmJob("4", state="RUNNING", source="scontrol"),)).source == "scontrol"
    aged = (SlurmJob("4", state="", source="aged_out"),)
    assert slurm_job_state((), no_dbd, aged) == SlurmJob("4", state="", source="aged_out")
    assert slurm_job_state(None, None, None) is None
    assert slurm_job_state(ProbeError(Reason.PROBE_ERROR), no_dbd, ProbeError(Reason.PROBE_ERROR)) is None


def test_state_picks_the_asked_job_from_many():
    jobs = parse_scontrol((SLURM / "scontrol-show-job-o.txt").read_bytes())
    assert slurm_job_state(None, None, jobs, job_id="2").state == "TIMEOUT"


# ============================================================================ Ray

RAY_RUNNING = """Job submission server address: http://127.0.0.1:8265
Status for job 'raysubmit_7dcVQn4SJgmh5Ctr': RUNNING
Status message: Job is currently running.
"""
RAY_SUCCEEDED_RECORD = (
    "2024-05-01 10:00:00,011\tINFO cli.py:36 -- Job submission server address: http://127.0.0.1:8265\n"
    "2024-05-01 10:00:00,120\tSUCC cli.py:60 -- ------------------------------------------\n"
    "2024-05-01 10:00:00,120\tSUCC cli.py:61 -- Job 'raysubmit_7dcVQn4SJgmh5Ctr' succeeded\n"
    "2024-05-01 10:00:00,120\tSUCC cli.py:62 -- ------------------------------------------\n"
)
RAY_FAILED = """Job submission server address: http://127.0.0.1:8265

---------------------------------------
Job 'raysubmit_x' failed
---------------------------------------

Status message: Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):
  File "train.py", line 3, in <module>
KeyError: 'lr'
"""


def test_ray_states():
    assert parse_ray(RAY_RUNNING) == RayJob("raysubmit_7dcVQn4SJgmh5Ctr", "RUNNING", "Job is currently running.")
    assert parse_ray(RAY_SUCCEEDED_RECORD) == RayJob("raysubmit_7dcVQn4SJgmh5Ctr", "SUCCEEDED", "")
    failed = parse_ray(RAY_FAILED)
    assert failed.status == "FAILED" and failed.job_id == "raysubmit_x"
    assert failed.message.startswith("Job entrypoint command failed with exit code 1")
    assert failed.message.endswith("KeyError: 'lr'")
    assert parse_ray("Job 'raysubmit_s' was stopped\n") == RayJob("raysubmit_s", "STOPPED", "")
    assert parse_ray("Status for job 'r': PENDING\nStatus message: Job has not started yet.\n").status == "PENDING"
    # Older releases print every state with the "Status for job" form.
    assert parse_ray("Status for job 'r': SUCCEEDED\nStatus message: Job finished successfully.\n").status == "SUCCEEDED"
    assert parse_ray("Status for job 'r': JobStatus.FAILED\n").status == "FAILED"


def test_ray_errors():
    missing = parse_ray(b"", b"Traceback (most recent call last):\n  File \"x\"\nRuntimeError: Request failed with "
                        b"status code 404: Job raysubmit_q does not exist.\n", 1)
    assert isinstance(missing, ProbeError) and missing.reason is Reason.NOT_FOUND
    assert missing.message.startswith("RuntimeError: Request failed with status code 404")
    down = parse_ray(b"", b"ConnectionError: Failed to connect to Ray at address: http://127.0.0.1:8265.\n", 1)
    assert isinstance(down, ProbeError) and down.reason is Reason.PROBE_ERROR and "Failed to connect" in down.message
    none = parse_ray(b"@@gd:n\n@@gd:n:job x\n@@gd:n:no_ray\n", b"", 127)
    assert isinstance(none, ProbeError) and none.reason is Reason.NOT_FOUND


def test_ray_step_bounds_and_job_header():
    step = ray_step("raysubmit_1", "http://h:8265")
    assert step.key == "ray" and step.timeout >= 20
    assert ray_step("x", timeout=1).timeout >= 20


# ============================================================================ discovery


def test_discovery_parse_and_best_log_order():
    ps = ("100 50 99.0 1000 20 Sun Nov 22 19:16:49 2026 python train.py\n"
          "101 40 1.0 100 1 Sun Nov 22 19:16:49 2026 python3 finetune.py --cfg a.yaml\n"
          "102 30 1.0 100 1 Sun Nov 22 19:16:49 2026 /usr/bin/python3 /usr/local/bin/tensorboard --logdir train")
    out = framed(
        ("gpu", "100\n999"), ("cmdline", " 101 102 100"), ("ps", ps),
        ("ppid 100 1", ""), ("fd 100 1 -", "/dev/pts/3"), ("fd 100 2 -", "/dev/pts/3"), ("cwd 100", "/w"),
        ("fd 101 1 f", "/w/ft.log"), ("fd 101 2 f", "/w/ft.log"), ("cwd 101", "/w"),
        ("fd 102 1 -", "pipe:[1234]"),
        ("sessions", "$0\t1795375030\t1\t0\ttrain"), ("panes", "$0\t1\t1\t100\t0\t\t/dev/pts/3\tpython"),
        ("squeue", "7|sft|RUNNING\n8|x|y|PENDING"),
        ("scontrol 7", "JobId=7 JobName=sft UserId=u(1) JobState=RUNNING Reason=None NodeList=n StdOut=/s/7.out Power="),
    )
    d = parse_discovery(out)
    assert isinstance(d, Discovery)
    assert [(c.source, c.pid, c.log_path, c.tmux_session) for c in d.candidates] == [
        ("gpu", 100, None, "train"),  # holds the GPU; its stdout is the pane's tty
        ("cmdline", 101, "/w/ft.log", None),
        ("slurm", None, "/s/7.out", None),
        ("slurm", None, None, None),
    ]
    assert d.hidden_gpu_pids == (999,)  # holds a GPU, invisible to ps (a container)
    assert [(j.job_id, j.name, j.state, j.stdout_path) for j in d.slurm_jobs] == [
        ("7", "sft", "RUNNING", "/s/7.out"), ("8", "x|y", "PENDING", "")]
    assert d.candidates[0].process.threads == 20 and d.candidates[0].cwd == "/w"
    assert best_log(d) == ("/w/ft.log", "process:101")
    no_proc_log = Discovery(candidates=d.candidates[:1] + d.candidates[2:], slurm_jobs=d.slurm_jobs)
    assert best_log(no_proc_log) == ("/s/7.out", "slurm:7")
    only_tmux = Discovery(candidates=d.candidates[:1], tmux_sessions=d.tmux_sessions)
    assert best_log(only_tmux) is None and best_tmux_session(only_tmux) == "train"


@pytest.mark.parametrize("target, flag", [
    ("/dev/null", "-"), ("/dev/pts/0", "-"), ("pipe:[77]", "-"), ("socket:[1]", "-"),
    ("/w/old.log (deleted)", "f"), ("/w/dir", "-"), ("relative.log", "f"),
])
def test_discovery_only_regular_files_are_logs(target, flag):
    out = framed(("cmdline", "5"), ("ps", "5 1 1.0 1 1 Sun Nov 22 19:16:49 2026 python train.py"),
                 (f"fd 5 1 {flag}", target), ("fd 5 2 -", "/dev/null"))
    (c,) = parse_discovery(out).candidates
    assert c.log_path is None


def test_discovery_a_path_with_a_newline_cannot_forge_a_candidate():
    forged = "/home/evil\n@@gd:guess:fd 5 1 f\n/etc/shadow"
    out = framed(("cmdline", "5"), ("ps", "5 1 1.0 1 1 Sun Nov 22 19:16:49 2026 python train.py"),
                 ("fd 5 1 f", forged), nonce="realnonce")
    (c,) = parse_discovery(out).candidates
    assert c.log_path is None  # a multi-line target is no log path, and no block was forged


def test_discovery_drops_wrappers_and_tools():
    ps = ("10 1 0 1 1 Sun Nov 22 19:16:49 2026 tmux new -d -s t python train.py\n"
          "11 1 0 1 1 Sun Nov 22 19:16:49 2026 sh -c python train.py > /w/l 2>&1\n"
          "12 1 0 1 1 Sun Nov 22 19:16:49 2026 python train.py")
    out = framed(("cmdline", "10 11 12"), ("ps", ps), ("ppid 12 11", ""), ("fd 12 1 f", "/w/l"))
    assert [c.pid for c in parse_discovery(out).candidates] == [12]


@pytest.mark.parametrize("cmd, yes", [
    ("python train.py", True), ("python3.11 -m mypkg.train --cfg x", True), ("torchrun --nproc 8 main.py", True),
    ("/opt/conda/bin/python -m torch.distributed.run main.py", True), ("accelerate launch sft.py", True),
    ("deepspeed main.py", True), ("lightning run model x.py", True), ("python finetune_llama.py", True),
    ("python serve.py", False), ("vim train.py", False), ("python -m pip install trainer", False),
    ("/usr/bin/python3 /usr/local/bin/tensorboard --logdir runs/train", False),
    ("tmux new -s t python train.py", False),
])
def test_training_command_heuristic(cmd, yes):
    assert is_training_command(cmd) is yes


def test_real_discovery_finds_the_run_and_its_log(fake_run):
    proc, token, log = fake_run
    deadline = time.monotonic() + 20
    while b"started" not in log.read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    res = run_step(discover_step())
    d = parse_discovery(res.stdout, res.stderr, res.exit_code)
    assert isinstance(d, Discovery), d
    mine = [c for c in d.candidates if c.pid == proc.pid]
    assert len(mine) == 1, d.candidates
    (c,) = mine
    assert c.source == "cmdline" and token in c.command and c.log_path == str(log) and c.cwd == str(log.parent)
    assert c.process.pid == proc.pid
    # Nothing of the probe itself was taken for a run (its script holds the training pattern).
    assert all("gpudash-probe" not in x.command and "pgrep" not in x.command for x in d.candidates)
    assert best_log(Discovery(candidates=(c,))) == (str(log), f"process:{proc.pid}")


# ============================================================================ hostile arguments

HOSTILE = ["x'; touch pwned; '", "$(touch pwned)", "`touch pwned`", 'a"b;touch pwned', "-rf --x", "a\nb"]


@pytest.fixture
def argv_spy(tmp_path):
    """Stand-ins for the tools that record the exact argv they got (NUL-separated)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv"
    for name in ("pgrep", "squeue", "sacct", "scontrol", "ray", "tmux"):
        f = bindir / name
        f.write_text(f"#!/bin/sh\n{{ printf '%s\\0' {name} \"$@\"; printf '\\n'; }} >> {shlex.quote(str(log))}\n")
        f.chmod(f.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}

    def calls() -> list[list[str]]:
        if not log.exists():
            return []
        return [line.rstrip("\0").split("\0") for line in log.read_text().split("\0\n") if line]

    return env, calls, tmp_path


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_values_reach_the_tools_as_one_literal_argument(argv_spy, bad):
    env, calls, cwd = argv_spy
    steps = [processes_step(bad), squeue_step(user=bad), squeue_step(job_id=bad), sacct_step(bad),
             scontrol_step(bad), ray_step(bad, address=bad), tmux_capture_step(bad, socket=bad),
             tmux_step(socket=bad), discover_step(user=bad)]
    for step in steps:
        run_step(step, env=env, cwd=str(cwd))
    got = calls()
    assert ["pgrep", "-f", "--", bad] in got
    assert ["squeue", "-h", "-o", slurm.SQUEUE_FORMAT, "-u", bad] in got
    assert ["squeue", "-h", "-o", slurm.SQUEUE_FORMAT, "-j", bad] in got
    assert ["scontrol", "show", "job", "-o", bad] in got
    assert any(c[:3] == ["sacct", "-j", bad] for c in got)
    assert ["ray", "job", "status", "--address", bad, "--", bad] in got
    assert any(c[:3] == ["tmux", "-u", "-L"] and c[3] == bad for c in got)
    assert ["squeue", "-h", "-u", bad, "-o", "%i|%j|%T"] in got
    assert not (cwd / "pwned").exists()


# ============================================================================ never raise

ANY_TEXT = st.one_of(st.binary(max_size=600), st.text(max_size=600))
CODES = st.one_of(st.none(), st.integers(min_value=-1, max_value=300))
BLOCKY = st.lists(
    st.tuples(st.sampled_from(["ps", "gpu", "cmdline", "fd 5 1 f", "cwd 5", "ppid 5 1", "sessions", "panes",
                               "squeue", "scontrol 7", "sacct", "job 7", "ray", "no_tmux"]),
              st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)),
    max_size=8,
).map(lambda blocks: framed(*blocks))


@settings(deadline=None, max_examples=150)
@given(out=st.one_of(ANY_TEXT, BLOCKY), err=ANY_TEXT, code=CODES)
def test_parsers_never_raise(out, err, code):
    for parse, ok in [
        (parse_processes, tuple), (parse_tmux, tuple), (parse_tmux_capture, tuple), (parse_squeue, tuple),
        (parse_sacct, tuple), (parse_scontrol, tuple), (parse_ray, RayJob), (parse_discovery, Discovery),
        (parse_alive, frozenset),
    ]:
        got = parse(out, err, code)
        assert isinstance(got, (ok, ProbeError)), (parse.__name__, got)
        if isinstance(got, tuple):
            for item in got:
                values = [item] if isinstance(item, str) else list(vars(item).values())
                for value in values:
                    if isinstance(value, str):
                        assert is_inert(value), (parse.__name__, value)
    found = parse_discovery(out, err, code)
    if isinstance(found, Discovery):
        for c in found.candidates:
            for value in (c.command, c.log_path, c.cwd, c.tmux_session, c.slurm_job_id):
                assert value is None or is_inert(value), value
    best = best_log(found)
    assert best is None or (isinstance(best[0], str) and best[0].startswith("/"))
    assert best_tmux_session(found) is None or isinstance(best_tmux_session(found), str)
    state = slurm_job_state(parse_squeue(out, err, code), parse_sacct(out, err, code), parse_scontrol(out, err, code))
    assert state is None or isinstance(state, SlurmJob)


def test_modules_are_importable_without_textual():
    code = ("import sys; import gpudash.probes.discovery, gpudash.probes.ray, gpudash.probes.slurm; "
            "assert 'textual' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def test_step_keys():
    assert [s.key for s in (processes_step("x"), proc_alive_step([1]), tmux_step(), tmux_capture_step("s"),
                            squeue_step(), sacct_step("1"), scontrol_step("1"), ray_step("r"), discover_step())] == [
        "procs", "alive", "tmux", "tmux_capture", "squeue", "sacct", "scontrol", "ray", "discover"]
