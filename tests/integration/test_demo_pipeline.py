"""The demo fleet runs the real pipeline (replay transport → probes → parsers → health → triage)
on the recorded traces. Driven by an injected clock, so simulated minutes take no real time."""

from __future__ import annotations

import asyncio

import pytest

from gpudash.demo.fleet import demo_fleet
from gpudash.model import Reason, State


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run_until(fleet, clock: FakeClock, until: float, step: float = 1.0):
    """Full probe rounds every `step` simulated seconds up to `until`; the last views."""
    start = clock.t

    async def go():
        views = {}
        while clock.t - start <= until:
            for name, w in fleet.watchers.items():
                views[name] = await w.full_round()
            clock.t += step
        return views

    return asyncio.run(go())


@pytest.fixture(scope="module")
def views_at_60():
    clock = FakeClock()
    fleet = demo_fleet(clock=clock, start=clock.t)
    return run_until(fleet, clock, 60.0)


def test_every_box_answers_through_the_real_parsers(views_at_60):
    assert set(views_at_60) == {"hf-a100", "loader-bound", "disk-fill", "inode-fill", "oom-h100", "spot-4090"}
    hf = views_at_60["hf-a100"].snapshot
    assert hf.gpus and hf.gpus[0].name == "NVIDIA A100-SXM4-80GB"
    assert hf.gpus[0].mem_total_mib == 81559  # from the real H100 series
    assert hf.disks and hf.disks[0].mount == "/"
    assert hf.log_lines, "the log tail reached the snapshot"
    assert hf.metrics and hf.metrics[-1].loss is not None
    assert hf.progress is not None and hf.progress.total == 2000


def test_healthy_run_is_ok(views_at_60):
    v = views_at_60["hf-a100"]
    assert v.state is State.OK, [c for c in v.checks if c.state is not State.OK]
    assert getattr(v.triage, "cls", "none") == "none"


def test_disk_fill_is_crit_with_disk_full_triage(views_at_60):
    v = views_at_60["disk-fill"]
    assert v.state is State.CRIT
    assert any(c.key.startswith("disk.bytes") and c.state is State.CRIT for c in v.checks)
    assert v.triage.cls == "disk_full"


def test_inode_fill_says_inodes_not_bytes(views_at_60):
    v = views_at_60["inode-fill"]
    assert any(c.key.startswith("disk.inodes") and c.state is State.CRIT for c in v.checks)
    disk = next(d for d in v.snapshot.disks if d.mount == "/mnt/small")
    assert disk.inodes_pct == 100.0 and disk.bytes_pct < 5
    assert v.triage.cls == "disk_full"
    assert v.triage.cause == "inodes"


def test_cuda_oom_is_triaged_with_its_evidence(views_at_60):
    v = views_at_60["oom-h100"]
    assert v.triage.cls == "cuda_oom"
    assert any("CUDA out of memory" in e.text for e in v.triage.evidence)


def test_unreachable_box_is_unknown_never_crit(views_at_60):
    v = views_at_60["spot-4090"]  # unreachable from t=35 s to t=70 s
    assert v.state is State.UNKNOWN
    assert v.reason is Reason.UNREACHABLE
    assert not v.snapshot.link.ok and v.snapshot.link.since is not None
    # its GPU and job are not declared failed because the link dropped
    assert not any(c.state is State.CRIT for c in v.checks)


def test_loader_bound_box_warns_data_bound(views_at_60):
    v = views_at_60["loader-bound"]
    util = [c for c in v.checks if c.key.startswith("gpu.util")]
    assert util and util[0].state is State.WARN
