"""Faults, driven through the real watcher (HostWatcher over SshTransport) against the in-process
SSH server and the real OpenSSH sshd.

Every test follows the same shape: the box is fine, the fault starts, a probe round returns
within the deadline the CODE was given (``within`` records elapsed vs deadline: an overrun is a
failure, not a matter of machine speed), the view shows the right state and reason, the fault
ends, and the next round is OK again. Where a remote process could be left behind, the box's
processes are counted after the transport is closed (nothing may survive its remote bound).

Transport-level versions of several of these live in tests/integration/test_transport_*.py; the
point here is the layer users see: the watcher's view, `gpudash status`, and the TUI.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from gpudash.health.thresholds import Thresholds
from gpudash.model import Reason, State
from gpudash.watch.host import HostWatcher
from tests.reliability.conftest import (
    GPU_ERRORS,
    Kit,
    fast_spec,
    full_round,
    gone,
    gpudash_async,
    one_round,
    status_config,
    within,
)
from tests.reliability.figures import STARTUP_GRACE_S
from tests.services.ssh_server import BIN, BoxServer, new_key, processes_with

# Hysteresis off: one result is enough to change a check, so a test sees the state a fault
# causes (and its recovery) in the very next round instead of after 10 s.
IMMEDIATE = Thresholds(hysteresis_results=1, hysteresis_s=0.0)


def watcher_for(remote, transport=None, **spec) -> HostWatcher:
    spec.setdefault("thresholds", IMMEDIATE)
    return HostWatcher(fast_spec(remote.alias, **spec), transport or remote.transport())


async def ok_round(figures, w: HostWatcher, what: str):
    view = await full_round(figures, w, what)
    s = view.snapshot
    assert s.link.ok, s.link.message
    assert s.gpus and s.gpu_error is None, s.gpu_error
    assert any(d.mount == "/" for d in s.disks)
    return view


async def close_and_count(figures, w: HostWatcher, remote) -> None:
    """After the transport closes, nothing of the box may be left (the remote bounds end it)."""
    await w.transport.close()
    assert await gone(figures, remote.needle) == []
    figures.leak("channels", w.transport._pool.sessions)


# ----------------------------------------------------------------------------- hangs


# The real-sshd twin of the hang test waits out a 9 s remote bound: it runs in the full suite
# (scripts/reliability.py); the default run keeps the in-process one, and
# tests/integration/test_status_e2e.py hangs nvidia-smi over the real sshd too.
SLOW_ON_SSHD = [pytest.param("ssh"), pytest.param("sshd", marks=pytest.mark.slow)]


@pytest.mark.parametrize("remote", SLOW_ON_SSHD, indirect=True)
async def test_remote_command_hangs_ignoring_sigterm(remote, figures):
    """nvidia-smi never answers and ignores SIGTERM: the round returns at its deadline with
    driver_hung, the other probes of the round still answer, and recovery is the next round."""
    figures.fault("nvidia-smi hangs, ignores SIGTERM", remote.where)
    w = watcher_for(remote)
    await ok_round(figures, w, "healthy round")
    remote.kit.gpu("hang")
    view = await full_round(figures, w, "round with a hung nvidia-smi")
    s = view.snapshot
    assert s.gpu_error is not None and s.gpu_error.reason is Reason.DRIVER_HUNG
    assert view.state is State.UNKNOWN and view.reason is Reason.DRIVER_HUNG
    assert s.link.ok, "a hung step on a box that answers is not a dead link"
    assert any(d.mount == "/" for d in s.disks), "df in the same round must still answer"
    # from now on every nvidia-smi first checks that none is stuck in D state
    assert w.nvsmi_stuck and all(st.params["guard_hung"] for g in ("gpu", "disk", "jobs")
                                 for st in w.steps_for(g) if st.key.startswith("gpu"))
    remote.kit.gpu(None)
    await ok_round(figures, w, "round after the hang ended")
    await close_and_count(figures, w, remote)


async def test_d_state_nvidia_smi_is_driver_hung_and_never_stacked(remote, figures,
                                                                   stuck_nvidia_smi):
    """A real nvidia-smi stuck in D state cannot be killed: the guard must show driver_hung and
    start no second nvidia-smi next to it, round after round, until the driver recovers. The
    watcher is fresh (gpudash restarted, or a cron `status`): it never saw the first one hang.
    (Learning it from a probe that hangs is test_remote_command_hangs_ignoring_sigterm.)"""
    figures.fault("nvidia-smi stuck in D state", remote.where)
    stuck = stuck_nvidia_smi()
    assert stuck.state() == "D"
    w = watcher_for(remote)
    for i in range(2):
        view = await full_round(figures, w, f"round {i + 1} beside a D-state nvidia-smi")
        assert view.snapshot.gpu_error.reason is Reason.DRIVER_HUNG
        assert "stuck" in view.snapshot.gpu_error.message
        assert view.reason is Reason.DRIVER_HUNG
        assert any(d.mount == "/" for d in view.snapshot.disks)
    assert remote.kit.calls() == 0, "an nvidia-smi was started beside the stuck one"
    stuck.release()
    await ok_round(figures, w, "round after the driver recovered")
    assert remote.kit.calls() > 0
    await close_and_count(figures, w, remote)


def test_an_nvidia_smi_passing_through_d_state_is_not_stuck(kit, stuck_nvidia_smi, figures):
    """A healthy nvidia-smi is in D for an instant (a driver call, a page-in); a second gpudash
    probing at that instant must not report driver_hung. (Found by the status test above with
    seven boxes probing at once.) Here a stand-in sits in D for 0.4 s as the guard looks."""
    import subprocess
    import time

    from gpudash.probes import gpu
    from gpudash.probes.gpu import parse_gpu

    figures.fault("nvidia-smi passing through D state (not stuck)", "local")
    env = dict(os.environ, PATH=f"{kit.bin}:{BIN}:{os.environ['PATH']}")
    brief = stuck_nvidia_smi(400)
    assert brief.state() == "D"
    t0 = time.monotonic()
    r = subprocess.run(["/bin/sh", "-c", gpu.gpu_step(guard_hung=True).script], env=env,
                       capture_output=True, timeout=30)
    took = time.monotonic() - t0
    brief.proc.wait(timeout=10)
    assert took >= 0.9, "the guard never saw the transient D state: the test proved nothing"
    res = parse_gpu(r.stdout, r.stderr, r.returncode)
    assert not hasattr(res, "reason"), res
    assert kit.calls() == 1


def test_a_hung_nvml_sampler_is_driver_hung_and_no_nvidia_smi_starts(kit, dstate_binary, tmp_path,
                                                                     figures):
    """gpudash's NVML sampler (a `python3`) stuck in D inside an NVML call is a hung driver as
    much as a stuck nvidia-smi: the guard reports it and starts no nvidia-smi beside it."""
    import signal
    import subprocess

    from gpudash.probes import gpu
    from gpudash.probes.gpu import parse_gpu

    figures.fault("NVML sampler stuck in D state", "local")
    sampler = tmp_path / "sampler" / "python3"  # named as the sampler is; its source says NONVML
    sampler.parent.mkdir()
    shutil.copy(dstate_binary, sampler)
    proc = subprocess.Popen([str(sampler), "120000", "# gpudash-probe ... NONVML"],
                            stdout=subprocess.PIPE)
    child = int(proc.stdout.readline())
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert stat == "D"
        env = dict(os.environ, PATH=f"{kit.bin}:{BIN}:{os.environ['PATH']}")
        r = subprocess.run(["/bin/sh", "-c", gpu.gpu_step(guard_hung=True).script], env=env,
                           capture_output=True, timeout=30)
        res = parse_gpu(r.stdout, r.stderr, r.returncode)
        assert res.reason is Reason.DRIVER_HUNG and "NVML sampler" in res.message
        assert kit.calls() == 0, "an nvidia-smi was started beside the stuck sampler"
    finally:
        os.kill(child, signal.SIGKILL)
        proc.wait(timeout=10)


# ----------------------------------------------------------------------------- the link


async def test_link_dropped_mid_probe(remote, figures):
    figures.fault("link dropped mid-probe", remote.where)
    w = watcher_for(remote)
    await ok_round(figures, w, "healthy round")
    remote.kit.gpu("slow")
    calls = remote.kit.calls()
    task = asyncio.ensure_future(one_round(figures, w, "gpu", "gpu round whose link drops"))
    for _ in range(300):
        if remote.kit.calls() > calls:
            break
        await asyncio.sleep(0.02)
    assert remote.kit.calls() > calls, "the probe never started"
    assert remote.drop_link() >= 1
    view = await task
    assert view.snapshot.link.ok is False
    assert view.snapshot.link.reason in (Reason.UNREACHABLE, Reason.TIMEOUT)
    assert view.state is State.UNKNOWN
    # a dropped link is not a dead job, nor a hung GPU
    assert not any(c.state is State.CRIT for c in view.checks)
    remote.kit.gpu(None)
    await ok_round(figures, w, "round after the link came back")
    await close_and_count(figures, w, remote)


async def test_host_down_closed_port_then_up(ssh_home, make_box, free_closed_port, kit, figures):
    figures.fault("host down: closed port", "in-process ssh")
    ssh_home.add_alias("downbox", free_closed_port)
    w = HostWatcher(fast_spec("downbox", thresholds=IMMEDIATE), _transport("downbox"))
    view = await full_round(figures, w, "round against a closed port")
    assert view.state is State.UNKNOWN and view.reason is Reason.UNREACHABLE
    assert "unreachable since" in view.snapshot.link.message
    assert not any(c.state is State.CRIT for c in view.checks)
    # the box comes back on the same port
    server = await _box_on_port(ssh_home, free_closed_port)
    try:
        await asyncio.sleep(0.3)  # past the transport's (test-sized) backoff
        view = await full_round(figures, w, "round after the box came back")
        assert view.snapshot.link.ok and view.state is not State.UNKNOWN
    finally:
        await w.transport.close()
        await server.close()


async def test_host_down_bannerless_listener_then_up(ssh_home, silent_listener, figures):
    figures.fault("host down: listener that never sends a banner", "in-process ssh")
    ssh_home.add_alias("mute", silent_listener.port)
    w = HostWatcher(fast_spec("mute", thresholds=IMMEDIATE), _transport("mute", connect_timeout=60))
    view = await one_round(figures, w, "gpu", "round against a banner-less listener")
    assert view.state is State.UNKNOWN and view.reason in (Reason.UNREACHABLE, Reason.TIMEOUT)
    port = silent_listener.port
    await silent_listener.close()
    server = await _box_on_port(ssh_home, port)
    try:
        await asyncio.sleep(0.3)
        view = await full_round(figures, w, "round after sshd answered again")
        assert view.snapshot.link.ok
    finally:
        await w.transport.close()
        await server.close()


def _transport(alias: str, **kw):
    from gpudash.transport.ssh import SshTransport

    # Backoff is the transport's own business (tested in test_transport_ssh); a short one keeps
    # "the next round after the fault ended" inside this test's time.
    return SshTransport(alias, backoff_initial=0.1, backoff_max=0.2, **kw)


async def _box_on_port(ssh_home, port: int) -> BoxServer:
    """An in-process box listening on a given port (a host that comes back)."""
    import asyncssh

    from tests.services import ssh_server

    server = BoxServer(host_key=new_key(), authorized_key=ssh_home.client_key)
    authorized = asyncssh.import_authorized_keys(
        server.authorized_key.export_public_key().decode())
    server._server = await asyncssh.create_server(
        lambda: ssh_server._Server(server), "127.0.0.1", port,
        server_host_keys=[server.host_key], authorized_client_keys=authorized,
        encoding=None, allow_scp=False)
    server.port = port
    ssh_home.trust(server.known_hosts_line())
    return server


# ----------------------------------------------------------------------------- sshd restarts


@pytest.mark.parametrize("kill_sessions", [False, True], ids=["restart", "reboot"])
async def test_sshd_restarted_while_connected(own_sshd, figures, kill_sessions):
    """`systemctl restart ssh` (connections live on) and a reboot (connections die): during the
    outage a NEW connection is refused within the deadline; afterwards the next round is OK."""
    what = "sshd restarted while connected" + (" (sessions killed)" if kill_sessions else "")
    figures.fault(what, "real sshd")
    w = HostWatcher(fast_spec(own_sshd.alias, thresholds=IMMEDIATE), _transport(own_sshd.alias))
    try:
        await ok_round(figures, w, "healthy round")
        own_sshd.stop_listener(kill_sessions=kill_sessions)
        view = await full_round(figures, w, "round while sshd is down")
        if kill_sessions:
            assert view.state is State.UNKNOWN and view.reason is Reason.UNREACHABLE
        else:
            # the established connection survives a daemon restart: still answering
            assert view.snapshot.link.ok
            w.transport._abort_connection("test: force a reconnect while sshd is down")
            view = await full_round(figures, w, "reconnect while sshd is down")
            assert view.state is State.UNKNOWN and view.reason is Reason.UNREACHABLE
        own_sshd.start_again()
        await asyncio.sleep(0.3)
        await ok_round(figures, w, "round after sshd is back")
    finally:
        await w.transport.close()
    assert await gone(figures, own_sshd.needle) == []


# ----------------------------------------------------------------------------- keys and auth


async def test_changed_host_key_refused_then_accepted(remote, figures, tmp_path):
    figures.fault("changed host key", remote.where)
    known = remote.home / ".ssh" / "known_hosts"
    good = known.read_text()
    other = new_key().export_public_key().decode().split()
    known.write_text("".join(
        f"{line.split()[0]} {other[0]} {other[1]}\n" for line in good.splitlines() if line.strip()))
    w = HostWatcher(fast_spec(remote.alias, thresholds=IMMEDIATE), _transport(remote.alias))
    try:
        view = await full_round(figures, w, "round against a changed host key")
        assert view.state is State.UNKNOWN and view.reason is Reason.HOST_KEY_CHANGED
        msg = view.snapshot.link.message
        assert "does not match known_hosts" in msg and f"ssh {remote.alias}" in msg
        assert remote.kit.calls() == 0, "nothing may run on a box whose key changed"
        known.write_text(good)  # the user checked the box and accepted its key
        await asyncio.sleep(0.3)
        await ok_round(figures, w, "round after the key was accepted")
    finally:
        known.write_text(good)
        await w.transport.close()


async def test_auth_failure_then_fixed(remote, figures):
    figures.fault("authentication failure", remote.where)
    ident = _identity(remote)
    pub = ident.with_suffix(".pub")
    good, good_pub = ident.read_bytes(), pub.read_bytes()
    wrong = new_key()  # a key the box does not authorise (a rotated key, the wrong user)
    ident.write_bytes(wrong.export_private_key())
    pub.write_bytes(wrong.export_public_key())
    w = HostWatcher(fast_spec(remote.alias, thresholds=IMMEDIATE), _transport(remote.alias))
    try:
        view = await full_round(figures, w, "round with a refused key")
        assert view.reason is Reason.AUTH_FAILED, view.snapshot.link.message
        assert view.state is State.UNKNOWN
        assert "authentication" in view.snapshot.link.message
        assert remote.kit.calls() == 0
        ident.write_bytes(good)
        pub.write_bytes(good_pub)
        await asyncio.sleep(0.3)
        await ok_round(figures, w, "round after the key was fixed")
    finally:
        ident.write_bytes(good)
        pub.write_bytes(good_pub)
        await w.transport.close()


def _identity(remote) -> Path:
    return remote.home / ".ssh" / "id_ed25519"


# ----------------------------------------------------------------------------- the run's log


def _lines(w: HostWatcher) -> list[str]:
    return list(w.view.snapshot.log_lines) if w.view else []


async def log_round(figures, w: HostWatcher, what: str):
    return await one_round(figures, w, "log", what)


async def test_log_with_one_10mb_line(inproc, figures, tmp_path):
    figures.fault("log with one 10 MB line", inproc.where)
    log = tmp_path / "train.log"
    log.write_bytes(b"step 1 loss 2.0\n")
    w = watcher_for(inproc, log=str(log))
    await log_round(figures, w, "log round: first read")
    with open(log, "ab") as f:
        f.write(b"A" * (10 * 1024 * 1024) + b"\n")
    for i in range(3):
        view = await log_round(figures, w, f"log round {i}: inside a 10 MB line")
        assert view.snapshot.log_error is None
    assert max(len(x) for x in _lines(w)) <= 2100, "a displayed line must stay bounded"
    assert w.log_skipped > 0, "the newest bytes win: the flood is skipped, and counted"
    with open(log, "ab") as f:
        f.write(b"step 2 loss 1.5\n")
    await log_round(figures, w, "log round: after the long line")
    assert _lines(w)[-1] == "step 2 loss 1.5"
    await w.transport.close()


async def test_binary_log(inproc, figures, tmp_path):
    from gpudash.sanitize import is_inert

    figures.fault("binary log", inproc.where)
    log = tmp_path / "train.log"
    log.write_bytes(os.urandom(200_000) + b"\n")
    w = watcher_for(inproc, log=str(log))
    view = await log_round(figures, w, "log round over binary junk")
    assert view.snapshot.log_error is None
    assert _lines(w) and all(is_inert(x) for x in _lines(w))
    with open(log, "ab") as f:
        f.write(b"step 3 loss 1.0\n")
    await log_round(figures, w, "log round after the junk")
    assert _lines(w)[-1] == "step 3 loss 1.0"
    await w.transport.close()


async def test_log_truncated_then_rotated(inproc, figures, tmp_path):
    figures.fault("log truncated and rotated", inproc.where)
    log = tmp_path / "train.log"
    log.write_text("".join(f"step {i} loss 1.0\n" for i in range(100)))
    w = watcher_for(inproc, log=str(log))
    await log_round(figures, w, "log round: first read")
    assert _lines(w)[-1] == "step 99 loss 1.0"
    log.write_text("restarted: step 0 loss 3.0\n")  # truncated in place (same inode)
    await log_round(figures, w, "log round after truncation")
    assert _lines(w)[-1] == "restarted: step 0 loss 3.0"
    log.rename(tmp_path / "train.log.1")  # rotated: a new file under the name
    log.write_text("rotated: step 1 loss 2.9\n")
    await log_round(figures, w, "log round after rotation")
    assert _lines(w)[-1] == "rotated: step 1 loss 2.9"
    assert w.log_offset == log.stat().st_size
    await w.transport.close()


async def test_log_deleted_then_recreated(inproc, figures, tmp_path):
    figures.fault("log deleted", inproc.where)
    log = tmp_path / "train.log"
    log.write_text("step 1 loss 1.0\n")
    w = watcher_for(inproc, log=str(log))
    await log_round(figures, w, "log round: first read")
    log.unlink()
    view = await log_round(figures, w, "log round: the log is gone")
    assert view.snapshot.log_error and "missing" in view.snapshot.log_error
    assert view.snapshot.link.ok, "a missing log is not a link problem"
    log.write_text("step 2 loss 0.9\n")
    view = await log_round(figures, w, "log round: the log is back")
    assert view.snapshot.log_error is None and _lines(w)[-1] == "step 2 loss 0.9"
    await w.transport.close()


# ----------------------------------------------------------------------------- disks


async def test_mount_vanished_then_back(remote, figures, tmp_path):
    figures.fault("watched mount vanished", remote.where)
    mnt = tmp_path / "scratch"
    mnt.mkdir()
    w = watcher_for(remote, mounts=("/", str(mnt)))
    view = await one_round(figures, w, "disk", "disk round: both mounts")
    assert {d.mount for d in view.snapshot.disks} >= {"/"}
    shutil.rmtree(mnt)
    view = await one_round(figures, w, "disk", "disk round: one mount vanished")
    errs = dict(view.snapshot.disk_errors)
    assert str(mnt) in errs, view.snapshot.disk_errors
    assert any(d.mount == "/" for d in view.snapshot.disks), "the other mount still reads"
    assert view.snapshot.link.ok
    mnt.mkdir()
    view = await one_round(figures, w, "disk", "disk round: mount back")
    assert view.snapshot.disk_errors == ()
    await w.transport.close()


# ----------------------------------------------------------------------------- nvidia-smi errors


@pytest.mark.parametrize("mode", list(GPU_ERRORS))
async def test_every_nvidia_smi_error_is_an_explained_state(inproc, figures, mode):
    code, reason, needle = GPU_ERRORS[mode]
    figures.fault(f"nvidia-smi error: exit {code} ({mode})", inproc.where)
    w = watcher_for(inproc)
    inproc.kit.gpu(mode)
    view = await one_round(figures, w, "gpu", f"gpu round: nvidia-smi exit {code}")
    err = view.snapshot.gpu_error
    assert err is not None and err.reason.value == reason and err.exit_code == code
    assert needle in err.message, err.message
    assert view.snapshot.link.ok, "an nvidia-smi failure is not a link failure"
    assert view.state is State.UNKNOWN and view.reason.value == reason
    inproc.kit.gpu(None)
    view = await one_round(figures, w, "gpu", "gpu round after the error cleared")
    assert view.snapshot.gpus and view.snapshot.gpu_error is None
    await w.transport.close()


# ----------------------------------------------------------------------------- `gpudash status`
#
# The one-shot path users script against: a subprocess of the real CLI. Its deadline is
# `--timeout`; interpreter start and imports come on top (STARTUP_GRACE_S).


async def status(figures, home: Path, *args: str, timeout: float, what: str):
    r = await within(figures, what, gpudash_async(home, "status", *args, "--timeout", str(timeout)),
                     timeout, grace=STARTUP_GRACE_S)
    assert "Traceback" not in r.stderr, r.stderr
    return r


async def test_status_every_nvidia_smi_error_in_one_call(make_box, ssh_home, tmp_path, figures):
    """Seven boxes, each with one nvidia-smi failure of domain.md, in ONE `gpudash status`:
    each an explained UNKNOWN with nvidia-smi's own words, the link OK, exit 3; then fixed."""
    kits, hosts = {}, []
    for mode in GPU_ERRORS:
        figures.fault(f"nvidia-smi error: exit {GPU_ERRORS[mode][0]} ({mode})", "status")
        server = await make_box(f"err-{mode}")
        kits[mode] = Kit(tmp_path / f"kit-{mode}")
        server.extra_env["PATH"] = f"{kits[mode].bin}:{BIN}:{os.environ['PATH']}"
        kits[mode].gpu(mode)
        hosts.append(f'[[host]]\nname = "err-{mode}"\nmounts = ["/"]\ntmux_session = "t"\n')
    cfg = tmp_path / "gpudash.toml"
    # tmux_session set: no zero-config discovery (it costs a pgrep and a ps on every box)
    cfg.write_text("[defaults]\nprobe_timeout = 3\n\n" + "\n".join(hosts))
    r = await status(figures, ssh_home.path, "--json", "--config", str(cfg), timeout=20,
                     what="status: seven nvidia-smi failures")
    assert r.returncode == 3, r.stdout + r.stderr
    by_host = {h["host"]: h for h in json.loads(r.stdout)}
    for mode, (code, reason, needle) in GPU_ERRORS.items():
        h = by_host[f"err-{mode}"]
        assert h["state"] == "UNKNOWN" and h["reason"] == reason, h
        assert h["gpu_error"]["exit_code"] == code and needle in h["gpu_error"]["message"]
        assert h["link"]["ok"] is True
    for k in kits.values():
        k.gpu(None)
    r = await status(figures, ssh_home.path, "--json", "--config", str(cfg), timeout=20,
                     what="status: nvidia-smi fixed")
    for h in json.loads(r.stdout):
        assert h["gpus"] and h["gpu_error"] is None, h["gpu_error"]
        assert h["reason"] not in ("no_gpu", "nvidia_smi_error", "driver_hung"), h["reason"]


