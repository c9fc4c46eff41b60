"""The demo's simulated boxes: each replays real recorded traces, time-compressed so that within
about a minute every panel, an alert and a triage are on screen.

- `hf-a100`      a healthy Hugging Face Trainer run (tqdm `\\r` bars, dict metric lines)
- `loader-bound` the real busy/stall GPU trace re-sequenced so the windowed util falls under 50 %
- `disk-fill`    checkpoints fill the disk's bytes until a save fails with ENOSPC
- `inode-fill`   eval predictions exhaust the inodes of a tmpfs while bytes stay at 2 %
- `oom-h100`     a run that dies of CUDA OOM (the real traceback), its process gone
- `spot-4090`    a healthy run on a box that becomes unreachable for a while, then returns

Everything a box prints is a function of the simulated time, so the demo is deterministic for a
given seed and speed.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

from gpudash.demo import traces
from gpudash.model import Reason

GB = 1_000_000_000


@dataclass
class LogScript:
    """A log that grows over time: (time, bytes) events, concatenated up to `t`."""

    times: list[float] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)

    def add(self, t: float, text: str) -> None:
        self.data += text.encode()
        self.times.append(t)
        self.ends.append(len(self.data))

    def size_at(self, t: float) -> int:
        i = bisect.bisect_right(self.times, t)
        return self.ends[i - 1] if i else 0

    def last_time(self) -> float:
        return self.times[-1] if self.times else 0.0


@dataclass
class Scenario:
    name: str
    gpu_name: str
    uuid: str
    log_path: str
    log: LogScript
    gpu_rows: tuple  # cycled, one per `gpu_period` seconds
    gpu_period: float = 0.5
    mounts: tuple = ()  # (fs, mount, size, used_at(t), inode_total, inodes_used_at(t))
    crash_at: float | None = None  # the training process is gone after this time
    finished_at: float | None = None
    unreachable: tuple[float, float] | None = None
    tmux_session: str = "train"
    command: str = "python train.py"
    pid: int = 4242
    checkpoint_dir: str | None = None
    checkpoints_at: tuple = ()  # times at which a checkpoint appears
    checkpoint_bytes: int = 0
    notes: str = ""
    labels: dict = field(default_factory=dict)
    temp_offset: float = 0.0

    def alive(self, t: float) -> bool:
        end = min(x for x in (self.crash_at, self.finished_at, math.inf) if x is not None)
        return t < end


def _hf_log(rng: random.Random, total_steps: int, rate: float, until: float) -> LogScript:
    """Lines in the exact shape of the real HF Trainer log (tests/fixtures/logs/hf-trainer.log)."""
    log = LogScript()
    head = traces.read("hf-trainer.log").splitlines(keepends=True)[:2]
    for line in head:
        log.add(0.0, line)
    loss = 6.8
    bar_w = 10
    step = 0
    t = 0.5
    while t < until and step < total_steps:
        step = min(total_steps, step + max(1, int(rate * 0.5)))
        pct = 100 * step // total_steps
        filled = bar_w * step // total_steps
        bar = "█" * filled + " " * (bar_w - filled)
        log.add(t, f"\r{pct:3d}%|{bar}| {step}/{total_steps} [00:{int(t):02d}<00:40, {rate:.2f}it/s]")
        if step % 50 < max(1, int(rate * 0.5)):
            loss = max(0.4, loss * (0.985 + rng.random() * 0.01))
            log.add(t, f"\r{' ' * 47}\r{{'loss': '{loss:.4g}', 'grad_norm': '{0.8 + rng.random() * 0.3:.4g}', "
                       f"'learning_rate': '{5e-05 * (1 - step / total_steps):.4g}', "
                       f"'epoch': '{step / (total_steps / 3):.4g}'}}\n")
        t += 0.5
    return log


def _plain_log(rng: random.Random, *, start_loss: float, rate: float, until: float,
               fmt: str = "epoch {epoch} step {step} loss {loss:.6f} lr 1.00e-04\n") -> LogScript:
    """Lines in the shape of the real plain PyTorch loop logs (train-healthy.log)."""
    log = LogScript()
    loss = start_loss
    step = 0
    t = 0.5
    while t < until:
        step += 20
        loss *= 0.93 + rng.random() * 0.04
        log.add(t, fmt.format(epoch=step // 2000, step=step, loss=loss))
        t += 20 / rate
    return log


def build(seed: int = 7) -> list[Scenario]:
    rng = random.Random(seed)
    busy = traces.busy_rows()
    stall = traces.stall_rows()
    uuid = lambda n: f"GPU-{rng.getrandbits(32):08x}-{n:04x}-demo-{rng.getrandbits(48):012x}"  # noqa: E731

    hf = Scenario(
        name="hf-a100", gpu_name="NVIDIA A100-SXM4-80GB", uuid=uuid(1),
        log_path="/workspace/runs/llama-ft/train.log", log=_hf_log(rng, 2000, 18.0, 3600),
        gpu_rows=busy, mounts=(("/dev/vda", "/", 270 * GB, lambda t: 120 * GB + int(t * 2e6),
                                16_777_216, lambda t: 123_432),),
        tmux_session="llama-ft", command="python train.py --config llama-ft.yaml", pid=4242,
        checkpoint_dir="/workspace/runs/llama-ft", checkpoints_at=(20, 45, 70, 95),
        checkpoint_bytes=2 * GB, notes="resume: tmux new -d -s llama-ft 'bash run.sh --resume'",
        labels={"group": "finetune"},
    )
    # The real trace's busy and stalled samples, re-sequenced: 2 s of work, 4 s waiting on the loader.
    loader_rows = tuple(busy[i % len(busy)] for i in range(4)) + tuple(stall[i % len(stall)] for i in range(8))
    loader = Scenario(
        name="loader-bound", gpu_name="NVIDIA H100 80GB HBM3", uuid=uuid(2),
        log_path="/data/exp/vit/stdout.log",
        log=_plain_log(rng, start_loss=0.0192, rate=10.0, until=3600, fmt="step {step} loss {loss:.5f}\n"),
        gpu_rows=loader_rows, mounts=(("/dev/nvme0n1", "/data", 1_900 * GB, lambda t: 610 * GB,
                                       120_000_000, lambda t: 2_100_000),),
        tmux_session="vit", command="python -m vit.train --workers 2", pid=5151,
        labels={"group": "vision"},
    )
    disk_log = _plain_log(rng, start_loss=0.029, rate=25.0, until=52)
    disk_log.add(52.5, "saving checkpoint to /scratch/ckpt/step_2600.pt\n")
    disk_log.add(53.0, traces.read("fail-disk-full-write.log"))
    disk = Scenario(
        name="disk-fill", gpu_name="NVIDIA H100 80GB HBM3", uuid=uuid(3),
        log_path="/scratch/run/train.log", log=disk_log, gpu_rows=busy, crash_at=53.5,
        mounts=(("/dev/vdb", "/scratch", 500 * GB,
                 lambda t: min(int(400 * GB + t * 1.95 * GB), 500 * GB - 200_000_000),
                 32_000_000, lambda t: 40_000),),
        tmux_session="ckpt-heavy", command="python train.py --save-every 100", pid=6161,
        checkpoint_dir="/scratch/ckpt", checkpoints_at=tuple(range(5, 53, 8)), checkpoint_bytes=15 * GB,
        labels={"group": "pretrain"},
    )
    ino_log = LogScript()
    for i in range(0, 199):
        ino_log.add(0.5 + i * 0.22, f"eval: wrote /mnt/small/pred_{i:05d}.json\n")
    ino_log.add(44.5, traces.read("fail-inodes.log"))
    inode = Scenario(
        name="inode-fill", gpu_name="NVIDIA L40S", uuid=uuid(4), log_path="/mnt/small/eval.log",
        log=ino_log, gpu_rows=busy, crash_at=45.0,
        # The real inode trap: a 64 MiB tmpfs with 200 inodes (fixtures df-*-small.txt).
        mounts=(("tmpfs", "/mnt/small", 67_108_864, lambda t: 815_104 * min(1.0, 0.3 + t / 44.5) // 1,
                 200, lambda t: min(200, 20 + int(t * 4.1))),
                ("/dev/vda", "/", 270 * GB, lambda t: 17 * GB, 16_777_216, lambda t: 123_432)),
        tmux_session="eval", command="python eval.py --dump-preds", pid=7171,
        labels={"group": "eval"},
    )
    oom_log = _plain_log(rng, start_loss=2.31, rate=30.0, until=28,
                         fmt="epoch {epoch} step {step} loss {loss:.4f} lr 3.00e-04\n")
    oom_log.add(28.5, traces.read("fail-cuda-oom.log"))
    oom = Scenario(
        name="oom-h100", gpu_name="NVIDIA H100 80GB HBM3", uuid=uuid(5), log_path="/root/job/out.log",
        log=oom_log, gpu_rows=busy, crash_at=29.0,
        mounts=(("/dev/vda", "/", 270 * GB, lambda t: 17 * GB, 16_777_216, lambda t: 123_432),),
        tmux_session="bs256", command="python train.py --batch-size 256", pid=8181,
        labels={"group": "pretrain"},
    )
    spot = Scenario(
        name="spot-4090", gpu_name="NVIDIA GeForce RTX 4090", uuid=uuid(6),
        log_path="/root/run/train.log", log=_plain_log(rng, start_loss=1.2, rate=12.0, until=3600),
        gpu_rows=busy, unreachable=(35.0, 70.0), temp_offset=36.0,
        mounts=(("overlay", "/", 100 * GB, lambda t: 61 * GB, 6_553_600, lambda t: 400_000),),
        tmux_session="sd-lora", command="accelerate launch train_lora.py", pid=9191,
        labels={"group": "finetune"},
    )
    return [hf, loader, disk, inode, oom, spot]


def unreachable_error(sc: Scenario, t: float) -> tuple[Reason, str] | None:
    if sc.unreachable and sc.unreachable[0] <= t < sc.unreachable[1]:
        return Reason.UNREACHABLE, "connect to host spot-4090 port 22: connection timed out"
    return None
