"""An in-process SSH server that runs what it is asked with a real /bin/sh.

Why not answer from recordings: the transport's framing, remote `timeout`s, SIGPIPE on a closed
channel and process leaks are only tested if real shell processes run. This server behaves like
OpenSSH's sshd where it matters to the client:
- the exec'd command runs as ``/bin/sh -c COMMAND`` with ``PATH`` led by ``tests/bin`` (a fake
  ``nvidia-smi`` printing the H100 fixtures) and ``GD_BOX=<id>`` in its environment, so every
  process of "the box" can be counted;
- when the channel closes it closes the command's pipes but does NOT kill it (sshd does not):
  the remote bounds (``timeout -k``, SIGPIPE) must do that;
- optional rc junk is written to the channel before the command's output, like a login rc file.

Modes: ``exec`` (normal), ``shell_only`` (exec requests rejected: a "basic SSH" gateway),
``no_session`` (session channels refused), ``stall`` (channels open, commands accepted, but
nothing ever runs or answers: a wedged box or link).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from pathlib import Path

import asyncssh

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"

DEFAULT_JUNK = b"Welcome to the box!\n\x1b[1m(base)\x1b[0m conda activated; no trailing newline->"


def processes_with(needle: str) -> list[int]:
    """Live (non-zombie) processes whose command line or environment contains ``needle``."""
    pat = needle.encode()
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            if stat[stat.rfind(b")") + 2 :].startswith(b"Z"):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if pat in cmdline or pat in environ:
            out.append(int(name))
    return out


async def wait_until_gone(needle: str, within: float = 20.0) -> list[int]:
    """Poll for processes carrying ``needle``; return those still alive after ``within`` s.

    Leaking is the bug, not slowness: the wait is generous and only the end state is asserted.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        left = processes_with(needle)
        if not left or loop.time() >= end:
            return left
        await asyncio.sleep(0.2)