async def test_status_d_state_nvidia_smi_is_never_stacked(sshd_remote, stuck_nvidia_smi, figures,
                                                          tmp_path):
    """A fresh `gpudash status` (a cron line, every minute) beside an nvidia-smi stuck in D state:
    driver_hung, and no new nvidia-smi started next to the stuck one — each would hang too."""
    figures.fault("nvidia-smi stuck in D state", "status")
    cfg = status_config(tmp_path / "gpudash.toml", sshd_remote.alias)
    stuck = stuck_nvidia_smi()
    assert stuck.state() == "D"
    r = await status(figures, sshd_remote.home, "--json", "--config", str(cfg), timeout=20,
                     what="status beside a D-state nvidia-smi")
    [h] = json.loads(r.stdout)
    assert h["gpu_error"]["reason"] == "driver_hung" and h["reason"] == "driver_hung", h
    assert r.returncode == 3
    assert sshd_remote.kit.calls() == 0, "status started an nvidia-smi beside the stuck one"
    stuck.release()
    r = await status(figures, sshd_remote.home, "--json", "--config", str(cfg), timeout=20,
                     what="status after the driver recovered")
    [h] = json.loads(r.stdout)
    assert h["gpus"] and h["gpu_error"] is None


@pytest.mark.slow  # two status runs around a 9 s remote bound; test_status_e2e has the sshd twin
async def test_status_hung_nvidia_smi_over_inprocess_ssh(inproc, figures, tmp_path):
    figures.fault("nvidia-smi hangs, ignores SIGTERM", "status")
    cfg = status_config(tmp_path / "gpudash.toml", inproc.alias)
    inproc.kit.gpu("hang")
    r = await status(figures, inproc.home, "--json", "--config", str(cfg), timeout=20,
                     what="status with a hung nvidia-smi")
    [h] = json.loads(r.stdout)
    assert r.returncode == 3 and h["gpu_error"]["reason"] == "driver_hung"
    assert any(d["mount"] == "/" for d in h["disks"])
    inproc.kit.gpu(None)
    r = await status(figures, inproc.home, "--json", "--config", str(cfg), timeout=20,
                     what="status after the hang")
    [h] = json.loads(r.stdout)
    assert h["gpus"] and h["gpu_error"] is None
    assert await gone(figures, inproc.needle) == []


