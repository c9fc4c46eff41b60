"""Jobs across sources (Slurm, Ray, tmux, bare processes): their categories, their checks, and the
one-line aggregate "2 of 4 completed, 1 running, 1 failed".

Slurm and Ray states are kept as the tool printed them; only the category is ours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from gpudash.health.verdict import JOBS, RAY, verdict
from gpudash.model import (
    CheckResult,
    HostSnapshot,
    ProcessInfo,
    RayJob,
    Reason,
    SlurmJob,
    State,
    TmuxSession,
)

RUNNING, PENDING, COMPLETED, FAILED, CANCELLED, UNKNOWN = (
    "running", "pending", "completed", "failed", "cancelled", "unknown")
CATEGORIES = (COMPLETED, RUNNING, PENDING, FAILED, CANCELLED, UNKNOWN)

_SLURM = {
    RUNNING: "RUNNING R COMPLETING CG CONFIGURING CF RESIZING RS SIGNALING SI STAGE_OUT SO",
    PENDING: "PENDING PD REQUEUED RQ REQUEUE_FED RF REQUEUE_HOLD RH RESV_DEL_HOLD RD SUSPENDED S "
             "STOPPED ST",
    COMPLETED: "COMPLETED CD",
    FAILED: "FAILED F TIMEOUT TO NODE_FAIL NF OUT_OF_MEMORY OOM BOOT_FAIL BF DEADLINE DL "
            "PREEMPTED PR SPECIAL_EXIT SE",
    CANCELLED: "CANCELLED CA REVOKED RV",
}
SLURM_CATEGORY = {word: cat for cat, words in _SLURM.items() for word in words.split()}
RAY_CATEGORY = {"PENDING": PENDING, "RUNNING": RUNNING, "SUCCEEDED": COMPLETED,
                "FAILED": FAILED, "STOPPED": CANCELLED}
SHELLS = frozenset("sh bash zsh fish tcsh csh dash ksh mksh login".split())


def normalize_state(state: str) -> str:
    """``CANCELLED by 1000`` → CANCELLED, ``CANCELLED+`` (sacct) → CANCELLED."""
    words = (state or "").strip().upper().split()
    return words[0].rstrip("+") if words else ""


def job_category(state: str, source: str = "slurm") -> str:
    """Category of a job state as its source prints it (``source``: slurm | ray)."""
    s = normalize_state(state)
    if source == "ray":
        return RAY_CATEGORY.get(s, UNKNOWN)
    if source == "slurm":
        return SLURM_CATEGORY.get(s, UNKNOWN)
    # A bare state of unknown source: Ray's words first, so STOPPED reads as Ray's "stopped by
    # the user" (cancelled) rather than Slurm's rare SIGSTOP'ed job.
    return RAY_CATEGORY.get(s) or SLURM_CATEGORY.get(s, UNKNOWN)


def tmux_category(t: TmuxSession) -> str | None:
    """None: an idle shell pane, which is no job."""
    if t.pane_dead:
        return COMPLETED if t.pane_dead_status in (0, None) else FAILED
    cmd = (t.pane_command or "").strip().lstrip("-").rsplit("/", 1)[-1]
    if not cmd or cmd in SHELLS:
        return None
    return RUNNING


# ----------------------------------------------------------------------------- the run


def main_process(snap: HostSnapshot) -> ProcessInfo | None:
    """The run's process among the matches: the oldest (DataLoader workers start later)."""
    return oldest(snap.processes, snap.taken_at)


def oldest(processes, taken_at: float | None = None) -> ProcessInfo | None:
    if not processes:
        return None
    return min(processes, key=lambda p: (_started(p, taken_at) or float("inf"), p.pid))


def process_start(p: ProcessInfo, snap: HostSnapshot) -> float | None:
    return _started(p, snap.taken_at)


def _started(p: ProcessInfo, taken_at: float | None) -> float | None:
    if p.start_epoch is not None:
        return p.start_epoch
    if p.elapsed_s is not None and taken_at:
        return taken_at - p.elapsed_s
    return None


def slurm_elapsed_s(text: str) -> int | None:
    """Slurm's ``%M`` / ``Elapsed``: ``[D-][HH:]MM:SS`` → seconds; None when unreadable."""
    days, _, rest = (text or "").strip().rpartition("-")
    try:
        parts = [int(x) for x in rest.split(":")]
        d = int(days) if days else 0
    except ValueError:
        return None
    if not 2 <= len(parts) <= 3 or any(x < 0 for x in parts) or d < 0:
        return None
    h, m, sec = ([0] + parts)[-3:]
    return ((d * 24 + h) * 60 + m) * 60 + sec


def run_start(snap: HostSnapshot) -> float | None:
    """When the run began: its oldest process, else its oldest running Slurm job. None when
    nothing says (a guess like "first seen" would make an attached run look short)."""
    mp = main_process(snap)
    start = process_start(mp, snap) if mp is not None else None
    if start is not None:
        return start
    ref = snap.jobs_at if snap.jobs_at is not None else snap.taken_at
    starts = []
    for j in snap.slurm:
        if job_category(j.state, "slurm") == RUNNING and ref:
            el = slurm_elapsed_s(j.elapsed)
            if el is not None:
                starts.append(ref - el)
    return min(starts) if starts else None


