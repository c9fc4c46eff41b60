"""Another source's samples laid over a host's snapshot: how a host combines sources.

A :class:`HostWatcher` with an ``overlay`` does not run the probe groups the overlay names; its
snapshot gets the overlay's fields instead. A Prometheus-fed host that is also reachable over SSH
keeps its log tail, jobs and triage from SSH while GPU, disk/inode and memory come from
Prometheus; a host only Prometheus knows runs no probe at all and takes its link from the server.

:class:`PromOverlay` keeps the last good sample of every GPU and mount with the time Prometheus
took it: a series that stops keeps its last value and grows old (health marks it STALE) — it
never becomes 0 and never silently drops out of the panel.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Protocol

from gpudash.model import GpuHealthFields, HostSnapshot, LinkStatus, ProbeError, Reason

HISTORY = 300
ALL_GROUPS = frozenset({"gpu", "log", "disk", "jobs", "files", "ray"})
METRIC_GROUPS = frozenset({"gpu", "disk"})  # "disk" also carries the memory probe


class MetricsOverlay(Protocol):
    #: probe groups the watcher must not run: the overlay fills their fields
    groups: frozenset[str]

    def apply(self, snap: HostSnapshot) -> HostSnapshot: ...


class PromOverlay:
    def __init__(self, host: str, *, gpu_where: str = "", node_where: str = "",
                 groups: frozenset[str] = METRIC_GROUPS, owns_link: bool = False,
                 history: int = HISTORY) -> None:
        self.host = host
        # how Prometheus names the host, for the messages of a mapping that finds nothing
        self.gpu_where = gpu_where or f'Hostname="{host}"'
        self.node_where = node_where or f'instance="{host}:PORT"'
        self.groups = frozenset(groups)
        self.owns_link = owns_link
        self._maxlen = history
        self._gpus: dict[tuple, tuple] = {}  # (index, uuid) -> (GpuSample, at)
        self._util: dict[tuple, deque] = {}
        self._mem: dict[tuple, deque] = {}
        self._disks: dict[str, tuple] = {}  # mount -> (DiskUsage, at)
        self._memory: tuple | None = None  # (MemorySample, at)
        self._asked: set[str] = set()  # families Prometheus has answered at least once
        self.xid_errors: tuple[tuple[int, int], ...] = ()
        self.labels: dict[str, str] = {}
        self.link = LinkStatus(ok=True)
        self._down_since: float | None = None
        self._first_seen: float | None = None

    # ------------------------------------------------------------------ feeding

    def update(self, data, *, answered: frozenset[str], source_link: LinkStatus,
               present: frozenset[str] = frozenset({"gpu", "disk", "memory"}),
               down: str | None = None, now: float) -> None:
        """Take one refresh's data for this host (``data`` None: the host had no series).
        Families not in ``answered`` were not read this time: their last samples stay as they
        were, growing old. A family missing for this host is reported only when ``present``
        says some host in Prometheus has it (a site without node_exporter is not an error)."""
        self._asked |= set(answered) & set(present)
        if data is not None:
            if "gpu" in answered and data.gpus:
                for g in data.gpus:
                    key = (g.index, g.uuid)
                    self._gpus[key] = (g, data.gpu_at)
                    self._util.setdefault(key, deque(maxlen=self._maxlen)).append(g.util_pct)
                    total = g.mem_total_mib
                    pct = 100.0 * g.mem_used_mib / total if g.mem_used_mib is not None and total else None
                    self._mem.setdefault(key, deque(maxlen=self._maxlen)).append(pct)
                self.xid_errors = data.xid_errors
            if "disk" in answered and data.disks:
                for d in data.disks:
                    self._disks[d.mount] = (d, data.disk_at)
            if "memory" in answered and data.memory is not None:
                self._memory = (data.memory, data.memory_at)
            if data.labels:
                self.labels = dict(data.labels)
        self.link = self._link(source_link, down if data is None else None, now)

    def seed(self, hist) -> None:
        """Fill the sparklines from a range query (PromHistory), replacing what is there."""
        for key in self._gpus or {(i, ""): None for i in hist.util}:
            idx = key[0]
            if idx in hist.util:
                self._util[key] = deque(hist.util[idx], maxlen=self._maxlen)
            if idx in hist.mem_pct:
                self._mem[key] = deque(hist.mem_pct[idx], maxlen=self._maxlen)

    def _link(self, source: LinkStatus, down: str | None, now: float) -> LinkStatus:
        newest = max((at for at in self._ats() if at is not None), default=None)
        if self._first_seen is None and newest is not None:
            self._first_seen = now
        if not source.ok:
            return LinkStatus(ok=False, reason=source.reason or Reason.UNREACHABLE,
                              message=f"Prometheus: {source.message}", since=source.since,
                              last_ok=newest)
        if down:
            # Prometheus says the host's exporter cannot be scraped, and none of its series came:
            # the box (or its exporters) is unreachable — said at once, not after STALE.
            self._down_since = self._down_since or now
            return LinkStatus(ok=False, reason=Reason.UNREACHABLE, message=down,
                              since=self._down_since, last_ok=newest)
        self._down_since = None
        return LinkStatus(ok=True, since=self._first_seen or now, last_ok=newest)

    def _ats(self):
        yield from (at for _, at in self._gpus.values())
        yield from (at for _, at in self._disks.values())
        if self._memory is not None:
            yield self._memory[1]

    def _health(self, snap: HostSnapshot) -> tuple[GpuHealthFields, ...]:
        """Prometheus reports the last Xid per GPU; ECC and throttle fields come over SSH only
        (a mixed host keeps them), so the Xid is merged into whatever is there."""
        xids = dict(self.xid_errors)
        merged = [dataclasses.replace(h, xid=xids.pop(h.index, h.xid)) for h in snap.gpu_health]
        merged += [GpuHealthFields(index=i, xid=code) for i, code in sorted(xids.items())]
        return tuple(merged)

    # ------------------------------------------------------------------ MetricsOverlay

    def apply(self, snap: HostSnapshot) -> HostSnapshot:
        keys = sorted(self._gpus, key=lambda k: (k[0], k[1]))
        gpus = tuple(self._gpus[k][0] for k in keys)
        gpu_ats = [self._gpus[k][1] for k in keys if self._gpus[k][1] is not None]
        gpu_error = None
        if not gpus and "gpu" in self._asked:
            gpu_error = ProbeError(Reason.NOT_FOUND, f"Prometheus has no DCGM series for "
                                   f"{self.gpu_where}: check [prometheus] host_label and label_map")
        mounts = sorted(self._disks)
        disk_ats = [self._disks[m][1] for m in mounts if self._disks[m][1] is not None]
        disk_errors: tuple = ()
        if not mounts and "disk" in self._asked:
            disk_errors = (("*", f"Prometheus has no node_exporter filesystem series for "
                                 f"{self.node_where}: check [prometheus] label_map"),)
        changes = dict(
            gpus=gpus,
            gpu_health=self._health(snap),
            gpu_error=gpu_error,
            gpu_at=min(gpu_ats) if gpu_ats else None,
            util_history=tuple(tuple(self._util.get(k, ())) for k in keys),
            mem_history=tuple(tuple(self._mem.get(k, ())) for k in keys),
            disks=tuple(self._disks[m][0] for m in mounts),
            disk_errors=disk_errors,
            disk_at=min(disk_ats) if disk_ats else None,
            memory=self._memory[0] if self._memory else None,
            memory_at=self._memory[1] if self._memory else None,
        )
        if self.owns_link:
            changes.update(link=self.link, transport="prometheus")
        else:
            changes.update(transport=f"{snap.transport}+prometheus")
        return dataclasses.replace(snap, **changes)
