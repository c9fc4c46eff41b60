"""Small shared pieces of the checks: building a CheckResult that remembers which probes fed it,
and number helpers that never raise on NaN, infinities or None."""

from __future__ import annotations

import math

from gpudash import format as fmt
from gpudash.model import CheckResult, Reason, State

# `State.UNKNOWN` looked up once: on Python 3.11 an enum member's lookup costs ~0.5 µs, and this
# runs for every check of every host on each refresh.
_UNKNOWN = State.UNKNOWN

# Probe names, as in Intervals and the snapshot's *_at fields.
GPU, LOG, DISK, MEMORY, JOBS, FILES, RAY = "gpu", "log", "disk", "memory", "jobs", "files", "ray"


def verdict(
    key: str,
    state: State,
    summary: str,
    probes: tuple[str, ...] = (),
    reason: Reason | None = None,
    **detail,
) -> CheckResult:
    """A raw check result. ``probes`` (kept in detail) says whose staleness makes it STALE."""
    if state is _UNKNOWN and reason is None:
        reason = Reason.PROBE_ERROR  # an UNKNOWN always says why
    detail["probes"] = tuple(probes)
    return CheckResult(key=key, state=state, summary=summary, reason=reason, detail=detail)


def finite(x) -> bool:
    """A real, finite number (None, NaN, ±inf and non-numbers are not)."""
    if x is None or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except TypeError:
        return False


def known(values) -> list[float]:
    """The finite values of a series (one pass: windows of hundreds of samples per GPU)."""
    isfin = math.isfinite
    out = []
    for v in values:
        if v is not None:
            try:
                if isfin(v):
                    out.append(v)
            except TypeError:
                pass
    return out


def mean(values) -> float | None:
    return mean_count(values)[0]


def mean_count(values) -> tuple[float | None, int]:
    """(mean of the finite values, how many there were). The common all-numbers case runs at C
    speed; None, NaN and infinities fall back to filtering."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    try:
        total = math.fsum(values)
        if math.isfinite(total):
            return (total / len(values) if values else None), len(values)
    except TypeError:
        pass
    vals = known(values)
    if not vals:
        return None, 0
    total = math.fsum(vals)
    return (total / len(vals) if math.isfinite(total) else None), len(vals)


def improvement(before: float, after: float) -> float:
    """Relative fall from ``before`` to ``after`` (0.05 = 5 % lower); sign-safe for negative losses."""
    if before == 0:
        return 0.0 if after == 0 else (1.0 if after < 0 else -1.0)
    return (before - after) / abs(before)


def age(seconds) -> str:
    """``format.age`` that survives NaN, infinities and absurd values from a hostile box."""
    return fmt.age(seconds) if finite(seconds) and abs(seconds) < 1e12 else "?"


def clock(epoch) -> str:
    """``format.clock`` that survives epochs the platform's localtime cannot represent."""
    try:
        return fmt.clock(epoch) if finite(epoch) else "?"
    except (OverflowError, OSError, ValueError):
        return "?"
