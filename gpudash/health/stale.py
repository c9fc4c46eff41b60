"""STALE: a verdict built from data older than ``stale_after`` (3) intervals of its probe is not a
verdict.

A check's probes are listed in ``detail["probes"]`` by :func:`gpudash.health.verdict.verdict`.
When the SSH link is down, every probe whose last good sample predates the drop is stale at once
(nothing fresh can arrive over a dead link), but data from another source that kept flowing
(a Prometheus backend) stays fresh.
"""

from __future__ import annotations

import dataclasses

from gpudash.health.thresholds import Intervals
from gpudash.health.verdict import age
from gpudash.model import CheckResult, HostSnapshot, State

# probe -> the snapshot field holding the time of its last good sample
PROBE_AT = {
    "gpu": "gpu_at",
    "log": "log_at",
    "disk": "disk_at",
    "memory": "memory_at",
    "jobs": "jobs_at",
    "files": "files_at",
    "ray": "jobs_at",  # Ray status arrives with the jobs round, at its own slower cadence
}
_JUDGED = (State.OK, State.WARN, State.CRIT)


def stale_probes(snap: HostSnapshot, iv: Intervals, now: float) -> dict[str, float | None]:
    """Stale probes → age of their last good data (None: unknown, the link dropped before any).

    A ``*_at`` of None with data present means the builder did not stamp it: judged fresh.
    """
    out: dict[str, float | None] = {}
    link = snap.link
    for probe, attr in PROBE_AT.items():
        at = getattr(snap, attr, None)
        if isinstance(at, (int, float)) and now - at > iv.stale_after_s(probe):
            out[probe] = now - at
        elif not link.ok and (at is None or link.since is None or at < link.since):
            out[probe] = None if at is None else now - at
    return out


def stale_checks(checks, snap: HostSnapshot, iv: Intervals, now: float) -> tuple[CheckResult, ...]:
    """Turn the judged checks of stale probes STALE (never OK), keeping the last verdict in the
    summary and in ``detail["last_state"]``. UNKNOWN checks keep their own, better reason."""
    return mark_stale(checks, stale_probes(snap, iv, now))


def mark_stale(checks, stale: dict[str, float | None]) -> tuple[CheckResult, ...]:
    if not stale:  # the usual case: every probe fresh, nothing to mark
        return tuple(checks)
    out = []
    for c in checks:
        hit = [p for p in c.detail.get("probes", ()) if p in stale]
        if not hit or c.state not in _JUDGED:
            out.append(c)
            continue
        p = hit[0]
        old = stale[p]
        how = f"for {age(old)}" if old is not None else "since the link dropped"
        summary = f"stale: no fresh {p} data {how} (last: {c.state.value} — {c.summary})"
        detail = dict(c.detail, last_state=c.state.value, stale_probes=tuple(hit))
        out.append(dataclasses.replace(c, state=State.STALE, summary=summary, detail=detail))
    return tuple(out)
