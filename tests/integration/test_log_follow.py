"""The log follower (probes/logfollow.py): one long-lived sampler on the box instead of a polled
read per tick. Real /bin/sh and python3, real files; over local subprocesses, the in-process SSH
server and a real sshd. No timing assertions: the waits only bound how long a test may run."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudash.probes import logfollow, logtail
from gpudash.transport.local import LocalTransport
from gpudash.watch import host as host_mod
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec
from tests.services.ssh_server import processes_with, wait_until_gone

SLOW = 3600.0  # only the log loop matters here


def spec_for(log: str, **kw) -> WatchSpec:
    return WatchSpec(name="box", transport="local", log=log, gpu_stream=False,
                     cadence=Cadence(gpu=SLOW, log=0.2, disk=SLOW, jobs=SLOW, files=SLOW,
                                     log_quiet_max=1.0), **kw)


async def until(cond, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.05)


def first_follow_record(step, timeout: float = 30.0) -> bytes:
    """Run the follower's script once and return the payload of its first record."""
    proc = subprocess.Popen(["/bin/sh", "-c", step.script], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait(timeout)
        proc.stdout.close()
    msg = logfollow.parse_follow_line(line.rstrip(b"\n"))
    assert msg.kind == "log", line[:200]
    return msg.payload


def polled_output(step) -> bytes:
    return subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, timeout=30).stdout


# ----------------------------------------------------------------------------- the agent itself


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=3000), offset=st.integers(0, 3500),
       max_bytes=st.integers(1, 4000), same_inode=st.booleans())
def test_a_record_is_byte_for_byte_what_the_polled_read_prints(tmp_path, content, offset, max_bytes,
                                                              same_inode):
    """Same file, same offset/inode, same bound → the follower's first record equals the polled
    step's output (skip, reset by truncation or inode, count, path): one parser, one arithmetic."""
    log = tmp_path / "run 1.log"
    log.write_bytes(content)
    ino = os.stat(log).st_ino if same_inode else os.stat(log).st_ino + 1
    polled = polled_output(logtail.log_step(str(log), offset, ino, max_bytes))
    followed = first_follow_record(logfollow.follow_step(str(log), offset, ino, max_bytes))
    assert followed == polled
    chunk = logtail.parse_log(followed, prev_offset=offset, prev_inode=ino)
    assert not hasattr(chunk, "reason"), chunk
    assert chunk.end == len(content)


def test_a_glob_picks_the_newest_file_as_the_shell_does(tmp_path):
    (tmp_path / "train-1.log").write_text("old\n")
    (tmp_path / "train-2.log").write_text("new\n")
    (tmp_path / "train[ x].log").write_text("bracket\n")  # `[ x]` is no harmless class: literal
    (tmp_path / "runx.log").write_text("class\n")  # `run[x].log` is a class: matches runx.log
    os.utime(tmp_path / "train-1.log", (1_000_000, 1_000_000))
    os.utime(tmp_path / "train-2.log", (2_000_000, 2_000_000))
    pattern = str(tmp_path / "train-*.log")
    polled = polled_output(logtail.log_step(pattern, 0, None, 1000))
    followed = first_follow_record(logfollow.follow_step(pattern, 0, None, 1000))
    assert followed == polled and followed.endswith(b"new\n")
    # a literal path with glob-looking characters is read literally, as the poller reads it
    for pat, want in (("train[ x].log", b"bracket\n"), ("run[x].log", b"class\n")):
        pattern = str(tmp_path / pat)
        followed = first_follow_record(logfollow.follow_step(pattern, 0, None, 1000))
        assert followed == polled_output(logtail.log_step(pattern, 0, None, 1000))
        assert followed.endswith(want)


def test_a_missing_log_says_so_with_the_pattern(tmp_path):
    pattern = str(tmp_path / "nope-*.log")
    followed = first_follow_record(logfollow.follow_step(pattern, 5, 7, 1000))
    assert followed == polled_output(logtail.log_step(pattern, 5, 7, 1000))
    assert logtail.parse_log(followed, prev_offset=5, prev_inode=7).missing


