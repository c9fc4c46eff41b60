"""`gpudash restart HOST` refuses before it launches anything (real local transport, real sh)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def restart(cfg: Path, host: str, confirm: str, state: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GPUDASH_STATE_DIR=str(state))
    return subprocess.run([sys.executable, "-m", "gpudash", "restart", host, "--config", str(cfg),
                           "--confirm", confirm], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)


def config(tmp_path: Path, pattern: str, marker: Path) -> Path:
    cfg = tmp_path / "gpudash.toml"
    cfg.write_text(f'[[host]]\nname = "box"\ntransport = "local"\npgrep = "{pattern}"\n'
                   f'resume_command = "touch {marker}"\n')
    return cfg


def test_a_wrong_name_launches_nothing(tmp_path):
    marker = tmp_path / "relaunched"
    r = restart(config(tmp_path, "gd-no-such-run-" + uuid.uuid4().hex, marker), "box", "bxo", tmp_path)
    assert r.returncode == 1 and "does not match" in r.stderr
    assert not marker.exists()


def test_a_live_job_is_never_relaunched(tmp_path):
    tag = "gd-live-run-" + uuid.uuid4().hex
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", tag])
    try:
        marker = tmp_path / "relaunched"
        r = restart(config(tmp_path, tag, marker), "box", "box", tmp_path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert any(line.startswith("refused") for line in r.stdout.splitlines()), r.stdout
        assert not marker.exists(), "a second launch beside a live job"
    finally:
        job.kill()
        job.wait()


def test_the_name_typed_at_the_prompt_is_what_confirms(tmp_path):
    """Without --confirm the host name is read from stdin (a wrong one launches nothing)."""
    marker = tmp_path / "relaunched"
    cfg = config(tmp_path, "gd-no-such-run-" + uuid.uuid4().hex, marker)
    env = dict(os.environ, PYTHONPATH=str(ROOT), GPUDASH_STATE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "gpudash", "restart", "box", "--config", str(cfg)],
                       input="xob\n", capture_output=True, text=True, env=env, timeout=120)
    assert "Type the host name (box) to confirm" in r.stderr
    assert r.returncode == 1 and "does not match" in r.stderr, r.stderr
    assert not marker.exists()
