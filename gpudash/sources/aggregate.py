"""Pure helpers that keep hundreds of hosts and thousands of GPUs readable: one aggregated row per
host ("node-a17: 8 GPUs, util 97% avg, 1 hot"), grouping by a label or by state, filtering
("only problems", by state, by label, a search query), sorting, the overview's arrangement
(filter → sort → group), and a one-line fleet summary.

They read :class:`HostView` objects only (no I/O, no Textual): the UI and `status` share them.
An unavailable number is left out or shown as "n/a", never averaged in as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpudash.model import State
from gpudash.watch.view import HostView

NO_LABEL = "(none)"
SORT_KEYS = ("state", "name", "util", "temp", "mem", "gpus")


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def gpu_stats(view: HostView) -> dict:
    """Counts and averages over a host's GPUs, and how many of each check family are not OK."""
    gpus = view.snapshot.gpus
    mem = [100.0 * g.mem_used_mib / g.mem_total_mib for g in gpus
           if g.mem_used_mib is not None and g.mem_total_mib]
    bad = {}
    for c in view.checks:
        if c.state in (State.WARN, State.CRIT):
            family = c.key.split(":", 1)[0]
            bad[family] = bad.get(family, 0) + 1
    return {
        "gpus": len(gpus),
        "util": _mean(g.util_pct for g in gpus),
        "mem": _mean(mem),
        "temp_max": max((g.temp_c for g in gpus if g.temp_c is not None), default=None),
        "power": sum(g.power_w for g in gpus if g.power_w is not None) if gpus else None,
        "hot": bad.get("gpu.temp", 0),
        "bad": bad,
        "stale": sum(1 for c in view.checks if c.state is State.STALE),
    }


_PROBLEM_WORDS = {
    "gpu.temp": "hot", "gpu.mem": "GPU memory full", "gpu.util": "underused", "gpu.ecc": "ECC",
    "gpu.xid": "Xid",
    "disk.bytes": "disk full", "disk.inodes": "inodes full", "memory": "RAM high",
    "memory.oom": "OOM kill",
}


def aggregate_row(view: HostView) -> str:
    """``node-a17: 8 GPUs, util 97% avg, mem 64%, 1 hot`` — the host's line in a big overview."""
    return f"{view.name}: " + aggregate_text(view)


def aggregate_text(view: HostView) -> str:
    """The row without the name: ``8 GPUs, util 97% avg, mem 64%, 1 hot``."""
    s = gpu_stats(view)
    parts = [f"{s['gpus']} GPU{'s' if s['gpus'] != 1 else ''}" if s["gpus"] else "no GPU data"]
    if s["util"] is not None:
        parts.append(f"util {s['util']:.0f}% avg")
    if s["mem"] is not None:
        parts.append(f"mem {s['mem']:.0f}%")
    for family, n in s["bad"].items():
        word = _PROBLEM_WORDS.get(family)
        if word:
            parts.append(f"{n} {word}")
    if s["stale"]:
        parts.append(f"{s['stale']} stale")
    if view.state is State.UNKNOWN and view.reason is not None:
        parts.append(view.reason.value)
    return ", ".join(parts)


def is_problem(view: HostView) -> bool:
    return view.state is not State.OK


def _label_match(view: HostView, key: str, value: str) -> bool:
    """``key=value``: the label's key and value equal, case-insensitively (``rack=r1`` is not r10)."""
    return any(str(k).lower() == key and str(x).lower() == value
               for k, x in (view.labels or {}).items())


def _text_match(view: HostView, needle: str) -> bool:
    return needle in view.name.lower() or any(needle in str(x).lower()
                                              for x in (view.labels or {}).values())


def filter_views(views: Iterable[HostView], *, only_problems: bool = False,
                 states: Iterable[State] | None = None, text: str = "",
                 labels: Iterable[tuple[str, str]] = ()) -> list[HostView]:
    """Views that pass every filter given. ``text`` matches the host name or any label value,
    case-insensitively (each whitespace-separated word must match); ``labels`` are
    ``(key, value)`` pairs that must all be present."""
    wanted = set(states) if states is not None else None
    words = [w for w in text.lower().split() if w]
    pairs = [(str(k).lower(), str(x).lower()) for k, x in labels]
    out = []
    for v in views:
        if only_problems and not is_problem(v):
            continue
        if wanted is not None and v.state not in wanted:
            continue
        if not all(_text_match(v, w) for w in words):
            continue
        if not all(_label_match(v, k, x) for k, x in pairs):
            continue
        out.append(v)
    return out


@dataclass(frozen=True)
class Query:
    """A parsed overview search: ``gpu-a rack=r1 state:warn is:crit is:problem``."""

    words: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    states: frozenset[State] | None = None
    problems: bool = False

    @property
    def empty(self) -> bool:
        return not (self.words or self.labels or self.states is not None or self.problems)


_STATE_PREFIXES = ("state:", "is:")


