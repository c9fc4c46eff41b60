"""GPU samples from NVML in one python3 on the box (gpudash/probes/nvml_stream.py).

CI has no GPU: these tests build a stand-in libnvidia-ml.so.1 (tests/native/fake_nvml.c, the C
ABI of nvml.h) and put it on LD_LIBRARY_PATH, so the agent's ctypes calls meet a real shared
library. The real one was checked against nvidia-smi on an H100 (benchmarks/nvsmi_cost.py,
`benchmarks/results/nvsmi_h100.json`). The watcher tests run the real /bin/sh and the in-process
SSH server, with the stand-in nvidia-smi (tests/bin) beside the stand-in NVML: which of the two
produced a sample shows in its UUID.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes.util
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gpudash.probes.gpu import CORE_FIELDS, parse_gpu_line
from gpudash.probes.nvml_stream import nvml_stream_step
from gpudash.transport.local import LocalTransport
from gpudash.transport.ssh import SshTransport
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec
from tests.services.require import require
from tests.services.ssh_server import BIN, processes_with, wait_until_gone

ROOT = Path(__file__).resolve().parents[1]
FX = ROOT / "fixtures" / "h100"
# The column list of the query-*.csv captures (tests/fixtures/README.md)
CAPTURE_FIELDS = ("index,uuid,name,pci.bus_id,driver_version,pstate,temperature.gpu,"
                  "temperature.memory,utilization.gpu,utilization.memory,memory.total,memory.used,"
                  "memory.free,power.draw,power.limit,clocks.sm,clocks.mem,clocks.max.sm,fan.speed,"
                  "ecc.errors.uncorrected.volatile.total,clocks_throttle_reasons.active,"
                  "clocks_event_reasons.active,mig.mode.current,compute_mode").split(",")


def captured(name: str) -> list[str]:
    """The real nvidia-smi line of a capture, cut to the columns the GPU stream asks for."""
    values = [v.strip() for v in (FX / name).read_text().splitlines()[0].split(",")]
    row = dict(zip(CAPTURE_FIELDS, values, strict=True))
    return [row[f] for f in CORE_FIELDS]


NVSMI_UUID = "GPU-03c43c8c-e555-6128-fe25-59eeeed028c2"  # the stand-in nvidia-smi's captures

# A second GPU with what nvidia-smi prints for readings a GPU lacks or a user may not read, and a
# name holding a comma (nvidia-smi does not quote it).
ODD_GPU = ["1", "GPU-0dd0dd0d-0000-1111-2222-333344445555", "NVIDIA A100, odd", "00000000:00:07.0",
           "580.159.04", "P2", "41", "[N/A]", "57", "7", "40960", "1000", "39500", "300.50",
           "[Insufficient Permissions]", "1410", "1215", "1410", "[N/A]", "[N/A]",
           "Exclusive_Process"]


@pytest.fixture(scope="session")
def nvml_lib(tmp_path_factory) -> Path:
    """The folder holding the stand-in libnvidia-ml.so.1, built once."""
    cc = shutil.which("cc") or shutil.which("gcc")
    require(cc is not None, "no C compiler to build the stand-in libnvidia-ml (apt-get install gcc)")
    out = tmp_path_factory.mktemp("nvml")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out / "libnvidia-ml.so.1"),
                    str(ROOT / "native" / "fake_nvml.c")], check=True)
    return out


class FakeNvml:
    def __init__(self, lib: Path, tmp: Path) -> None:
        self.lib, self.conf, self.calls = lib, tmp / "nvml.conf", tmp / "nvml.calls"
        self.apps = tmp / "nvml.apps"  # absent: the compute-apps call is not supported
        self.health = tmp / "nvml.health"  # absent: the ECC and clock-event calls are not
        self.write(captured("query-idle-nounits.csv"))

    def set_apps(self, *rows: str) -> None:
        """``GPU_INDEX PID USED_MIB NAME`` per process (USED_MIB -1: not available)."""
        tmp = self.apps.with_suffix(".tmp")
        tmp.write_text("".join(r + "\n" for r in rows))
        tmp.replace(self.apps)  # whole, never half-written, for a sampler reading it now

    def set_health(self, *rows: str) -> None:
        """``GPU_INDEX ECC_TOTAL MASK_HEX`` per GPU (ECC -1: not supported)."""
        tmp = self.health.with_suffix(".tmp")
        tmp.write_text("".join(r + "\n" for r in rows))
        tmp.replace(self.health)

    def write(self, *gpus: list[str], extra: str = "") -> None:
        self.conf.write_text("".join("gpu " + "|".join(g) + "\n" for g in gpus) + extra)

    def env(self, **more: str) -> dict[str, str]:
        return {"LD_LIBRARY_PATH": str(self.lib), "GD_FAKE_NVML": str(self.conf),
                "GD_FAKE_NVML_CALLS": str(self.calls), "GD_FAKE_NVML_APPS": str(self.apps),
                "GD_FAKE_NVML_HEALTH": str(self.health), **more}

    def count(self, fn: str) -> int:
        if not self.calls.exists():
            return 0
        return self.calls.read_text().splitlines().count(fn)


@pytest.fixture
def nvml(nvml_lib, tmp_path) -> FakeNvml:
    return FakeNvml(nvml_lib, tmp_path)


def agent_lines(nvml: FakeNvml, n: int, interval_ms: int = 50, *, blocks: bool = False,
                **env) -> tuple[list[bytes], int]:
    """The agent's first ``n`` lines (fewer if it exits; its compute-apps and health lines left
    out unless ``blocks``) and its exit code (None: still running)."""
    proc = subprocess.Popen(["/bin/sh", "-c", nvml_stream_step(interval_ms).script],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={"PATH": os.environ["PATH"], **nvml.env(), **env})
    lines, code = [], None
    try:
        while len(lines) < n:
            line = proc.stdout.readline()
            if not line:  # it closed its output: it is exiting
                code = proc.wait(timeout=30)
                break
            if blocks or line[:1] not in (b"A", b"H"):
                lines.append(line)
    finally:
        proc.kill()
        proc.wait()
    return lines, code


# ----------------------------------------------------------------------------- the agent


def test_the_agent_prints_the_line_nvidia_smi_printed(nvml):
    """Byte for byte the real H100 capture's line: every value in its column, with nvidia-smi's
    number formats (two decimals for watts, MiB from bytes) and its placeholders."""
    idle = captured("query-idle-nounits.csv")
    nvml.write(idle, ODD_GPU)
    lines, _ = agent_lines(nvml, 4)
    assert lines[0].decode() == ", ".join(idle) + "\n"
    assert lines[1].decode() == ", ".join(ODD_GPU) + "\n"
    assert lines[2:] == lines[:2]  # the next interval: the same two GPUs again
    odd = parse_gpu_line(lines[1])
    assert odd.name == "NVIDIA A100, odd" and odd.index == 1
    assert odd.power_limit_w is None and odd.mem_temp_c is None and odd.mig_mode is None
    assert odd.power_w == 300.5 and odd.compute_mode == "Exclusive_Process"


def test_a_busy_capture_too(nvml):
    busy = captured("query-busy-nounits.csv")
    nvml.write(busy)
    lines, _ = agent_lines(nvml, 1)
    assert lines == [(", ".join(busy) + "\n").encode()]
    assert parse_gpu_line(lines[0]).mem_used_mib == 1041.0


def test_a_reading_the_gpu_lacks_is_asked_once_and_the_power_limit_rarely(nvml):
    """`nvmlDeviceGetFanSpeed` answers NOT_SUPPORTED on an H100 and cost ~0.17 ms a call there,
    as much as the power limit, which only an admin changes: neither is read every sample."""
    lines, _ = agent_lines(nvml, 6)
    assert len(lines) == 6 and all(b", [N/A], " in ln for ln in lines)
    assert nvml.count("nvmlDeviceGetFanSpeed") == 1
    assert nvml.count("nvmlDeviceGetPowerManagementLimit") == 1  # every 15 s at 50 ms: once
    assert nvml.count("nvmlDeviceGetPowerUsage") >= 6  # the rest: every sample


def test_without_nvml_the_agent_says_why_and_exits(nvml, tmp_path):
    nvml.write(captured("query-idle-nounits.csv"), extra="init_rc 9\n")
    assert agent_lines(nvml, 3) == ([b"NONVML nvmlInit failed 9\n"], 0)
    if ctypes.util.find_library("nvidia-ml") is None:  # no real NVML on this machine either
        lines, code = agent_lines(nvml, 3, LD_LIBRARY_PATH=str(tmp_path))
        assert (lines, code) == ([b"NONVML cannot load libnvidia-ml.so.1\n"], 0)
    no_python = tmp_path / "bin"
    no_python.mkdir()
    for tool in ("sh", "timeout"):
        if shutil.which(tool):
            (no_python / tool).symlink_to(shutil.which(tool))
    assert agent_lines(nvml, 3, PATH=str(no_python)) == ([b"NONVML no python3\n"], 0)


def test_a_failing_call_mid_stream_ends_the_agent_with_the_call_named(nvml):
    nvml.write(captured("query-idle-nounits.csv"), extra="fail nvmlDeviceGetPowerUsage 2 15\n")
    lines, code = agent_lines(nvml, 5)
    assert len(lines) == 3 and lines[2] == b"NVMLERR nvmlDeviceGetPowerUsage 15\n"
    assert all(parse_gpu_line(ln) is not None for ln in lines[:2])
    assert parse_gpu_line(lines[2]) is None


class Agent:
    """The sampler as a process, read line by line, one kind of block set aside."""

    def __init__(self, nvml: FakeNvml, skip: bytes, interval_ms: int = 100) -> None:
        self.skip = skip
        self.proc = subprocess.Popen(["/bin/sh", "-c", nvml_stream_step(interval_ms).script],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env={"PATH": os.environ["PATH"], **nvml.env()})

    def line(self) -> bytes:
        while (line := self.proc.stdout.readline())[:1] == self.skip:
            pass
        return line

    def until(self, head: bytes) -> bytes:
        """The next line starting with ``head``; every line before it must be a GPU sample."""
        while not (line := self.line()).startswith(head):
            assert parse_gpu_line(line) is not None, line
        return line

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_compute_apps_come_as_nvidia_smi_lists_them_and_only_when_they_change(nvml):
    nvml.set_apps("0 436 1032 python3")
    agent = Agent(nvml, skip=b"H")
    try:
        lines = [agent.line() for _ in range(1 + 3)]  # GPU, APPS 1, A …, GPU
        # the real capture's line (apps-busy-nounits.csv), behind "A "
        capture = (FX / "apps-busy-nounits.csv").read_bytes().strip()
        assert lines[1:3] == [b"APPS 1\n", b"A " + capture + b"\n"]
        assert parse_gpu_line(lines[3]) is not None  # unchanged: no block again
        for _ in range(5):
            assert parse_gpu_line(agent.line()) is not None
        # a second process appears, one whose memory NVML cannot tell, named like a sample
        nvml.set_apps("0 436 1032 python3", "0 9 -1 0, GPU-forged, x")
        assert agent.until(b"APPS") == b"APPS 2\n"
        rows = [agent.line() for _ in range(2)]
        assert rows[1] == b"A 9, 0, GPU-forged, x, [N/A], " + NVSMI_UUID.encode() + b"\n"
        assert parse_gpu_line(rows[1]) is None  # an app line never reads as a GPU sample
        nvml.set_apps()  # the run ended
        assert agent.until(b"APPS") == b"APPS 0\n"
    finally:
        agent.close()


def test_health_comes_as_the_health_query_prints_it_and_only_when_it_changes(nvml):
    """The idle capture's ECC and clock-event columns (query-idle-nounits.csv), then a new
    uncorrectable ECC error and a thermal slowdown."""
    nvml.set_health("0 0 0x1")
    agent = Agent(nvml, skip=b"A")
    try:
        lines = [agent.line() for _ in range(1 + 2 + 3)]
        idle = (FX / "query-idle-nounits.csv").read_text().split(", ")
        assert lines[1:3] == [b"HEALTH 1\n", f"H 0, {idle[19]}, {idle[20]}\n".encode()]
        assert all(parse_gpu_line(ln) is not None for ln in lines[3:])  # unchanged: no block
        nvml.set_health("0 2 0x21")
        assert agent.until(b"HEALTH") == b"HEALTH 1\n"
        assert agent.line() == b"H 0, 2, 0x0000000000000021\n"
        nvml.set_health("0 -1 0x0")  # ECC switched off: nvidia-smi's placeholder
        assert agent.until(b"HEALTH") == b"HEALTH 1\n"
        assert agent.line() == b"H 0, [N/A], 0x0000000000000000\n"
    finally:
        agent.close()


def test_an_nvml_that_cannot_list_apps_says_so_once(nvml):
    lines, _ = agent_lines(nvml, 6, blocks=True)  # no apps file: NOT_SUPPORTED
    assert lines.count(b"APPS -\n") == 1 and lines[1] == b"APPS -\n"
    assert nvml.count("nvmlDeviceGetComputeRunningProcesses_v3") == 1


# ----------------------------------------------------------------------------- in the watcher


def spec(**kw) -> WatchSpec:
    return WatchSpec(name="box", transport="local", mounts=("/",),
                     cadence=Cadence(gpu=0.2, log=60, disk=60, jobs=60, files=60, probe_timeout=8),
                     **kw)


@contextlib.asynccontextmanager
async def gpu_loop(w: HostWatcher):
    """The watcher's GPU loop (its one-shot round, then the stream) while the block runs."""
    task = asyncio.create_task(w._loop("gpu", 0.2))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def round_batches(w, group: str) -> list[set[str]]:
    """The batches one round of ``group`` ran."""
    n = len(w.batches)
    await w.round(group)
    return w.batches[n:]


