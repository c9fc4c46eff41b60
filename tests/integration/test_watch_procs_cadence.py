"""`procs` (a pgrep + ps scan of /proc) and `gpu_apps` (a one-shot nvidia-smi) run on their own
slow cadence while tmux, or the run's own live pid, vouches for the job, with every jobs round
when nothing does, and at once when the voucher stops vouching.

Real watcher rounds over the local transport, a real private tmux server (its own TMUX_TMPDIR,
the default socket name there, so the watcher's plain `tmux` finds it), a real process matched
by pgrep. No timing assertions: which steps each round ran, and what the watcher saw.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys

import pytest

from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec
from tests.integration.recording import Recording
from tests.services.require import require_binary


@pytest.fixture
def tmux_env(tmp_path):
    tmux = require_binary("tmux")
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    env["TMUX_TMPDIR"] = str(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([tmux, "-f", "/dev/null", *args], env=env, capture_output=True,
                              text=True, timeout=20, stdin=subprocess.DEVNULL)

    yield env, run
    run("kill-server")


async def jobs_round(w: HostWatcher, t: Recording) -> list[list[str]]:
    n = len(t.batches)
    await asyncio.wait_for(w.round("jobs"), 60)
    return t.batches[n:]


async def test_procs_slow_while_tmux_vouches_at_once_when_it_stops(tmux_env):
    env, tmux = tmux_env
    token = "gdprocs" + secrets.token_hex(6)
    job = f"{sys.executable} -c 'import time; time.sleep(600)' {token}"
    assert tmux("new-session", "-d", "-s", "train", job).returncode == 0
    t = Recording(env=env)
    spec = WatchSpec(name="b", transport="local", pgrep=token, tmux_session="train",
                     gpu_stream=False, cadence=Cadence(procs=3600))
    w = HostWatcher(spec, t)
    try:
        # First round: nothing known yet, the scan runs, and finds the job.
        first = await jobs_round(w, t)
        assert any("procs" in b for b in first)
        assert [p.pid for p in w.processes] and w._job_identified()
        # the scan ran in a batch of its own beside the rest (the round lasts as long as the
        # scan, not the sum), and the round took both batches' answers
        assert ["procs"] in first and any("tmux" in b for b in first)
        assert any(s.name == "train" for s in w.tmux)
        assert any("gpu_apps" in b for b in first)
        # tmux says the job runs: the next rounds skip the /proc scan and the GPU-apps query.
        for _ in range(2):
            assert all("procs" not in b and "gpu_apps" not in b for b in await jobs_round(w, t))
        assert w.processes  # the last scan's answer stands

        # The job ends (its pane and session with it): the round that sees it re-scans at once.
        pid = w.processes[0].pid
        os.kill(pid, 9)
        async with asyncio.timeout(60):
            while tmux("has-session", "-t", "train").returncode == 0:
                await asyncio.sleep(0.05)
        # The first round after: tmux no longer vouches, and the pid the last scan found was not
        # checked in it, so the follow-up checks run in this same round.
        batches = await jobs_round(w, t)
        assert not w._job_identified()
        assert batches[-1] == ["gpu_apps", "procs"]
        assert w.processes == ()
        # Nothing vouches now: every jobs round scans.
        assert any("procs" in b for b in await jobs_round(w, t))
    finally:
        await t.close()


async def test_without_tmux_or_slurm_every_round_scans(tmp_path):
    t = Recording()
    spec = WatchSpec(name="b", transport="local", pgrep="gd-no-such-" + secrets.token_hex(4),
                     gpu_stream=False)
    w = HostWatcher(spec, t)
    try:
        for _ in range(3):
            batches = await jobs_round(w, t)
            assert any("procs" in b for b in batches) and any("gpu_apps" in b for b in batches)
    finally:
        await t.close()


async def test_the_runs_live_pid_vouches_between_scans():
    # No tmux, no Slurm: the scan finds the run; later rounds only read /proc/PID/stat of its
    # main process (the oldest match). A worker that ends changes nothing until the next scan;
    # the main process ending brings the scan back in that same round.
    token = "gdpid" + secrets.token_hex(6)
    code = "import time; time.sleep(600)"
    main = subprocess.Popen([sys.executable, "-c", code, token])
    worker = None
    t = Recording()
    spec = WatchSpec(name="b", transport="local", pgrep=token, gpu_stream=False,
                     cadence=Cadence(procs=3600))
    w = HostWatcher(spec, t)
    try:
        await asyncio.sleep(0.2)  # the main process starts first: it is the oldest match
        worker = subprocess.Popen([sys.executable, "-c", code, token])
        async with asyncio.timeout(60):
            while len(w.processes) < 2:
                first = await jobs_round(w, t)
        assert any("procs" in b for b in first) and w._job_identified()
        assert {p.pid for p in w.processes} == {main.pid, worker.pid}

        for _ in range(2):
            batches = await jobs_round(w, t)
            assert any("alive" in b for b in batches)
            assert all("procs" not in b and "gpu_apps" not in b for b in batches)
        assert {p.pid for p in w.processes} == {main.pid, worker.pid} and w._job_identified()
        assert t.steps["alive"].params["pids"] == (main.pid,)

        worker.kill()
        worker.wait()
        batches = await jobs_round(w, t)
        assert all("procs" not in b for b in batches) and w._job_identified()

        main.kill()
        main.wait()
        batches = await jobs_round(w, t)
        assert "alive" in batches[0] and batches[-1] == ["gpu_apps", "procs"]
        assert w.processes == () and not w._job_identified()
        assert any("procs" in b for b in await jobs_round(w, t))  # nothing vouches now
    finally:
        for proc in (main, worker):
            if proc is not None:
                proc.kill()
                proc.wait()
        await t.close()
