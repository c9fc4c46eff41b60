"""Several hosts side by side.

From 160×40 up: the detail of 2–4 hosts in columns (the selected host and the ones after it).
Below that there is no room for two details, so the screen shows the overview's cards on top and
the selected host's compact detail under them; j/k move the selection and the detail follows.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll

from gpudash.ui.messages import OpenHost
from gpudash.ui.screens.base import DashScreen
from gpudash.ui.widgets.host_card import HostCard
from gpudash.ui.widgets.host_detail import HostDetail, HostHeader
from gpudash.ui.widgets.key_bar import KeyBar

SPLIT_MIN_W, SPLIT_MIN_H = 160, 40
MAX_COLUMNS = 4


class HostColumn(VerticalScroll):
    """Header + compact detail of one host; a click makes it the active column."""

    def __init__(self, host: str, *, tz) -> None:
        super().__init__(classes="split-column")
        self.host = host
        self.border_title = host
        self.tz = tz

    def compose(self) -> ComposeResult:
        yield HostHeader(tz=self.tz)
        yield HostDetail(self.host, tz=self.tz, compact=True)

    def update_view(self, view, now: float) -> None:
        self.query_one(HostHeader).update_view(view, now)
        self.query_one(HostDetail).update_view(view, now)

    def on_click(self) -> None:
        screen = self.screen
        if isinstance(screen, SplitScreen):
            screen.activate(self.host)


class SplitScreen(DashScreen):
    BINDINGS = [
        Binding("escape,s", "back", "Back", id="back"),
        Binding("right,l", "move(1)", "Next host", id="cursor_right"),
        Binding("left,h", "move(-1)", "Prev host", show=False, id="cursor_left"),
        Binding("down,j", "move(1)", "Down", show=False, id="cursor_down"),
        Binding("up,k", "move(-1)", "Up", show=False, id="cursor_up"),
        Binding("enter", "open", "Open", id="open_host"),
    ]

    def __init__(self, first: str | None = None) -> None:
        super().__init__(classes="split-screen")
        self.first = first
        self.active: str | None = first
        self.mode: str | None = None  # "columns" | "stacked"

    def compose(self) -> ComposeResult:
        yield Horizontal(id="split-body")
        yield KeyBar()

    async def on_mount(self) -> None:
        await self._layout()

    async def on_resize(self) -> None:
        await self._layout()

    def wide_enough(self) -> bool:
        return self.size.width >= SPLIT_MIN_W and self.size.height >= SPLIT_MIN_H

    def hosts_shown(self) -> list[str]:
        order = [h for h in self.app.host_order if h in self.app.views]
        if not order:
            return []
        start = order.index(self.first) if self.first in order else 0
        n = min(MAX_COLUMNS, len(order))
        return [order[(start + i) % len(order)] for i in range(n)]

    async def _layout(self, force: bool = False) -> None:
        mode = "columns" if self.wide_enough() else "stacked"
        if mode == self.mode and not force:
            return
        self.mode = mode
        body = self.query_one("#split-body", Horizontal)
        await body.remove_children()
        body.set_class(mode == "stacked", "-stacked")
        if self.active is None:
            self.active = self.app.selected_host or (self.hosts_shown() or [None])[0]
        if mode == "columns":
            await body.mount_all([HostColumn(h, tz=self.app.tz) for h in self.hosts_shown()])
        else:
            cards = VerticalScroll(id="split-cards")
            await body.mount(cards)
            await cards.mount_all([HostCard(self.app.views[h], now=self.app.now(), tz=self.app.tz)
                                   for h in self.app.host_order if h in self.app.views])
            if self.active is not None:
                await body.mount(HostColumn(self.active, tz=self.app.tz))
        self._mark_active()
        self.mark_ready()

    def _mark_active(self) -> None:
        for col in self.query(HostColumn):
            col.set_class(col.host == self.active, "-active")
        for card in self.query(HostCard):
            card.set_selected(card.host == self.active)
            if card.host == self.active:
                card.scroll_visible(animate=False)

    def context_host(self) -> str | None:
        return self.active

    def activate(self, host: str) -> None:
        if host == self.active:
            return
        self.active = host
        self.app.selected_host = host
        if self.mode == "stacked":
            self.run_worker(self._swap_detail(host), exclusive=True, group="split-detail")
        self._mark_active()

    async def _swap_detail(self, host: str) -> None:
        for col in self.query(HostColumn):
            await col.remove()
        await self.query_one("#split-body").mount(HostColumn(host, tz=self.app.tz))
        self.apply_views({host})
        self.apply_alerts()

    def apply_views(self, changed: set[str]) -> None:
        now = self.app.now()
        for col in self.query(HostColumn):
            if col.host in changed and col.host in self.app.views:
                col.update_view(self.app.views[col.host], now)
        for card in self.query(HostCard):
            if card.host in changed and card.host in self.app.views:
                card.update_view(self.app.views[card.host], now=now)

    def tick(self) -> None:
        now = self.app.now()
        for col in self.query(HostColumn):
            view = self.app.views.get(col.host)
            if view is not None:
                col.query_one(HostHeader).update_view(view, now)
        for card in self.query(HostCard):
            card.update_view(now=now)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_move(self, delta: int) -> None:
        hosts = ([c.host for c in self.query(HostColumn)] if self.mode == "columns"
                 else [c.host for c in self.query(HostCard)])
        if not hosts:
            return
        i = hosts.index(self.active) if self.active in hosts else 0
        self.activate(hosts[(i + delta) % len(hosts)])

    def action_open(self) -> None:
        if self.active is not None:
            self.app.open_host(self.active)

    @on(OpenHost)
    def _card_clicked(self, message: OpenHost) -> None:
        message.stop()
        self.activate(message.host)
