"""The lazy keepalive (transport/ssh.py ``lazy_keepalive``) keeps asyncssh's rule: no keepalive
while data flows, a keepalive after ``keepalive_interval`` of silence, and the connection closed
when ``keepalive_count_max`` of them go unanswered. Against the in-process server, whose side of
the connection counts the keepalive requests it receives (and, for one test, never answers).
Also: a connection lost while a channel opens."""

from __future__ import annotations

import asyncio

import pytest

from gpudash.transport.base import Step
from gpudash.transport.ssh import SshTransport, lazy_keepalive

ECHO = [Step("a", "echo ok")]
KEEPALIVE = "_process_keepalive_at_openssh_dot_com_global_request"


def count_keepalives(box, *, answer: bool) -> list[float]:
    """Every keepalive request the box's connections receive, by arrival time."""
    seen: list[float] = []
    for conn in box.connections:
        original = getattr(conn, KEEPALIVE)

        def handler(packet, _orig=original):
            seen.append(asyncio.get_running_loop().time())
            if answer:
                _orig(packet)

        setattr(conn, KEEPALIVE, handler)
    return seen


async def until(cond, within: float = 30.0) -> None:
    """A hang guard, not a timing assertion: the condition must come true at some point."""
    async with asyncio.timeout(within):
        while not cond():
            await asyncio.sleep(0.05)


async def test_the_installed_asyncssh_still_has_what_it_takes_over(box):
    t = SshTransport("box")
    try:
        await t.run(ECHO, deadline=20)
        assert lazy_keepalive(t._conn) is True  # else the speed-up silently went away
    finally:
        await t.close()


async def test_no_keepalive_while_data_flows_one_after_silence(box):
    t = SshTransport("box", keepalive_interval=1.0, keepalive_count_max=3)
    try:
        await t.run(ECHO, deadline=20)
        seen = count_keepalives(box, answer=True)
        step = Step("s", "i=0; while [ $i -lt 60 ]; do echo x; sleep 0.05; i=$((i+1)); done")
        lines = [x async for x in t.stream(step, sample_timeout=10, lifetime=60)]
        assert len(lines) == 60
        assert seen == []  # a line every 50 ms for 3 s: never a second of silence
        await until(lambda: len(seen) >= 2)  # quiet now: asyncssh's keepalives, answered
        assert not t._conn.is_closed()
        res = await t.run(ECHO, deadline=20)
        assert res["a"].stdout == b"ok\n" and t.connect_attempts == 1
    finally:
        await t.close()


async def test_unanswered_keepalives_close_the_connection(box):
    t = SshTransport("box", keepalive_interval=0.2, keepalive_count_max=2)
    try:
        await t.run(ECHO, deadline=20)
        conn = t._conn
        seen = count_keepalives(box, answer=False)
        await asyncio.wait_for(conn.wait_closed(), 30)
        assert seen  # it asked (the box serves one global request at a time: later ones queue)
        res = await t.run(ECHO, deadline=20)  # a new connection
        assert res["a"].stdout == b"ok\n" and t.connect_attempts == 2
    finally:
        await t.close()


@pytest.mark.parametrize("missing", ["_loop", "_keepalive_timer_callback", "_reset_keepalive_timer"])
def test_a_connection_without_those_internals_is_left_alone(missing):
    class Conn:
        _keepalive_interval = 15.0
        _keepalive_timer = None

        def __init__(self):
            self._loop = asyncio.new_event_loop()

        def _keepalive_timer_callback(self): ...
        def _reset_keepalive_timer(self): ...
        def _set_keepalive_timer(self): ...
        def _cancel_keepalive_timer(self): ...

    conn = Conn()
    try:
        if missing == "_loop":
            conn._loop.close()
            conn._loop = None
        else:
            delattr(Conn, missing)
        assert lazy_keepalive(conn) is False
        assert "_reset_keepalive_timer" not in vars(conn)
    finally:
        if conn._loop is not None:
            conn._loop.close()


@pytest.mark.parametrize("error", [
    AttributeError("'NoneType' object has no attribute 'session_started'"),
    AssertionError(),  # `assert self._conn is not None` in SSHChannel.get_connection
])
async def test_a_connection_lost_while_a_channel_opens_is_unreachable_not_a_crash(error):
    """asyncssh 2.24 raises AttributeError (its channel's session already gone) or
    AssertionError (its channel's connection already gone) when the connection closes between
    the channel's confirmation and its start."""
    from gpudash.model import Reason
    from gpudash.transport.base import TransportError

    class Lost:
        def __init__(self, closed: bool):
            self.closed = closed

        def is_closed(self):
            return self.closed

        async def create_process(self, command, encoding=None):
            raise error

    t = SshTransport("box")
    t._conn = Lost(closed=True)
    with pytest.raises(TransportError) as err:
        await t._open_process("true")
    assert err.value.reason is Reason.UNREACHABLE
    t._conn = Lost(closed=False)  # the same on an open connection is a bug: not hidden
    with pytest.raises(type(error)):
        await t._open_process("true")