def parse_query(text: str) -> Query:
    """Words match names and label values; ``key=value`` a label; ``state:warn`` / ``is:crit``
    a state (several are OR'ed); ``is:problem`` any state but OK. An unknown state word
    (``is:blue``) stays a literal word, so it matches nothing rather than everything."""
    words, labels, states, problems = [], [], set(), False
    for tok in text.split():
        low = tok.lower()
        prefix = next((p for p in _STATE_PREFIXES if low.startswith(p)), None)
        if prefix is not None:
            what = low[len(prefix):]
            if what in ("problem", "problems", "bad"):
                problems = True
                continue
            state = next((s for s in State if s.value.lower() == what), None)
            if state is not None:
                states.add(state)
                continue
        elif "=" in tok.strip("="):
            key, value = tok.split("=", 1)
            labels.append((key.lower(), value.lower()))
            continue
        words.append(low)
    return Query(tuple(words), tuple(labels), frozenset(states) if states else None, problems)


def query_views(views: Iterable[HostView], query: str | Query, *,
                only_problems: bool = False) -> list[HostView]:
    q = parse_query(query) if isinstance(query, str) else query
    return filter_views(views, only_problems=only_problems or q.problems, states=q.states,
                        text=" ".join(q.words), labels=q.labels)


def label_keys(views: Iterable[HostView]) -> list[str]:
    """Every label key present in the views, sorted (the overview's grouping choices)."""
    return sorted({str(k) for v in views for k in (v.labels or {})})


def arrange(views: Sequence[HostView], *, query: str | Query = "", only_problems: bool = False,
            sort: str | None = None, group: str | None = None
            ) -> list[tuple[str | None, list[str]]]:
    """The overview's order: filter, then sort (``None``: the given order), then group
    (``None``: one unnamed group). Returns ``[(group or None, [host names])]``, empty groups left
    out."""
    shown = query_views(views, query, only_problems=only_problems)
    if sort is not None:
        shown = sort_views(shown, sort)
    if group is None:
        return [(None, [v.name for v in shown])] if shown else []
    return [(g, [v.name for v in vs]) for g, vs in group_by(shown, group).items()]


def group_by(views: Iterable[HostView], key: str) -> dict[str, list[HostView]]:
    """Views by the value of label ``key`` (``"state"``: by health state, worst group first).
    Groups keep the views' order; hosts without the label go to ``(none)``, last."""
    groups: dict[str, list[HostView]] = {}
    for v in views:
        g = v.state.value if key == "state" else str((v.labels or {}).get(key, NO_LABEL))
        groups.setdefault(g, []).append(v)
    if key == "state":
        order = sorted(groups, key=lambda s: -State(s).rank)
    else:
        order = sorted(groups, key=lambda g: (g == NO_LABEL, g))
    return {g: groups[g] for g in order}


def sort_views(views: Iterable[HostView], by: str = "state") -> list[HostView]:
    """``state``: worst first; ``util``: least busy first (idle GPUs are what one looks for);
    ``temp``/``mem``: highest first; ``gpus``: most first; ``name``. Unknown numbers go last."""
    if by not in SORT_KEYS:
        raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}")
    views = list(views)
    if by == "name":
        return sorted(views, key=lambda v: v.name)
    if by == "state":
        return sorted(views, key=lambda v: (-v.state.rank, v.name))
    stats = {id(v): gpu_stats(v) for v in views}
    field, sign = {"util": ("util", 1), "temp": ("temp_max", -1), "mem": ("mem", -1),
                   "gpus": ("gpus", -1)}[by]

    def key(v):
        x = stats[id(v)][field]
        return (x is None, sign * (x or 0), v.name)

    return sorted(views, key=key)


@dataclass(frozen=True)
class FleetCounts:
    hosts: int
    gpus: int
    states: tuple[tuple[State, int], ...]  # worst first, only states present
    util: float | None

    @property
    def head(self) -> str:
        h, g = self.hosts, self.gpus
        return f"{h} host{'s' if h != 1 else ''}, {g} GPU{'s' if g != 1 else ''}"


def fleet_counts(views: Sequence[HostView]) -> FleetCounts:
    counts: dict[State, int] = {}
    for v in views:
        counts[v.state] = counts.get(v.state, 0) + 1
    return FleetCounts(
        hosts=len(views), gpus=sum(len(v.snapshot.gpus) for v in views),
        states=tuple((s, counts[s]) for s in sorted(counts, key=lambda s: -s.rank)),
        util=_mean(g.util_pct for v in views for g in v.snapshot.gpus))


def fleet_summary(views: Sequence[HostView]) -> str:
    """``125 hosts, 1000 GPUs: 120 OK, 3 WARN, 2 STALE; util 81% avg`` (states worst first)."""
    c = fleet_counts(views)
    util = c.util
    states = ", ".join(f"{n} {s.value}" for s, n in c.states)
    text = c.head
    if states:
        text += f": {states}"
    if util is not None:
        text += f"; util {util:.0f}% avg"
    return text
