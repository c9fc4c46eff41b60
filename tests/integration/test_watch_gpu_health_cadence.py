"""The GPU health query (ECC, throttle reasons: a one-shot nvidia-smi, ~27 ms of CPU per run on
a real H100) rides the disk rounds at most every `cadence.gpu_health`, and every disk round
until it has answered once. Real watcher rounds over the local transport with the stand-in
nvidia-smi (tests/bin) first on the PATH; what is checked is which steps each round ran."""

from __future__ import annotations

import os
from pathlib import Path

from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec
from tests.integration.recording import Recording

BIN = Path(__file__).resolve().parents[1] / "bin"


def _env(mode: str) -> dict[str, str]:
    return dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", GD_FAKE_GPU=mode)


async def test_health_query_once_then_on_its_own_cadence():
    t = Recording(env=_env("busy"))
    try:
        w = HostWatcher(WatchSpec(name="b", transport="local", mounts=("/",),
                                  cadence=Cadence(gpu_health=3600)), t)
        await w.round("disk")
        await w.round("disk")
        assert "gpu_health" in t.batches[0] and "gpu_health" not in t.batches[1], t.batches
        assert w.gpu_health and all(h.ecc_uncorrected is not None for h in w.gpu_health)
        assert all("df_bytes" in b and "memory" in b for b in t.batches)  # disks every round
    finally:
        await t.close()


async def test_until_it_answers_it_is_asked_every_disk_round():
    t = Recording(env=_env("notfound"))
    try:
        w = HostWatcher(WatchSpec(name="b", transport="local", mounts=("/",),
                                  cadence=Cadence(gpu_health=3600)), t)
        await w.round("disk")
        await w.round("disk")
        assert all("gpu_health" in b for b in t.batches), t.batches
        assert w.gpu_health == ()
    finally:
        await t.close()
