"""run_checks end to end on this machine through the LocalTransport (real sh, find, df, stat,
sha256sum, the fake nvidia-smi): quick runs of the paths the sshd test does not cover."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest

from gpudash.teardown.runner import run_checks
from gpudash.teardown.types import GREEN, RED, UNKNOWN, TeardownSettings
from gpudash.transport.local import LocalTransport
from tests.services.ssh_server import BIN


@pytest.fixture
def box_home(tmp_path) -> Path:
    home = tmp_path / "box-home"
    home.mkdir()
    return home


@pytest.fixture
async def transport(box_home):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               GD_FAKE_GPU="idle", HOME=str(box_home))
    t = LocalTransport(env=env)
    yield t
    await t.close()


def settings(**kw) -> TeardownSettings:
    base = dict(host="local", pgrep=f"gd-no-such-run-{secrets.token_hex(4)}", preset="ssh")
    base.update(kw)
    return TeardownSettings(**base)


def write(path: Path, data: bytes = b"x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_hostile_paths_and_patterns_never_run_a_command(tmp_path, transport):
    pwned = tmp_path / "pwned"
    s = settings(
        artifacts_dir=f"{tmp_path}/a; touch {pwned}-1",
        artifacts_glob=f"*'; touch {pwned}-2; echo '",
        markers=(f"$(touch {pwned}-3)", f"`touch {pwned}-4`"),
        log=f"{tmp_path}/x\"; touch {pwned}-5; \"",
        local_dir=tmp_path / "pull", expected_count=1,
    )
    cl = await run_checks(transport, s)
    assert not list(tmp_path.glob("pwned*"))
    assert cl.check("artifacts").state == RED and "does not exist" in cl.check("artifacts").missing
    assert not cl.all_green


async def test_home_relative_artifacts_dir_and_folders_of_files(tmp_path, box_home, transport):
    arts = box_home / "out"
    for step in (100, 200):
        write(arts / f"checkpoint-{step}" / "model.safetensors", b"w" * 1000)
        write(arts / f"checkpoint-{step}" / "optimizer.pt", b"o" * 2000)
    pull = tmp_path / "pull"
    shutil.copytree(arts, pull)
    write(box_home / "run" / "train.log", b"step 10 loss 1.0\nTraining completed in 3h\n")
    s = settings(artifacts_dir="~/out", expected_count=2, local_dir=pull, log="~/run/train.log",
                 markers=(), verify_command="echo OK 2/2")
    cl = await run_checks(transport, s)
    for c in cl.checks:
        assert c.state == GREEN, (c.id, c.missing, c.evidence)
    assert any("checkpoint-100/ 3.0 KB" in e for e in cl.check("artifacts").evidence)
    assert any("completion line" in e for e in cl.check("job").evidence)
    # a file missing inside one checkpoint folder shows as a size difference of that folder
    (pull / "checkpoint-200" / "optimizer.pt").unlink()
    cl = await run_checks(transport, s)
    assert cl.check("local").state == RED and "checkpoint-200/" in cl.check("local").missing


async def test_verify_is_bounded_and_its_processes_are_killed(tmp_path, transport):
    arts = tmp_path / "arts"
    write(arts / "a.bin")
    pidfile = tmp_path / "sleep.pid"
    s = settings(artifacts_dir=str(arts), expected_count=1, local_dir=arts,
                 markers=(str(write(tmp_path / "DONE", b"")),),
                 verify_command=f"sleep 30 & echo $! > {pidfile}; wait", verify_timeout=1.0)
    cl = await run_checks(transport, s)
    v = cl.check("verify")
    assert v.state == RED and "did not finish within 1 s" in v.missing
    pid = int(pidfile.read_text())
    for _ in range(50):  # the killed sleep is reaped by init: give it a moment
        if not Path(f"/proc/{pid}").exists() or "Z" in _state(pid):
            break
        await asyncio.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


async def test_a_running_job_and_a_gpu_process_block_the_stop(tmp_path):
    # the default (busy) fake GPU lists a compute process; a live process matches pgrep
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    tag = f"gd-live-run-{secrets.token_hex(4)}"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(30)",
                                                tag)
    t = LocalTransport(env=env)
    try:
        cl = await run_checks(t, settings(pgrep=tag, markers=(str(write(tmp_path / "D", b"")),)))
    finally:
        proc.kill()
        await proc.wait()
        await t.close()
    assert cl.check("job").state == RED and "still runs" in cl.check("job").missing
    assert cl.check("gpu").state == RED and "pid 436" in cl.check("gpu").missing
    assert cl.check("stop").state == RED


async def test_an_unreachable_box_is_unknown_not_green(tmp_path, ssh_home, free_closed_port):
    from gpudash.transport.ssh import SshTransport

    t = SshTransport(f"nobody@127.0.0.1:{free_closed_port}", connect_timeout=3)
    try:
        cl = await run_checks(t, settings(artifacts_dir="/data", expected_count=1,
                                          local_dir=tmp_path, markers=("/data/DONE",)))
    finally:
        await t.close()
    for cid in ("job", "gpu", "artifacts", "local"):
        assert cl.check(cid).state == UNKNOWN, cl.check(cid)
    assert "reached" in cl.check("job").missing
