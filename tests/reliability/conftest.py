"""Fixtures of the reliability suite: boxes whose faults a test can switch on and off.

The SSH endpoints are the integration suite's own (imported below, not re-implemented): the
in-process asyncssh server running real ``/bin/sh``, and the real OpenSSH sshd. On top of them:

- a **kit** per box: a ``bin`` dir first on the box's PATH holding an ``nvidia-smi`` wrapper whose
  behaviour is read from a control FILE at every start (``kit.gpu("hang")``). A file, not an
  environment variable: gpudash keeps one long-lived ``/bin/sh -s`` per channel, so an env change
  would only reach sessions opened later. The wrapper appends a line per start to ``calls``, so
  "no second nvidia-smi was started" is countable. Every other mode execs the stand-in
  ``tests/bin/nvidia-smi`` (the real H100 captures);
- a **D-state** ``nvidia-smi``: the GPU engineer's vfork program (tests/unit/test_probe_gpu.py),
  whose parent sits in uninterruptible sleep like a process stuck in the driver;
- :class:`OwnSshd`, a private real sshd that can be stopped and started again on the same port;
- ``within``: await something the code promised to finish within a deadline, record the elapsed
  time against THAT deadline (an overrun is a counted failure), and never hang the suite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The integration suite's SSH fixtures, reused as they are (pytest finds fixtures imported here).
from tests.integration.conftest import (  # noqa: F401
    SshHome,
    box,
    free_closed_port,
    make_box,
    real_sshd,
    silent_listener,
    ssh_home,
    sshd_home,
)
from tests.reliability.figures import FIGURES, GRACE_S, Recorder
from tests.services.require import require
from tests.services.ssh_server import BIN, BoxServer, processes_with, wait_until_gone
from tests.services.sshd import RealSshd, sshd_binary

ROOT = Path(__file__).resolve().parents[2]
HARD_MARGIN_S = 30.0  # past deadline + this, a call is declared hung and the test fails

# ----------------------------------------------------------------------------- figures


@pytest.fixture
def figures(request) -> Recorder:
    return Recorder(FIGURES, request.node.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        FIGURES.outcomes["skipped" if report.skipped else "passed" if report.passed else "failed"] += 1
        FIGURES.settle(item.nodeid, report.passed)
        if report.failed and call.excinfo is not None and not call.excinfo.errisinstance(
                (AssertionError, pytest.fail.Exception)):
            FIGURES.crashes.append(f"{item.nodeid}: {call.excinfo.typename}")


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("GD_RELIABILITY_JSON")
    if out:
        FIGURES.write(out)


async def within(figures: Recorder, what: str, awaitable, deadline: float,
                 grace: float = GRACE_S):
    """Await ``awaitable``, which the code under test promised to finish within ``deadline``
    seconds; record the elapsed time; fail on an overrun. A real hang fails after
    ``deadline + HARD_MARGIN_S`` instead of freezing the suite."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        result = await asyncio.wait_for(awaitable, deadline + HARD_MARGIN_S)
    except TimeoutError:
        figures.deadline(what, loop.time() - t0, deadline, grace)
        raise AssertionError(f"{what}: still running {deadline + HARD_MARGIN_S:.0f}s after a "
                             f"{deadline:g}s deadline") from None
    elapsed = loop.time() - t0
    over = figures.deadline(what, elapsed, deadline, grace)
    assert not over, f"{what}: took {elapsed:.2f}s against a {deadline:g}s deadline"
    return result


# ----------------------------------------------------------------------------- the box kit

WRAPPER = r"""#!/bin/sh
# nvidia-smi as a test wants it: the mode comes from a control file read at every start.
echo "$$ $*" >> {calls}
mode=$(cat {ctl} 2>/dev/null)
case $mode in
  hang) trap '' TERM INT HUP; while :; do sleep 1; done ;;
  slow) sleep 2 ;;
  nvml) echo "Failed to initialize NVML: Driver/library version mismatch"
        echo "NVML library version: 535.183"; exit 18 ;;
  lost) echo "Unable to determine the device handle for GPU0000:00:06.0: GPU is lost.  Reboot the system to recover this GPU"; exit 15 ;;
  nodev) echo "No devices were found"; exit 6 ;;
  notfound) echo "sh: 1: nvidia-smi: not found" >&2; exit 127 ;;
  field) echo 'Field "clocks_throttle_reasons.active" is not a valid field to query.'; echo; exit 2 ;;
  noload) echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9 ;;
  noperm) echo "Insufficient Permissions"; exit 4 ;;
  hostile) printf '0, GPU-1, H100 \033[2J\033]52;c;ZXZpbA==\007[bold red]x[/] \302\233\342\200\256evil, 00000000:18:00.0, 535.183, P0, 30, 40, 1, 2, 81559, 10, 81549, 70, 700, 1980, 2619, 1980, [N/A], Disabled, Default\n'; exit 0 ;;
esac
exec {real} "$@"
"""

