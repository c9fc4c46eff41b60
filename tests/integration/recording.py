"""A real local transport that remembers which steps each batch ran (the cadence tests ask
"which probes did this round run", never "how long did it take")."""

from __future__ import annotations

from gpudash.transport.local import LocalTransport


class Recording(LocalTransport):
    """The local transport, remembering the step keys of every batch it ran (and each key's last step)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.batches: list[list[str]] = []
        self.steps: dict = {}  # the last step of each key, as it was sent

    async def run(self, steps, *, deadline):
        self.batches.append([s.key for s in steps])
        self.steps.update((s.key, s) for s in steps)
        return await super().run(steps, deadline=deadline)
