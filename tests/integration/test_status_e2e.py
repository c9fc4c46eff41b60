"""`gpudash status` end to end: the real CLI, the real OpenSSH sshd, a client HOME holding nothing
but `.ssh/config` (the alias), the key it names and `known_hosts` (issue 2's "done when")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gpudash(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "gpudash", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def fake_gpu_mode(box_home: Path, mode: str | None) -> None:
    """Switch the box's stand-in nvidia-smi (tests/bin/nvidia-smi) through the login rc file."""
    rc = box_home / ".bashrc"
    lines = [x for x in rc.read_text().splitlines() if "GD_FAKE_GPU" not in x]
    if mode:
        lines.append(f"export GD_FAKE_GPU={mode}")
    rc.write_text("\n".join(lines) + "\n")


def test_home_holds_only_the_ssh_files(real_sshd):
    assert sorted(p.name for p in real_sshd.home.iterdir()) == [".ssh"]


def test_status_alias_json_reports_gpu_disk_and_inodes(real_sshd):
    r = gpudash(real_sshd.home, "status", real_sshd.alias, "--json", "--timeout", "60")
    assert r.returncode in (0, 1, 2), r.stderr
    [host] = json.loads(r.stdout)
    assert host["host"] == real_sshd.alias
    assert host["link"]["ok"] is True
    gpu = host["gpus"][0]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"  # the stand-in prints the real capture
    assert gpu["util_pct"] is not None
    assert gpu["mem_total_mib"] == 81559 and gpu["mem_used_mib"] is not None
    root = next(d for d in host["disks"] if d["mount"] == "/")
    st = os.statvfs("/")
    assert root["size_bytes"] == st.f_blocks * st.f_frsize
    assert root["inodes_total"] == st.f_files
    assert root["bytes_pct"] is not None and root["inodes_pct"] is not None


def test_status_line_mode_prints_one_line_per_host(real_sshd):
    r = gpudash(real_sshd.home, "status", real_sshd.alias, "--timeout", "60")
    assert r.returncode in (0, 1, 2), r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(real_sshd.alias)
    assert "junk" not in r.stdout  # the login rc's output never leaks into the data


def test_hung_nvidia_smi_returns_within_deadline_and_leaves_nothing(real_sshd):
    fake_gpu_mode(real_sshd.box_home, "hang")
    try:
        r = gpudash(real_sshd.home, "status", real_sshd.alias, "--json", "--timeout", "40")
    finally:
        fake_gpu_mode(real_sshd.box_home, None)
    assert r.returncode != 0, "a hung GPU probe is not OK"
    [host] = json.loads(r.stdout)
    assert host["state"] != "OK"
    assert host["gpu_error"]["reason"] in ("driver_hung", "timeout")
    # the disk probe ran in the same round and still answered
    assert any(d["mount"] == "/" for d in host["disks"])
    # nothing of the hung probe is left on the box (the remote `timeout -k` killed it)
    end = time.monotonic() + 30
    left = real_sshd.box_processes("nvidia-smi")
    while left and time.monotonic() < end:
        time.sleep(0.5)
        left = real_sshd.box_processes("nvidia-smi")
    assert left == []


def test_unreachable_host_is_unknown_not_crit(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host deadbox\n  HostName 127.0.0.1\n  Port 1\n")
    r = gpudash(home, "status", "deadbox", "--json", "--timeout", "30")
    assert r.returncode == 3, r.stdout + r.stderr
    [host] = json.loads(r.stdout)
    assert host["state"] == "UNKNOWN" and host["reason"] == "unreachable"
    assert not any(c["state"] == "CRIT" for c in host["checks"])


@pytest.mark.parametrize("mode,reason", [("nodev", "no_gpu"), ("notfound", "no_gpu")])
def test_gpu_errors_are_explained_states(real_sshd, mode, reason):
    fake_gpu_mode(real_sshd.box_home, mode)
    try:
        r = gpudash(real_sshd.home, "status", real_sshd.alias, "--json", "--timeout", "60")
    finally:
        fake_gpu_mode(real_sshd.box_home, None)
    [host] = json.loads(r.stdout)
    assert host["gpu_error"]["reason"] == reason
    assert host["link"]["ok"] is True


def test_triage_host_reads_the_run_log_over_ssh(real_sshd, tmp_path):
    log = tmp_path / "run" / "train.log"
    log.parent.mkdir()
    log.write_bytes((ROOT / "tests/fixtures/logs/fail-cuda-oom.log").read_bytes())
    cfg = tmp_path / "gpudash.toml"
    cfg.write_text(f'[[host]]\nname = "{real_sshd.alias}"\nlog = "{log}"\n')
    r = gpudash(real_sshd.home, "triage", "--host", real_sshd.alias, "--config", str(cfg), "--json")
    assert r.returncode == 2, r.stderr
    out = json.loads(r.stdout)
    assert out["class"] == "cuda_oom"
    assert any("CUDA out of memory" in e["text"] for e in out["evidence"])