#: every nvidia-smi failure of domain.md: mode -> (exit code, expected Reason value, message needle)
GPU_ERRORS = {
    "nvml": (18, "nvidia_smi_error", "Driver/library version mismatch"),
    "lost": (15, "nvidia_smi_error", "GPU is lost"),
    "nodev": (6, "no_gpu", "found no NVIDIA GPU"),
    "notfound": (127, "no_gpu", "no nvidia-smi"),
    "field": (2, "nvidia_smi_error", "is not a valid field to query"),
    "noload": (9, "nvidia_smi_error", "driver is not loaded"),
    "noperm": (4, "nvidia_smi_error", "no permission"),
}


@dataclass
class Kit:
    root: Path
    bin: Path = field(init=False)
    ctl: Path = field(init=False)
    calls_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.ctl = self.root / "gpu-mode"
        self.calls_file = self.root / "nvsmi-calls"
        self.calls_file.write_text("")
        wrapper = self.bin / "nvidia-smi"
        wrapper.write_text(WRAPPER.format(calls=self.calls_file, ctl=self.ctl,
                                          real=BIN / "nvidia-smi"))
        wrapper.chmod(0o755)

    def gpu(self, mode: str | None) -> None:
        if mode:
            self.ctl.write_text(mode)
        elif self.ctl.exists():
            self.ctl.unlink()

    def calls(self) -> int:
        return len(self.calls_file.read_text().splitlines())


@pytest.fixture
def kit(tmp_path) -> Kit:
    return Kit(tmp_path / "kit")


# ----------------------------------------------------------------------------- remote boxes


@dataclass
class Remote:
    """One SSH box under test, in-process or the real sshd, seen the same way by a test."""

    kind: str  # "ssh" (in-process asyncssh) | "sshd" (real OpenSSH)
    alias: str
    needle: str  # in the environment of every process of the box
    kit: Kit
    home: Path  # the client HOME (for `gpudash status` subprocesses)
    server: BoxServer | None = None
    sshd: RealSshd | None = None

    @property
    def where(self) -> str:
        return "in-process ssh" if self.kind == "ssh" else "real sshd"

    def transport(self, **kw):
        from gpudash.transport.ssh import SshTransport

        return SshTransport(self.alias, **kw)

    def box_processes(self) -> list[int]:
        return processes_with(self.needle)

    def drop_link(self) -> int:
        """Cut every connection from the box's side, as a dying link does."""
        if self.server is not None:
            return self.server.drop_connections()
        return kill_sshd_sessions(self.sshd.proc.pid)


def sshd_sessions(listener_pid: int) -> list[int]:
    """The per-connection processes a real sshd forked (its direct children)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == listener_pid and rest[0] != b"Z":
            out.append(int(name))
    return out


def kill_sshd_sessions(listener_pid: int) -> int:
    pids = sshd_sessions(listener_pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)


def _sshd_rc_with_kit(sshd: RealSshd, kit: Kit):
    rc = sshd.box_home / ".bashrc"
    original = rc.read_text()
    rc.write_text(original + f"export PATH='{kit.bin}':\"$PATH\"\n")
    return rc, original


@pytest.fixture(params=["ssh", "sshd"])
async def remote(request, make_box, ssh_home, kit):
    """The same fault, two ways: the in-process server and the real sshd."""
    if request.param == "ssh":
        server = await make_box("box")
        server.extra_env["PATH"] = f"{kit.bin}:{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        yield Remote("ssh", "box", server.needle, kit, ssh_home.path, server=server)
        return
    sshd = request.getfixturevalue("real_sshd")
    request.getfixturevalue("sshd_home")  # HOME -> the sshd's client home, for this test
    rc, original = _sshd_rc_with_kit(sshd, kit)
    try:
        yield Remote("sshd", sshd.alias, sshd.needle, kit, sshd.home, sshd=sshd)
    finally:
        rc.write_text(original)
        for pid in processes_with(sshd.needle):
            with _quiet():
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def inproc(make_box, ssh_home, kit) -> Remote:
    """Only the in-process server (faults that need its switches, or are not about sshd)."""
    server = await make_box("box")
    server.extra_env["PATH"] = f"{kit.bin}:{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return Remote("ssh", "box", server.needle, kit, ssh_home.path, server=server)


@pytest.fixture
def sshd_remote(real_sshd, sshd_home, kit):
    rc, original = _sshd_rc_with_kit(real_sshd, kit)
    try:
        yield Remote("sshd", real_sshd.alias, real_sshd.needle, kit, real_sshd.home, sshd=real_sshd)
    finally:
        rc.write_text(original)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


# ----------------------------------------------------------------------------- a private sshd


class OwnSshd(RealSshd):
    """A real sshd this test may stop and start again on the same port (a restart while
    clients are connected, or a box that reboots)."""

    def _cmd(self) -> list[str]:
        return [self.sshd, "-D", "-e", "-f", str(self.root / "sshd_config")]

    def stop_listener(self, *, kill_sessions: bool) -> None:
        """Stop the daemon. ``kill_sessions``: its connections die too (a reboot); otherwise
        they live on, as `systemctl restart ssh` leaves them."""
        if kill_sessions:
            kill_sshd_sessions(self.proc.pid)
        self.proc.terminate()
        self.proc.wait(10)

    def start_again(self) -> None:
        self.proc = subprocess.Popen(self._cmd(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        self._wait_ready()


@pytest.fixture
def own_sshd(tmp_path, monkeypatch):
    binary = sshd_binary()
    require(binary is not None, "OpenSSH sshd is not installed (apt-get install openssh-server)")
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed")
    root = tmp_path / "own-sshd"
    root.mkdir()
    server = OwnSshd(root, binary).start()
    monkeypatch.setenv("HOME", str(server.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    yield server
    server.stop()


# ----------------------------------------------------------------------------- D state

VFORK_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* The vfork parent waits in uninterruptible sleep (state D) until the child exits: a faithful
   stand-in for an nvidia-smi stuck in the driver. The child prints its pid and sleeps argv[1]
   milliseconds (default 120 s): a short one is a healthy nvidia-smi passing through D. */
int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 120000;
    pid_t p = vfork();
    if (p == 0) { char b[32]; int n = snprintf(b, sizeof b, "%d\n", (int)getpid());
                  write(1, b, n); usleep(ms * 1000); _exit(0); }
    return 0;
}
"""