def kill_processes_with(needle: str) -> None:
    for pid in processes_with(needle):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class BoxServer:
    """One in-process SSH endpoint on 127.0.0.1 (a random free port)."""

    def __init__(
        self,
        *,
        host_key: asyncssh.SSHKey,
        authorized_key: asyncssh.SSHKey,
        mode: str = "exec",
        rc_junk: bytes = DEFAULT_JUNK,
        home: Path | None = None,
        env: dict[str, str] | None = None,
        ciphers: list[str] | None = None,
    ) -> None:
        assert mode in ("exec", "shell_only", "no_session", "stall")
        self.host_key = host_key
        self.authorized_key = authorized_key
        self.mode = mode
        self.rc_junk = rc_junk
        self.home = home
        self.extra_env = env or {}
        self.ciphers = ciphers  # None: asyncssh's defaults
        self.box_id = "gdbox-" + secrets.token_hex(6)
        self.port = 0
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.commands: list[str] = []
        self.usernames: list[str] = []
        self.alias = ""
        self.sessions_opened = 0
        self._server: asyncssh.SSHAcceptor | None = None

    @property
    def needle(self) -> str:
        """Marks every process started through this server (see :func:`processes_with`)."""
        return f"GD_BOX={self.box_id}"

    async def start(self) -> BoxServer:
        authorized = asyncssh.import_authorized_keys(
            self.authorized_key.export_public_key().decode()
        )
        self._server = await asyncssh.create_server(
            lambda: _Server(self),
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            authorized_client_keys=authorized,
            encoding=None,
            allow_scp=False,
            **({"encryption_algs": self.ciphers} if self.ciphers else {}),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def known_hosts_line(self, key: asyncssh.SSHKey | None = None) -> str:
        pub = (key or self.host_key).export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {pub}\n"

    def drop_connections(self) -> int:
        """Cut every client connection at once, as a dying link or a rebooting box does."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    def box_processes(self) -> list[int]:
        return processes_with(self.needle)

    async def close(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        kill_processes_with(self.needle)  # test teardown: do not leak into the next test

    def env(self) -> dict[str, str]:
        env = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home or "/tmp"),
            "GD_BOX": self.box_id,
            "LANG": "C.UTF-8",
        }
        env.update(self.extra_env)
        return env


class _Server(asyncssh.SSHServer):
    def __init__(self, box: BoxServer) -> None:
        self.box = box
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.box.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.box.connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        self.box.usernames.append(username)
        return True

    def session_requested(self):
        if self.box.mode == "no_session":
            return False
        self.box.sessions_opened += 1
        if self.box.mode == "shell_only":
            return _ShellOnlySession()
        return _ExecSession(self.box)


class _ShellOnlySession(asyncssh.SSHServerSession):
    """A proxied 'basic SSH' gateway: an interactive shell, but no exec."""

    def exec_requested(self, command: str) -> bool:
        return False

    def shell_requested(self) -> bool:
        return True


class _Pump(asyncio.Protocol):
    """Copies one of the command's output pipes to the channel."""

    def __init__(self, write) -> None:
        self.write = write
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        with contextlib.suppress(Exception):
            self.write(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _ExecSession(asyncssh.SSHServerSession):
    def __init__(self, box: BoxServer) -> None:
        self.box = box
        self.chan: asyncssh.SSHServerChannel | None = None
        self.command = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.pipes: list[asyncio.ReadTransport] = []
        self.pending: list[bytes] = []
        self.eof = False
        self.closed = False

    def connection_made(self, chan) -> None:
        self.chan = chan

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        self.command = command
        self.box.commands.append(command)
        return True

    def session_started(self) -> None:
        if self.box.mode == "stall":
            return  # accepted, never run, never answered
        asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        chan = self.chan
        if self.box.rc_junk:
            chan.write(self.box.rc_junk)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", self.command,
                stdin=asyncio.subprocess.PIPE, stdout=out_w, stderr=err_w,
                env=self.box.env(), cwd=str(self.box.home or "/tmp"),
            )
        finally:
            os.close(out_w)
            os.close(err_w)
        pumps = []
        for fd, write in ((out_r, chan.write), (err_r, chan.write_stderr)):
            pump = _Pump(write)
            transport, _ = await loop.connect_read_pipe(lambda p=pump: p, os.fdopen(fd, "rb", 0))
            self.pipes.append(transport)
            pumps.append(pump)
        if self.closed:  # the client went away while we were starting
            self._close_pipes()
        for data in self.pending:
            self.proc.stdin.write(data)
        self.pending.clear()
        if self.eof or self.closed:  # closed: the channel died while the command started;
            self.proc.stdin.close()  # sshd closes its stdin then too (EOF ends a `sh -s`)
        code = await self.proc.wait()
        await asyncio.gather(*(p.done for p in pumps))
        if not self.closed:
            with contextlib.suppress(Exception):
                chan.exit(code if code >= 0 else 128 - code)

    def data_received(self, data: bytes, datatype) -> None:
        if self.proc is None:
            self.pending.append(data)
        elif not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.proc is not None:
            self.proc.stdin.close()
        return True  # keep sending output after the client's EOF

    def pause_writing(self) -> None:
        for t in self.pipes:
            with contextlib.suppress(Exception):
                t.pause_reading()

    def resume_writing(self) -> None:
        for t in self.pipes:
            with contextlib.suppress(Exception):
                t.resume_reading()

    def connection_lost(self, exc) -> None:
        # Like sshd: close the pipes, leave the process to its own bounds.
        self.closed = True
        self._close_pipes()
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()

    def _close_pipes(self) -> None:
        for t in self.pipes:
            with contextlib.suppress(Exception):
                t.close()


class SilentListener:
    """Accepts TCP connections and never sends an SSH banner; counts how many are open at once."""

    def __init__(self) -> None:
        self.port = 0
        self.open_now = 0
        self.max_open = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> SilentListener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        self._writers.add(writer)
        try:
            while await reader.read(4096):  # swallow the client's banner, say nothing
                pass
        except Exception:  # noqa: BLE001 - a reset is how clients give up
            pass
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")
