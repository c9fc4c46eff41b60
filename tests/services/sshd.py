"""A real OpenSSH sshd on a loopback port, started by the tests from its own config.

What it sets up (all in one temp dir; nothing under /etc or the real home is touched):
- ``sshd_config``: a free 127.0.0.1 port, its own ed25519 host key, ``StrictModes no``,
  ``UsePAM no``, ``PermitRootLogin yes`` (the tests run as root here, as the current user
  anyway), ``PermitUserEnvironment yes``, public-key auth only.
- ``authorized_keys``: the client key with ``environment="PATH=<tests/bin>:/usr/bin:/bin"`` (the
  fake ``nvidia-smi`` comes first), ``environment="GD_BOX=<id>"`` (every process of the box can be
  counted), and ``environment="HOME=<box home>"``.
- The rc junk: sshd runs the user's login shell (bash here) as ``bash -c COMMAND``, and Debian's
  bash sources ``$HOME/.bashrc`` for commands run by sshd. Because the authorized_keys line moves
  HOME to a temp box home, the ``.bashrc`` there — which prints junk to stdout and stderr, like a
  conda init or a motd does — runs for every channel, without touching the real ~/.bashrc.
  ``BASH_ENV`` points at the same file so a bash built without that patch prints it too.
- The client side: a temp HOME holding only ``.ssh/config`` (alias ``gdbox`` with HostName,
  Port, User, IdentityFile), the key and ``known_hosts``. asyncssh follows ``$HOME``; OpenSSH's
  own client reads the passwd home, so :meth:`RealSshd.run_as_box` passes ``-F`` explicitly.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.services.ssh_server import BIN, processes_with

JUNK = "junk from .bashrc: conda init (base)"
JUNK_ERR = "junk on stderr from .bashrc"


def sshd_binary() -> str | None:
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/bin/sshd") if os.path.exists(p)), None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RealSshd:
    alias = "gdbox"

    def __init__(self, root: Path, sshd: str) -> None:
        self.root = root
        self.sshd = sshd
        self.box_id = "gdsshd-" + secrets.token_hex(6)
        self.user = getpass.getuser()
        self.port = 0
        self.home = root / "client-home"  # the client's HOME (for asyncssh)
        self.box_home = root / "box-home"  # the box user's HOME (moved by authorized_keys)
        self.config = self.home / ".ssh" / "config"
        self.known_hosts = self.home / ".ssh" / "known_hosts"
        self.identity = self.home / ".ssh" / "id_ed25519"
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen | None = None

    @property
    def needle(self) -> str:
        return f"GD_BOX={self.box_id}"

    def start(self) -> RealSshd:
        r = self.root
        (self.home / ".ssh").mkdir(parents=True, mode=0o700)
        self.box_home.mkdir()
        host_key = r / "ssh_host_ed25519_key"
        for key in (host_key, self.identity):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gpudash-test", "-f", str(key)],
                check=True, capture_output=True,
            )
        rc = self.box_home / ".bashrc"
        rc.write_text(f"echo '{JUNK}'\necho '{JUNK_ERR}' >&2\nprintf 'no newline junk'\n")
        env = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "GD_BOX": self.box_id,
            "HOME": str(self.box_home),
            "BASH_ENV": str(rc),
        }
        opts = ",".join(f'environment="{k}={v}"' for k, v in env.items())
        pub = (self.identity.with_suffix(".pub")).read_text().strip()
        (r / "authorized_keys").write_text(f"{opts} {pub}\n")
        self.port = _free_port()
        cfg = r / "sshd_config"
        cfg.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {r / 'sshd.pid'}",
                    f"AuthorizedKeysFile {r / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin yes",
                    "PermitUserEnvironment yes",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "AuthenticationMethods publickey",
                    "MaxStartups 10",
                    "MaxSessions 10",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "X11Forwarding no",
                    "UseDNS no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privsep dir
        check = subprocess.run([self.sshd, "-t", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejected its test config: {check.stderr.strip()}")
        self.proc = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"),
        )
        self._wait_ready()
        hk = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {hk[0]} {hk[1]}\n")
        self.config.write_text(
            f"Host {self.alias}\n"
            f"    HostName 127.0.0.1\n"
            f"    Port {self.port}\n"
            f"    User {self.user}\n"
            f"    IdentityFile {self.identity}\n"
            f"    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            f"    BatchMode yes\n"
        )
        return self

    def _wait_ready(self, within: float = 20.0) -> None:
        end = time.monotonic() + within
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log.read_text()[-2000:]}")

    def run_as_box(self, cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``cmd`` on the box through the real OpenSSH client (bytes out)."""
        return subprocess.run(
            ["ssh", "-F", str(self.config), self.alias, cmd],
            capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def box_processes(self, needle: str | None = None) -> list[int]:
        """Processes started through this sshd (optionally only those also carrying ``needle``)."""
        pids = processes_with(self.needle)
        if needle is not None:
            pids = [p for p in pids if p in set(processes_with(needle))]
        return pids

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for pid in processes_with(self.needle):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