@pytest.mark.parametrize("how", ["closed_port", "bannerless"])
async def test_status_host_down(ssh_home, free_closed_port, silent_listener, tmp_path, figures, how):
    """Both are UNKNOWN with a reason and exit 3, and never CRIT. A banner-less listener holds
    the connect past `--timeout`: the overall deadline must still end the command."""
    figures.fault(f"host down: {how.replace('_', ' ')}", "status")
    port = free_closed_port if how == "closed_port" else silent_listener.port
    ssh_home.add_alias("down", port)
    cfg = status_config(tmp_path / "gpudash.toml", "down")
    r = await status(figures, ssh_home.path, "--config", str(cfg), timeout=4,
                     what=f"status against a host down ({how})")
    assert r.returncode == 3, r.stdout + r.stderr
    line = r.stdout.strip()
    assert line.startswith("down UNKNOWN (") and "never seen" in line, line
    assert ("unreachable" in line) if how == "closed_port" else ("(timeout" in line
                                                                 or "(unreachable" in line)
    assert "CRIT" not in line


async def test_status_changed_host_key_and_auth_failure(sshd_remote, tmp_path, figures):
    """Both say so in words a user acts on; both recover once the user fixed the cause."""
    figures.fault("changed host key", "status")
    figures.fault("authentication failure", "status")
    home = tmp_path / "home"
    shutil.copytree(sshd_remote.home, home)
    known, ident = home / ".ssh" / "known_hosts", home / ".ssh" / "id_ed25519"
    # the copied ssh config names the original files: point it at the copies
    cfg_text = (home / ".ssh" / "config").read_text().replace(str(sshd_remote.home), str(home))
    (home / ".ssh" / "config").write_text(cfg_text)
    good_known = known.read_text()
    other = new_key().export_public_key().decode().split()
    known.write_text(f"{good_known.split()[0]} {other[0]} {other[1]}\n")
    cfg = status_config(tmp_path / "gpudash.toml", sshd_remote.alias)
    r = await status(figures, home, "--json", "--config", str(cfg), timeout=10,
                     what="status: changed host key")
    [h] = json.loads(r.stdout)
    assert r.returncode == 3 and h["reason"] == "host_key_changed"
    assert "does not match known_hosts" in h["link"]["message"]
    known.write_text(good_known)
    wrong = new_key()
    good_ident, good_pub = ident.read_bytes(), ident.with_suffix(".pub").read_bytes()
    ident.write_bytes(wrong.export_private_key())
    ident.with_suffix(".pub").write_bytes(wrong.export_public_key())
    r = await status(figures, home, "--json", "--config", str(cfg), timeout=10,
                     what="status: key refused")
    [h] = json.loads(r.stdout)
    assert r.returncode == 3 and h["reason"] == "auth_failed", h["link"]
    assert sshd_remote.kit.calls() == 0, "nothing may run before the key and user check out"
    ident.write_bytes(good_ident)
    ident.with_suffix(".pub").write_bytes(good_pub)
    r = await status(figures, home, "--json", "--config", str(cfg), timeout=10,
                     what="status: fixed")
    [h] = json.loads(r.stdout)
    assert h["link"]["ok"] and h["gpus"]


