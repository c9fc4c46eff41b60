"""The transport contract, run against every real transport.

``any_box`` is the local transport (subprocesses on this machine), the SSH transport against the
in-process server (real /bin/sh behind it) and the SSH transport against a real OpenSSH sshd
(skipped when sshd is absent, a failure under CI). No timing assertions: generous deadlines go
to the code under test and only outcomes are checked ("returned", "exit_code", "no process
left"). ``asyncio.wait_for`` around a call turns "never returned" into a failure, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
import subprocess

import pytest

from gpudash.model import Reason
from gpudash.transport.base import Step, TransportError
from gpudash.transport.local import LocalTransport, session_members
from tests.conftest import FIXTURES
from tests.services.ssh_server import BIN, processes_with, wait_until_gone

H100 = FIXTURES / "h100"
QUERY = "nvidia-smi --query-gpu=index,uuid,name --format=csv,noheader,nounits"
SERIES_QUERY = (
    "nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,utilization.memory,memory.total,"
    "memory.used,temperature.gpu,power.draw,power.limit,clocks.sm,pstate,"
    "clocks_event_reasons.active,ecc.errors.uncorrected.volatile.total --format=csv,noheader,nounits"
)


def printed_here(command: str) -> bytes:
    """What the stand-in tool prints when run directly: the transport must deliver exactly it."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin"}
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, env=env, check=True).stdout


def token() -> str:
    return "gdtok" + secrets.token_hex(6)


async def warm(box) -> None:
    """Connect and open a session first, so a short deadline below is spent on the batch only
    (a loaded CI machine may take seconds to connect)."""
    res = await asyncio.wait_for(box.transport.run([Step("w", "true")], deadline=30), 60)
    assert res["w"].exit_code == 0


def hang_script(tok: str) -> str:
    """Hangs forever and ignores SIGTERM; the token marks every process it starts."""
    return f"GD_TOKEN={tok}; export GD_TOKEN; trap '' TERM; sleep 1000"


async def test_batch_of_steps_despite_rc_junk(any_box):
    steps = [
        Step("hello", "echo hello"),
        Step("gpu", QUERY),
        Step("fail", "echo oops >&2; exit 3"),
        Step("nonl", "printf 'no newline'"),
    ]
    res = await asyncio.wait_for(any_box.transport.run(steps, deadline=20), 40)
    assert res["hello"].stdout == b"hello\n" and res["hello"].exit_code == 0
    assert res["gpu"].stdout == printed_here(QUERY)
    assert res["gpu"].stdout.startswith(b"0, GPU-03c43c8c-e555-6128-fe25-59eeeed028c2, NVIDIA H100")
    assert res["fail"].exit_code == 3 and res["fail"].stderr == b"oops\n"
    assert res["nonl"].stdout == b"no newline"
    # A second batch reuses the session and is just as clean.
    again = await any_box.transport.run([Step("hello", "echo again")], deadline=20)
    assert again["hello"].stdout == b"again\n"


async def test_step_past_its_remote_timeout(any_box):
    steps = [Step("slow", "sleep 30", timeout=1), Step("next", "echo next")]
    res = await asyncio.wait_for(any_box.transport.run(steps, deadline=20), 40)
    assert res["slow"].exit_code == 124 and res["slow"].timed_out
    assert res["next"].stdout == b"next\n" and res["next"].exit_code == 0


async def test_hang_ignoring_sigterm_client_deadline_first(any_box):
    """The client gives up first: partial result, session dropped, nothing left on the box."""
    await warm(any_box)
    tok = token()
    steps = [Step("before", "echo before"), Step("hang", hang_script(tok), timeout=8)]
    res = await asyncio.wait_for(any_box.transport.run(steps, deadline=2), 30)
    assert res["before"].stdout == b"before\n" and res["before"].exit_code == 0
    assert res["hang"].exit_code is None and res["hang"].timed_out
    # The session with the batch in flight is not reused: a reused one would still be stuck
    # behind the hung step (for its 8 s remote bound) and miss this call's deadline.
    res = await asyncio.wait_for(any_box.transport.run([Step("a", "echo clean")], deadline=4), 30)
    assert res["a"].stdout == b"clean\n" and res["a"].exit_code == 0
    assert await wait_until_gone(tok, within=25) == []