async def until(cond, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.05)


def cmdlines(needle: str) -> list[bytes]:
    out = []
    for pid in processes_with(needle):
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            pass
    return out


NVML_ONLY_UUID = "GPU-feedface-0000-0000-0000-000000000001"


def nvml_gpu() -> list[str]:
    """The idle capture with a UUID of its own, so a sample shows which tool produced it."""
    idle = captured("query-idle-nounits.csv")
    return [idle[0], NVML_ONLY_UUID, *idle[2:]]


@pytest.fixture
def fresh_nvml(nvml):
    nvml.write(nvml_gpu())
    return nvml


@pytest.fixture(params=["local", "ssh"])
async def gpu_box(request, make_box, fresh_nvml):
    """A box with the stand-in nvidia-smi and the stand-in NVML: local, or in-process SSH."""
    token = "GDNVML" + os.urandom(4).hex()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "GD_TEST_TOKEN": token, **fresh_nvml.env()}
    if request.param == "local":
        transport = LocalTransport("box", env=env)
    else:
        server = await make_box("box")
        server.extra_env.update(env)
        transport = SshTransport("box")
    try:
        yield transport, token, fresh_nvml
    finally:
        await transport.close()
    # nothing left behind on the box: the sampler dies with its channel
    assert await wait_until_gone(token, within=30) == []


