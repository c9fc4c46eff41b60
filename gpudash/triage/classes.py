"""The triage classes: ids (part of the CLI contract), categories, plain-language explanations and
the FIXED remediation policy of each (product.md, "Triage classes").

The remediation text is policy, not a guess from the log: a class always gets the same advice, so
the triage pane, `gpudash triage` and `gpudash wait` can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassInfo:
    id: str
    category: str
    title: str  # a few words, for one-line summaries
    explanation: str  # what happened, in plain language
    remediation: str  # the fixed policy for this class

    @property
    def is_failure(self) -> bool:
        return self.id not in ("none", "completed", "cancelled")


_TABLE: tuple[ClassInfo, ...] = (
    ClassInfo(
        "cuda_oom", "size", "accelerator out of memory",
        "The GPU/TPU ran out of its own memory (VRAM/HBM) while allocating a tensor: the batch, "
        "sequence length or model does not fit. It will fail the same way on every retry.",
        "Make it fit: smaller per-device batch with gradient accumulation to keep the effective "
        "batch, activation (gradient) checkpointing, shorter sequences or mixed precision. A "
        "retry with the identical config fails again.",
    ),
    ClassInfo(
        "host_oom", "resource", "killed by the host OOM killer",
        "The kernel or the job's cgroup ran out of RAM and SIGKILLed the process (exit 137). A "
        "SIGKILL leaves no traceback: the log often just stops, or the shell prints `Killed`.",
        "Size DataLoader workers, prefetching and in-RAM datasets to the memory limit, not to the "
        "CPU count (fewer workers, memory-mapped or streamed data, no per-worker dataset copies); "
        "check `memory.events` (oom_kill) of the job's cgroup or `dmesg`.",
    ),
    ClassInfo(
        "disk_full", "disk", "disk full",
        "A write failed because the filesystem had no room left: no free bytes, no free inodes "
        "(many small files), or the user's quota. Checkpoint saves are the usual victim and can "
        "leave a truncated checkpoint behind.",
        "Prune old checkpoints and caches (keep `best` and the newest complete one), then retry. "
        "Never silently shrink the run. If pruning is not enough, ask to grow the disk or the "
        "quota. For inodes, pack small files (tar/shards) instead of deleting bytes.",
    ),
    ClassInfo(
        "shm_exhausted", "resource", "shared memory (/dev/shm) exhausted",
        "DataLoader workers pass batches through /dev/shm; when it is too small (Docker's default "
        "is 64 MB) a worker dies with a bus error.",
        "Raise /dev/shm (`docker run --shm-size=16g` or `--ipc=host`) or use fewer DataLoader "
        "workers / a smaller prefetch factor.",
    ),
    ClassInfo(
        "nan_loss", "divergence", "loss diverged (NaN/Inf)",
        "The loss or gradients became NaN/Inf (or the fp16 loss scale hit its minimum): the "
        "optimisation diverged, and every further step burns GPU hours for nothing.",
        "Lower the learning rate (or lengthen warm-up), clip gradients, prefer bf16 over fp16, "
        "and check the data for bad samples. Retry the identical config once only, to tell a bug "
        "from bad luck.",
    ),
    ClassInfo(
        "code_error", "real bug", "code or config error",
        "The program stopped on an error in its own code, its config or its environment (a "
        "missing key or module, a wrong type or shape, a script with Windows line endings). It "
        "will fail the same way every time.",
        "Investigate and fix the code/config mismatch (and `dos2unix` a CRLF script); do not "
        "retry unchanged.",
    ),
    ClassInfo(
        "cuda_error", "real bug", "CUDA kernel error",
        "A GPU kernel failed: an illegal memory access or a device-side assert (usually an index "
        "out of range, e.g. a label >= the number of classes). CUDA reports it asynchronously, "
        "so the Python stack trace may point at the wrong line.",
        "Rerun with `CUDA_LAUNCH_BLOCKING=1` to get the real failing line, and check indices, "
        "labels and embedding sizes against the data.",
    ),
    ClassInfo(
        "gpu_hardware", "hardware", "GPU/accelerator hardware fault",
        "The accelerator itself failed or is unusable on this box: uncorrectable ECC errors, an "
        "NVRM Xid, a GPU that fell off the bus or is lost, or a device that is missing or busy "
        "at initialisation.",
        "Move off this box (resume elsewhere from the last checkpoint) and report the GPU to the "
        "provider or admins with the Xid/ECC lines; do not keep retrying on it.",
    ),
    ClassInfo(
        "node_failure", "infrastructure", "node failure",
        "The machine (or a Ray/Slurm node of the job) died or vanished mid-run; the job did not "
        "fail on its own.",
        "Resume elsewhere from the latest checkpoint with the same config.",
    ),
    ClassInfo(
        "nccl", "distributed", "NCCL / collective failure",
        "A collective operation between ranks failed or timed out: one rank was slow, dead or "
        "stuck, or the network between the GPUs/nodes failed.",
        "Find the slow or dead rank (the first rank to fail, `NCCL_DEBUG=INFO`, "
        "`TORCH_NCCL_ASYNC_ERROR_HANDLING`), check the interconnect/network, then resume from "
        "the checkpoint.",
    ),
    ClassInfo(
        "preempted", "probabilistic", "preempted",
        "The job was stopped from outside with SIGTERM: a spot/preemptible instance reclaimed, a "
        "scheduler preemption or requeue.",
        "Resume from the latest checkpoint with the same config. On Slurm, check first that it "
        "was not requeued already (never double-launch).",
    ),
    ClassInfo(
        "time_limit", "probabilistic", "time limit reached",
        "The scheduler stopped the job because it reached its wall-clock limit.",
        "Resume from the latest checkpoint and ask for more time (`--time`), or checkpoint more "
        "often.",
    ),
    ClassInfo(
        "cancelled", "by a person", "cancelled",
        "Someone stopped the run (scancel, Ctrl-C, a closed terminal/SIGHUP). This is not a "
        "failure of the run.",
        "Nothing to fix; it is never auto-resumed. Relaunch by hand if that was not intended "
        "(detach it with tmux/nohup/sbatch so a closed terminal cannot stop it).",
    ),
    ClassInfo(
        "network", "probabilistic", "network error",
        "A network call failed: a rate limit (HTTP 429), a timeout or a reset connection to the "
        "hub, W&B or another service.",
        "Retry the identical config (after a pause for rate limits); cache models and datasets "
        "locally or run W&B offline if it keeps happening.",
    ),
    ClassInfo(
        "segfault", "real bug", "native crash (segfault)",
        "Native code crashed (SIGSEGV, exit 139): a bug in a C/C++/CUDA extension, a library "
        "version mismatch or the driver. Python could not print a traceback.",
        "Investigate the native extension/driver (versions, `faulthandler`, a core dump); do not "
        "blindly retry.",
    ),
    ClassInfo(
        "completed", "success", "completed",
        "The run finished: its own completion line or marker was found.",
        "Nothing to do: verify and pull the artifacts, then tear the box down.",
    ),
    ClassInfo(
        "unknown_error", "unknown", "unrecognised error",
        "The run failed with an error that matches no known signature; the final exception line "
        "is shown as evidence.",
        "Read the final exception and the lines before it; investigate before any retry.",
    ),
    ClassInfo(
        "none", "—", "no failure",
        "No failure in the current run's log.",
        "Nothing to do.",
    ),
)

CLASSES: dict[str, ClassInfo] = {c.id: c for c in _TABLE}
CLASS_IDS: tuple[str, ...] = tuple(c.id for c in _TABLE)
FAILURE_CLASSES: frozenset[str] = frozenset(c.id for c in _TABLE if c.is_failure)


def info(cls: str) -> ClassInfo:
    """The fixed description of a class id (unknown ids fall back to unknown_error)."""
    return CLASSES.get(cls, CLASSES["unknown_error"])