async def test_hang_ignoring_sigterm_remote_timeout_first(any_box):
    """The remote bound fires first: TERM is ignored, so `timeout -k` must SIGKILL (137)."""
    tok = token()
    res = await asyncio.wait_for(
        any_box.transport.run([Step("hang", hang_script(tok), timeout=1)], deadline=30), 60
    )
    assert res["hang"].exit_code == 137
    assert await wait_until_gone(tok, within=20) == []


async def test_deadline_mid_batch_keeps_finished_steps(any_box):
    await warm(any_box)
    tok = token()
    steps = [
        Step("a", "echo a"),
        Step("stuck", f"GD_TOKEN={tok}; export GD_TOKEN; sleep 30", timeout=4),
        Step("after", "echo after"),
    ]
    res = await asyncio.wait_for(any_box.transport.run(steps, deadline=2.5), 30)
    assert res["a"].stdout == b"a\n" and res["a"].exit_code == 0
    assert res["stuck"].exit_code is None and res["after"].exit_code is None
    assert await wait_until_gone(tok, within=20) == []


async def test_binary_output_is_returned_as_bytes(any_box):
    raw = b"\xff\xfe\x00\x1b[2J\x1b]52;c;AAAA\x07\xc3(\n"
    script = "printf '" + "".join(f"\\{b:03o}" for b in raw) + "'"
    res = await any_box.transport.run([Step("bin", script)], deadline=20)
    assert res["bin"].stdout == raw and res["bin"].exit_code == 0


async def test_five_megabytes_is_bounded_and_flagged(any_box):
    steps = [
        Step("small", "echo small"),
        Step("big", "head -c 5000000 /dev/zero", max_bytes=1 << 20),
        Step("later", "echo later"),
    ]
    res = await asyncio.wait_for(any_box.transport.run(steps, deadline=30), 60)
    assert res["small"].stdout == b"small\n"
    assert res["big"].truncated and len(res["big"].stdout) == 1 << 20
    assert not res["later"].stdout or res["later"].truncated
    # The flooded session was dropped; a new one answers.
    res = await any_box.transport.run([Step("a", "echo after flood")], deadline=20)
    assert res["a"].stdout == b"after flood\n"


async def test_quoted_config_value_does_not_inject(any_box, tmp_path):
    canary = tmp_path / "pwned"
    value = f"run'; touch {canary}; $(touch {canary}) `touch {canary}` \"x\" \\ |&"
    step = Step("v", f"printf '%s\\n' {shlex.quote(value)}", params={"value": value})
    res = await any_box.transport.run([step], deadline=20)
    assert res["v"].stdout == value.encode() + b"\n"
    assert not canary.exists()


async def test_stuck_batch_does_not_block_another(any_box):
    await warm(any_box)
    tok = token()
    stuck = asyncio.create_task(
        any_box.transport.run([Step("stuck", f"GD_TOKEN={tok}; export GD_TOKEN; sleep 30", timeout=6)], deadline=60)
    )
    await asyncio.sleep(0)  # let it take its session first
    res = await asyncio.wait_for(any_box.transport.run([Step("q", "echo quick")], deadline=20), 40)
    assert res["q"].stdout == b"quick\n"
    assert not stuck.done()
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert await wait_until_gone(tok, within=20) == []
    res = await any_box.transport.run([Step("q", "echo still fine")], deadline=20)
    assert res["q"].stdout == b"still fine\n"


# ----------------------------------------------------------------------------- streams


async def test_stream_yields_lines_and_ends_at_its_lifetime(any_box):
    # the field list of the recorded series: the stand-in replays that real time series
    step = Step("gpu", SERIES_QUERY + " -lms 100")
    lines = []

    async def consume():
        async for line in any_box.transport.stream(step, sample_timeout=10, lifetime=2):
            lines.append(line)

    await asyncio.wait_for(consume(), 40)  # ends by itself
    series = (H100 / "series-lms500-nounits.csv").read_bytes().splitlines()
    assert len(lines) >= 3
    assert lines == series[: len(lines)]