async def test_the_watcher_streams_from_nvml_and_nvidia_smi_never_streams(gpu_box):
    transport, token, nvml = gpu_box
    w = HostWatcher(spec(), transport)
    async with gpu_loop(w):
        await until(lambda: w.gpu_source == "nvml" and w.gpus
                    and w.gpus[0].uuid == NVML_ONLY_UUID)
        n0 = nvml.count("nvmlDeviceGetPowerUsage")
        await until(lambda: nvml.count("nvmlDeviceGetPowerUsage") >= n0 + 5)
        assert w.gpu_source == "nvml" and w.gpus[0].uuid == NVML_ONLY_UUID
        assert len(w.util_hist[0]) >= 5
        # one sampler, and no `nvidia-smi -lms` at all (the one-shot before it is nvidia-smi's)
        lines = cmdlines(token)
        assert not [c for c in lines if b"-lms" in c]
        assert len([c for c in lines if c.startswith(b"python3\0-I\0-S")]) == 1
        assert nvml.count("nvmlDeviceGetCount_v2") == 1  # one start for every sample since


async def test_without_nvml_the_watcher_streams_from_nvidia_smi_and_tries_nvml_later(gpu_box):
    transport, token, nvml = gpu_box
    nvml.write(captured("query-idle-nounits.csv"), extra="init_rc 9\n")  # the driver not loaded
    w = HostWatcher(spec(), transport)
    async with gpu_loop(w):
        await until(lambda: w.gpu_source == "nvidia-smi")
        await until(lambda: len(w.util_hist.get(0, ())) >= 4)
        assert w.gpus[0].uuid == NVSMI_UUID
        assert [c for c in cmdlines(token) if b"-lms" in c]
        assert w._nvml_retry_at > time.monotonic() + 60  # tried again later, not never
        assert nvml.count("nvmlDeviceGetCount_v2") == 0  # init failed: nothing else asked


