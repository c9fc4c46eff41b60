"""What the health engine must remember about one host's run between two evaluations.

A snapshot is a moment; some checks need history that outlives the watcher's bounded buffers:
the previous ``oom_kill`` counter (a NEW kill is CRIT, an old one is not), the run's phase, whether
the process was ever seen alive (so "gone" means something), the loss over two patrol windows.
The watcher owns one RunContext per host and sets the facts it learns elsewhere
(``completion_seen``, ``marker_seen``, ``expected_duration_s``, ``script_mtime``...);
:func:`gpudash.health.engine.evaluate` updates the rest.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from gpudash.model import MetricPoint

# Bound on remembered (time, loss) pairs: ~2 patrol windows at 25/s. A run logging faster, or more
# loss_flat_windows, loses the oldest: the plateau rule then gives no verdict, never a wrong one.
LOSS_SAMPLES_MAX = 50_000
# "Not falling over the first N logged steps" (N = loss_early_steps) compares the mean of the first
# few early losses with the newest ones: only that head is kept, and a count, so N costs no memory.
EARLY_HEAD = 10


class Phase(str, enum.Enum):
    """Close watch for the first 1,000 steps (failures are frequent and fast), then patrol."""

    CLOSE_WATCH = "close_watch"
    PATROL = "patrol"


@dataclass
class RunContext:
    # --- set by the watcher (config and facts found outside the snapshot)
    expected_duration_s: float | None = None
    checkpoint_size_bytes: int | None = None  # else: the newest file in snapshot.checkpoints
    checkpoint_dir: str | None = None  # picks the mount whose free space must fit a checkpoint
    script_path: str | None = None
    script_mtime: float | None = None  # epoch mtime of the training script, when stat'ed
    completion_seen: bool = False  # the run's own completion line was read in its log
    marker_seen: bool = False  # a completion/stage marker file exists
    run_started_at: float | None = None  # else taken from the run's oldest matching process

    # --- maintained by evaluate()
    phase: Phase = Phase.CLOSE_WATCH
    base_step: int | None = None  # first step seen in this run
    max_step: int | None = None
    prev_oom_kills: int | None = None
    oom_new_at: float | None = None  # when a new oom_kill was last seen in this run
    oom_note: str = ""
    seen_alive: bool = False
    ended_at: float | None = None
    proc_start: float | None = None  # start of the process we think is the run (restart detection)
    nonfinite_loss: MetricPoint | None = None  # latched: "not finite once" is CRIT for the run
    loss_samples: deque = field(default_factory=lambda: deque(maxlen=LOSS_SAMPLES_MAX))
    early_losses: list = field(default_factory=list)  # the first EARLY_HEAD early losses
    early_count: int = 0  # early losses seen (toward loss_early_steps)
    early_eligible: bool | None = None  # None: undecided until the first loss arrives
    last_point: MetricPoint | None = None  # newest metric point already ingested
    # the metric sequence last ingested: the watcher hands the same object until a point is
    # added, so most refreshes have nothing to look for (held, so its identity stays unique)
    ingested: object = field(default=None, repr=False, compare=False)
    restarts: int = 0
    # checks that are pure functions of a few samples, with the samples they were judged from
    # (see engine.judged): a refresh comes with every GPU sample, a disk or jobs round every 10–15 s
    judged: dict = field(default_factory=dict, repr=False, compare=False)

    def reset_run(self, started_at: float | None = None) -> None:
        """A new run (restart, relaunch): phases and run-scoped latches start over.

        The oom counter is kept: it belongs to the cgroup, and only increases count.
        """
        self.phase = Phase.CLOSE_WATCH
        self.base_step = None
        self.max_step = None
        self.oom_new_at = None
        self.oom_note = ""
        self.seen_alive = False
        self.ended_at = None
        self.run_started_at = started_at
        self.proc_start = started_at
        self.nonfinite_loss = None
        self.loss_samples.clear()
        self.early_losses = []
        self.early_count = 0
        self.early_eligible = None
        # last_point is kept on purpose: an appended log still holds the old run's points,
        # and only what comes after them belongs to the new run.
        self.completion_seen = False
        self.marker_seen = False
