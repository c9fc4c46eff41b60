"""A fleet whose hosts come from Prometheus as well as from the config/command line.

Every host Prometheus knows (by default: every host with DCGM GPU series) becomes a watched host
fed by a :class:`PromOverlay` — no probe runs for it, and its view goes through the same
HostSnapshot → health → alerts → UI path as an SSH host's. A configured host with the same name
(or named in ``[prometheus] label_map``) combines sources: log tail, jobs and triage over its own
transport, GPU, disk/inode and memory from Prometheus.

One refresh loop for the whole fleet: ONE query per metric per cycle, whatever the host count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence

from gpudash.model import Reason
from gpudash.transport.base import Transport, TransportError
from gpudash.watch.fleet import Fleet
from gpudash.watch.host import HostWatcher
from gpudash.watch.overlay import ALL_GROUPS, METRIC_GROUPS, PromOverlay
from gpudash.watch.spec import Cadence, WatchSpec
from gpudash.watch.view import HostView

DEFAULT_INTERVAL = 15.0  # Prometheus's own default scrape interval
UTIL_WINDOW_S = 300.0  # history seeded at start: the health engine's util window


class NoTransport(Transport):
    """The transport of a host only Prometheus knows: there is nothing to run commands on."""

    kind = "prometheus"

    async def run(self, steps, *, deadline):
        return {}

    async def stream(self, step, *, sample_timeout, lifetime):  # pragma: no cover - never used
        raise TransportError(Reason.NOT_CONFIGURED, "no command transport for this host")
        yield b""


def prom_cadence(cadence: Cadence, interval: float) -> Cadence:
    """The Prometheus-fed probes' cadence is the refresh interval (STALE after 3 of them)."""
    return dataclasses.replace(cadence, gpu=interval, disk=interval, memory=interval)


