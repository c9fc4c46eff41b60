"""What the app asks of its screens: render these changed hosts, these alerts, a clock tick.

Only the active screen is asked. A screen that was hidden catches up in full when it comes
back (`on_screen_resume`) — hidden screens never render for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.screen import ModalScreen, Screen

if TYPE_CHECKING:
    from gpudash.ui.app import GpudashApp


class DashMixin:
    """Hooks called by the app on the active screen (all optional)."""

    app: "GpudashApp"
    #: set once the screen's widgets exist; before that the app does not call it (its on_mount
    #: renders everything that arrived meanwhile)
    dash_ready: bool = False

    def mark_ready(self) -> None:
        self.dash_ready = True
        self.full_refresh()

    def context_host(self) -> str | None:
        """The host that `a`, `p`, `r`, `t` act on here."""
        return None

    def apply_views(self, changed: set[str]) -> None:
        """Some hosts have new views in `app.views`."""

    def apply_alerts(self) -> None:
        """`app.alerts` changed."""

    def tick(self) -> None:
        """A second passed: refresh relative times ("seen 3s ago")."""

    def full_refresh(self) -> None:
        self.apply_views(set(self.app.views))
        self.apply_alerts()

    def on_screen_suspend(self) -> None:
        self._styles_when_hidden = _styles_key(self.app)

    def styled_while_hidden(self) -> None:
        """For a screen built but not shown yet: its widgets were styled with what is current."""
        self._styles_when_hidden = _styles_key(self.app)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual restyles every widget of a screen that comes back (~25 ms for the host screen,
        # more for the overview's 50 cards) in case the CSS changed while it was hidden. When
        # nothing styles depend on changed (theme, CSS, the app's pseudo-classes) that would
        # change nothing: skip it. (This handler runs before Screen's own.)
        hidden_with = getattr(self, "_styles_when_hidden", None)
        self._styles_when_hidden = None
        if hidden_with is not None and hidden_with == _styles_key(self.app):
            event.refresh_styles = False
        if self.dash_ready and self.stale_on_resume():
            self.full_refresh()

    def stale_on_resume(self) -> bool:
        """Whether the screen must catch up as it comes back (yes, unless it knows better)."""
        return True


def _styles_key(app) -> tuple | None:
    """What the widgets' styles depend on besides their own classes and focus (which Textual
    restyles as they change, shown or not); None when it cannot be told."""
    count = getattr(app, "_css_update_count", None)  # Textual's own CSS generation counter
    if count is None:
        return None
    return (count, app.theme, app.pseudo_classes)


class DashScreen(DashMixin, Screen):
    pass


class DashModal(DashMixin, ModalScreen):
    pass
