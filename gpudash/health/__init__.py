"""Health engine: thresholds, phases, hysteresis, flapping, STALE. Pure (no I/O, no UI).

Entry points: :func:`evaluate` (snapshot → raw verdicts), :class:`HealthEngine` (hysteresis,
flapping, events), :func:`host_state`, :func:`summarize_jobs`.

The names below load on first use: gpudash.config imports ``gpudash.health.thresholds`` (the one
Thresholds/Intervals definition) and must not pay for the engine and model on the way.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Phase": "context", "RunContext": "context",
    "HealthEngine": "engine", "evaluate": "engine", "host_state": "engine",
    "job_category": "jobs_summary", "summarize_jobs": "jobs_summary",
    "stale_checks": "stale", "stale_probes": "stale",
    "Intervals": "thresholds", "Thresholds": "thresholds",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