class PrometheusFleet(Fleet):
    def __init__(
        self,
        specs: Sequence[WatchSpec],
        source,
        *,
        interval: float = DEFAULT_INTERVAL,
        initial: dict | None = None,
        gpu_hosts_only: bool = True,
        transports: dict[str, Transport] | None = None,
        clock: Callable[[], float] = time.time,
        seed_history: bool = True,
        thresholds=None,
        stale_after: float | None = None,
    ) -> None:
        super().__init__(specs, transports=transports, clock=clock)
        self.source = source
        self.interval = float(interval)
        self.clock = clock
        self.gpu_hosts_only = gpu_hosts_only
        self.seed_history = seed_history
        self.thresholds = thresholds  # health Thresholds for hosts only Prometheus knows
        # ... and their STALE rule (config stale_after; a cadence, so it rides on the Cadence)
        self.base_cadence = Cadence() if stale_after is None else Cadence(stale_after=stale_after)
        self.overlays: dict[str, PromOverlay] = {}
        self._seeded = False
        self._wake = asyncio.Event()
        for name in dict(source.mapping.label_map):
            if name in self.watchers:
                self._attach(self.watchers[name])
        if initial is not None:
            self._take(initial, self.clock())
            # views from the first frame for the hosts only Prometheus feeds (a combined host's
            # first view waits for its own transport's first round)
            for host, ov in self.overlays.items():
                if ov.owns_link:
                    self.watchers[host].refresh()

    # ------------------------------------------------------------------ hosts

    def _overlay(self, host: str, *, owns_link: bool) -> PromOverlay:
        m = self.source.mapping
        value = m.label_value(host)
        return PromOverlay(host, gpu_where=f'{m.host_label}="{value}"',
                           node_where=f'instance="{value}:PORT"',
                           groups=ALL_GROUPS if owns_link else METRIC_GROUPS, owns_link=owns_link)

    def _attach(self, w: HostWatcher) -> None:
        """Combine: this watcher's GPU/disk/memory now come from Prometheus."""
        from gpudash.health.thresholds import Intervals

        ov = self._overlay(w.spec.name, owns_link=False)
        w.spec = dataclasses.replace(w.spec, cadence=prom_cadence(w.spec.cadence, self.interval))
        engine = w.analysis.engine
        engine.intervals = dataclasses.replace(engine.intervals or Intervals(), gpu=self.interval,
                                               disk=self.interval, memory=self.interval)
        w.overlay = ov
        self.overlays[w.spec.name] = ov

    def _add(self, host: str, labels: dict) -> HostWatcher:
        """A host only Prometheus knows."""
        spec = WatchSpec(name=host, target=host, transport="prometheus",
                         cadence=prom_cadence(self.base_cadence, self.interval),
                         thresholds=self.thresholds,
                         labels={"source": "prometheus", **labels})
        ov = self._overlay(host, owns_link=True)
        w = HostWatcher(spec, NoTransport(host), clock=self.clock, overlay=ov)
        w.subscribe(self._on_view)
        self.watchers[host] = w
        self.overlays[host] = ov
        return w

    def _take(self, data: dict, now: float) -> list[str]:
        """Fold one refresh into the overlays; returns the hosts seen for the first time."""
        new = []
        for host, d in data.items():
            if host not in self.watchers:
                if self.gpu_hosts_only and not d.gpus:
                    continue
                self._add(host, dict(d.labels))
                new.append(host)
            elif host not in self.overlays:
                self._attach(self.watchers[host])
        present = frozenset(f for f, attr in (("gpu", "gpus"), ("disk", "disks"),
                                              ("memory", "memory"))
                            if any(getattr(d, attr) for d in data.values()))
        for host, ov in self.overlays.items():
            ov.update(data.get(host), answered=self.source.answered, source_link=self.source.link,
                      present=present, down=self.source.down.get(host), now=now)
        return new

    # ------------------------------------------------------------------ refresh

    async def poll_once(self, *, notify: bool = True) -> bool:
        """One fleet refresh: ONE query per metric; every Prometheus-fed view is rebuilt."""
        try:
            data = await self.source.refresh()
        except TransportError:
            data = {}
        self._take(data, self.clock())
        if notify:
            for host in list(self.overlays):
                self.watchers[host].refresh()
        return bool(data)

    async def load_history(self, host: str, seconds: float = UTIL_WINDOW_S) -> HostView | None:
        """Sparkline history for one host from ``/api/v1/query_range`` (call on opening it)."""
        ov, w = self.overlays.get(host), self.watchers.get(host)
        if ov is None or w is None:
            return None
        try:
            hist = await self.source.history(host, seconds, step=self.interval)
        except (TransportError, TimeoutError):
            return w.view
        if hist is not None:
            ov.seed(hist)
        return w.refresh()

    async def _seed_all(self) -> None:
        try:
            found = await self.source.history_all(UTIL_WINDOW_S, step=self.interval)
        except (TransportError, TimeoutError):
            return
        for host, hist in found.items():
            if host in self.overlays:
                self.overlays[host].seed(hist)
        self._seeded = True

    async def _poll_loop(self) -> None:
        while True:
            ok = await self.poll_once()
            if ok and self.seed_history and not self._seeded:
                await self._seed_all()
                for host in list(self.overlays):
                    self.watchers[host].refresh()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.source.retry_delay(self.interval))
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ FleetLike / one-shot

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._poll_loop(), name="prometheus")]
        tasks += [asyncio.create_task(w.run(), name=f"watch:{name}")
                  for name, w in self.watchers.items() if w.groups()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    def probe_now(self, host: str | None = None) -> None:
        super().probe_now(host)
        if host is None or host in self.overlays:
            self._wake.set()

    async def one_round(self, deadline: float) -> list[HostView]:
        start = time.monotonic()
        try:
            async with asyncio.timeout(deadline):
                await self.poll_once(notify=False)
        except TimeoutError:
            pass
        return await super().one_round(max(1.0, deadline - (time.monotonic() - start)))

    async def close(self) -> None:
        await super().close()
        await self.source.close()


def fleet_with_prometheus(specs: Sequence[WatchSpec], source, *, interval: float | None = None,
                          initial: dict | None = None, **kwargs) -> PrometheusFleet:
    """A fleet of ``specs`` plus every host ``source`` knows (``initial``: a first refresh)."""
    return PrometheusFleet(specs, source, interval=interval or DEFAULT_INTERVAL, initial=initial,
                           **kwargs)


def source_from_config(url: str | None, pc=None, *, environ=None):
    """A PrometheusSource from a URL and/or a config ``[prometheus]`` table (the URL wins).
    Raises ValueError with a message fit to print (never a credential)."""
    from gpudash.sources.prometheus import PrometheusSource, read_credentials

    url = url or (pc.url if pc is not None else None)
    if not url:
        raise ValueError("no Prometheus URL")
    if pc is None:
        return PrometheusSource(url)
    token, basic = read_credentials(pc.token_file, pc.token_env, pc.basic_auth_file,
                                    environ=environ)
    return PrometheusSource(url, host_label=pc.host_label, token=token, basic_auth=basic,
                            timeout=pc.timeout, label_map=dict(pc.label_map),
                            include_fstypes=tuple(pc.include_fstypes))


async def discover(source) -> tuple[float, dict | None]:
    """(refresh interval, first refresh) — the interval is the longest scrape interval of the
    jobs that serve the GPU hosts (between 1 s and 60 s; 15 s when Prometheus does not say)."""
    try:
        data = await source.refresh()
    except TransportError:
        data = None
    jobs = {d.labels.get("job") for d in (data or {}).values()} - {None}
    found = await source.scrape_interval(jobs or None)
    interval = min(60.0, max(1.0, found)) if found else DEFAULT_INTERVAL
    return interval, data


def prometheus_fleet_from_args(args, config, specs: Sequence[WatchSpec]) -> Fleet | None:
    """The fleet for `gpudash --prometheus URL` or a config with ``[prometheus]``; None when
    neither asks for Prometheus. Raises ValueError (print it, exit 2) for a bad URL, unreadable
    credentials, or a Prometheus that does not answer when it is the only source of hosts.

    Blocks for one bounded discovery round (the UI lists every host from its first frame), so
    call it before the event loop starts."""
    pc = getattr(config, "prometheus", None)
    url = getattr(args, "prometheus", None)
    if not url and pc is None:
        return None
    source = source_from_config(url, pc)
    thresholds = stale_after = None
    if config is not None:
        d = config.defaults
        thresholds, stale_after = d.thresholds, d.timing.stale_after
    specs = list(specs)
    if not getattr(args, "hosts", None) and _only_implicit_local(specs, config):
        specs = []  # `gpudash --prometheus URL`: the fleet, not also this laptop
    try:
        asyncio.get_running_loop()
        interval, initial = DEFAULT_INTERVAL, None  # inside a loop: hosts arrive with the first poll
    except RuntimeError:
        interval, initial = asyncio.run(discover(source))
    if initial is None and not specs:
        link = source.link
        raise ValueError(f"Prometheus at {source.url} gave no hosts: "
                         f"{link.message or 'no answer'}" if not link.ok else
                         f"Prometheus at {source.url} gave no hosts")
    if initial is not None and not initial and not specs:
        print(f"gpudash: Prometheus at {source.url} knows no host with DCGM GPU metrics yet",
              file=sys.stderr)
    return fleet_with_prometheus(specs, source, interval=interval, initial=initial,
                                 thresholds=thresholds, stale_after=stale_after)


def _only_implicit_local(specs, config) -> bool:
    """True when the only host is the "this machine" default a config without hosts implies."""
    if len(specs) != 1 or specs[0].transport != "local":
        return False
    if config is None or getattr(config, "path", None) is None:
        return True
    from gpudash.config import HostConfig

    return tuple(config.hosts) == (HostConfig.local(config.defaults, discover=True),)
