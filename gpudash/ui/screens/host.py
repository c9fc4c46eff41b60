"""One host, every panel. Tab moves between panels; `/` searches the log; `e` explains the failure.

The app builds this screen once and reuses it for every host (`show_host`): composing and
mounting its ~40 widgets was most of the time between `enter` and the host on screen.
"""

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

    def __init__(self, host: str | None) -> None:
        """`host` None: built ahead of time, shown once `show_host` names one."""
        super().__init__(classes="host-screen")
        self.host = host
        self._filled: tuple | None = None  # (host, view, alerts) show_host filled panels from

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
        if not self.app.is_running:
            return  # built ahead of time and the app ended meanwhile: its widgets are going
        self._set_wide()
        self.mark_ready()
        self._load_history()
        self._start_widget().focus()

    def _start_widget(self):
        # wide: everything is visible, read the log; narrow: start at the top (GPU, disk) and
        # let arrows/j/k scroll the page — tab reaches each panel
        return self.detail.log_view.run_log if self.detail.has_class("-wide") \
            else self.query_one(HostScroll)

    def show_host(self, host: str) -> None:
        """Show `host` on this (built, not shown) screen as a new screen would show it: every
        panel starts over and is filled with `host`'s view at once, so the first frame shows
        `host`'s data and nothing of the host shown before. The same host again keeps its
        panels' data (and their rendering); only what the user changed is undone."""
        keep_data = host == self.host and self.detail.view is not None
        self.host = host
        if not keep_data:
            self.query_one(HostHeader).reset()
        self.detail.reset(host, keep_data)
        self.query_one(HostScroll).scroll_to(0, 0, animate=False, immediate=True)
        # focus where a new screen starts; left alone when it is there already (the usual
        # case): every focus change restyles the panels
        start = self._start_widget()
        if self.focused is not start:
            self.set_focus(start, scroll_visible=False)
        self.full_refresh()
        self._filled = self._fill_key()
        self._load_history()

    def _fill_key(self) -> tuple:
        return (self.host, self.app.views.get(self.host), self.app.alerts_gen)

    def stale_on_resume(self) -> bool:
        # show_host filled every panel just before the push that brings the screen back: a
        # second fill from the same view and alerts (~5 ms, a fifth of it plotting) changes
        # nothing. Anything that arrived in between (a view, an alert) refills as before.
        filled, self._filled = self._filled, None
        if filled is None:
            return True
        host, view, gen = self._fill_key()
        return not (filled[0] == host and filled[1] is view and filled[2] == gen)

    def _load_history(self) -> None:
        """A Prometheus-fed host has its sparkline history in Prometheus: ask for it once, in a
        worker (the UI never waits on the network). The refreshed view reaches this screen the
        usual way (the fleet notifies its subscribers), so nothing is written here."""
        load = getattr(self.app.fleet, "load_history", None)
        if load is not None and self.host is not None:
            self.run_worker(load(self.host), name="history", group="history", exclusive=True)

    def on_resize(self) -> None:
        self._set_wide()

    def _set_wide(self) -> bool:
        # a screen built ahead of time has no size until it is shown: it will have the app's
        wide = (self.size.width or self.app.size.width) >= WIDE_AT
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
