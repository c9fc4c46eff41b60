"""The reliability suite's figures: what the tests tried and what they measured.

Tests record into the process-wide :data:`FIGURES` through the ``figures`` fixture (bound to the
test's node id); the conftest's report hook marks every fault of a test survived only when the
test passed, and counts a test that failed with anything but an ``AssertionError`` as a crash.
At the end of the session the figures are written as JSON to ``$GD_RELIABILITY_JSON`` (when set);
``scripts/reliability.py`` reads that file and prints the table.

The counters are figures, not the verdict: every test also asserts its own condition, so a
leak, an overrun or an ESC byte on screen fails the test that saw it.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: Added to a deadline before an elapsed time counts as an overrun. The code under test promises
#: to return "within the deadline"; this covers the event loop's own scheduling and the teardown
#: that follows a cancelled await (a channel close), never a wait on the box. A hang overshoots
#: it by the whole remote bound (seconds to forever), so it cannot hide in it.
GRACE_S = 1.0
#: For `gpudash status` run as a subprocess: interpreter start and imports come on top.
STARTUP_GRACE_S = 6.0


@dataclass
class Fault:
    name: str
    where: str  # "in-process ssh", "real sshd", "status", "tui", "local"
    nodeid: str
    survived: bool | None = None  # None until the test's outcome is known


@dataclass
class Figures:
    faults: list[Fault] = field(default_factory=list)
    inputs: Counter = field(default_factory=Counter)
    deadlines: list[dict] = field(default_factory=list)
    leaks: Counter = field(default_factory=Counter)  # channels / processes / fds / tasks
    checked: Counter = field(default_factory=Counter)  # how many leak checks of each kind ran
    esc_on_screen: int = 0
    screens_checked: int = 0
    crashes: list[str] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    soak: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    # ------------------------------------------------------------------ recording

    def fault(self, name: str, where: str, nodeid: str) -> Fault:
        f = Fault(name, where, nodeid)
        self.faults.append(f)
        return f

    def deadline(self, what: str, elapsed: float, deadline: float, grace: float, nodeid: str) -> bool:
        over = elapsed > deadline + grace
        self.deadlines.append({"what": what, "elapsed_s": round(elapsed, 3),
                               "deadline_s": deadline, "grace_s": grace, "overrun": over,
                               "test": nodeid})
        return over

    def leak(self, kind: str, count: int) -> None:
        self.checked[kind] += 1
        self.leaks[kind] += max(0, int(count))

    def screen(self, esc_bytes: int) -> None:
        self.screens_checked += 1
        self.esc_on_screen += esc_bytes

    def settle(self, nodeid: str, passed: bool) -> None:
        for f in self.faults:
            if f.nodeid == nodeid and f.survived is None:
                f.survived = passed

    # ------------------------------------------------------------------ output

    @property
    def overruns(self) -> int:
        return sum(1 for d in self.deadlines if d["overrun"])

    def as_json(self) -> dict:
        faults = [f.__dict__ for f in self.faults]
        return {
            "faults": faults,
            "faults_total": len(faults),
            "faults_survived": sum(1 for f in self.faults if f.survived),
            "inputs": dict(self.inputs),
            "inputs_total": sum(self.inputs.values()),
            "deadline_checks": len(self.deadlines),
            "deadline_overruns": self.overruns,
            # in-process calls, and `gpudash status` subprocesses (interpreter start included)
            "worst_deadline_use": _worst([d for d in self.deadlines if d["grace_s"] <= GRACE_S]),
            "worst_status_deadline_use": _worst([d for d in self.deadlines
                                                 if d["grace_s"] > GRACE_S]),
            "leaks": {k: self.leaks.get(k, 0) for k in ("channels", "processes", "fds", "tasks")},
            "leak_checks": dict(self.checked),
            "esc_bytes_on_screen": self.esc_on_screen,
            "screens_checked": self.screens_checked,
            "crashes": len(self.crashes),
            "crash_tests": self.crashes,
            "tests": dict(self.outcomes),
            "soak": self.soak,
            "notes": self.notes,
            "deadlines": self.deadlines,
            "wall_s": round(time.time() - self.started, 1),
        }

    @classmethod
    def from_json(cls, d: dict) -> "Figures":
        """Back from :meth:`as_json` (scripts/reliability.py merges two runs' figures)."""
        return cls(
            faults=[Fault(**f) for f in d.get("faults", [])],
            inputs=Counter(d.get("inputs", {})),
            deadlines=list(d.get("deadlines", [])),
            leaks=Counter(d.get("leaks", {})),
            checked=Counter(d.get("leak_checks", {})),
            esc_on_screen=d.get("esc_bytes_on_screen", 0),
            screens_checked=d.get("screens_checked", 0),
            crashes=list(d.get("crash_tests", [])),
            outcomes=Counter(d.get("tests", {})),
            soak=dict(d.get("soak", {})),
            notes=dict(d.get("notes", {})),
            started=time.time() - d.get("wall_s", 0.0),
        )

    def merged(self, other: "Figures") -> "Figures":
        return Figures(
            faults=self.faults + other.faults, inputs=self.inputs + other.inputs,
            deadlines=self.deadlines + other.deadlines, leaks=self.leaks + other.leaks,
            checked=self.checked + other.checked,
            esc_on_screen=self.esc_on_screen + other.esc_on_screen,
            screens_checked=self.screens_checked + other.screens_checked,
            crashes=self.crashes + other.crashes, outcomes=self.outcomes + other.outcomes,
            soak={**self.soak, **other.soak}, notes={**self.notes, **other.notes},
            started=min(self.started, other.started),
        )

    def write(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.as_json(), indent=2, default=str))


def _worst(deadlines: list[dict]) -> dict | None:
    """The check that came closest to (or past) its deadline, as elapsed/deadline."""
    usable = [d for d in deadlines if d["deadline_s"] > 0]
    if not usable:
        return None
    d = max(usable, key=lambda d: d["elapsed_s"] / d["deadline_s"])
    return {"what": d["what"], "elapsed_s": d["elapsed_s"], "deadline_s": d["deadline_s"]}


FIGURES = Figures()


class Recorder:
    """The per-test face of :data:`FIGURES` (the ``figures`` fixture)."""

    def __init__(self, figures: Figures, nodeid: str) -> None:
        self._f = figures
        self.nodeid = nodeid

    def fault(self, name: str, where: str) -> Fault:
        return self._f.fault(name, where, self.nodeid)

    def inputs(self, kind: str, n: int = 1) -> None:
        self._f.inputs[kind] += n

    def leak(self, kind: str, count: int) -> None:
        self._f.leak(kind, count)

    def screen(self, esc_bytes: int) -> None:
        self._f.screen(esc_bytes)

    def deadline(self, what: str, elapsed: float, deadline: float, grace: float = GRACE_S) -> bool:
        return self._f.deadline(what, elapsed, deadline, grace, self.nodeid)

    def soak(self, **values) -> None:
        self._f.soak.update(values)

    def note(self, **values) -> None:
        self._f.notes.update(values)
