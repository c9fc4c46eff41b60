"""Issue 5's "Done when" for the teardown, against a real OpenSSH sshd, through the real CLI.

A remote artifacts dir of 3 files and a local pull dir of 2: `gpudash teardown ALIAS` exits
non-zero naming the missing file; after copying the third (and with a verify command that loads
them) it exits 0 and shows the preset's stop command and its warnings.

The box is a real sshd on loopback (tests/services/sshd.py). This module starts its own instance
so it can give the box an idle GPU (the fake nvidia-smi's ``GD_FAKE_GPU=idle``: a finished run
holds no GPU) without touching the session-wide one the other tests share.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.require import require
from tests.services.sshd import RealSshd, sshd_binary

pytestmark = pytest.mark.sshd
REPO = Path(__file__).resolve().parents[2]
VERIFY = ("python3 -c \"import glob, json; fs = sorted(glob.glob('*.json')); "
          "[json.load(open(f)) for f in fs]; print(f'OK {len(fs)}/{len(fs)}')\"")


@pytest.fixture(scope="module")
def idle_box(tmp_path_factory) -> RealSshd:
    binary = sshd_binary()
    require(binary is not None, "OpenSSH sshd is not installed (apt-get install openssh-server)")
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed")
    server = RealSshd(tmp_path_factory.mktemp("sshd-idle"), binary).start()
    keys = server.root / "authorized_keys"
    # sshd reads authorized_keys at every login: the box's processes now see an idle GPU
    keys.write_text('environment="GD_FAKE_GPU=idle",' + keys.read_text())
    yield server
    server.stop()


def gpudash(box: RealSshd, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "XDG_CONFIG_HOME")}
    env.update(HOME=str(box.home), GPUDASH_STATE_DIR=str(tmp / "state"), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "gpudash", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


@pytest.fixture
def run_layout(tmp_path):
    """The box's side (this machine, reached through sshd) and the local pull dir."""
    remote = tmp_path / "box" / "artifacts"
    remote.mkdir(parents=True)
    for i in (1, 2, 3):
        (remote / f"ckpt-{i}.json").write_text(json.dumps({"step": i * 100, "w": [i] * 50}))
    marker = tmp_path / "box" / "TRAIN_DONE"
    marker.write_text("")
    local = tmp_path / "pull"
    local.mkdir()
    for i in (1, 2):
        shutil.copy(remote / f"ckpt-{i}.json", local)
    # The job's identity: a pgrep pattern nothing matches (the run is over).
    config = tmp_path / "gpudash.toml"
    config.write_text(f'[[host]]\nname = "{RealSshd.alias}"\n'
                      f'pgrep = "gd-finished-run-{secrets.token_hex(4)}"\n')
    return remote, marker, local, config


def test_teardown_names_the_missing_file_then_passes(idle_box, run_layout, tmp_path):
    remote, marker, local, config = run_layout
    args = [
        "teardown", RealSshd.alias, "--config", str(config),
        "--artifacts", str(remote), "--expect", "3", "--local", str(local),
        "--verify", VERIFY, "--marker", str(marker), "--preset", "ssh",
    ]
    first = gpudash(idle_box, tmp_path, *args)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "missing locally: ckpt-3.json" in first.stdout
    assert " 4 [FAIL] local copy matches the remote" in first.stdout
    assert "disabled until checks 4, 5 are green" in first.stdout
    # the checks that were already fine say why, with evidence from the box
    assert " 1 [ ok ]" in first.stdout and f"marker {marker}" in first.stdout
    assert " 3 [ ok ]" in first.stdout and "3 entries" in first.stdout

    shutil.copy(remote / "ckpt-3.json", local)
    second = gpudash(idle_box, tmp_path, *args)
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout
    assert "READY" in out and "OK 3/3" in out
    assert "command: sudo -n shutdown -h now" in out and "runs on the box" in out
    assert "warning: many clouds bill a powered-off VM" in out
    assert "warning: default plan: stop the GPU instance first" in out
    assert f"gpudash teardown {RealSshd.alias} --stop" in out

    as_json = gpudash(idle_box, tmp_path, *args, "--json", "--sha256")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["all_green"] is True
    assert [c["id"] for c in data["checks"]] == ["job", "gpu", "artifacts", "local", "verify",
                                                "stop"]
    assert "sha256: 3 of 3 files match" in data["checks"][3]["evidence"]
    assert data["stop"]["command"] == "sudo -n shutdown -h now" and data["stop"]["where"] == "box"


def test_a_tampered_local_copy_fails_only_with_sha256(idle_box, run_layout, tmp_path):
    remote, marker, local, config = run_layout
    shutil.copy(remote / "ckpt-3.json", local)
    data = (local / "ckpt-2.json").read_bytes()
    (local / "ckpt-2.json").write_bytes(data.replace(b"200", b"201"))  # same size, other bytes
    args = ["teardown", RealSshd.alias, "--config", str(config), "--artifacts", str(remote),
            "--expect", "3", "--local", str(local), "--marker", str(marker), "--preset", "ssh"]
    plain = gpudash(idle_box, tmp_path, *args)
    assert " 4 [ ok ]" in plain.stdout, plain.stdout
    hashed = gpudash(idle_box, tmp_path, *args, "--sha256")
    assert hashed.returncode == 1
    assert "sha256 differs: ckpt-2.json" in hashed.stdout


def test_stop_refuses_a_wrong_name_and_records_nothing(idle_box, run_layout, tmp_path):
    remote, marker, local, config = run_layout
    shutil.copy(remote / "ckpt-3.json", local)
    flag = tmp_path / "box" / "stopped"
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "XDG_CONFIG_HOME")}
    env.update(HOME=str(idle_box.home), GPUDASH_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=str(REPO))
    config.write_text(config.read_text() + f'\n[host.teardown]\nstop_command = "touch {flag}"\n'
                      'stop_runs_on = "box"\n')
    args = [sys.executable, "-m", "gpudash", "teardown", RealSshd.alias, "--config", str(config),
            "--artifacts", str(remote), "--expect", "3", "--local", str(local),
            "--verify", VERIFY, "--marker", str(marker), "--stop"]
    wrong = subprocess.run(args, cwd=REPO, env=env, input="gdbox2\n", capture_output=True,
                           text=True, timeout=180)
    assert wrong.returncode == 1 and "confirmation failed" in wrong.stdout
    assert not flag.exists() and not _teardown_records(tmp_path / "state")
    right = subprocess.run(args, cwd=REPO, env=env, input=f"{RealSshd.alias}\n",
                           capture_output=True, text=True, timeout=180)
    assert right.returncode == 0, right.stdout + right.stderr
    assert flag.exists(), "the stop command ran on the box, over SSH"
    [record] = _teardown_records(tmp_path / "state")  # recorded in the history store
    assert record["outcome"]["status"] == "done"


def _teardown_records(state: Path) -> list[dict]:
    from gpudash.store.store import Store

    if not (state / "history.sqlite3").exists():
        return []
    store = Store.open(state / "history.sqlite3")
    try:
        return store.teardowns(RealSshd.alias)
    finally:
        store.close()
