"""A real single-node Slurm for tests (munged + slurmctld + slurmd, no slurmdbd).

The fixture starts it with ``.ci/setup-slurm.sh`` (idempotent: reused when ``sinfo`` already
answers), so the tests run the same on a laptop with slurm-wlm installed as in CI. Skipped when
slurm-wlm is not installed or we are not root (SlurmUser=root) — except under CI=true, where that
fails. Jobs the tests submit are cancelled afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.services.require import require, require_binary

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / ".ci" / "setup-slurm.sh"


def _answers() -> bool:
    if shutil.which("scontrol") is None or shutil.which("sinfo") is None:
        return False
    try:
        # `scontrol ping` answers at once; `sinfo` against a dead controller retries ~10 s.
        for cmd in (["scontrol", "ping"], ["sinfo", "-h"]):
            if subprocess.run(cmd, capture_output=True, timeout=20).returncode != 0:
                return False
        return True
    except (OSError, subprocess.TimeoutExpired):
        return False


class SlurmCluster:
    """Submit/cancel helpers; every submitted job is cancelled at teardown."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def sbatch(self, *args: str) -> str:
        out = subprocess.run(
            ["sbatch", "--parsable", *args], capture_output=True, text=True, check=True, timeout=20
        ).stdout.strip()
        job_id = out.split(";", 1)[0]
        self.jobs.append(job_id)
        return job_id

    def scancel(self, job_id: str) -> None:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=20)

    def wait_for(self, predicate, what: str, bound_s: float = 60.0):
        """Poll until ``predicate()`` is truthy (bounded; generous for a loaded CI box)."""
        end = time.monotonic() + bound_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"slurm: gave up waiting for {what}")
            time.sleep(0.2)

    def cleanup(self) -> None:
        for job_id in self.jobs:
            self.scancel(job_id)


@pytest.fixture(scope="session")
def slurm_up() -> None:
    """Make sure a single-node Slurm answers (start it when needed)."""
    if _answers():
        return
    require_binary("slurmctld", "slurm-wlm is not installed (apt-get install slurm-wlm munge)")
    require_binary("munged", "munge is not installed (apt-get install munge)")
    require(os.geteuid() == 0, "starting a test Slurm needs root (SlurmUser=root)")
    proc = subprocess.run(
        ["sh", str(SETUP)], capture_output=True, text=True, timeout=240,
        env={**os.environ, "GPUDASH_SLURM_NO_APT": "1"},
    )
    if proc.returncode != 0 or not _answers():
        # Installed and allowed, yet it does not start: that is a real failure, not a skip.
        pytest.fail(f"could not start Slurm with {SETUP.name}: {proc.stderr.strip()[-800:]}")


@pytest.fixture
def slurm(slurm_up) -> SlurmCluster:
    cluster = SlurmCluster()
    try:
        yield cluster
    finally:
        cluster.cleanup()
