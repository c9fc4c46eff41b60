"""The fleet at a glance: one three-line card per host, flowing into columns on wide terminals
(one per 80 columns), a one-line alert strip, and a `/` filter. Enter opens the host."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Input, Static

from gpudash.model import State
from gpudash.ui.messages import OpenHost
from gpudash.ui.screens.base import DashScreen
from gpudash.ui.text import MUTED, STATE_STYLE, fit, hhmm, plain
from gpudash.ui.widgets.alerts_list import AlertsPanel
from gpudash.ui.widgets.host_card import HostCard

CARD_MIN_WIDTH = 80
TALL_AT = 36  # from this height the fleet's alerts list replaces the one-line strip


class FleetBar(Static):
    """Title line: host counts by state and unacknowledged alerts (no clock: snapshots stay stable)."""


class OverviewScreen(DashScreen):
    BINDINGS = [
        Binding("down,j", "cursor(1)", "Down", show=False, id="cursor_down"),
        Binding("up,k", "cursor(-1)", "Up", show=False, id="cursor_up"),
        Binding("right,l", "cursor_col(1)", "Right", show=False, id="cursor_right"),
        Binding("left,h", "cursor_col(-1)", "Left", show=False, id="cursor_left"),
        Binding("enter", "open", "Open", id="open_host"),
        Binding("slash", "filter", "Filter", id="search"),
        Binding("e", "triage", "Explain", show=False, id="triage"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="overview")
        self.cursor = 0
        self.columns = 1
        self.filter = ""

    def compose(self) -> ComposeResult:
        yield FleetBar(id="fleet-bar")
        with VerticalScroll(id="cards-scroll"):
            yield Grid(id="cards")
        yield Static(Content(""), id="alert-strip")
        yield AlertsPanel(id="fleet-alerts", tz=self.app.tz)
        yield Input(placeholder="filter hosts by name (esc: clear)", id="host-filter")
        yield Footer(compact=True, show_command_palette=False)

    async def on_mount(self) -> None:
        await self._sync_cards()
        self.mark_ready()

    # ------------------------------------------------------------------ cards

    def cards(self) -> list[HostCard]:
        return [c for c in self.query(HostCard) if c.display]

    async def _sync_cards(self) -> None:
        """One card per host, in the fleet's order."""
        grid = self.query_one("#cards", Grid)
        have = {c.host: c for c in self.query(HostCard)}
        new = [HostCard(self.app.views[h], now=self.app.now(), tz=self.app.tz)
               for h in self.app.host_order if h in self.app.views and h not in have]
        if new:
            await grid.mount_all(new)
        self._apply_filter()

    def _apply_filter(self) -> None:
        needle = self.filter.lower()
        for card in self.query(HostCard):
            card.display = not needle or needle in card.host.lower()
        self._move_to(self.cursor)

    def apply_views(self, changed: set[str]) -> None:
        # One DOM query per flush, not one per changed host: with 50 hosts the per-host query
        # cost 314 ms of CPU per flush (18 ms this way; benchmarks/README.md, section e).
        cards = list(self.query(HostCard))
        have = {c.host for c in cards}
        if any(h not in have for h in changed):
            self.run_worker(self._sync_cards(), group="cards")
        now = self.app.now()
        for card in cards:
            if card.host in changed and card.host in self.app.views:
                card.update_view(self.app.views[card.host], now=now)
        self._update_bar()

    def apply_alerts(self) -> None:
        self.query_one(AlertsPanel).update_alerts(self.app.alerts)
        strip = self.query_one("#alert-strip", Static)
        pending = [i for i in self.app.alerts if not i.acked]
        if not pending:
            strip.update(Content.styled("no unacknowledged alerts", MUTED))
            return
        ev = pending[-1].event
        line = Content.assemble(
            (f"{len(pending)} unacked", "bold $warning"), (" · latest ", MUTED),
            (hhmm(ev.at, self.app.tz), MUTED), " ",
            (ev.new.value, STATE_STYLE.get(ev.new, "")), " ", plain(ev.host, "bold"), " ",
            plain(ev.message),
        )
        strip.update(fit(line, max(20, strip.size.width or 80)))
        self._update_bar()

    def tick(self) -> None:
        now = self.app.now()
        for card in self.query(HostCard):
            card.update_view(now=now)

    def _update_bar(self) -> None:
        views = self.app.views.values()
        counts = {s: sum(1 for v in views if v.state is s) for s in State}
        parts = [Content.assemble(("gpudash", "bold $primary"), (f"  {len(self.app.views)} hosts", MUTED))]
        for s in (State.CRIT, State.WARN, State.UNKNOWN, State.STALE, State.OK):
            if counts[s]:
                parts.append(Content.assemble((str(counts[s]), "bold"), " ",
                                              (s.value, STATE_STYLE[s].replace("reverse ", ""))))
        if self.filter:
            parts.append(Content.assemble(("filter: ", MUTED), plain(self.filter, "bold")))
        self.query_one(FleetBar).update(Content("  ").join(parts))

    # ------------------------------------------------------------------ layout

    def on_resize(self) -> None:
        self.set_class(self.size.height >= TALL_AT, "-tall")
        cols = max(1, self.size.width // CARD_MIN_WIDTH)
        if cols != self.columns:
            self.columns = cols
            self.query_one("#cards", Grid).styles.grid_size_columns = cols

    # ------------------------------------------------------------------ navigation

    def selected_host(self) -> str | None:
        cards = self.cards()
        return cards[self.cursor].host if 0 <= self.cursor < len(cards) else None

    def context_host(self) -> str | None:
        return self.selected_host()

    def _move_to(self, index: int) -> None:
        cards = self.cards()
        if not cards:
            self.cursor = 0
            return
        self.cursor = max(0, min(len(cards) - 1, index))
        for i, card in enumerate(self.query(HostCard)):
            card.set_selected(card is cards[self.cursor])
        cards[self.cursor].scroll_visible(animate=False)
        self.app.selected_host = cards[self.cursor].host

    def select_host(self, host: str) -> None:
        for i, card in enumerate(self.cards()):
            if card.host == host:
                self._move_to(i)

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta * self.columns)

    def action_cursor_col(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

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

    # ------------------------------------------------------------------ filter

    def action_filter(self) -> None:
        box = self.query_one("#host-filter", Input)
        box.add_class("-open")
        box.focus()

    @on(Input.Changed, "#host-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter = event.value
        self._apply_filter()
        self._update_bar()

    @on(Input.Submitted, "#host-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        box = self.query_one("#host-filter", Input)
        box.remove_class("-open")
        self.set_focus(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.filter) or self.query_one("#host-filter", Input).has_class("-open")
        return True

    def action_clear_filter(self) -> None:
        box = self.query_one("#host-filter", Input)
        box.value = ""
        box.remove_class("-open")
        self.filter = ""
        self._apply_filter()
        self._update_bar()
        self.set_focus(None)
