"""The overview's compact mode: one line per host, group headers between, for hundreds of hosts.

    ── pool=train   2 hosts, 16 GPUs: 1 WARN, 1 OK; util 81% avg
    ▶ WARN    node-a17   8 GPUs, util 97% avg, mem 64%, 1 hot   tmux train: running   seen 3s ago

One widget drawn with the line API: only the lines on screen are rendered, and a new view for a
host repaints that host's line (and its group's header) — never the widget tree. Remote text (host
names, label values, job summaries) is plain `Content`, never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo

from textual.content import Content
from textual.events import Click
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from gpudash.sources.aggregate import aggregate_text, fleet_counts
from gpudash.ui import viewinfo as vi
from gpudash.ui.messages import OpenHost
from gpudash.ui.text import MUTED, STATE_STYLE, fit, plain, safe, spark, state_word
from gpudash.watch.view import HostView

NAME_MAX = 24
# where the job text starts, after the name column: room for "8 GPUs, util 97% avg, mem 64%, 1 hot"
JOB_COLUMN = 2 + 7 + 1 + 2 + 40
SPARK_W = 10  # ten GPU samples: 20 s at the default cadence


def group_title(group_key: str, group: str) -> Content:
    """``state CRIT`` or ``rack=r1`` (the label value is remote text: plain)."""
    if group_key == "state":
        return Content.assemble(("state ", MUTED), (group, STATE_STYLE_BY_VALUE.get(group, "bold")))
    return Content.assemble(plain(group_key, "bold $primary", max_len=40), ("=", MUTED),
                            plain(group, "bold $primary", max_len=60))


STATE_STYLE_BY_VALUE = {s.value: style.replace("reverse ", "") for s, style in STATE_STYLE.items()}


def summary_content(views: Sequence[HostView]) -> Content:
    """fleet_summary as Content, each state count in its state's colour (the word is there too)."""
    c = fleet_counts(views)
    parts: list[Content] = [Content(c.head)]
    if c.states:
        parts.append(Content(": ") + Content(", ").join(
            Content.assemble(str(n), " ", (s.value, STATE_STYLE_BY_VALUE[s.value])) for s, n in c.states))
    if c.util is not None:
        parts.append(Content(f"; util {c.util:.0f}% avg"))
    return Content("").join(parts)


def header_line(group_key: str, group: str, views: Sequence[HostView], width: int) -> Content:
    line = Content.assemble(("── ", MUTED), group_title(group_key, group), "   ",
                            summary_content(views).stylize(MUTED))
    return fit(line, width)


def compact_line(view: HostView, width: int, *, selected: bool, now: float, tz: tzinfo | None,
                 name_width: int = 16) -> Content:
    """``▶ WARN    node-a17   8 GPUs, util 97% avg, mem 64%, 1 hot   job …   2 alerts  seen 3s ago``"""
    name = safe(view.name, max_len=NAME_MAX)
    left = Content.assemble(("▶ " if selected else "  ", "bold $accent"), state_word(view.state, width=7),
                            " ", plain(name.ljust(name_width), "bold"), "  ",
                            plain(aggregate_text(view)))
    if view.paused:
        left += Content.styled("  PAUSED", "bold $warning")
    job = " ".join(x for x in (safe(view.job_summary, max_len=60), vi.progress_text(view)) if x)
    if width >= 110:  # narrower: the numbers and problems first, the rest is one enter away
        # the util sparkline and the job text start in one column for every row (a table, not a
        # ragged edge); the sparkline is the mean over the host's GPUs, newest on the right
        left = left.pad_right(max(0, JOB_COLUMN + name_width - left.cell_length))
        if view.snapshot.gpus:
            left += Content("  ") + spark(vi.recent_util(view, SPARK_W), SPARK_W)
        if job:
            left += Content("   ") + plain(job, MUTED, max_len=80)
    right_parts = []
    if view.alerts_unacked:
        n = view.alerts_unacked
        right_parts.append(Content.styled(f"{n} alert{'s' if n != 1 else ''}", "bold $warning"))
    right_parts.append(Content.styled(vi.seen_text(view, now, tz),
                                      "$accent" if vi.unknown_reason(view) else MUTED))
    right = Content("  ").join(right_parts)
    room = width - right.cell_length - 1
    if room < 30:  # narrow: the host's numbers matter more than when it was seen
        return fit(left, width)
    left = fit(left, room)
    return left + Content(" " * (width - left.cell_length - right.cell_length)) + right


