"""Every panel of one host, arranged for the space it gets.

Wide (≥ 120 columns): two columns — GPU, disk, jobs, alerts on the left; log, metrics and
triage on the right. Narrow (a tmux pane): one scrolling column; tab moves between panels and
scrolls the focused one into view. `compact` (the split view) keeps GPU, disk, jobs and log.
"""

from __future__ import annotations

from datetime import tzinfo

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.content import Content
from textual.widget import Widget

from gpudash.ui import viewinfo as vi
from gpudash.ui.text import MUTED, fit, plain, safe, state_word
from gpudash.ui.widgets.alerts_list import AlertItem, AlertsPanel
from gpudash.ui.widgets.disk_gauges import DiskGauges
from gpudash.ui.widgets.gpu_panel import GpuPanel
from gpudash.ui.widgets.jobs_table import JobsPanel
from gpudash.ui.widgets.log_view import DEFAULT_MAX_LINES, LogView
from gpudash.ui.widgets.metrics_chart import MetricsChart
from gpudash.ui.widgets.triage_pane import TriagePane
from gpudash.watch.view import HostView

WIDE_AT = 120


class HostHeader(Widget):
    """Two lines: state word, name, transport, seen/why-unknown, alerts; then the top problem."""

    DEFAULT_CSS = """
    HostHeader { height: 2; }
    """

    def __init__(self, *, tz: tzinfo | None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: HostView | None = None
        self.now = 0.0
        self.tz = tz

    def update_view(self, view: HostView, now: float) -> None:
        self.view, self.now = view, now
        self.refresh()

    def reset(self) -> None:
        self.view, self.now = None, 0.0
        self.refresh()

    def render(self) -> Content:
        v = self.view
        width = max(20, self.size.width)
        if v is None:
            return Content.styled("waiting for the first probe round…", MUTED)
        first = Content.assemble(
            state_word(v.state), "  ", plain(v.name, "bold", max_len=40),
            (f" ({safe(v.snapshot.transport)})", MUTED), "  ",
            (vi.seen_text(v, self.now, self.tz), "$accent" if vi.unknown_reason(v) else MUTED),
        )
        if v.alerts_unacked:
            first += Content.styled(f"  {v.alerts_unacked} unacked alert{'s' if v.alerts_unacked != 1 else ''}",
                                    "bold $warning")
        if v.paused:
            first += Content.styled("  PAUSED (p: resume)", "bold $warning")
        reason = vi.unknown_reason(v)
        if reason is not None:
            second = Content.assemble(("why: ", MUTED), plain(reason.advice))
            if v.snapshot.link.message:
                second += Content.styled(" — ", MUTED) + plain(v.snapshot.link.message, MUTED)
        elif v.problems:
            worst = max(v.problems, key=lambda c: c.state.rank)
            second = Content.assemble(state_word(worst.state), " ", plain(worst.key, MUTED), " ",
                                      plain(worst.summary))
            if len(v.problems) > 1:
                second += Content.styled(f"  (+{len(v.problems) - 1} more)", MUTED)
        else:
            second = Content.styled("all checks OK", "$success")
        return fit(first, width) + Content("\n") + fit(second, width)


class HostDetail(Widget):
    """The panels of one host. Fed by `update_view` / `update_alerts` from its screen."""

    DEFAULT_CSS = """
    HostDetail { layout: vertical; height: auto; }
    HostDetail > .column { height: auto; width: 1fr; }
    HostDetail.-wide { layout: horizontal; height: 1fr; }
    HostDetail.-wide > .column { height: 1fr; }
    HostDetail.-wide > #col-left { overflow-y: auto; }
    HostDetail.-wide > #col-right { overflow-y: auto; }
    HostDetail LogView { height: 14; }
    HostDetail.-wide LogView { height: 1fr; }
    HostDetail.-compact LogView { height: 1fr; min-height: 10; }
    HostDetail.-compact { height: 1fr; layout: vertical; }
    HostDetail.-compact > .column { height: auto; }
    HostDetail.-compact > #col-right { height: 1fr; min-height: 10; }
    HostDetail.-compact JobsTable { max-height: 6; }
    """

    def __init__(self, host: str, *, tz: tzinfo | None, compact: bool = False,
                 max_log_lines: int = DEFAULT_MAX_LINES, id: str | None = None,
                 wide: bool = False) -> None:
        # `wide` known at construction: a class added after mount restyles every panel again
        classes = "host-detail" + (" -compact" if compact else "") + \
            (" -wide" if wide and not compact else "")
        super().__init__(id=id, classes=classes)
        self.host = host
        self.tz = tz
        self.compact = compact
        self.max_log_lines = max_log_lines
        self.view: HostView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="col-left", classes="column"):
            yield GpuPanel(id="gpu", tz=self.tz)
            yield DiskGauges(id="disk", tz=self.tz)
            yield JobsPanel(id="jobs")
            if not self.compact:
                yield AlertsPanel(id="alerts", host=self.host, tz=self.tz)
        with Vertical(id="col-right", classes="column"):
            yield LogView(id="log-view", max_lines=self.max_log_lines)
            if not self.compact:
                yield MetricsChart(id="metrics", tz=self.tz)
                yield TriagePane(id="triage", tz=self.tz)

    def set_wide(self, wide: bool) -> None:
        if not self.compact:
            self.set_class(wide, "-wide")

    def reset(self, host: str, keep_data: bool = False) -> None:
        """Show `host` from now on, every panel as a new one starts (scrolled to the top, no
        search, first chart series…). Another host: every panel forgets what it showed, so
        nothing of it can show for this one. `keep_data` (the same host again): the panels keep
        its data and their rendering, and only what the user changed is undone."""
        self.host = host
        if not keep_data:
            self.view = None
        for panel in self.query(".panel"):
            if isinstance(panel, AlertsPanel):
                panel.reset(host, keep_data)
            else:
                panel.reset(keep_data)
        for column in self.query(".column"):
            column.scroll_to(0, 0, animate=False, immediate=True)

    def update_view(self, view: HostView, now: float) -> None:
        self.view = view
        for panel in self.query(".panel"):
            update = getattr(panel, "update_view", None)
            if update is not None:
                _update_when_mounted(panel, update, view, now)

    def update_alerts(self, items: list[AlertItem]) -> None:
        for panel in self.query(AlertsPanel):
            panel.update_alerts(items)

    @property
    def log_view(self) -> LogView:
        return self.query_one(LogView)


class HostScroll(VerticalScroll):
    """The host screen's scroller: in narrow mode every panel scrolls by; focus follows."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False, id="page_down"),
        Binding("k", "scroll_up", "Up", show=False, id="page_up"),
    ]


def _update_when_mounted(panel, update, view, now, tries: int = 3) -> None:
    """A view can arrive while a just-opened screen's panels are still mounting their own
    children (`#jobs-summary` not there yet): paint it after the next refresh instead of letting
    NoMatches end the app; a panel that is being removed is simply skipped."""
    try:
        update(view, now)
    except NoMatches:
        if tries > 0 and panel.is_attached:
            panel.call_after_refresh(_update_when_mounted, panel, update, view, now, tries - 1)
