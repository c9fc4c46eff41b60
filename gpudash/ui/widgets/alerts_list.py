"""Alerts: every state change with time, severity, host and message; acknowledged or not.

The newest is on top. `a` acknowledges the highlighted alert's host (all its alerts: the
watcher acknowledges per host); the row keeps its line, marked "ack".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from textual.binding import Binding
from textual.containers import Vertical
from textual.app import ComposeResult
from textual.widgets import DataTable

from gpudash.model import Event, State
from gpudash.ui.text import MUTED, STATE_STYLE, hhmmss, rtext
from gpudash.ui.widgets.panel import rewind_table

MAX_ALERTS = 500


@dataclass
class AlertItem:
    event: Event
    acked: bool = False


class AlertsTable(DataTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="alerts_down"),
        Binding("k", "cursor_up", "Up", show=False, id="alerts_up"),
    ]


def _add_columns(table: DataTable) -> None:
    table.add_columns("time", "sev", "ack", "host", "message")  # message last: it is the long one


class AlertsPanel(Vertical):
    DEFAULT_CSS = """
    AlertsPanel { height: auto; }
    AlertsPanel > AlertsTable { height: auto; max-height: 10; }
    """

    def __init__(self, *, id: str | None = None, host: str | None = None, tz: tzinfo | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.host = host
        self.tz = tz
        self.border_title = "Alerts"
        self.items: list[AlertItem] = []
        self._key: tuple | None = None
        self._cells: dict[tuple, tuple] = {}  # (id(event), acked) -> (event, the row's cells)
        self._cells_theme: str | None = None

    def compose(self) -> ComposeResult:
        table = AlertsTable(cursor_type="row", id="alerts-table")
        _add_columns(table)
        yield table

    def reset(self, host: str | None, keep_data: bool = False) -> None:
        """Show `host`'s alerts from now on, as a new panel would (column widths too: DataTable
        only ever widens a column). `keep_data` (the same host again): only the cursor goes
        back to the top."""
        table = self.query_one(AlertsTable)
        if keep_data:
            rewind_table(table)
            return
        self.host = host
        self.items = []
        self._key = None
        self.border_subtitle = ""
        _add_columns(table.clear(columns=True))

    def _row(self, item: AlertItem) -> tuple:
        ev = item.event
        style = STATE_STYLE.get(ev.new, "")
        msg = ev.message
        if ev.triage_class:
            msg = f"{msg} [{ev.triage_class}]"
        return (
            rtext(hhmmss(ev.at, self.tz), MUTED, remote=False),
            rtext(ev.new.value if isinstance(ev.new, State) else str(ev.new), style, remote=False),
            rtext("ack" if item.acked else "NEW", MUTED if item.acked else "bold $warning", remote=False),
            rtext(ev.host, "bold", max_len=40),
            rtext(msg, "" if not item.acked else MUTED, max_len=300),
        )

    def selected_host(self) -> str | None:
        table = self.query_one(AlertsTable)
        if not self.items or not (0 <= table.cursor_row < len(self.items)):
            return self.host
        return self.items[table.cursor_row].event.host

    def update_alerts(self, items: list[AlertItem]) -> None:
        shown = [i for i in reversed(items) if self.host is None or i.event.host == self.host]
        key = (tuple((id(i.event), i.acked) for i in shown), self.app.theme)
        if key == self._key:
            return
        self._key = key
        self.items = shown
        unacked = sum(1 for i in shown if not i.acked)
        self.border_subtitle = f"{unacked} unacked" if unacked else ""
        table = self.query_one(AlertsTable)
        cursor = table.cursor_row
        table.clear()
        if not shown:
            table.add_row(rtext("—", MUTED), rtext(""), rtext(""), rtext(""), rtext("no alerts", MUTED))
            return
        # A big fleet adds alerts all the time and the newest goes on top, so the table is
        # refilled (up to MAX_ALERTS rows): make each row's cells once, not on every refill.
        # The cache holds the events it keys by id, so an id cannot be reused while in it.
        if self._cells_theme != self.app.theme:
            self._cells.clear()
            self._cells_theme = self.app.theme
        cells = {}
        for item in shown:
            ck = (id(item.event), item.acked)
            row = self._cells.get(ck)
            if row is None:
                row = (item.event, self._row(item))
            cells[ck] = row
            table.add_row(*row[1])
        self._cells = cells
        if 0 <= cursor < len(shown):
            table.move_cursor(row=cursor, animate=False)
