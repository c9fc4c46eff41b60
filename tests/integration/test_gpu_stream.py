"""GPU samples from one long-lived `nvidia-smi -lms` (real /bin/sh, the stand-in nvidia-smi)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gpudash.transport.local import LocalTransport
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec
from tests.services.ssh_server import processes_with, wait_until_gone

BIN = Path(__file__).resolve().parents[1] / "bin"


async def test_one_stream_feeds_many_samples_and_dies_with_the_watch():
    token = "GDSTREAM" + os.urandom(4).hex()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "GD_TEST_TOKEN": token}
    # the nvidia-smi stream itself (the NVML sampler, tried first by default: test_gpu_nvml.py)
    spec = WatchSpec(name="box", transport="local", mounts=("/",), gpu_nvml=False,
                     cadence=Cadence(gpu=0.2, log=60, disk=60, jobs=60, files=60, probe_timeout=8))
    transport = LocalTransport("box", env=env)
    watcher = HostWatcher(spec, transport)
    seen: list[float] = []
    enough = asyncio.Event()

    def on_view(view):
        at = view.snapshot.gpu_at
        if at is not None and (not seen or at != seen[-1]):
            seen.append(at)
        if len(seen) >= 6:
            enough.set()

    watcher.subscribe(on_view)
    task = asyncio.create_task(watcher._loop("gpu", 0.2))
    try:
        await asyncio.wait_for(enough.wait(), timeout=60)
        streams = [p for p in processes_with(token) if b"-lms" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(streams) >= 1
        # all samples after the first one-shot came from ONE process, not one per tick
        nvsmi = [p for p in processes_with(token)
                 if b"nvidia-smi" in Path(f"/proc/{p}/cmdline").read_bytes()
                 and b"/bin/sh -c" not in Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")]
        assert len(nvsmi) <= 2
        assert watcher.gpus and watcher.gpus[0].name == "NVIDIA H100 80GB HBM3"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await transport.close()
    assert await wait_until_gone(token, within=20) == []