@pytest.fixture(scope="session")
def dstate_binary(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    require(cc is not None, "no C compiler to build a D-state stand-in for a hung nvidia-smi")
    d = tmp_path_factory.mktemp("dstate")
    (d / "vfork.c").write_text(VFORK_C)
    exe = d / "stuck" / "nvidia-smi"  # comm "nvidia-smi": what the guard's pgrep looks for
    exe.parent.mkdir()
    subprocess.run([cc, "-o", str(exe), str(d / "vfork.c")], check=True, capture_output=True)
    return exe


@dataclass
class Stuck:
    proc: subprocess.Popen
    child: int

    def state(self) -> str:
        return Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    def release(self) -> None:
        """The driver recovers: the vfork child exits, the parent leaves D and ends."""
        with _quiet():
            os.kill(self.child, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def stuck_nvidia_smi(dstate_binary):
    """Start an nvidia-smi stuck in D state (as the box's user); released at teardown."""
    started: list[Stuck] = []

    def start(ms: int | None = None) -> Stuck:
        argv = [str(dstate_binary)] + ([str(ms)] if ms is not None else [])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        s = Stuck(proc, int(proc.stdout.readline()))
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.release()


# ----------------------------------------------------------------------------- watchers


def fast_spec(name: str, *, probe_timeout: float = 1.5, **kw):
    """A spec whose every round is bounded by ``probe_timeout + 2`` seconds (HostWatcher)."""
    from gpudash.watch.spec import Cadence, WatchSpec

    cadence = Cadence(gpu=0.5, log=0.5, disk=1, memory=1, jobs=1, files=2, ray=60,
                      probe_timeout=probe_timeout)
    return WatchSpec(name=name, target=kw.pop("target", name), transport=kw.pop("transport", "ssh"),
                     cadence=cadence, **kw)


def round_deadline(watcher) -> float:
    """What HostWatcher.round promises: the transport call is bounded by probe_timeout + 2."""
    return watcher.spec.cadence.probe_timeout + 2.0


def full_round_deadline(watcher) -> float:
    """full_round = jobs, then the other groups together, then the log: three bounded rounds."""
    return 3 * round_deadline(watcher)


async def full_round(figures: Recorder, watcher, what: str):
    return await within(figures, what, watcher.full_round(), full_round_deadline(watcher))


async def one_round(figures: Recorder, watcher, group: str, what: str):
    await within(figures, what, watcher.round(group), round_deadline(watcher))
    return watcher.refresh()


async def gone(figures: Recorder, needle: str, within_s: float = 25.0) -> list[int]:
    """Processes of the box still alive after ``within_s`` (recorded as leaked processes)."""
    left = await wait_until_gone(needle, within=within_s)
    figures.leak("processes", len(left))
    return left


# ----------------------------------------------------------------------------- `gpudash status`


async def gpudash_async(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI as a subprocess, without blocking the loop (an in-process box must keep
    answering while it runs). HOME holds only `.ssh`; no agent, no user config."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config-none")
    env["XDG_STATE_HOME"] = str(home / ".state")
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gpudash", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"gpudash {' '.join(args)} still running after {timeout}s") from None
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(errors="replace"),
                                       err.decode(errors="replace"))


def status_config(path: Path, alias: str, *, probe_timeout: float = 2, extra: str = "") -> Path:
    """A config for `gpudash status` with a short probe timeout (the default 8 s makes every
    fault test cost tens of seconds)."""
    path.write_text(f'[defaults]\nprobe_timeout = {probe_timeout}\nconnect_timeout = 5\n\n'
                    f'[[host]]\nname = "{alias}"\n{extra}')
    return path


def wall() -> float:
    return time.monotonic()
