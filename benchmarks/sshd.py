"""A real OpenSSH sshd on a loopback port for the benchmarks, with a box user whose rc is slow.

Why not the test fixture (``tests/services/sshd.py``) as it is: the tests log in as the current
user and move ``HOME`` to a temp dir with a *chatty* ``.bashrc``; the benchmarks need a *slow*
one, for a user whose login shell is bash, as on conda/pyenv boxes — that is what makes a new
channel per poll expensive on the box, and it must be paid by every baseline exactly as it is on
real boxes. So:

- Box user. As root (CI-like machines) a dedicated user ``gdbench`` is created once with
  ``useradd -m -s /bin/bash`` (its password field set to ``*`` — not locked — so sshd with
  ``UsePAM no`` lets the key in). Not root: the current user, with ``HOME`` moved by
  ``environment="HOME=…"`` in authorized_keys, as the test fixture does (the current user's
  login shell must then be bash; :attr:`BenchSshd.mode` says which way was taken).
- Slow rc. ``~/.bashrc`` spins a shell loop calibrated here to ``rc_ms`` of CPU (default 100 ms):
  a conda/pyenv init costs CPU, not just wall time, and that CPU is what a poll steals from the
  box. Debian's bash sources ``~/.bashrc`` for every command sshd runs (``bash -c CMD`` with
  SSH_SOURCE_BASHRC); :meth:`BenchSshd.start` checks that it really ran and, where it did not,
  sets ``BASH_ENV`` to the same file.
- Stand-in ``nvidia-smi``: first on the PATH (``environment="PATH=…"``), a tiny sh script that
  prints the recorded H100 lines with ``printf`` (no fork beyond its own ``sh``). Its cost is part
  of every variant equally. ``-lms N`` streams a line every N ms, like the real one.
- The sshd's own config: 127.0.0.1, a free port, its own host key, ``StrictModes no``,
  ``UsePAM no``, ``PermitUserEnvironment yes``, public keys only. Client side: a key, a
  ``known_hosts`` and an ssh ``config`` with the alias ``gdbench`` for OpenSSH's client
  (``ssh -F``), and :attr:`target` / :attr:`known_hosts` / :attr:`identity` for asyncssh.

CPU "on the box" is everything under the listening sshd (:meth:`box_cpu`): the per-connection
sshd processes, the login shells, and every command they run, reaped children included. sshd runs
under :mod:`benchmarks.reaper` (a child subreaper), because its monitor leaves the per-connection
user process to be reaped by init — whose CPU would otherwise escape the count.
"""

from __future__ import annotations

import os
import pwd
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.procstat import reaped_tree_cpu, tree

BOX_USER = "gdbench"


