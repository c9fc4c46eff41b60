"""asyncssh pads every packet it sends with an SSH_MSG_IGNORE before it, a countermeasure for
CBC ciphers only (transport/ssh.py ``skip_ignore_padding``). OpenSSH sends none. gpudash's
connections skip them on the ciphers that need none, and keep them on CBC. Observed on the
in-process box's side: the packets its connections actually receive."""

from __future__ import annotations

from collections import Counter

import asyncssh.packet
import pytest

from gpudash.transport.base import Step
from gpudash.transport.ssh import SshTransport, skip_ignore_padding

MSG_IGNORE, MSG_CHANNEL_DATA = 2, 94
ECHO = [Step("a", "echo ok"), Step("b", "printf 'x%.0s' 1 2 3")]


def count_received(box, monkeypatch) -> Counter:
    """Every packet type the box's connections (and their channels) receive from now on."""
    seen: Counter = Counter()
    conns = set(box.connections)
    original = asyncssh.packet.SSHPacketLogger.log_received_packet

    def log(self, pkttype, pktid, packet, note=""):
        if self in conns or getattr(self, "_conn", None) in conns:
            seen[pkttype] += 1
        original(self, pkttype, pktid, packet, note)

    monkeypatch.setattr(asyncssh.packet.SSHPacketLogger, "log_received_packet", log)
    return seen


async def _traffic(t: SshTransport) -> None:
    """Batches and a stream: every kind of packet a watch sends after login."""
    for _ in range(5):
        res = await t.run(ECHO, deadline=20)
        assert res["a"].stdout == b"ok\n" and res["b"].stdout == b"xxx"
    step = Step("s", "for i in 1 2 3; do echo $i; done")
    assert [x async for x in t.stream(step, sample_timeout=10, lifetime=60)] == [b"1", b"2", b"3"]


@pytest.mark.parametrize("ciphers, negotiated", [
    (None, "aes128-gcm@openssh.com"),  # what gpudash prefers, against the box's defaults
    (["chacha20-poly1305@openssh.com"], "chacha20-poly1305@openssh.com"),
    (["aes256-ctr"], "aes256-ctr"),  # counter mode needs none either
])
async def test_no_ignore_packets_without_cbc(make_box, monkeypatch, ciphers, negotiated):
    box = await make_box("nocbc", ciphers=ciphers)
    t = SshTransport("nocbc")
    try:
        await t.run(ECHO, deadline=20)
        assert t._conn.get_extra_info("send_cipher") == negotiated
        seen = count_received(box, monkeypatch)
        await _traffic(t)
        assert seen[MSG_CHANNEL_DATA] >= 5  # the traffic was seen …
        assert seen[MSG_IGNORE] == 0  # … and came without padding
    finally:
        await t.close()


async def test_a_cbc_cipher_keeps_the_padding(make_box, monkeypatch):
    box = await make_box("cbcbox", ciphers=["aes128-cbc"])
    t = SshTransport("cbcbox")
    orig = t._connect_kwargs
    t._connect_kwargs = lambda: {**orig(), "encryption_algs": ["aes128-cbc"]}  # as an ssh config could
    try:
        await t.run(ECHO, deadline=20)
        assert t._conn.get_extra_info("send_cipher") == "aes128-cbc"
        seen = count_received(box, monkeypatch)
        await _traffic(t)
        assert seen[MSG_CHANNEL_DATA] >= 5
        assert seen[MSG_IGNORE] >= seen[MSG_CHANNEL_DATA]  # one before every packet, as asyncssh does
    finally:
        await t.close()


async def test_the_installed_asyncssh_still_has_the_hook(box):
    t = SshTransport("box")
    try:
        await t.run(ECHO, deadline=20)
        assert skip_ignore_padding(t._conn) is True  # else the saving silently went away
    finally:
        await t.close()
