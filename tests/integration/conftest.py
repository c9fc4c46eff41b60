"""Fixtures for transport tests: SSH endpoints (in-process and a real sshd) and client homes.

The client side always uses a temp ``HOME`` (asyncssh follows ``$HOME``) holding only
``.ssh/config``, a key and ``known_hosts``: the tests exercise the same lookups a user's
``~/.ssh`` gets, and never read the real one. ``SSH_AUTH_SOCK`` is removed so a developer's
agent cannot make an auth-failure test pass.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services.require import require
from tests.services.ssh_server import BoxServer, SilentListener, closed_port, new_key
from tests.services.sshd import RealSshd, sshd_binary


@dataclass
class SshHome:
    """A client HOME: ``~/.ssh/{config,known_hosts,id_ed25519}``."""

    path: Path
    client_key: object
    aliases: list[str] = field(default_factory=list)

    @property
    def ssh(self) -> Path:
        return self.path / ".ssh"

    @property
    def known_hosts(self) -> Path:
        return self.ssh / "known_hosts"

    def trust(self, line: str) -> None:
        with open(self.known_hosts, "a") as f:
            f.write(line)

    def add_alias(self, alias: str, port: int, *, user: str = "gduser", extra: str = "") -> str:
        with open(self.ssh / "config", "a") as f:
            f.write(
                f"Host {alias}\n    HostName 127.0.0.1\n    Port {port}\n    User {user}\n"
                f"    IdentityFile {self.ssh / 'id_ed25519'}\n{extra}\n"
            )
        self.aliases.append(alias)
        return alias


@pytest.fixture
def ssh_home(tmp_path, monkeypatch) -> SshHome:
    home = tmp_path / "client-home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    key = new_key()
    (ssh / "id_ed25519").write_bytes(key.export_private_key())
    os.chmod(ssh / "id_ed25519", 0o600)
    (ssh / "id_ed25519.pub").write_bytes(key.export_public_key())
    (ssh / "known_hosts").write_text("")
    (ssh / "config").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return SshHome(home, key)


@pytest.fixture
async def make_box(ssh_home, tmp_path):
    """Start in-process SSH endpoints: ``await make_box(alias, mode=..., trust=..., auth=...)``.

    ``trust``: "yes" (its key in known_hosts), "no" (absent), "other" (a different key listed
    for it: a changed host key). ``auth``: whether the client's key is authorised. ``ciphers``:
    the only ones it accepts (default: asyncssh's).
    """
    servers: list[BoxServer] = []

    async def factory(
        alias: str = "box", *, mode: str = "exec", trust: str = "yes", auth: bool = True,
        rc_junk: bytes | None = None, ciphers: list[str] | None = None,
    ) -> BoxServer:
        box_home = tmp_path / f"box-home-{alias}"
        box_home.mkdir(exist_ok=True)
        kwargs = {} if rc_junk is None else {"rc_junk": rc_junk}
        server = BoxServer(
            host_key=new_key(),
            authorized_key=ssh_home.client_key if auth else new_key(),
            mode=mode, home=box_home, ciphers=ciphers, **kwargs,
        )
        await server.start()
        servers.append(server)
        if trust == "yes":
            ssh_home.trust(server.known_hosts_line())
        elif trust == "other":
            ssh_home.trust(server.known_hosts_line(new_key()))
        ssh_home.add_alias(alias, server.port)
        server.alias = alias
        return server

    yield factory
    for server in servers:
        await server.close()


@pytest.fixture
async def box(make_box) -> BoxServer:
    """A normal box: trusted host key, authorised client key, rc junk, alias ``box``."""
    return await make_box("box")


@pytest.fixture
async def silent_listener():
    listener = await SilentListener().start()
    yield listener
    await listener.close()


@pytest.fixture
def free_closed_port() -> int:
    return closed_port()


# ----------------------------------------------------------------------------- event loops

# The TUI runs on uvloop where it is installed (gpudash/loop.py): the transports' contracts
# (batches, deadlines, streams, keepalives, process groups) run on both loops here.
BOTH_LOOPS = {"test_transport_local", "test_transport_ssh", "test_transport_sshd",
              "test_gpu_stream", "test_log_follow", "test_ssh_keepalive"}


def pytest_asyncio_loop_factories(config, item):
    factories = {"asyncio": asyncio.new_event_loop}
    if item.module.__name__.rsplit(".", 1)[-1] in BOTH_LOOPS:
        factories["uvloop"] = _uvloop_factory
    return factories


def _uvloop_factory():
    try:
        import uvloop
    except ImportError:  # a dependency on Linux: missing is a broken install under CI
        require(False, "uvloop is not installed (pip install -e .)")
    return uvloop.new_event_loop()


# ----------------------------------------------------------------------------- real sshd


@pytest.fixture(scope="session")
def real_sshd(tmp_path_factory) -> RealSshd:
    """A real OpenSSH sshd for the whole session (skipped if absent; a failure under CI)."""
    binary = sshd_binary()
    require(binary is not None, "OpenSSH sshd is not installed (apt-get install openssh-server)")
    require(bool(__import__("shutil").which("ssh-keygen")), "ssh-keygen is not installed")
    server = RealSshd(tmp_path_factory.mktemp("sshd"), binary).start()
    yield server
    server.stop()


@pytest.fixture
def sshd_home(real_sshd, monkeypatch) -> RealSshd:
    """Point asyncssh at the real sshd's client HOME for one test."""
    monkeypatch.setenv("HOME", str(real_sshd.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return real_sshd


# ----------------------------------------------------------------------------- any transport


@dataclass
class Box:
    """A transport and a way to see its box's processes (all of them live on this machine)."""

    kind: str
    transport: object
    needle: str  # in the environment of every process of this box


@pytest.fixture(params=["local", "ssh", "sshd"])
async def any_box(request, make_box):
    """The same contract, three ways: local subprocesses, in-process SSH, real sshd."""
    from gpudash.transport.local import LocalTransport
    from gpudash.transport.ssh import SshTransport
    from tests.services.ssh_server import BIN

    if request.param == "local":
        needle = f"GD_BOX=gdlocal-{os.urandom(6).hex()}"
        env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        env["GD_BOX"] = needle.split("=", 1)[1]
        transport = LocalTransport(env=env)
    elif request.param == "ssh":
        server = await make_box("box")
        needle = server.needle
        transport = SshTransport("box")
    else:
        needle = request.getfixturevalue("sshd_home").needle
        transport = SshTransport(RealSshd.alias)
    try:
        yield Box(request.param, transport, needle)
    finally:
        await transport.close()
