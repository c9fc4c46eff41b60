"""One host, every panel. Tab moves between panels; `/` searches the log; `e` explains the failure."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from gpudash.ui.screens.base import DashScreen
from gpudash.ui.widgets.host_detail import WIDE_AT, HostDetail, HostHeader, HostScroll
from gpudash.ui.widgets.key_bar import KeyBar


class HostScreen(DashScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("tab", "app.focus_next", "Panel", id="next_panel"),
        Binding("shift+tab", "app.focus_previous", "Prev panel", show=False, id="prev_panel"),
        Binding("slash", "search", "Search", id="search"),
        Binding("e", "triage", "Triage", id="triage"),
    ]

    def __init__(self, host: str) -> None:
        super().__init__(classes="host-screen")
        self.host = host

    def compose(self) -> ComposeResult:
        yield HostHeader(tz=self.app.tz, id="host-header")
        with HostScroll(id="host-scroll"):
            yield HostDetail(self.host, tz=self.app.tz, max_log_lines=self.app.max_log_lines,
                             id="detail", wide=self.app.size.width >= WIDE_AT)
        yield KeyBar()

    @property
    def detail(self) -> HostDetail:
        return self.query_one(HostDetail)

    def on_mount(self) -> None:
        wide = self._set_wide()
        self.mark_ready()
        self._load_history()
        # wide: everything is visible, read the log; narrow: start at the top (GPU, disk) and
        # let arrows/j/k scroll the page — tab reaches each panel
        if wide:
            self.detail.log_view.run_log.focus()
        else:
            self.query_one(HostScroll).focus()

    def _load_history(self) -> None:
        """A Prometheus-fed host has its sparkline history in Prometheus: ask for it once, in a
        worker (the UI never waits on the network). The refreshed view reaches this screen the
        usual way (the fleet notifies its subscribers), so nothing is written here."""
        load = getattr(self.app.fleet, "load_history", None)
        if load is not None:
            self.run_worker(load(self.host), name="history", group="history", exclusive=True)

    def on_resize(self) -> None:
        self._set_wide()

    def _set_wide(self) -> bool:
        wide = self.size.width >= WIDE_AT
        self.detail.set_wide(wide)
        # the page itself scrolls (and takes focus) only when the panels do not all fit
        self.query_one(HostScroll).can_focus = not wide
        return wide

    def context_host(self) -> str | None:
        return self.host

    def apply_views(self, changed: set[str]) -> None:
        if self.host in changed and self.host in self.app.views:
            view, now = self.app.views[self.host], self.app.now()
            self.query_one(HostHeader).update_view(view, now)
            self.detail.update_view(view, now)

    def apply_alerts(self) -> None:
        self.detail.update_alerts(self.app.alerts)

    def tick(self) -> None:
        view = self.app.views.get(self.host)
        if view is not None:
            self.query_one(HostHeader).update_view(view, self.app.now())

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_search(self) -> None:
        self.detail.log_view.open_search()

    def action_triage(self) -> None:
        self.app.show_triage(self.host)
