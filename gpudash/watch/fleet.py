"""Many hosts: one HostWatcher each, started together, never blocking one another.

Implements :class:`gpudash.watch.view.FleetLike` for the TUI and offers `one_round()` for the
one-shot commands (`status`, `wait`).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Sequence

from gpudash.model import Event
from gpudash.transport.base import Transport
from gpudash.watch.host import HostWatcher, fleet_pacing
from gpudash.watch.spec import WatchSpec
from gpudash.watch.view import HostView


def make_transport(spec: WatchSpec) -> Transport:
    """The transport a spec asks for. Imports lazily: asyncssh only when SSH is used."""
    if spec.transport == "local":
        from gpudash.transport.local import LocalTransport

        return LocalTransport(spec.name)
    if spec.transport == "ssh":
        from gpudash.transport.ssh import SshTransport

        return SshTransport(
            spec.target,
            connect_timeout=spec.connect_timeout,
            client_keys=[spec.key_file] if spec.key_file else None,
            insecure_known_hosts=spec.insecure_known_hosts,
        )
    raise ValueError(f"unknown transport {spec.transport!r} for host {spec.name}")


def raise_open_files_limit(hosts: int) -> None:
    """Hundreds of SSH connections need more than the common 1024 soft limit."""
    want = 64 + 8 * hosts
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    except (ValueError, OSError):
        pass


class Fleet:
    def __init__(
        self,
        specs: Sequence[WatchSpec],
        *,
        transports: dict[str, Transport] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raise_open_files_limit(len(specs))
        transports = transports or {}
        self.watchers: dict[str, HostWatcher] = {}
        for spec in specs:
            t = transports.get(spec.name) or make_transport(spec)
            w = HostWatcher(spec, t, clock=clock)
            pace = fleet_pacing(len(specs), spec.cadence.gpu)
            w.refresh_window, w.follow_interval = pace["refresh_window"], pace["follow_interval"]
            w.analysis.triage_gap = pace["triage_gap"]
            w.gpu_leads = pace["gpu_leads"]
            w.subscribe(self._on_view)
            self.watchers[spec.name] = w
        self._view_listeners: list[Callable[[HostView], None]] = []
        self._event_listeners: list[Callable[[Event], None]] = []
        self.journal: list[Event] = []

    # ------------------------------------------------------------------ FleetLike

    def host_names(self) -> list[str]:
        return list(self.watchers)

    def view(self, host: str) -> HostView | None:
        w = self.watchers.get(host)
        return w.view if w else None

    def subscribe(self, on_view: Callable[[HostView], None], on_event: Callable[[Event], None]) -> None:
        self._view_listeners.append(on_view)
        self._event_listeners.append(on_event)

    async def run(self) -> None:
        tasks = [asyncio.create_task(w.run(), name=f"watch:{name}") for name, w in self.watchers.items()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    def probe_now(self, host: str | None = None) -> None:
        for name, w in self.watchers.items():
            if host is None or host == name:
                w.probe_now()

    def set_paused(self, host: str, paused: bool) -> None:
        if host in self.watchers:
            self.watchers[host].paused = paused
            self.watchers[host].refresh()

    def acknowledge(self, host: str | None = None) -> None:
        for name, w in self.watchers.items():
            if host is None or host == name:
                w.analysis.unacked = 0
                w.refresh()

    # ------------------------------------------------------------------ one-shot

    async def one_round(self, deadline: float) -> list[HostView]:
        """Every host's groups once, concurrently, all within ``deadline`` seconds."""

        async def one(w: HostWatcher) -> HostView:
            try:
                async with asyncio.timeout(deadline):
                    return await w.full_round()
            except TimeoutError:
                from gpudash.model import Reason

                w._link_down(Reason.TIMEOUT, f"no answer within {deadline:.0f} s")
                return w.refresh()

        try:
            return list(await asyncio.gather(*(one(w) for w in self.watchers.values())))
        finally:
            await self.close()

    async def close(self) -> None:
        await asyncio.gather(*(w.transport.close() for w in self.watchers.values()),
                             return_exceptions=True)

    # ------------------------------------------------------------------ plumbing

    def _on_view(self, view: HostView) -> None:
        w = self.watchers.get(view.name)
        if w is not None:
            for ev in w.analysis.drain_events():
                self.journal.append(ev)
                del self.journal[:-1000]
                for listener in self._event_listeners:
                    listener(ev)
        for listener in self._view_listeners:
            listener(view)