# ----------------------------------------------------------------------------- the TUI


async def test_tui_stays_responsive_while_a_host_hangs_and_another_is_down(
        make_box, ssh_home, free_closed_port, kit, tmp_path, figures):
    """The dashboard over a real Fleet: one healthy box, one whose nvidia-smi hangs, one down.
    A key press is handled while the hang is in flight; each host shows its reason; the hung
    host recovers when the hang ends; closing the app leaves nothing on the boxes."""
    from gpudash.ui.app import GpudashApp
    from gpudash.ui.screens.help import HelpScreen
    from gpudash.watch.fleet import Fleet
    from tests.ui.helpers import screen_text

    figures.fault("nvidia-smi hangs, ignores SIGTERM", "tui")
    figures.fault("host down: closed port", "tui")
    ok_server = await make_box("okbox")
    hung_server = await make_box("hungbox")
    hung_server.extra_env["PATH"] = f"{kit.bin}:{BIN}:{os.environ['PATH']}"
    ssh_home.add_alias("downbox", free_closed_port)
    kit.gpu("hang")
    specs = [fast_spec(n, thresholds=IMMEDIATE) for n in ("okbox", "hungbox", "downbox")]
    fleet = Fleet(specs, transports={s.name: _transport(s.name) for s in specs})
    app = GpudashApp(fleet)

    async def until(pilot, cond, what: str, limit: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while not cond():
            assert loop.time() < end, f"the screen never showed {what}:\n{screen_text(app)}"
            await pilot.pause(0.1)

    def card(host: str) -> str:
        return next((ln for ln in screen_text(app).splitlines() if host in ln), "")

    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: kit.calls() > 0, "the hung probe starting")
        hung_view = fleet.view("hungbox")
        assert hung_view is None or hung_view.snapshot.gpu_error is None
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen", 5)
        key_s = loop.time() - t0
        # handled while the hung nvidia-smi was still running on the box
        assert processes_with(hung_server.needle), "the hang ended before the key was handled"
        hv = fleet.view("hungbox")
        assert hv is None or hv.snapshot.gpu_error is None, "the key waited for the hang"
        figures.note(tui_key_while_hanging_s=round(key_s, 3))
        await pilot.press("escape")
        await until(pilot, lambda: "driver hung" in card("hungbox"), "hungbox: driver hung")
        await until(pilot, lambda: "unreachable" in card("downbox"), "downbox: unreachable")
        await until(pilot, lambda: "seen" in card("okbox") and "OK" in card("okbox"), "okbox OK")
        kit.gpu(None)
        await pilot.press("r")
        await until(pilot, lambda: "driver hung" not in card("hungbox")
                    and fleet.view("hungbox").snapshot.gpus, "hungbox recovered")
        await pilot.press("q")
    await fleet.close()
    for server in (ok_server, hung_server):
        assert await gone(figures, server.needle) == []
