"""The fleet at a glance.

Few hosts: one three-line card per host, flowing into columns on wide terminals (one per 80
columns). Many hosts (over 30, or more than the window holds as cards): one line per host
("compact", `c` flips it). Either way the fleet bar sums up the whole fleet, and the user can
keep only problems (`f`), group (`g`: state, then each label key), sort (`o`) and search (`/`:
words, `key=value`, `state:warn`, `is:crit`).

Live data never shuffles the list under the user's eyes: the order is recomputed at most every
REORDER_S seconds for data changes, and only applied when it actually changed; a key press
applies at once. The selection follows the HOST, not the row.
"""

from __future__ import annotations

import math
import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Static

from gpudash.sources.aggregate import SORT_KEYS, arrange, label_keys, parse_query
from gpudash.ui.messages import OpenHost
from gpudash.ui.screens.base import DashScreen
from gpudash.ui.text import MUTED, STATE_STYLE, fit, hhmm, plain
from gpudash.ui.widgets.alerts_list import AlertsPanel
from gpudash.ui.widgets.fleet_list import FleetList, GroupHeader, summary_content
from gpudash.ui.widgets.host_card import HostCard
from gpudash.ui.widgets.key_bar import KeyBar

CARD_MIN_WIDTH = 80
TALL_AT = 36  # from this height the fleet's alerts list replaces the one-line strip
COMPACT_OVER = 30  # more hosts than this: one line each, whatever the window
CARDS_SCROLL = 1.5  # fewer: cards until they need this many windows' height (a card or two
                    # below the fold is worth its log line and sparklines)
REORDER_S = 2.0  # data-driven re-sorting/re-grouping at most this often
SORTS: tuple[str | None, ...] = (None, *SORT_KEYS)  # None: the fleet's own order
MODES = ("auto", "compact", "cards")


class FleetBar(Static):
    """Title line: the fleet's summary and the overview's filters (no clock: snapshots stay
    stable)."""