async def test_stream_raises_on_silence(any_box):
    await warm(any_box)
    tok = token()
    step = Step("quiet", f"GD_TOKEN={tok}; export GD_TOKEN; echo first; sleep 60")
    got = []
    with pytest.raises(TransportError) as err:
        async with contextlib.aclosing(
            any_box.transport.stream(step, sample_timeout=3, lifetime=8)
        ) as lines:
            async for line in lines:
                got.append(line)
    assert err.value.reason is Reason.TIMEOUT
    assert got == [b"first"]
    # `sleep 60` never writes, so no SIGPIPE: over ssh its end is the stream's remote lifetime
    # (closing a channel signals nothing); the local transport kills its session at once.
    assert await wait_until_gone(tok, within=30) == []


async def test_stream_consumer_stops_and_nothing_is_left(any_box):
    tok = token()
    step = Step("tick", f"GD_TOKEN={tok}; export GD_TOKEN; while :; do echo tick; sleep 0.2; done")
    got = []
    async with contextlib.aclosing(
        any_box.transport.stream(step, sample_timeout=10, lifetime=600)
    ) as lines:
        async for line in lines:
            got.append(line)
            if len(got) == 3:
                break
    assert got == [b"tick"] * 3
    assert await wait_until_gone(tok, within=20) == []


async def test_stream_cuts_long_lines(any_box):
    step = Step("long", "head -c 300000 /dev/zero | tr '\\0' a; echo; echo short", max_bytes=100)
    lines = [
        line
        async for line in any_box.transport.stream(step, sample_timeout=10, lifetime=20)
    ]
    assert lines == [b"a" * 100, b"short"]


async def test_close_leaves_no_session_behind(any_box):
    await any_box.transport.run([Step("a", "echo a")], deadline=20)
    assert processes_with(any_box.needle), "the session shell should be alive before close"
    await any_box.transport.close()
    assert await wait_until_gone(any_box.needle, within=20) == []


# ----------------------------------------------------------------------------- local only


async def test_local_kills_the_whole_session_on_deadline():
    t = LocalTransport()
    try:
        tok = token()
        run = t.run([Step("h", hang_script(tok), timeout=600)], deadline=1.5)
        res = await asyncio.wait_for(run, 30)
        assert res["h"].exit_code is None
        # Locally the deadline kills at once, not at the step's 600 s bound.
        assert await wait_until_gone(tok, within=10) == []
    finally:
        await t.close()


async def test_local_session_members_finds_steps_in_their_own_groups():
    t = LocalTransport()
    try:
        tok = token()
        task = asyncio.create_task(t.run([Step("h", hang_script(tok), timeout=60)], deadline=30))
        for _ in range(100):
            if processes_with(tok):
                break
            await asyncio.sleep(0.1)
        pids = processes_with(tok)
        assert pids
        # `timeout` moved the step to its own process group; the session id still finds it.
        sids = {open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[3] for p in pids}
        assert len(sids) == 1
        assert set(pids) <= set(session_members(int(sids.pop())))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await wait_until_gone(tok, within=10) == []
    finally:
        await t.close()


async def test_this_module_runs_on_each_loop(request):
    """The conftest runs these contracts on asyncio's loop and on uvloop (the TUI's loop where
    installed): each test id names the loop it actually ran on."""
    from gpudash.loop import loop_name

    assert f"[{loop_name(asyncio.get_running_loop())}]" in request.node.name


async def test_local_close_waits_for_sessions_torn_down_on_deadline():
    """A session given up at a deadline is torn down in the background; `close()` (the app
    quitting) must wait for that teardown, so nothing it started outlives it and no pipe is
    left for the garbage collector to close on a loop that is gone."""
    t = LocalTransport()
    tok = token()
    res = await asyncio.wait_for(
        t.run([Step("h", hang_script(tok), timeout=600)], deadline=1.5), 30)
    assert res["h"].exit_code is None
    await asyncio.wait_for(t.close(), 30)
    assert processes_with(tok) == []  # at once: close() returned after the teardown
    me = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
    assert not [task for task in pending if "_teardown" in repr(task.get_coro())]
