"""The triage of one host, full screen over whatever was showing. Opens by itself on a new
failure of the selected host; esc (or e) closes it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll

from gpudash.ui.screens.base import DashModal
from gpudash.ui.widgets.host_detail import HostHeader
from gpudash.ui.widgets.key_bar import KeyBar
from gpudash.ui.widgets.triage_pane import TriagePane


class TriageScreen(DashModal):
    BINDINGS = [
        Binding("escape,e", "close", "Close", id="back"),
        Binding("enter", "open", "Host detail", id="open_host"),
    ]

    def __init__(self, host: str) -> None:
        super().__init__(classes="triage-screen")
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(id="triage-box"):
            yield HostHeader(tz=self.app.tz)
            with VerticalScroll(id="triage-scroll"):
                yield TriagePane(id="triage-full", tz=self.app.tz)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#triage-box").border_title = f"Triage · {self.host}"
        self.mark_ready()
        self.query_one(TriagePane).focus()

    def context_host(self) -> str | None:
        return self.host

    def apply_views(self, changed: set[str]) -> None:
        if self.host in changed and self.host in self.app.views:
            view, now = self.app.views[self.host], self.app.now()
            self.query_one(HostHeader).update_view(view, now)
            self.query_one(TriagePane).update_view(view, now)

    def action_close(self) -> None:
        self.dismiss()

    def action_open(self) -> None:
        self.dismiss()
        self.app.open_host(self.host)