def run_alive(snap: HostSnapshot) -> bool | None:
    """Is the run alive? None: the jobs probe never answered, so nobody can tell."""
    if snap.jobs_at is None and not (snap.processes or snap.slurm or snap.ray or snap.tmux):
        return None
    if snap.processes:
        return True
    if any(job_category(j.state, "slurm") == RUNNING for j in snap.slurm):
        return True
    if any(job_category(j.status, "ray") == RUNNING for j in snap.ray):
        return True
    return any(tmux_category(t) == RUNNING for t in snap.tmux)


# ----------------------------------------------------------------------------- checks


def check_jobs(snap: HostSnapshot) -> list[CheckResult]:
    out: list[CheckResult] = []
    for j in snap.slurm:
        out.append(_job_check(j.job_id, "slurm", j.state, j.source, j.name, j.reason, (JOBS,)))
    for r in snap.ray:
        out.append(_job_check(r.job_id, "ray", r.status, "ray", "", r.message, (JOBS, RAY)))
    for t in snap.tmux:
        cat = tmux_category(t)
        if cat is None:
            continue
        key = f"job:tmux:{t.name}"
        if cat == FAILED:
            st = t.pane_dead_status
            hint = " (SIGKILL: the OOM killer?)" if st == 137 else " (SIGSEGV)" if st == 139 else ""
            out.append(verdict(key, State.CRIT, f"tmux {t.name}: exited with status {st}{hint}",
                               (JOBS,), category=cat))
        elif cat == COMPLETED:
            out.append(verdict(key, State.OK, f"tmux {t.name}: exited with status 0", (JOBS,),
                               category=cat))
        else:
            out.append(verdict(key, State.OK, f"tmux {t.name}: running {t.pane_command}", (JOBS,),
                               category=cat))
    return out


def _job_check(job_id, source, raw_state, origin, name, note, probes) -> CheckResult:
    key = f"job:{job_id}"
    label = f"{source} job {job_id}" + (f" ({name})" if name else "")
    state_txt = normalize_state(raw_state) or "?"
    if origin == "aged_out":
        return verdict(key, State.UNKNOWN, f"{label}: aged out of scontrol — its final state is "
                       "unknown without slurmdbd (not FAILED)", probes, reason=Reason.NOT_FOUND,
                       category=UNKNOWN)
    cat = job_category(raw_state, source)
    tail = f" — {note}" if note and cat != RUNNING else ""
    if cat in (RUNNING, PENDING, COMPLETED):
        return verdict(key, State.OK, f"{label}: {state_txt}{tail}", probes, category=cat)
    if cat == CANCELLED:
        return verdict(key, State.OK, f"{label}: {state_txt} by a person — not a failure of the "
                       "run", probes, category=cat)
    if cat == FAILED:
        if state_txt in ("PREEMPTED", "PR"):
            return verdict(key, State.WARN, f"{label}: PREEMPTED — check whether Slurm requeued it "
                           "before resuming from the checkpoint", probes, category=cat)
        return verdict(key, State.CRIT, f"{label}: {state_txt}{tail}", probes, category=cat)
    return verdict(key, State.UNKNOWN, f"{label}: unrecognised state {state_txt!r}", probes,
                   reason=Reason.PROBE_ERROR, category=UNKNOWN)


# ----------------------------------------------------------------------------- summary


def _categories(items) -> list[str]:
    if isinstance(items, HostSnapshot):
        snap = items
        cats = [job_category(j.state, "slurm") for j in snap.slurm]
        cats += [job_category(r.status, "ray") for r in snap.ray]
        cats += [c for c in (tmux_category(t) for t in snap.tmux) if c is not None]
        if not cats:
            # bare processes (nohup/setsid) are jobs only when nothing else describes them:
            # the same run is usually also a tmux pane or a Slurm step.
            cats = [RUNNING] * (1 if snap.processes else 0)
        return cats
    cats = []
    for it in items:
        if isinstance(it, SlurmJob):
            cats.append(job_category(it.state, "slurm"))
        elif isinstance(it, RayJob):
            cats.append(job_category(it.status, "ray"))
        elif isinstance(it, TmuxSession):
            c = tmux_category(it)
            if c is not None:
                cats.append(c)
        elif isinstance(it, ProcessInfo):
            cats.append(RUNNING)
        elif isinstance(it, tuple) and len(it) == 2:
            cats.append(job_category(str(it[1]), str(it[0])))
        else:
            s = str(it).strip().lower()
            cats.append(s if s in CATEGORIES else job_category(str(it), "any"))
    return cats


def summarize_jobs(items: HostSnapshot | Iterable) -> str:
    """"2 of 4 completed, 1 running, 1 failed". ``items``: a snapshot, or job states (strings as
    Slurm/Ray print them, category names, ``(source, state)`` pairs, or the model's job types)."""
    cats = _categories(items)
    if not cats:
        return "no jobs"
    n = Counter(cats)
    parts = [f"{n[COMPLETED]} of {len(cats)} completed"]
    parts += [f"{n[c]} {c}" for c in CATEGORIES[1:] if n[c]]
    return ", ".join(parts)
