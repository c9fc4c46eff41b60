"""`?`: every key, as currently mapped (after the user's keymap), grouped by where it works."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from gpudash.ui.text import MUTED
from gpudash.ui.widgets.key_bar import KeyBar


def binding_groups(app) -> list[tuple[str, list[Binding]]]:
    from gpudash.ui.screens.host import HostScreen
    from gpudash.ui.screens.overview import OverviewScreen
    from gpudash.ui.screens.split import SplitScreen
    from gpudash.ui.screens.triage import TriageScreen
    from gpudash.ui.widgets.log_view import LogView
    from gpudash.ui.widgets.metrics_chart import MetricsChart

    return [
        ("Everywhere", list(type(app).BINDINGS)),
        ("Overview", list(OverviewScreen.BINDINGS)),
        ("Host detail", list(HostScreen.BINDINGS)),
        ("Log panel", list(LogView.BINDINGS)),
        ("Metrics panel", list(MetricsChart.BINDINGS)),
        ("Split view", list(SplitScreen.BINDINGS)),
        ("Triage", list(TriageScreen.BINDINGS)),
    ]


def keys_for(app, binding: Binding) -> str:
    """The keys a binding answers to now: the user's keymap wins over the default."""
    keymap = getattr(app, "user_keymap", {})
    keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
    shown = []
    for key in keys.split(","):
        key = key.strip()
        shown.append(app.get_key_display(Binding(key, binding.action)) if key else key)
    return " / ".join(shown)


def help_content(app) -> Content:
    lines: list[Content] = []
    for title, bindings in binding_groups(app):
        lines.append(Content.styled(title, "bold $primary"))
        for b in bindings:
            lines.append(Content.assemble(("  " + keys_for(app, b).ljust(18), "bold $accent"),
                                          (b.description or b.action).ljust(16),
                                          (f"  id: {b.id}" if b.id else "", MUTED)))
        lines.append(Content(""))
    lines.append(Content.assemble(
        ("Overview search ", "bold $primary"), ("/", "bold $accent"),
        ": words match host names and label values; key=value a label; state:warn or is:crit a "
        "state; is:problem anything not OK. f keeps only problems, g groups (state, then each "
        "label), o sorts (state, name, util, temp, mem, gpus), c flips cards and one-line rows."))
    lines.append(Content(""))
    lines.append(Content.assemble(("ctrl+p", "bold $accent"),
                                  " command palette: jump to a host, switch theme, any action"))
    lines.append(Content.styled("Remap keys in the config: [keymap] binding-id = \"key\"", MUTED))
    return Content("\n").join(lines)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark", "close", "Close", id="close_help")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            with VerticalScroll():
                yield Static(help_content(self.app), id="help-text")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Keys"

    def action_close(self) -> None:
        self.dismiss()