class OverviewScreen(DashScreen):
    # Nothing is focused by default: the screen's own keys move the selection. (When the cards'
    # scroller took focus it ate up/down for scrolling; when it could not, the alerts table took
    # the focus instead and ate `enter`.) `tab` still reaches the alerts table.
    AUTO_FOCUS = ""  # falsy: focus nothing (None would mean "as the app says": the first focusable)

    BINDINGS = [
        Binding("down,j", "cursor(1)", "Down", show=False, id="cursor_down"),
        Binding("up,k", "cursor(-1)", "Up", show=False, id="cursor_up"),
        Binding("right,l", "cursor_col(1)", "Right", show=False, id="cursor_right"),
        Binding("left,h", "cursor_col(-1)", "Left", show=False, id="cursor_left"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="page_up"),
        Binding("home", "ends(-1)", "First host", show=False, id="first_host"),
        Binding("end", "ends(1)", "Last host", show=False, id="last_host"),
        Binding("enter", "open", "Open", id="open_host"),
        Binding("slash", "filter", "Filter", id="search"),
        Binding("f", "only_problems", "Problems", id="only_problems"),
        Binding("g", "group", "Group", id="group"),
        Binding("o", "sort", "Sort", id="sort"),
        Binding("c", "compact", "Compact", id="compact"),
        Binding("e", "triage", "Explain", show=False, id="triage"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="overview")
        self.columns = 1
        self.filter = ""
        self.only_problems = False
        self.group_key: str | None = None
        self.sort_key: str | None = None
        self.mode = "auto"  # auto | compact | cards
        self.compact = False
        self.selected: str | None = None
        self.groups: list[tuple[str | None, list[str]]] = []
        self.order: list[str] = []
        self._placed: set[str] = set()  # hosts the current arrangement was computed with
        self._dirty = False
        self._laid_out = False
        self._arranged_at = -math.inf
        self.mono = time.monotonic  # the throttle's clock (tests replace it)
        self._cards: dict[str, HostCard] = {}
        self._headers: list[GroupHeader] = []

    def compose(self) -> ComposeResult:
        yield FleetBar(id="fleet-bar")
        with VerticalScroll(id="cards-scroll", can_focus=False):
            yield Grid(id="cards")
        yield FleetList(views=lambda: self.app.views, now=self.app.now, tz=self.app.tz, id="fleet-list")
        yield Static(Content(""), id="alert-strip")
        yield AlertsPanel(id="fleet-alerts", tz=self.app.tz)
        yield Input(placeholder="filter: name or label words, key=value, state:warn, is:crit "
                                "(esc: clear)", id="host-filter")
        yield KeyBar()

    async def on_mount(self) -> None:
        self.selected = self.app.selected_host
        self.query_one(FleetList).display = False
        self.mark_ready()

    @property
    def fleet_list(self) -> FleetList:
        return self.query_one(FleetList)

    # ------------------------------------------------------------------ arrangement

    def _arrange(self) -> bool:
        """Recompute filter → sort → group; apply it only if the result differs. True if applied."""
        views = [self.app.views[h] for h in self.app.host_order if h in self.app.views]
        groups = arrange(views, query=parse_query(self.filter), only_problems=self.only_problems,
                         sort=self.sort_key, group=self.group_key)
        self._placed = set(self.app.views)
        self._dirty = False
        compact = self._want_compact(groups)
        if groups == self.groups and compact == self.compact and self._laid_out:
            return False
        self._arranged_at = self.mono()
        old_index = self.order.index(self.selected) if self.selected in self.order else 0
        self.groups = groups
        self.order = [h for _, hosts in groups for h in hosts]
        if self.selected not in self.order and self.order:
            # the selected host left the list (filtered out): its neighbour takes the place
            self.selected = self.order[min(old_index, len(self.order) - 1)]
        self._set_compact(compact)
        self._laid_out = True
        self._update_bar()
        return True

    def _want_compact(self, groups) -> bool:
        if self.mode != "auto":
            return self.mode == "compact"
        return self._auto_compact(groups)

    def _auto_compact(self, groups) -> bool:
        n = sum(len(hosts) for _, hosts in groups)
        if n > COMPACT_OVER:
            return True
        cols = max(1, self.size.width // CARD_MIN_WIDTH)
        rows = sum(math.ceil(len(hosts) / cols) for _, hosts in groups)
        headers = sum(1 for g, _ in groups if g is not None)
        needed = rows * 3 + max(0, rows + headers - 1) + headers  # cards, gutters, headers
        return needed > CARDS_SCROLL * self._body_height()

    def _body_height(self) -> int:
        for sel in ("#cards-scroll", "#fleet-list"):
            w = self.query_one(sel)
            if w.display and w.size.height:
                return w.size.height
        # not laid out yet: the screen less the bar, the strip and the footer
        return max(1, self.size.height - 3)

    def _set_compact(self, compact: bool) -> None:
        self.compact = compact
        self.query_one("#cards-scroll").display = not compact
        fl = self.fleet_list
        fl.display = compact
        if compact:
            fl.set_rows(self.groups, self.group_key)
            self._show_selection()
        else:
            self.run_worker(self._layout_cards(), group="cards", exclusive=True)

    async def _layout_cards(self) -> None:
        """Cards for the hosts shown (mounted once, on first need), headers between groups,
        children sorted into the arrangement; hidden cards stay mounted, not updated."""
        grid = self.query_one("#cards", Grid)
        views, now = self.app.views, self.app.now()
        new = [HostCard(views[h], now=now, tz=self.app.tz)
               for h in self.order if h not in self._cards and h in views]
        if new:
            self._cards.update({c.host: c for c in new})
            await grid.mount_all(new)
        n_headers = sum(1 for g, _ in self.groups if g is not None)
        if len(self._headers) < n_headers:
            more = [GroupHeader() for _ in range(n_headers - len(self._headers))]
            self._headers += more
            await grid.mount_all(more)
        position: dict[int, int] = {}
        shown: set[str] = set()
        headers = iter(self._headers)
        for group, hosts in self.groups:
            if group is not None:
                hdr = next(headers)
                hdr.set_group(self.group_key or "", group, [views[h] for h in hosts if h in views])
                hdr.styles.column_span = self.columns
                hdr.display = True
                position[id(hdr)] = len(position)
            for h in hosts:
                card = self._cards[h]
                if h in views and card.view is not views[h]:
                    card.update_view(views[h], now=now)
                position[id(card)] = len(position)
                shown.add(h)
        for hdr in headers:
            hdr.display = False
        for host, card in self._cards.items():
            card.display = host in shown
        grid.sort_children(key=lambda w: position.get(id(w), len(position)))
        self._show_selection()

    def _relayout(self) -> None:
        """A user action: apply now, whatever the throttle."""
        self._arrange()
        self._update_bar()

    # ------------------------------------------------------------------ live data

    def apply_views(self, changed: set[str]) -> None:
        views, now = self.app.views, self.app.now()
        if self.compact:
            self.fleet_list.hosts_changed(changed)
        else:
            # only the cards on screen are updated; a hidden one catches up when shown
            for host in changed:
                card = self._cards.get(host)
                if card is not None and card.display and host in views:
                    card.update_view(views[host], now=now)
            for hdr in self._headers:
                if hdr.display and any(v.name in changed for v in hdr.views):
                    hdr.set_group(hdr.group_key, hdr.group, [views[v.name] for v in hdr.views
                                                             if v.name in views])
        if not changed <= self._placed:
            self._arrange()  # a host seen for the first time is placed at once
        elif self.mono() - self._arranged_at >= REORDER_S:
            self._arrange()
        else:
            self._dirty = True  # tick() applies it when the throttle allows
        self._update_bar()

    def tick(self) -> None:
        if self._dirty and self.mono() - self._arranged_at >= REORDER_S:
            self._arrange()
        if self.compact:
            self.fleet_list.tick()
            return
        now = self.app.now()
        for card in self._cards.values():
            if card.display:
                card.update_view(now=now)

    def apply_alerts(self) -> None:
        self.query_one(AlertsPanel).update_alerts(self.app.alerts)
        strip = self.query_one("#alert-strip", Static)
        pending = [i for i in self.app.alerts if not i.acked]
        if not pending:
            strip.update(Content.styled("no unacknowledged alerts", MUTED), layout=False)
            return
        ev = pending[-1].event
        line = Content.assemble(
            (f"{len(pending)} unacked", "bold $warning"), (" · latest ", MUTED),
            (hhmm(ev.at, self.app.tz), MUTED), " ",
            (ev.new.value, STATE_STYLE.get(ev.new, "")), " ", plain(ev.host, "bold"), " ",
            plain(ev.message),
        )
        strip.update(fit(line, max(20, strip.size.width or 80)), layout=False)
        self._update_bar()

    def bar_content(self) -> Content:
        views = list(self.app.views.values())
        parts = [Content.assemble(("gpudash", "bold $primary"), "  ", summary_content(views))]
        shown = len(self.order)
        if shown != len(views):
            parts.append(Content.styled(f"{shown} shown", "bold"))
        if self.only_problems:
            parts.append(Content.styled("only problems", "bold $warning"))
        if self.group_key:
            parts.append(Content.assemble(("group ", MUTED), plain(self.group_key, "bold")))
        if self.sort_key:
            parts.append(Content.assemble(("sort ", MUTED), (self.sort_key, "bold")))
        if self.mode != "auto":
            parts.append(Content.styled(self.mode, MUTED))
        if self.filter:
            parts.append(Content.assemble(("filter ", MUTED), plain(self.filter, "bold", max_len=60)))
        return Content("  ").join(parts)

    def _update_bar(self) -> None:
        bar = self.query_one(FleetBar)
        # layout=False: the bar is one line high whatever it says, and a layout pass re-renders
        # the whole screen — with 50 live hosts that was most of the app's CPU (5 passes/s).
        bar.update(fit(self.bar_content(), max(20, (bar.size.width or self.size.width) - 2)),
                   layout=False)

    # ------------------------------------------------------------------ layout

    def on_resize(self) -> None:
        self.set_class(self.size.height >= TALL_AT, "-tall")
        cols = max(1, self.size.width // CARD_MIN_WIDTH)
        if cols != self.columns:
            self.columns = cols
            self.query_one("#cards", Grid).styles.grid_size_columns = cols
            for hdr in self._headers:
                hdr.styles.column_span = cols
        # the window's height decides cards or compact: look again once the sizes are settled
        self.call_after_refresh(self._resized)

    def _resized(self) -> None:
        if self.dash_ready and self._want_compact(self.groups) != self.compact:
            self._set_compact(not self.compact)
        self._update_bar()

    # ------------------------------------------------------------------ navigation

    def cards(self) -> list[HostCard]:
        """The cards shown, in their order (card mode)."""
        return [self._cards[h] for h in self.order if h in self._cards and not self.compact]

    def shown_hosts(self) -> list[str]:
        return list(self.order)

    def selected_host(self) -> str | None:
        return self.selected if self.selected in self.order else None

    def context_host(self) -> str | None:
        return self.selected_host()

    def _show_selection(self) -> None:
        host = self.selected_host()
        if self.compact:
            self.fleet_list.select(host)
        else:
            for h, card in self._cards.items():
                card.set_selected(h == host)
            if host in self._cards:
                self._cards[host].scroll_visible(animate=False)
        if host is not None:
            self.app.selected_host = host

    def select_host(self, host: str) -> None:
        if host in self.order:
            self.selected = host
            self._show_selection()

    def _rows(self) -> list[list[str]]:
        """The hosts as the eye sees them: rows of `columns` cards within each group."""
        per = 1 if self.compact else self.columns
        return [hosts[i:i + per] for _, hosts in self.groups for i in range(0, len(hosts), per)]

    def _move_rows(self, delta: int) -> None:
        rows = self._rows()
        if not rows:
            return
        r, c = next(((r, row.index(self.selected)) for r, row in enumerate(rows)
                     if self.selected in row), (0, 0))
        target = rows[max(0, min(len(rows) - 1, r + delta))]
        self.select_host(target[min(c, len(target) - 1)])

    def action_cursor(self, delta: int) -> None:
        self._move_rows(delta)

    def action_cursor_col(self, delta: int) -> None:
        if not self.order:
            return
        i = self.order.index(self.selected) if self.selected in self.order else 0
        self.select_host(self.order[max(0, min(len(self.order) - 1, i + delta))])

    def action_page(self, delta: int) -> None:
        per_row = 1 if self.compact else 4
        self._move_rows(delta * max(1, self._body_height() // per_row - 1))

    def action_ends(self, delta: int) -> None:
        if self.order:
            self.select_host(self.order[-1 if delta > 0 else 0])

    def action_open(self) -> None:
        host = self.selected_host()
        if host is not None:
            self.app.open_host(host)

    @on(OpenHost)
    def _card_clicked(self, message: OpenHost) -> None:
        message.stop()
        self.select_host(message.host)
        self.app.open_host(message.host)

    def action_triage(self) -> None:
        host = self.selected_host()
        if host is not None:
            self.app.show_triage(host)

    # ------------------------------------------------------------------ filters, grouping, sorting

    def action_only_problems(self) -> None:
        self.only_problems = not self.only_problems
        self._relayout()

    def group_choices(self) -> list[str | None]:
        return [None, "state", *label_keys(self.app.views.values())]

    def action_group(self) -> None:
        choices = self.group_choices()
        i = choices.index(self.group_key) if self.group_key in choices else 0
        self.group_key = choices[(i + 1) % len(choices)]
        self._relayout()

    def action_sort(self) -> None:
        i = SORTS.index(self.sort_key) if self.sort_key in SORTS else 0
        self.sort_key = SORTS[(i + 1) % len(SORTS)]
        self._relayout()

    def action_compact(self) -> None:
        """Flip between cards and lines; back to automatic when the choice matches it."""
        want = not self.compact
        self.mode = "auto" if self._auto_compact(self.groups) == want else \
            ("compact" if want else "cards")
        self._relayout()

    def action_filter(self) -> None:
        box = self.query_one("#host-filter", Input)
        box.add_class("-open")
        box.focus()

    @on(Input.Changed, "#host-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter = event.value
        self._relayout()

    @on(Input.Submitted, "#host-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        box = self.query_one("#host-filter", Input)
        box.remove_class("-open")
        self.set_focus(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return (bool(self.filter) or self.query_one("#host-filter", Input).has_class("-open")
                    or self.focused is not None)
        return True

    def action_clear_filter(self) -> None:
        """Esc: close and clear the search; with the alerts table focused, give the keys back."""
        box = self.query_one("#host-filter", Input)
        if self.filter or box.has_class("-open"):
            box.value = ""
            box.remove_class("-open")
            self.filter = ""
            self._relayout()
        self.set_focus(None)