async def test_an_nvml_call_failing_mid_stream_hands_over_to_nvidia_smi_rounds(gpu_box, monkeypatch):
    """GPU lost mid-stream: the sampler names the call and exits; the one-shot nvidia-smi round
    that follows speaks (here the stand-in answers; on a real box it says what happened)."""
    transport, token, nvml = gpu_box
    nvml.write(nvml_gpu(), extra="fail nvmlDeviceGetPowerUsage 3 15\n")
    w = HostWatcher(spec(), transport)
    rounds = []
    real_round = w.round

    async def counted(group):
        rounds.append(group)
        return await real_round(group)

    w.round = counted
    async with gpu_loop(w):
        # each sampler gives three samples and ends; a one-shot round follows, then NVML
        # again: it gave samples, so it is not set aside
        await until(lambda: nvml.count("nvmlDeviceGetCount_v2") >= 3)
        assert rounds.count("gpu") >= 3
        assert w._nvml_retry_at == 0.0
        assert not [c for c in cmdlines(token) if b"-lms" in c]
        assert w.gpus and w.gpu_error is None


async def test_gpu_nvml_false_keeps_nvidia_smi(gpu_box):
    transport, token, nvml = gpu_box
    w = HostWatcher(spec(gpu_nvml=False), transport)
    async with gpu_loop(w):
        await until(lambda: w.gpu_source == "nvidia-smi" and len(w.util_hist.get(0, ())) >= 3)
        assert nvml.count("nvmlInit_v2") == 0 and w.gpus[0].uuid == NVSMI_UUID


