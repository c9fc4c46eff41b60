"""Health engine: thresholds, phases, hysteresis, flapping, STALE. Pure (no I/O, no UI).

Entry points: :func:`evaluate` (snapshot → raw verdicts), :class:`HealthEngine` (hysteresis,
flapping, events), :func:`host_state`, :func:`summarize_jobs`.
"""

from gpudash.health.context import Phase, RunContext
from gpudash.health.engine import HealthEngine, evaluate, host_state
from gpudash.health.jobs_summary import job_category, summarize_jobs
from gpudash.health.stale import stale_checks, stale_probes
from gpudash.health.thresholds import Intervals, Thresholds

__all__ = [
    "HealthEngine", "Intervals", "Phase", "RunContext", "Thresholds", "evaluate", "host_state",
    "job_category", "stale_checks", "stale_probes", "summarize_jobs",
]