class FleetList(ScrollView, can_focus=False):
    """Rows are ``("group", name)`` or ``("host", name)``. Not focusable: the overview's own
    bindings move the selection (a focused scroller would eat up/down)."""

    COMPONENT_CLASSES = {"fleet-list--selected", "fleet-list--header"}
    DEFAULT_CSS = """
    FleetList { height: 1fr; scrollbar-size-vertical: 1; padding: 0 1; overflow-x: hidden; }
    FleetList > .fleet-list--selected { background: $primary-muted; }
    FleetList > .fleet-list--header { background: $panel; }
    """

    def __init__(self, *, views: Callable[[], dict[str, HostView]], now: Callable[[], float],
                 tz: tzinfo | None, id: str | None = None) -> None:
        super().__init__(id=id)
        self._views = views
        self._now = now
        self.tz = tz
        self.rows: list[tuple[str, str]] = []
        self.group_key: str = ""
        self.members: dict[str, list[str]] = {}  # group → its hosts (for the header's summary)
        self.selected: str | None = None
        self._host_line: dict[str, int] = {}
        self._group_line: dict[str, int] = {}
        self._host_group: dict[str, str] = {}
        self._seen: dict[str, str] = {}  # host → the "seen …" text last drawn
        self.name_width = 16

    # ------------------------------------------------------------------ data

    def set_rows(self, groups: Sequence[tuple[str | None, list[str]]], group_key: str | None) -> None:
        """A new arrangement: the only call that redraws every line."""
        self.rows = []
        self.group_key = group_key or ""
        self.members = {}
        self._host_line, self._group_line, self._host_group = {}, {}, {}
        for group, hosts in groups:
            if group is not None:
                self._group_line[group] = len(self.rows)
                self.rows.append(("group", group))
                self.members[group] = list(hosts)
            for h in hosts:
                self._host_line[h] = len(self.rows)
                self.rows.append(("host", h))
                if group is not None:
                    self._host_group[h] = group
        names = [len(safe(h, max_len=NAME_MAX)) for h in self._host_line]
        self.name_width = max([8, *names]) if names else 8
        self.virtual_size = Size(self.size.width, len(self.rows))
        self.refresh()

    def hosts_changed(self, hosts: set[str]) -> None:
        """Repaint the lines of these hosts and of their groups' headers; nothing else."""
        lines = set()
        for h in hosts:
            if h in self._host_line:
                lines.add(self._host_line[h])
                g = self._host_group.get(h)
                if g is not None:
                    lines.add(self._group_line[g])
        for y in sorted(lines):
            self.refresh_line(y)

    def tick(self) -> None:
        """A second passed: repaint the visible lines whose "seen …" text changed."""
        views, now = self._views(), self._now()
        top = self.scroll_offset.y
        for y in range(top, min(len(self.rows), top + self.size.height)):
            kind, name = self.rows[y]
            view = views.get(name)
            if kind == "host" and view is not None and \
                    vi.seen_text(view, now, self.tz) != self._seen.get(name):
                self.refresh_line(y)

    def select(self, host: str | None) -> None:
        old, self.selected = self.selected, host
        for h in (old, host):
            if h in self._host_line:
                self.refresh_line(self._host_line[h])
        if host in self._host_line:
            y = self._host_line[host]
            # the group's header comes into view with its first host
            top = y - 1 if y and self.rows[y - 1][0] == "group" else y
            self.scroll_to_region(Region(0, top, 1, y - top + 1), animate=False, immediate=True)

    def host_at(self, y: int) -> str | None:
        if 0 <= y < len(self.rows) and self.rows[y][0] == "host":
            return self.rows[y][1]
        return None

    def line_text(self, host: str, width: int = 120) -> str:
        """A host's line as plain text (tests, debugging)."""
        view = self._views()[host]
        return compact_line(view, width, selected=host == self.selected, now=self._now(), tz=self.tz,
                            name_width=self.name_width).plain

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, self.visual_style.rich_style)
        kind, name = self.rows[index]
        views = self._views()
        if kind == "group":
            style = self.get_visual_style("fleet-list--header")
            hosts = [views[h] for h in self.members.get(name, ()) if h in views]
            content = header_line(self.group_key, name, hosts, width)
        else:
            view = views.get(name)
            selected = name == self.selected
            style = self.get_visual_style("fleet-list--selected") if selected else self.visual_style
            if view is None:
                return Strip.blank(width, style.rich_style)
            self._seen[name] = vi.seen_text(view, self._now(), self.tz)
            content = compact_line(view, width, selected=selected, now=self._now(), tz=self.tz,
                                   name_width=self.name_width)
        # The content is one line already fitted to the width: its segments are the strip.
        # (Visual.to_strips wraps, aligns and stamps click offsets: 4x the cost, none needed here.)
        strip = Strip(content.render_segments(style), content.cell_length)
        return strip.extend_cell_length(width, style.rich_style).crop(0, width)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))

    def on_click(self, event: Click) -> None:
        host = self.host_at(self.scroll_offset.y + event.y)
        if host is not None:
            self.post_message(OpenHost(host))


class GroupHeader(Widget):
    """A group's title and summary between the cards (card mode); spans the grid's columns."""

    DEFAULT_CSS = """
    GroupHeader { height: 1; width: 1fr; background: $panel; }
    """

    def __init__(self) -> None:
        super().__init__(classes="group-header")
        self.group_key = ""
        self.group = ""
        self.views: list[HostView] = []

    def set_group(self, group_key: str, group: str, views: list[HostView]) -> None:
        self.group_key, self.group, self.views = group_key, group, views
        self.refresh()

    def render(self) -> Content:
        return header_line(self.group_key, self.group, self.views, max(20, self.size.width))