class Steps(HostWatcher):
    """The real watcher, remembering the keys of every batch it ran."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.batches: list[set[str]] = []

    async def _run_steps(self, steps):
        self.batches.append({st.key for st in steps})
        return await super()._run_steps(steps)


async def test_while_the_sampler_lists_apps_no_jobs_round_asks_nvidia_smi(gpu_box):
    transport, token, nvml = gpu_box
    nvml.set_apps("0 4242 2048 python3 train.py")
    w = Steps(spec(), transport)
    async with gpu_loop(w):
        await until(lambda: w.apps and w.apps[0].pid == 4242)
        assert w._stream_apps and w.apps[0].used_mib == 2048.0
        assert w.apps[0].gpu_uuid == NVML_ONLY_UUID
        for _ in range(3):  # no job is identified: without the sampler each would ask
            await w.round("jobs")
        assert not [b for b in w.batches if "gpu_apps" in b]
        nvml.set_apps("0 4242 4096 python3 train.py", "0 4343 100 python3 eval.py")
        await until(lambda: w.apps and len(w.apps) == 2)  # from the stream, no round asked
        assert not [b for b in w.batches if "gpu_apps" in b]
    # the sampler gone, the jobs rounds ask nvidia-smi again (no job identified: every round)
    assert not w._stream_apps
    assert any("gpu_apps" in b for b in await round_batches(w, "jobs"))


async def test_a_sampler_that_cannot_list_apps_leaves_them_to_nvidia_smi(gpu_box):
    transport, token, nvml = gpu_box  # no apps file: NVML answers NOT_SUPPORTED
    w = Steps(spec(), transport)
    async with gpu_loop(w):
        await until(lambda: w.gpu_source == "nvml" and len(w.util_hist.get(0, ())) >= 3)
        assert any("gpu_apps" in b for b in await round_batches(w, "jobs"))
        assert not w._stream_apps and w.apps  # the stand-in nvidia-smi's busy capture
        assert w.apps[0].gpu_uuid == NVSMI_UUID


async def test_while_the_sampler_sends_health_no_disk_round_asks_nvidia_smi(gpu_box):
    transport, token, nvml = gpu_box
    nvml.set_health("0 0 0x1")
    w = Steps(spec(), transport)
    async with gpu_loop(w):
        await until(lambda: w._stream_health and w.gpu_health)
        assert (w.gpu_health[0].ecc_uncorrected, w.gpu_health[0].throttle_mask) == (0, 1)
        w._gpu_health_at = None  # as if never asked: a disk round would ask nvidia-smi now
        for _ in range(2):
            await w.round("disk")
        assert not [b for b in w.batches if "gpu_health" in b]
        nvml.set_health("0 3 0x40")  # an uncorrectable ECC error, a HW thermal slowdown
        await until(lambda: w.gpu_health[0].ecc_uncorrected == 3)
        assert w.gpu_health[0].throttle_mask == 0x40
        assert not [b for b in w.batches if "gpu_health" in b]
    # the sampler gone, the disk rounds ask nvidia-smi again once the health query is due
    assert not w._stream_health
    w._gpu_health_at = None
    assert any("gpu_health" in b for b in await round_batches(w, "disk"))
