"""A private, real tmux server for tests, and a way to run a probe Step like a transport does.

The server listens on its own socket (``tmux -L <unique>``) and reads no config file, so tests
never touch the developer's own tmux sessions; it is killed after the test. Skipped when tmux is
missing — except under CI=true, where that fails (tests/services/require.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest

from gpudash.transport.base import Step
from tests.services.require import require_binary


@dataclass(frozen=True)
class ShResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


def run_step(step: Step, *, env: dict | None = None, cwd: str | None = None) -> ShResult:
    """Run a Step's script the way the framed session does: ``timeout -k 1 T /bin/sh -c SCRIPT``
    with stdin from /dev/null. Real /bin/sh, real tools."""
    t = max(1, int(round(step.timeout)))
    proc = subprocess.run(
        ["timeout", "-k", "1", str(t), "/bin/sh", "-c", step.script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=t + 10,
    )
    return ShResult(proc.stdout, proc.stderr, proc.returncode)


@dataclass
class TmuxServer:
    socket: str
    tmux: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        return subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=20,
        )

    def reap(self) -> None:
        """Send the server a SIGCHLD. tmux 3.3a can mark a pane dead on its pty's EOF and leave
        the exited child unreaped (a lost SIGCHLD: seen as a zombie for 20 s and more, with no
        #{pane_dead_status}); its SIGCHLD handler reaps every exited child, so this settles it."""
        pid = self.run("display-message", "-p", "#{pid}", check=False).stdout.strip()
        if pid.isdigit():
            try:
                os.kill(int(pid), signal.SIGCHLD)
            except ProcessLookupError:
                pass

    def new_session(self, name: str, command: str) -> None:
        self.run("new-session", "-d", "-s", name, "-x", "120", "-y", "40", command)

    def wait_for(self, predicate, what: str, bound_s: float = 20.0):
        """Poll ``predicate()`` until it returns a truthy value (bounded, generous)."""
        end = time.monotonic() + bound_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"tmux: gave up waiting for {what}")
            time.sleep(0.05)


@pytest.fixture
def tmux_server():
    tmux = require_binary("tmux", "the tmux probe tests need a real tmux")
    server = TmuxServer(socket=f"gpudash-test-{os.getpid()}-{uuid.uuid4().hex[:8]}", tmux=tmux)
    # A placeholder session starts the server; remain-on-exit must be set globally BEFORE a
    # session whose command ends at once is created, or its pane is gone before we look.
    server.new_session("keep", "sleep 600")
    server.run("set-option", "-g", "remain-on-exit", "on")
    try:
        yield server
    finally:
        server.run("kill-server", check=False)
