"""The teardown checklist's value types: what the CLI prints, the TUI renders and the journal keeps.

Frozen and plain (strings, tuples, numbers) so a consumer can render them without importing any
probe code, and so ``to_json`` is lossless. Every string that came from a box is already sanitised
by the time it is put in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GREEN, RED, UNKNOWN = "green", "red", "unknown"
CHECK_STATES = (GREEN, RED, UNKNOWN)


@dataclass(frozen=True)
class Check:
    """One line of the checklist.

    ``missing`` says, in a few words, what must change for the check to turn green (empty when it
    is green): a missing file's name, "set expected_count", "fix check 4 first".
    """

    id: str  # job | gpu | artifacts | local | verify | stop
    title: str
    state: str  # green | red | unknown
    evidence: tuple[str, ...] = ()
    missing: str = ""

    @property
    def green(self) -> bool:
        return self.state == GREEN

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "state": self.state,
                "evidence": list(self.evidence), "missing": self.missing}


@dataclass(frozen=True)
class StopPlan:
    """The platform's meter-stop, as it would run. ``command`` is None when it cannot be built
    (no preset, or a value such as the instance id is unknown: ``unknown`` names it)."""

    preset: str | None
    command: str | None
    where: str  # "local" (the provider's CLI on this machine) | "box" (run over SSH) | "console"
    survives: str
    reversible: bool
    warnings: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # placeholders with no value ("instance_id")
    verb: str = "stop"  # the platform's own word: stop, terminate, scancel, power off

    @property
    def runnable(self) -> bool:
        return self.command is not None and self.where in ("local", "box") and not self.unknown

    @property
    def where_text(self) -> str:
        return {
            "local": "on this machine (the provider's CLI)",
            "box": "on the box, over SSH",
            "console": "in the provider's web console (no CLI)",
        }.get(self.where, self.where)

    def to_json(self) -> dict:
        return {"preset": self.preset, "command": self.command, "where": self.where,
                "survives": self.survives, "reversible": self.reversible,
                "warnings": list(self.warnings), "unknown": list(self.unknown), "verb": self.verb,
                "runnable": self.runnable}


@dataclass(frozen=True)
class Checklist:
    """The six checks for one host, in product.md's order, plus the stop plan."""

    host: str
    checks: tuple[Check, ...]
    stop: StopPlan
    taken_at: float = 0.0

    @property
    def all_green(self) -> bool:
        return bool(self.checks) and all(c.green for c in self.checks)

    @property
    def gates_green(self) -> bool:
        """Checks 1–5 (everything but the stop line itself) are green."""
        return all(c.green for c in self.checks if c.id != "stop")

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def missing(self) -> list[str]:
        """"check N (title): what is missing" for every check that is not green."""
        return [f"check {i} ({c.title}): {c.missing or c.state}"
                for i, c in enumerate(self.checks, 1) if not c.green]

    def to_json(self) -> dict:
        return {"host": self.host, "all_green": self.all_green, "taken_at": self.taken_at,
                "checks": [c.to_json() for c in self.checks], "stop": self.stop.to_json(),
                "missing": self.missing()}


@dataclass(frozen=True)
class TeardownSettings:
    """Everything the checklist needs for one host: the config's ``[host.teardown]`` and job
    identity, with the command line's overrides applied (see :func:`settings_from`)."""

    host: str
    # durable artifacts on the box
    artifacts_dir: str | None = None
    artifacts_glob: str = "*"
    expected_count: int | None = None
    min_artifact_bytes: int = 1
    # the local copy and its check
    local_dir: Path | None = None
    verify_command: str | None = None
    verify_timeout: float = 600.0
    # how to tell the job ended, and ended well
    markers: tuple[str, ...] = ()
    completion_lines: tuple[str, ...] = ()
    log: str | None = None
    checkpoint_dir: str | None = None
    pgrep: str | None = None
    tmux_session: str | None = None
    slurm_job: str | None = None
    slurm_user: str | None = None
    ray_job: str | None = None
    ray_address: str | None = None
    # the meter-stop
    preset: str | None = None
    stop_command: str | None = None
    stop_runs_on: str | None = None
    instance_id: str | None = None
    # bounds
    probe_timeout: float = 8.0
    sha256_timeout: float = 900.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def has_job_identity(self) -> bool:
        return any((self.pgrep, self.tmux_session, self.slurm_job, self.ray_job))
