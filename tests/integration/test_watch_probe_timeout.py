"""`probe_timeout` bounds a probe on the box as well as on the client.

A step that ignores SIGTERM and would sleep for a minute, with a 30 s timeout of its own: with
probe_timeout = 1 the box's `timeout` wrapper ends it (exit status 124/137 comes back inside the
client's deadline). If only the client bounded it, the client would give up first and the step
would have no exit status at all. Real watcher, real local transport, real /bin/sh.
"""

from __future__ import annotations

from gpudash.transport.base import Step
from gpudash.transport.local import LocalTransport
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import Cadence, WatchSpec

SLEEPER = Step("sleeper", "trap '' TERM; sleep 60", timeout=30.0)


class Sleepy(HostWatcher):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.results: dict = {}

    def steps_for(self, group: str) -> list[Step]:
        return [SLEEPER] if group == "disk" else []

    def _apply(self, step, res, now) -> None:
        self.results[step.key] = (step, res)


async def test_the_box_side_bound_is_probe_timeout():
    t = LocalTransport()
    try:
        w = Sleepy(WatchSpec(name="b", transport="local", cadence=Cadence(probe_timeout=1.0)), t)
        await w.round("disk")
        step, res = w.results["sleeper"]
        assert step.timeout == 1.0  # the step's own 30 s was cut to probe_timeout
        assert res.exit_code in (124, 137), res  # ended by the box's bound, not the client's
    finally:
        await t.close()
