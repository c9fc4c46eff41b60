"""What the watchers hand to their consumers (TUI, `status`, `wait`): one immutable view per host.

The UI never reaches into a watcher: it receives :class:`HostView` objects and :class:`Event`s
through the callbacks of a :class:`FleetLike`, and asks for actions (probe now, pause) through its
methods. That keeps the TUI a pure renderer of what arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any, Protocol

from gpudash.frozen import frozen
from gpudash.model import CheckResult, Event, HostSnapshot, Reason, State


@frozen
class HostView:
    snapshot: HostSnapshot
    state: State = State.UNKNOWN
    reason: Reason | None = None
    checks: tuple[CheckResult, ...] = ()
    #: gpudash.triage.classifier.TriageResult of the run's log (None before the first read)
    triage: Any = None
    job_summary: str = ""
    alerts_unacked: int = 0
    paused: bool = False
    notes: str = ""  # the host's runbook notes from the config
    history_note: str = ""  # what happened while gpudash was not watching (from the store)
    wandb_url: str | None = None  # the run's W&B page, captured once per run from its log
    restarts: int | None = None  # restarts of this job counted by `gpudash restart` (None: unknown)
    labels: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.snapshot.name

    @property
    def problems(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.state is not State.OK)


class FleetLike(Protocol):
    """The watcher side as the UI sees it."""

    def host_names(self) -> list[str]: ...

    def view(self, host: str) -> HostView | None: ...

    def subscribe(self, on_view: Callable[[HostView], None], on_event: Callable[[Event], None]) -> None:
        """Register callbacks, called on the event loop thread after every probe round / event."""

    async def run(self) -> None:
        """Watch every host until cancelled (the UI runs this in a worker)."""

    def probe_now(self, host: str | None = None) -> None: ...

    def set_paused(self, host: str, paused: bool) -> None: ...

    def acknowledge(self, host: str | None = None) -> None: ...