def sshd_binary() -> str | None:
    try:  # reuse the test fixture's lookup when it is importable
        from tests.services.sshd import sshd_binary as find

        return find()
    except Exception:  # noqa: BLE001 - the fixture pulls asyncssh and the tests' tree
        return shutil.which("sshd") or next(
            (p for p in ("/usr/sbin/sshd", "/usr/bin/sshd") if os.path.exists(p)), None
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def calibrate_loop(rc_ms: float) -> int:
    """How many iterations of the rc's bash loop burn ``rc_ms`` of CPU on this machine."""
    n = 20000
    for _ in range(4):
        c0 = _children_cpu()
        subprocess.run(["bash", "--norc", "--noprofile", "-c", _loop(n)], check=True)
        spent = _children_cpu() - c0
        if spent > 0.03:
            return max(1000, int(n * (rc_ms / 1000.0) / spent))
        n *= 4
    return n


def _loop(n: int) -> str:
    return f"gd_i=0; while [ $gd_i -lt {n} ]; do gd_i=$((gd_i+1)); done"


def stand_in_nvidia_smi() -> str:
    """The stand-in's text: the recorded H100 lines, printed with builtins only."""
    from gpudash.demo import traces

    rows = traces.busy_rows() or traces.series()
    core = [traces.nvidia_smi_core_line(r) for r in rows[:8]]
    health = traces.nvidia_smi_health_line(rows[0])
    apps = f"401, python3, {rows[0].mem_used:.0f}, {rows[0].uuid}"
    series = "\n".join(core)
    return f"""#!/bin/sh
# gpudash benchmark stand-in for nvidia-smi: prints lines recorded on a real H100 with printf
# (no fork beyond this sh). -lms N streams one line every N ms until killed or SIGPIPE.
case " $* " in
  *" -lms "*)
    ms=${{*##*-lms }}; ms=${{ms%% *}}
    s=$(( ms / 1000 )).$(( ms % 1000 / 100 ))$(( ms % 100 / 10 ))$(( ms % 10 ))
    while :; do
      printf '%s\\n' {shlex.quote(series)} | while IFS= read -r l; do
        printf '%s\\n' "$l" || exit 141; sleep "$s"; done || exit 141
    done ;;
  *--query-compute-apps=*) printf '%s\\n' {shlex.quote(apps)} ;;
  *--query-gpu=index,ecc*) printf '%s\\n' {shlex.quote(health)} ;;
  *--query-gpu=*) printf '%s\\n' {shlex.quote(core[0])} ;;
  *) printf '%s\\n' 'NVIDIA-SMI stand-in (gpudash benchmarks)' ;;
esac
"""


class BenchSshd:
    alias = "gdbench"

    def __init__(self, root: Path | None = None, *, rc_ms: float = 100.0, user: str = BOX_USER) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="gdbench-"))
        self.rc_ms = rc_ms
        self.want_user = user
        self.user = ""
        self.mode = ""
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.box = self.root / "box"  # files the box user reads: bin/, logs
        self.bin = self.box / "bin"
        self.client = self.root / "client"
        self.identity = self.client / "id_ed25519"
        self.known_hosts = self.client / "known_hosts"
        self.config = self.client / "config"
        self.log = self.root / "sshd.log"
        self.rc_path: Path | None = None
        self.rc_loop = 0
        self.rc_check: dict = {}

    # ------------------------------------------------------------------ setup

    @property
    def target(self) -> str:
        """For asyncssh / gpudash: ``user@127.0.0.1:port``."""
        return f"{self.user}@127.0.0.1:{self.port}"

    def _box_user(self) -> tuple[str, Path, dict[str, str]]:
        """(user, home, extra environment for authorized_keys)."""
        if os.geteuid() == 0 and shutil.which("useradd"):
            try:
                pw = pwd.getpwnam(self.want_user)
            except KeyError:
                subprocess.run(["useradd", "-m", "-s", "/bin/bash", self.want_user],
                               check=True, capture_output=True)
                pw = pwd.getpwnam(self.want_user)
            # useradd leaves the password field "!" (locked): sshd without PAM then refuses
            # even a key. "*" means "no password", which a key login accepts.
            subprocess.run(["usermod", "-p", "*", "-s", "/bin/bash", self.want_user],
                           check=True, capture_output=True)
            self.mode = f"useradd user {self.want_user} (login shell /bin/bash)"
            home = Path(pw.pw_dir)
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            return self.want_user, home, {}
        pw = pwd.getpwuid(os.geteuid())
        home = self.root / "box-home"
        home.mkdir(exist_ok=True)
        self.mode = f"current user {pw.pw_name} (login shell {pw.pw_shell}), HOME moved by authorized_keys"
        return pw.pw_name, home, {"HOME": str(home)}

    def start(self, *, verify: bool = True) -> "BenchSshd":
        sshd = sshd_binary()
        if sshd is None:
            raise RuntimeError("no sshd binary (Debian package openssh-server)")
        for d in (self.root, self.box, self.bin):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)  # the box user reads authorized_keys, bin/ and logs here
        self.client.mkdir(mode=0o700, exist_ok=True)
        self.user, home, env = self._box_user()
        self.rc_loop = calibrate_loop(self.rc_ms)
        self.rc_path = home / ".bashrc"
        self.rc_path.write_text(
            "# gpudash benchmark: a slow rc, like a conda/pyenv init, sourced by every shell sshd\n"
            f"# starts. The loop burns ~{self.rc_ms:.0f} ms of CPU here (calibrated).\n"
            f"{_loop(self.rc_loop)}\nexport GDBENCH_RC=1\n"
        )
        os.chmod(self.rc_path, 0o644)
        nvsmi = self.bin / "nvidia-smi"
        nvsmi.write_text(stand_in_nvidia_smi())
        os.chmod(nvsmi, 0o755)
        host_key = self.root / "ssh_host_ed25519_key"
        for key in (host_key, self.identity):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gdbench", "-f", str(key)],
                           check=True, capture_output=True)
        self._write_keys(env)
        self.port = free_port()
        cfg = self.root / "sshd_config"
        cfg.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {self.root / 'sshd.pid'}", f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "StrictModes no", "UsePAM no", "PermitRootLogin yes", "PermitUserEnvironment yes",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "AuthenticationMethods publickey", "MaxStartups 100:30:200", "MaxSessions 20",
            "PrintMotd no", "PrintLastLog no", "X11Forwarding no", "UseDNS no", "LogLevel ERROR", "",
        ]))
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        check = subprocess.run([sshd, "-t", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejected the benchmark config: {check.stderr.strip()}")
        # Under a subreaper: sshd's monitor does not wait for the per-connection user process,
        # so without it that process's CPU (shell, rc, commands) would be reaped by init, unseen.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.reaper", sshd, "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"), cwd=Path(__file__).parent.parent,
        )
        self._wait_ready()
        hk = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {hk[0]} {hk[1]}\n")
        self.config.write_text(
            f"Host {self.alias}\n    HostName 127.0.0.1\n    Port {self.port}\n    User {self.user}\n"
            f"    IdentityFile {self.identity}\n    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n    StrictHostKeyChecking yes\n"
            f"    BatchMode yes\n    ControlMaster no\n    ControlPath none\n"
        )
        if verify:
            self._verify_rc(env)
        return self

    def _write_keys(self, env: dict[str, str]) -> None:
        env = {"PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin", **env}
        opts = ",".join(f'environment="{k}={v}"' for k, v in env.items())
        pub = self.identity.with_suffix(".pub").read_text().strip()
        ak = self.root / "authorized_keys"
        ak.write_text(f"{opts} {pub}\n")
        os.chmod(ak, 0o644)
        self._env = env

    def _verify_rc(self, env: dict[str, str]) -> None:
        """The rc must run for an exec channel (that is the cost under test): check it did."""
        r = self.ssh("echo rc=$GDBENCH_RC shell=$0 nvsmi=$(command -v nvidia-smi)")
        out = r.stdout.decode(errors="replace").strip()
        if "rc=1" not in out:
            # This bash does not source ~/.bashrc for sshd's commands: make it, via BASH_ENV.
            self._write_keys({**env, "BASH_ENV": str(self.rc_path)})
            r = self.ssh("echo rc=$GDBENCH_RC shell=$0 nvsmi=$(command -v nvidia-smi)")
            out = r.stdout.decode(errors="replace").strip()
            self.mode += "; rc via BASH_ENV"
        if "rc=1" not in out or str(self.bin) not in out:
            raise RuntimeError(f"the box's rc or PATH is not in effect: {out!r} {r.stderr[-500:]!r}")
        # What the rc costs by itself (bash running it, no sshd): reported with the results.
        c0, t0 = _children_cpu(), time.perf_counter()
        for _ in range(5):
            subprocess.run(["bash", "--norc", "-c", f". {shlex.quote(str(self.rc_path))}"], check=True)
        self.rc_check = {"rc_cpu_ms": (_children_cpu() - c0) / 5 * 1e3,
                         "rc_wall_ms": (time.perf_counter() - t0) / 5 * 1e3, "probe": out}

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
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not answer on port {self.port}")

    # ------------------------------------------------------------------ use

    def ssh_argv(self, cmd: str) -> list[str]:
        """OpenSSH's client, a new connection: reads its config with -F (not $HOME)."""
        return ["ssh", "-F", str(self.config), self.alias, cmd]

    def ssh(self, cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.ssh_argv(cmd), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        """The subreaper above sshd: the root of the box's process tree."""
        assert self.proc is not None
        return self.proc.pid

    def box_cpu(self) -> float:
        """CPU seconds used so far by sshd and everything it ran (reaped children included)."""
        return reaped_tree_cpu(self.pid)

    def connections(self) -> int:
        """Live processes under the listener (0 when no connection is open)."""
        return max(0, len(tree(self.pid)) - 2)

    def wait_idle(self, within: float = 5.0) -> bool:
        """Wait until every per-connection process is gone (reaped: its CPU is then counted)."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            if self.connections() == 0:
                return True
            time.sleep(0.02)
        return False

    def describe(self) -> dict:
        ver = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
        return {"sshd": ver, "user": self.user, "mode": self.mode, "port": self.port,
                "rc_target_ms": self.rc_ms, "rc_loop": self.rc_loop, **self.rc_check}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for st in tree(self.proc.pid)[1:]:
                try:
                    os.kill(st.pid, 9)
                except OSError:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "BenchSshd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # a quick check by hand: python -m benchmarks.sshd
    with BenchSshd() as s:
        print(s.describe())
        t = time.perf_counter()
        r = s.ssh("nvidia-smi --query-gpu=index,uuid --format=csv,noheader,nounits; df -P -B1 /")
        print(r.returncode, r.stdout.decode()[:400], r.stderr.decode()[:300])
        print(f"{(time.perf_counter() - t) * 1e3:.0f} ms")