def test_log_text_cannot_forge_follower_lines():
    assert logfollow.parse_follow_line(b"H").kind == "heartbeat"
    assert logfollow.parse_follow_line(b"NOPYTHON").kind == "nopython"
    assert logfollow.parse_follow_line(b"L !!!not base64").kind == "junk"
    assert logfollow.parse_follow_line(b"\x1b[31mH").kind == "junk"
    # whatever the log holds travels base64-encoded inside one L line
    payload = b"LOG\t1\t1\t1\t0\t1\t0\t0\n/x\0H\nNOPYTHON\nL Zm9v\n"
    import binascii

    line = b"L " + binascii.b2a_base64(payload).rstrip(b"\n")
    assert b"\n" not in line
    assert logfollow.parse_follow_line(line) == logfollow.FollowLine("log", payload)


# ----------------------------------------------------------------------------- in the watcher


@pytest.fixture
def token():
    return "GDFOLLOW" + os.urandom(4).hex()


async def run_watcher(w):
    task = asyncio.create_task(w._loop("log", w.spec.cadence.log))
    return task


async def stop(task):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_follows_growth_rotation_and_truncation_with_one_process(tmp_path, any_box):
    log = tmp_path / "train.log"
    log.write_text("step 1\n")
    w = HostWatcher(spec_for(str(log)), any_box.transport)
    task = await run_watcher(w)
    try:
        await until(lambda: w.log_following and list(w.log_lines) == ["step 1"])
        followers = [p for p in processes_with(any_box.needle)
                     if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"python3\0-I\0-S")]
        assert len(followers) == 1
        for i in range(2, 6):
            with log.open("a") as f:
                f.write(f"step {i}\n")
            await until(lambda i=i: f"step {i}" in w.log_lines)
        # rotation: a new file under the name (a new inode) is read from its start
        log.rename(tmp_path / "train.log.1")
        log.write_text("fresh 1\n")
        await until(lambda: "fresh 1" in w.log_lines)
        # truncation in place (seen as the size dropping below the offset: a file truncated and
        # regrown past the offset between two looks is indistinguishable from growth, for the
        # poller too)
        log.write_text("")
        await until(lambda: w.log_offset == 0)
        with log.open("a") as f:
            f.write("after truncate\n")
        await until(lambda: "after truncate" in w.log_lines)
        mark = "── log rotated/truncated ──"
        assert list(w.log_lines) == ["step 1", "step 2", "step 3", "step 4", "step 5",
                                     mark, "fresh 1", mark, "after truncate"]
        assert w.log_following and w.log_error is None
        assert w.log_offset == log.stat().st_size
    finally:
        await stop(task)
    # the follower dies with its channel (EPIPE at its next heartbeat at the latest)
    assert await wait_until_gone(any_box.needle, within=30) == []


