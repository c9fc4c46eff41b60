"""End to end against a real OpenSSH sshd (tests/services/sshd.py): skipped when sshd is absent,
a failure under CI=true. The box's login shell prints junk from its rc file on every channel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess

import pytest

from gpudash.model import Reason
from gpudash.transport.base import Step, TransportError
from gpudash.transport.ssh import SshTransport
from tests.services.ssh_server import BIN, processes_with, wait_until_gone
from tests.services.sshd import JUNK, RealSshd

pytestmark = pytest.mark.sshd


def client_home(real_sshd: RealSshd, tmp_path, monkeypatch, *, known_hosts: str, key: str = "own"):
    """A second client HOME for the same sshd, with its own known_hosts and key."""
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    identity = real_sshd.identity
    if key == "other":
        identity = ssh / "id_other"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(identity)], check=True)
    (ssh / "known_hosts").write_text(known_hosts)
    (ssh / "config").write_text(
        f"Host {real_sshd.alias}\n    HostName 127.0.0.1\n    Port {real_sshd.port}\n"
        f"    User {real_sshd.user}\n    IdentityFile {identity}\n    IdentitiesOnly yes\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def test_the_box_really_prints_rc_junk(real_sshd):
    out = real_sshd.run_as_box("echo payload")
    assert out.returncode == 0
    assert JUNK.encode() in out.stdout and out.stdout.endswith(b"payload\n")


async def test_alias_path_and_junk_free_results(sshd_home):
    t = SshTransport(sshd_home.alias)
    try:
        res = await t.run(
            [
                Step("which", "command -v nvidia-smi"),
                Step("gpu", "nvidia-smi --query-gpu=index --format=csv,noheader,nounits"),
                Step("home", 'printf %s "$HOME"'),
            ],
            deadline=20,
        )
        assert res["which"].stdout == f"{BIN}/nvidia-smi\n".encode()
        direct = subprocess.run(
            [f"{BIN}/nvidia-smi", "--query-gpu=index", "--format=csv,noheader,nounits"],
            capture_output=True, check=True,
        )
        assert res["gpu"].stdout == direct.stdout and res["gpu"].exit_code == 0
        assert res["home"].stdout == str(sshd_home.box_home).encode()
        assert all(JUNK.encode() not in r.stdout for r in res.values())
    finally:
        await t.close()


async def test_unknown_host_key(real_sshd, tmp_path, monkeypatch):
    client_home(real_sshd, tmp_path, monkeypatch, known_hosts="")
    t = SshTransport(real_sshd.alias)
    with pytest.raises(TransportError) as err:
        await asyncio.wait_for(t.run([Step("a", "true")], deadline=20), 40)
    assert err.value.reason is Reason.HOST_KEY_UNKNOWN


async def test_changed_host_key(real_sshd, tmp_path, monkeypatch):
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, pub = other.with_suffix(".pub").read_text().split()[:2]
    client_home(real_sshd, tmp_path, monkeypatch, known_hosts=f"[127.0.0.1]:{real_sshd.port} {kind} {pub}\n")
    t = SshTransport(real_sshd.alias)
    with pytest.raises(TransportError) as err:
        await asyncio.wait_for(t.run([Step("a", "true")], deadline=20), 40)
    assert err.value.reason is Reason.HOST_KEY_CHANGED


async def test_auth_failure(real_sshd, tmp_path, monkeypatch):
    client_home(
        real_sshd, tmp_path, monkeypatch, key="other",
        known_hosts=real_sshd.known_hosts.read_text(),
    )
    t = SshTransport(real_sshd.alias)
    with pytest.raises(TransportError) as err:
        await asyncio.wait_for(t.run([Step("a", "true")], deadline=20), 40)
    assert err.value.reason is Reason.AUTH_FAILED


def _connection_processes(real_sshd: RealSshd) -> list[int]:
    """sshd's per-connection processes (monitor and session): sshd descendants of the listener."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,comm="], capture_output=True, text=True)
    rows = [line.split(None, 2) for line in out.stdout.splitlines()]
    procs = {int(pid): (int(ppid), comm.strip()) for pid, ppid, comm in rows}
    found, frontier = [], {real_sshd.proc.pid}
    while frontier:
        children = {p for p, (pp, comm) in procs.items() if pp in frontier and comm == "sshd"}
        found += children
        frontier = children
    return found


async def test_link_killed_mid_batch_then_recovery(sshd_home):
    t = SshTransport(sshd_home.alias)
    try:
        await t.run([Step("a", "true")], deadline=20)
        tok = "gdtok" + secrets.token_hex(6)
        step = Step("s", f"GD_TOKEN={tok}; export GD_TOKEN; sleep 4; echo late", timeout=8)
        task = asyncio.create_task(t.run([step], deadline=30))
        for _ in range(200):
            if processes_with(tok):
                break
            await asyncio.sleep(0.05)
        assert processes_with(tok), "the step never started"
        for pid in _connection_processes(sshd_home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the box side of the link dies
        with pytest.raises(TransportError) as err:
            await asyncio.wait_for(task, 30)
        assert err.value.reason is Reason.UNREACHABLE
        res = await asyncio.wait_for(t.run([Step("a", "echo back")], deadline=20), 40)
        assert res["a"].stdout == b"back\n" and t.link.ok
        assert await wait_until_gone(tok, within=20) == []
    finally:
        await t.close()


async def test_channel_caps_fit_under_maxsessions(sshd_home):
    """3 pooled sessions + 5 streams on one connection: all open (MaxSessions is 10)."""
    t = SshTransport(sshd_home.alias, channels=3, max_streams=5)
    try:
        async def one_stream(i: int) -> list[bytes]:
            step = Step(f"s{i}", f"i=0; while [ $i -lt 3 ]; do echo s{i}; i=$((i+1)); sleep 0.3; done")
            return [x async for x in t.stream(step, sample_timeout=15, lifetime=30)]

        streams = [one_stream(i) for i in range(5)]
        runs = [t.run([Step("r", "sleep 0.5; echo r")], deadline=30) for _ in range(6)]
        results = await asyncio.wait_for(asyncio.gather(*streams, *runs), 90)
        for i, lines in enumerate(results[:5]):
            assert lines == [f"s{i}".encode()] * 3
        assert all(r["r"].stdout == b"r\n" for r in results[5:])
    finally:
        await t.close()
    assert await wait_until_gone(sshd_home.needle, within=20) == []
