"""SSH transport failure modes, against the in-process server (real /bin/sh behind it).

Each failure must come back as its own Reason, within the deadline given to the code under
test; ``asyncio.wait_for`` with a wider margin turns "hung" into a test failure. No timing
assertions.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys

import pytest

from gpudash.model import Reason
from gpudash.transport import ssh as ssh_mod
from gpudash.transport.base import Step, TransportError
from gpudash.transport.ssh import SshTarget, SshTransport, parse_target
from tests.services.ssh_server import processes_with, wait_until_gone

ECHO = [Step("a", "echo ok")]


async def fails_with(transport: SshTransport, reason: Reason, deadline: float = 20) -> TransportError:
    with pytest.raises(TransportError) as err:
        await asyncio.wait_for(transport.run(ECHO, deadline=deadline), deadline + 20)
    assert err.value.reason is reason, err.value.message
    assert transport.link.ok is False and transport.link.reason is reason
    return err.value


# ----------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    "text,expected",
    [
        ("box", SshTarget("box")),
        ("gpu-1.example.com", SshTarget("gpu-1.example.com")),
        ("ubuntu@10.0.0.5", SshTarget("10.0.0.5", "ubuntu")),
        ("root@1.2.3.4:2222", SshTarget("1.2.3.4", "root", 2222)),
        ("host:22", SshTarget("host", None, 22)),
        ("me@[::1]:2200", SshTarget("::1", "me", 2200)),
        ("::1", SshTarget("::1")),
        ("ssh://u@h:7", SshTarget("h", "u", 7)),
    ],
)
def test_parse_target(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("bad", ["", "@host", "host:0", "host:99999", "host:x", "-oProxyCommand=x", "a b", "h;rm"])
def test_parse_target_rejects(bad):
    with pytest.raises(ValueError):
        parse_target(bad)


def test_importing_the_transport_does_not_import_asyncssh():
    code = "import sys, gpudash.transport.ssh; print('asyncssh' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- happy paths


async def test_alias_from_ssh_config_is_honoured(box):
    t = SshTransport("box")
    try:
        res = await t.run(ECHO, deadline=20)
        assert res["a"].stdout == b"ok\n"
        assert box.usernames == ["gduser"]  # User from ~/.ssh/config, not the local user
        assert t.link.ok and t.link.last_ok is not None and t.link.reason is None
        await t.run(ECHO, deadline=20)
        assert t.connect_attempts == 1  # one connection, reused
    finally:
        await t.close()


async def test_user_at_host_port_target(box):
    t = SshTransport(f"root@127.0.0.1:{box.port}")  # known_hosts and key from the temp HOME
    try:
        res = await t.run(ECHO, deadline=20)
        assert res["a"].stdout == b"ok\n" and box.usernames == ["root"]
    finally:
        await t.close()


async def test_channels_per_host_are_capped(box):
    t = SshTransport("box", channels=2)
    try:
        runs = [t.run([Step("s", "sleep 0.3; echo done")], deadline=30) for _ in range(6)]
        results = await asyncio.wait_for(asyncio.gather(*runs), 60)
        assert all(r["s"].stdout == b"done\n" for r in results)
        assert box.sessions_opened == 2
    finally:
        await t.close()


async def test_streams_per_host_are_capped(box):
    t = SshTransport("box", max_streams=1)
    try:
        first = t.stream(Step("t", "while :; do echo t; sleep 0.2; done"), sample_timeout=10, lifetime=30)
        assert await first.__anext__() == b"t"
        second = t.stream(Step("u", "echo u"), sample_timeout=1, lifetime=30)
        with pytest.raises(TransportError) as err:
            await asyncio.wait_for(second.__anext__(), 20)
        assert err.value.reason is Reason.TIMEOUT
        await first.aclose()
        third = t.stream(Step("u", "echo u"), sample_timeout=10, lifetime=30)
        assert [x async for x in third] == [b"u"]
    finally:
        await t.close()


async def test_insecure_known_hosts_is_an_explicit_opt_in(make_box):
    await make_box("unk", trust="no")
    strict = SshTransport("unk")
    loose = SshTransport("unk", insecure_known_hosts=True)
    try:
        await fails_with(strict, Reason.HOST_KEY_UNKNOWN)
        res = await loose.run(ECHO, deadline=20)
        assert res["a"].stdout == b"ok\n"
    finally:
        await strict.close()
        await loose.close()


# ----------------------------------------------------------------------------- link failures


async def test_link_dropped_mid_batch_then_recovery(box):
    t = SshTransport("box")
    try:
        await t.run(ECHO, deadline=20)
        tok = "gdtok" + secrets.token_hex(6)
        step = Step("s", f"GD_TOKEN={tok}; export GD_TOKEN; sleep 5; echo late", timeout=10)
        task = asyncio.create_task(t.run([step], deadline=30))
        for _ in range(200):
            if processes_with(tok):
                break
            await asyncio.sleep(0.05)
        assert processes_with(tok), "the step never started"
        assert box.drop_connections() == 1
        with pytest.raises(TransportError) as err:
            await asyncio.wait_for(task, 30)
        assert err.value.reason is Reason.UNREACHABLE
        assert t.link.ok is False and t.link.since is not None
        assert "since" in t.link.message
        # The next call reconnects (a lost link is not a failed connect: no backoff).
        res = await asyncio.wait_for(t.run(ECHO, deadline=20), 40)
        assert res["a"].stdout == b"ok\n"
        assert t.link.ok and t.connect_attempts == 2
        assert await wait_until_gone(tok, within=20) == []
    finally:
        await t.close()


async def test_unknown_host_key(make_box):
    await make_box("newbox", trust="no")
    t = SshTransport("newbox")
    err = await fails_with(t, Reason.HOST_KEY_UNKNOWN)
    assert "ssh newbox" in err.message


async def test_changed_host_key(make_box):
    await make_box("recreated", trust="other")
    t = SshTransport("recreated")
    err = await fails_with(t, Reason.HOST_KEY_CHANGED)
    assert "ssh recreated" in err.message


async def test_auth_failure(make_box):
    await make_box("locked", auth=False)
    await fails_with(SshTransport("locked"), Reason.AUTH_FAILED)


async def test_closed_port(ssh_home, free_closed_port):
    ssh_home.add_alias("gone", free_closed_port)
    err = await fails_with(SshTransport("gone"), Reason.UNREACHABLE)
    assert "unreachable since" in err.message


async def test_bannerless_listener_hits_connect_timeout(ssh_home, silent_listener):
    ssh_home.add_alias("mute", silent_listener.port)
    t = SshTransport("mute", connect_timeout=1.5)
    await fails_with(t, Reason.UNREACHABLE, deadline=30)
    assert silent_listener.accepted == 1


async def test_bannerless_listener_hits_the_call_deadline(ssh_home, silent_listener):
    ssh_home.add_alias("mute", silent_listener.port)
    t = SshTransport("mute", connect_timeout=60)
    try:
        await fails_with(t, Reason.UNREACHABLE, deadline=1.5)
    finally:
        await t.close()


@pytest.mark.parametrize("mode", ["shell_only", "no_session"])
async def test_exec_refused_is_exec_unsupported(make_box, mode):
    await make_box("gateway", mode=mode)
    t = SshTransport("gateway")
    try:
        err = await fails_with(t, Reason.EXEC_UNSUPPORTED)
        assert "direct TCP" in err.message
    finally:
        await t.close()


async def test_backoff_answers_at_once_without_a_new_attempt(ssh_home, free_closed_port):
    ssh_home.add_alias("gone", free_closed_port)
    t = SshTransport("gone", backoff_initial=30)
    await fails_with(t, Reason.UNREACHABLE)
    err = await fails_with(t, Reason.UNREACHABLE)
    assert "next try" in err.message
    assert t.connect_attempts == 1


async def test_backoff_retries_after_its_delay(ssh_home, free_closed_port):
    ssh_home.add_alias("gone", free_closed_port)
    t = SshTransport("gone", backoff_initial=0.2)
    await fails_with(t, Reason.UNREACHABLE)
    await asyncio.sleep(1.0)  # past 0.2 s x 1.25 jitter
    await fails_with(t, Reason.UNREACHABLE)
    assert t.connect_attempts == 2


async def test_silent_box_gets_its_connection_dropped(make_box):
    """Channels open but nothing ever answers: partial results, then the connection is
    aborted (a wedged link is not kept until keepalives notice) and the next call reconnects."""
    await make_box("frozen", mode="stall")
    t = SshTransport("frozen")
    try:
        res = await asyncio.wait_for(t.run(ECHO, deadline=1.5), 30)
        assert res["a"].exit_code is None
        assert t.link.ok is False and t.link.reason is Reason.UNREACHABLE
        await asyncio.wait_for(t.run(ECHO, deadline=1.5), 30)
        assert t.connect_attempts == 2
    finally:
        await t.close()


async def test_waiting_for_a_connect_slot_is_a_timeout_not_unreachable(make_box, ssh_home, silent_listener):
    await make_box("fine")
    ssh_home.add_alias("mute", silent_listener.port)
    ssh_mod.set_connect_limit(1)
    try:
        blocker = SshTransport("mute", connect_timeout=5)
        hog = asyncio.create_task(blocker.run(ECHO, deadline=30))
        while silent_listener.accepted == 0:
            await asyncio.sleep(0.05)
        queued = SshTransport("fine")
        with pytest.raises(TransportError) as err:
            await asyncio.wait_for(queued.run(ECHO, deadline=1), 20)
        assert err.value.reason is Reason.TIMEOUT
        assert queued.link.reason is None and queued.link.last_ok is None  # nothing learnt
        with pytest.raises(TransportError):
            await asyncio.wait_for(hog, 30)
        await queued.close()
    finally:
        ssh_mod.set_connect_limit(ssh_mod.DEFAULT_CONNECT_LIMIT)


async def test_connect_semaphore_caps_concurrent_connects(ssh_home, silent_listener):
    ssh_home.add_alias("mute", silent_listener.port)
    ssh_mod.set_connect_limit(3)
    try:
        transports = [SshTransport("mute", connect_timeout=3) for _ in range(9)]
        calls = [t.run(ECHO, deadline=60) for t in transports]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 90)
        assert all(isinstance(r, TransportError) and r.reason is Reason.UNREACHABLE for r in results)
        assert silent_listener.accepted == 9
        assert silent_listener.max_open == 3
    finally:
        ssh_mod.set_connect_limit(ssh_mod.DEFAULT_CONNECT_LIMIT)