class Chunks(HostWatcher):
    """The real watcher, remembering every read it accepted."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.chunks = []

    def _apply_log_chunk(self, chunk, now):
        self.chunks.append(chunk)
        super()._apply_log_chunk(chunk, now)


async def test_a_flood_skips_to_the_newest_bytes_and_counts_every_skipped_byte(tmp_path, monkeypatch):
    monkeypatch.setattr(host_mod, "LOG_BYTES_PER_TICK", 1000)
    log = tmp_path / "train.log"
    log.write_text("")
    w = Chunks(spec_for(str(log)), LocalTransport())
    task = await run_watcher(w)
    try:
        await until(lambda: w.log_following and w.log_inode is not None)
        lines = [f"line {n:06d} {'x' * 40}\n" for n in range(2000)]
        with log.open("a") as f:
            f.write("".join(lines))
        size = log.stat().st_size
        await until(lambda: w.log_offset == size)
        assert w.log_following
        # exact accounting: every byte of the file was either read once or reported skipped
        assert sum(c.skipped for c in w.chunks) > 0
        assert sum(len(c.data) + c.skipped for c in w.chunks) == size
        pos = 0
        for c in w.chunks:
            assert c.start == pos + c.skipped and c.end == c.start + len(c.data) <= 1000 + c.start
            pos = c.end
        shown = [ln for ln in w.log_lines if ln.startswith("line ")]
        assert shown[-1] == lines[-1].rstrip("\n")  # the newest line is shown, whole
        assert all(len(ln) == len(lines[0]) - 1 for ln in shown)  # no torn line
        nums = [int(ln.split()[1]) for ln in shown]
        assert nums == sorted(set(nums))  # never twice, never out of order
    finally:
        await stop(task)


async def test_a_missing_log_falls_back_to_polling_and_follows_again_when_it_appears(tmp_path):
    log = tmp_path / "later.log"
    w = HostWatcher(spec_for(str(log)), LocalTransport())
    task = await run_watcher(w)
    try:
        await until(lambda: w.log_error is not None and "missing" in w.log_error)
        log.write_text("hello\n")
        await until(lambda: "hello" in w.log_lines)
        await until(lambda: w.log_following)
        with log.open("a") as f:
            f.write("world\n")
        await until(lambda: "world" in w.log_lines)
        assert [ln for ln in w.log_lines if not ln.startswith("──")] == ["hello", "world"]
    finally:
        await stop(task)


async def test_without_python3_on_the_box_the_log_is_polled(tmp_path, token):
    # a box whose PATH has the shell tools but no python3
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "timeout", "stat", "tail", "head", "wc", "ls", "date", "kill", "sleep",
                 "cat", "printf", "env", "setsid"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    assert shutil.which("python3", path=str(bin_dir)) is None
    log = tmp_path / "train.log"
    log.write_text("one\n")
    transport = LocalTransport(env={"PATH": str(bin_dir), "GD_TEST_TOKEN": token})
    w = HostWatcher(spec_for(str(log)), transport)
    task = await run_watcher(w)
    try:
        await until(lambda: w._follow_unavailable)
        with log.open("a") as f:
            f.write("two\n")
        await until(lambda: "two" in w.log_lines)
        assert list(w.log_lines) == ["one", "two"] and not w.log_following
    finally:
        await stop(task)
        await transport.close()


async def test_the_follower_looks_at_the_fleet_paced_interval(tmp_path):
    """A big fleet's watcher follows the log once per GPU interval, not per log cadence."""

    class Streams(LocalTransport):
        def __init__(self) -> None:
            super().__init__()
            self.steps = []

        def stream(self, step, **kw):
            self.steps.append(step)
            return super().stream(step, **kw)

    log = tmp_path / "train.log"
    log.write_text("a\n")
    t = Streams()
    w = HostWatcher(spec_for(str(log)), t)
    w.follow_interval = 2.0
    task = await run_watcher(w)
    try:
        await until(lambda: w.log_following)
        assert [s.params["interval_ms"] for s in t.steps] == [2000]
        import shlex

        assert shlex.split(t.steps[0].script)[-8] == "2"  # the agent's own sleep
    finally:
        await stop(task)


async def test_a_scan_for_the_run_never_finds_gpudash_itself(tmp_path, token):
    # The run's pattern often names its log too (`pgrep -f train`, `train.log`): the follower's
    # command line, and a polled read's, carry the probe marker, so the scan drops them.
    import sys

    log = tmp_path / f"{token}.log"
    log.write_text("step 1\n")
    w = HostWatcher(spec_for(str(log), pgrep=token), LocalTransport())
    task = await run_watcher(w)
    run = None
    try:
        await until(lambda: w.log_following)
        assert processes_with(token)  # the follower matches the pattern
        await asyncio.wait_for(w.round("jobs"), 60)
        assert w.processes == ()
        run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(log)])
        await asyncio.wait_for(w.round("jobs"), 60)  # nothing vouched: this round scans
        assert [p.pid for p in w.processes] == [run.pid]
    finally:
        if run is not None:
            run.kill()
            run.wait()
        await stop(task)
        await w.transport.close()
