"""Severity of an event and the words of a notification: one event, or a summary of many.

When a whole rack goes unreachable at once, seven desktop pop-ups and seven bells tell less than
one line: "7 alerts on 3 hosts: 4 CRIT, 3 WARN — a: disk.bytes:/ CRIT, … | b: …".
"""

from __future__ import annotations

from dataclasses import dataclass

from gpudash.model import Event, State

SEVERITIES = ("info", "warning", "critical")

# UNKNOWN is a warning: we cannot see the box (or a probe), which is worth a look but never a
# bell at night (SSH trouble never makes the job CRIT). Recoveries and STALE are info.
_SEVERITY = {State.CRIT: "critical", State.WARN: "warning", State.UNKNOWN: "warning",
             State.OK: "info", State.STALE: "info"}


def severity_of(event: Event) -> str:
    return _SEVERITY.get(event.new, "info")


def worst_severity(events) -> str:
    sevs = {severity_of(e) for e in events}
    for s in reversed(SEVERITIES):
        if s in sevs:
            return s
    return "info"


@dataclass(frozen=True)
class Notice:
    """One notification as sinks show it. ``events``: what it stands for (one, or a summary)."""

    severity: str
    title: str
    body: str
    events: tuple[Event, ...]

    @property
    def text(self) -> str:
        return f"{self.title}: {self.body}"

    @property
    def is_summary(self) -> bool:
        return len(self.events) > 1


def event_line(event: Event) -> str:
    """The alert log's line for one event."""
    old = event.old.value if event.old is not None else "new"
    tail = f" [{event.triage_class}]" if event.triage_class else ""
    return (f"{severity_of(event).upper():8} {event.host} {event.key} {old}→{event.new.value}: "
            f"{event.message}{tail}")


def single(event: Event) -> Notice:
    sev = severity_of(event)
    body = event.message + (f" [{event.triage_class}]" if event.triage_class else "")
    return Notice(sev, f"gpudash {event.new.value} {event.host}", body, (event,))


def summarize(events: list[Event], max_len: int = 600) -> Notice:
    """"N alerts on M hosts: 4 CRIT, 3 WARN — host: key STATE, key STATE | host: …"."""
    hosts: dict[str, list[Event]] = {}
    for e in events:
        hosts.setdefault(e.host, []).append(e)
    counts: dict[str, int] = {}
    for e in events:
        counts[e.new.value] = counts.get(e.new.value, 0) + 1
    order = [s.value for s in (State.CRIT, State.WARN, State.UNKNOWN, State.STALE, State.OK)]
    count_text = ", ".join(f"{counts[s]} {s}" for s in order if s in counts)
    n_h = len(hosts)
    title = f"gpudash: {len(events)} alerts on {n_h} host{'s' if n_h != 1 else ''}"
    # Worst hosts first so the cut-off drops the least important part.
    ranked = sorted(hosts.items(), key=lambda kv: -max(e.new.rank for e in kv[1]))
    detail = " | ".join(f"{h}: " + ", ".join(f"{e.key} {e.new.value}" for e in evs)
                       for h, evs in ranked)
    body = f"{count_text} — {detail}"
    if len(body) > max_len:
        body = body[:max_len - 1] + "…"
    return Notice(worst_severity(events), title, body, tuple(events))
