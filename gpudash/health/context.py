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
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from gpudash.model import MetricPoint

# Bound on remembered (time, loss) pairs: ~2 patrol windows at 25/s. A run logging faster, or more
# loss_flat_windows, loses the oldest: the plateau rule then gives no verdict, never a wrong one.
LOSS_SAMPLES_MAX = 50_000
# "Not falling over the first N logged steps" (N = loss_early_steps) compares the mean of the first
# few early losses with the newest ones: only that head is kept, and a count, so N costs no memory.
EARLY_HEAD = 10


class TimedValues:
    """``(time, value)`` pairs, oldest first, at most ``maxlen`` (the oldest go first): a bounded
    deque of pairs, kept in two ``array('d')`` columns.

    Why: the loss history spans 2.5 patrol windows (75 minutes by default). As a deque of
    ``(t, loss)`` tuples that cost ~112 bytes a pair: 0.5 MB per host for a run logging a loss a
    second, 5 MB at ten a second, which over a day-long watch of a fleet outweighed everything
    else it holds. Here a pair costs 16 bytes. Old pairs are dropped by moving ``_head``; the
    columns are cut when over half of them is dropped pairs, so each pair is moved at most once
    on average.
    """

    __slots__ = ("maxlen", "_t", "_v", "_head", "_ordered")

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self.clear()

    def clear(self) -> None:
        self._t, self._v, self._head = array("d"), array("d"), 0
        self._ordered = True  # times never went backwards: windows are found by bisection

    def __len__(self) -> int:
        return len(self._t) - self._head

    def append(self, t: float, v: float) -> None:
        if self._ordered and self._t and t < self._t[-1]:
            self._ordered = False
        self._t.append(t)
        self._v.append(v)
        if len(self) > self.maxlen:
            self._head += 1
            self._compact()

    def drop_before(self, horizon: float) -> None:
        """Drop the pairs from the oldest on while their time is before ``horizon``."""
        t, h, n = self._t, self._head, len(self._t)
        while h < n and t[h] < horizon:
            h += 1
        self._head = h
        self._compact()

    def _compact(self) -> None:
        h = self._head
        if h > 256 and 2 * h > len(self._t):
            del self._t[:h]
            del self._v[:h]
            self._head = 0

    def __getitem__(self, i: int) -> tuple[float, float]:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("TimedValues index out of range")
        j = self._head + i
        return self._t[j], self._v[j]

    def __iter__(self) -> Iterator[tuple[float, float]]:
        h = self._head
        return zip(self._t[h:], self._v[h:])

    def newest_values(self, k: int) -> list[float]:
        """The values of the newest ``k`` pairs, newest first."""
        lo = max(self._head, len(self._v) - k)
        return self._v[lo:].tolist()[::-1]

    def values_in(self, lo: float, hi: float) -> list[float]:
        """The values whose time is in ``(lo, hi]``, oldest first.

        The plateau rule asks for two windows on every view refresh (every GPU sample): scanning
        75 minutes of a loss logged ten times a second took ~2.4 ms a refresh. Times arrive in
        order, so the window is found by bisection; a history whose clock once stepped back is
        scanned, as before."""
        h = self._head
        if self._ordered:
            t = self._t
            return self._v[bisect_right(t, lo, h):bisect_right(t, hi, h)].tolist()
        return [v for t, v in zip(self._t[h:], self._v[h:]) if lo < t <= hi]

    def __eq__(self, other: object) -> bool:  # as a deque's: the pairs, not the bound
        if not isinstance(other, TimedValues):
            return NotImplemented
        h, k = self._head, other._head
        return self._t[h:] == other._t[k:] and self._v[h:] == other._v[k:]

    __hash__ = None  # mutable, like a deque

    def __repr__(self) -> str:
        return f"TimedValues({list(self)!r}, maxlen={self.maxlen})"


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
    loss_samples: TimedValues = field(default_factory=lambda: TimedValues(LOSS_SAMPLES_MAX))
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
