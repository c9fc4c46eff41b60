"""Read what the widgets show out of a `HostView`, tolerant of fields the data path may add later.

The triage result and a few job facts (restart count, W&B link) belong to modules built in
parallel; they are read with `getattr` defaults here, in one place, so a widget never breaks
because a field is missing or renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from gpudash.model import DiskUsage, Reason, State
from gpudash.ui.text import fmt_duration, hhmm
from gpudash.watch.view import HostView

NOT_FAILURES = frozenset({None, "", "none", "completed"})


@dataclass(frozen=True)
class Evidence:
    line_no: int | None
    text: str


@dataclass(frozen=True)
class TriageInfo:
    cls: str
    category: str
    summary: str
    explanation: str
    remediation: str
    evidence: tuple[Evidence, ...]
    cause: str

    @property
    def is_failure(self) -> bool:
        return self.cls not in NOT_FAILURES

    @property
    def key(self) -> str:
        """Identity of one failure for "is it new?": its class. Re-classifying a growing log
        moves the evidence and rewrites the summary; that is the same failure, not a new one."""
        return self.cls


def triage_info(view: HostView | None) -> TriageInfo | None:
    t = getattr(view, "triage", None)
    if t is None:
        return None
    ev = []
    for e in getattr(t, "evidence", ()) or ():
        if isinstance(e, (tuple, list)) and len(e) == 2:
            ev.append(Evidence(e[0], str(e[1])))
        else:
            ev.append(Evidence(getattr(e, "line_no", None), str(getattr(e, "text", e))))
    return TriageInfo(
        cls=str(getattr(t, "cls", "") or getattr(t, "triage_class", "") or ""),
        category=str(getattr(t, "category", "") or ""),
        summary=str(getattr(t, "summary", "") or ""),
        explanation=str(getattr(t, "explanation", "") or ""),
        remediation=str(getattr(t, "remediation", "") or ""),
        evidence=tuple(ev),
        cause=str(getattr(t, "cause", "") or ""),
    )


def worst_disk(view: HostView, inodes: bool) -> DiskUsage | None:
    """The mount closest to full (by bytes or by inodes)."""
    best, best_pct = None, -1.0
    for d in view.snapshot.disks:
        pct = d.inodes_pct if inodes else d.bytes_pct
        if pct is not None and pct > best_pct:
            best, best_pct = d, pct
    return best


def check_state(view: HostView, key: str) -> State | None:
    for c in view.checks:
        if c.key == key:
            return c.state
    return None


def check_detail(view: HostView, key: str, name: str):
    for c in view.checks:
        if c.key == key:
            return c.detail.get(name)
    return None


def time_to_full(view: HostView, mount: str, kind: str) -> float | None:
    """Seconds until the mount fills (bytes or inodes) as the health engine estimated it."""
    for key in (f"disk.{kind}:{mount}", f"disk:{mount}"):
        for name in ("time_to_full_s", "ttf_s", "eta_full_s"):
            v = check_detail(view, key, name)
            if isinstance(v, (int, float)):
                return float(v)
    return None


def restarts(view: HostView) -> int | None:
    for src in (view, view.snapshot):
        v = getattr(src, "restarts", None)
        if isinstance(v, int):
            return v
    v = view.labels.get("restarts") if isinstance(view.labels, dict) else None
    return v if isinstance(v, int) else None


def wandb_url(view: HostView) -> str | None:
    for src in (view, view.snapshot):
        v = getattr(src, "wandb_url", None)
        if v:
            return str(v)
    v = view.labels.get("wandb_url") or view.labels.get("wandb") if isinstance(view.labels, dict) else None
    return str(v) if v else None


def is_unreachable(view: HostView) -> bool:
    return not view.snapshot.link.ok


def unknown_reason(view: HostView) -> Reason | None:
    link = view.snapshot.link
    if not link.ok:
        return link.reason or view.reason or Reason.UNREACHABLE
    if view.state is State.UNKNOWN:
        return view.reason
    return None


def reason_since(view: HostView) -> float | None:
    link = view.snapshot.link
    if not link.ok and link.since is not None:
        return link.since
    for c in view.checks:
        if c.state is State.UNKNOWN and c.since is not None:
            return c.since
    return None


def last_seen(view: HostView) -> float | None:
    link = view.snapshot.link
    if link.last_ok is not None:
        return link.last_ok
    return view.snapshot.taken_at or None


def seen_text(view: HostView, now: float, tz: tzinfo | None) -> str:
    """"seen 3s ago", or "unreachable since 14:02" — why and since when, never just a colour."""
    reason = unknown_reason(view)
    if reason is not None:
        since = reason_since(view)
        word = reason.value.replace("_", " ")
        return f"{word} since {hhmm(since, tz)}" if since is not None else word
    seen = last_seen(view)
    if seen is None:
        return "not seen yet"
    return f"seen {fmt_duration(max(0.0, now - seen))} ago"


def progress_text(view: HostView) -> str:
    p = view.snapshot.progress
    if p is None:
        return ""
    out = p.label()
    if p.eta_s is not None:
        out += f" ETA {fmt_duration(p.eta_s)}"
    return out


def last_log_line(view: HostView) -> str:
    lines = view.snapshot.log_lines
    for line in reversed(lines):
        if line.strip():
            return line
    return view.snapshot.log_error or ""


def util_series(view: HostView) -> list[float | None]:
    """The mean GPU util over the host's GPUs per sample (oldest first)."""
    return _mean_series(view.snapshot.util_history)


def mem_series(view: HostView) -> list[float | None]:
    return _mean_series(view.snapshot.mem_history)


def recent_util(view: HostView, n: int) -> list[float | None]:
    """The newest ``n`` points of :func:`util_series`, computed from those samples only (a compact
    row is redrawn on every update of its host: the whole 300-sample history would cost ~10×)."""
    return _mean_series(view.snapshot.util_history, last=n)


def _mean_series(hist, last: int | None = None) -> list[float | None]:
    if not hist:
        return []
    if last is not None:
        hist = [tuple(h)[-last:] for h in hist]
    n = max(len(h) for h in hist)
    out: list[float | None] = []
    for i in range(n):
        vals = [h[i - n + len(h)] for h in hist if i - n + len(h) >= 0 and h[i - n + len(h)] is not None]
        out.append(sum(vals) / len(vals) if vals else None)
    return out


def current_util(view: HostView) -> float | None:
    vals = [g.util_pct for g in view.snapshot.gpus if g.util_pct is not None]
    return sum(vals) / len(vals) if vals else None


def current_mem_pct(view: HostView) -> float | None:
    vals = [100.0 * g.mem_used_mib / g.mem_total_mib for g in view.snapshot.gpus
            if g.mem_used_mib is not None and g.mem_total_mib]
    return sum(vals) / len(vals) if vals else None
