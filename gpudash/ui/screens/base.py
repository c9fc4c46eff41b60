"""What the app asks of its screens: render these changed hosts, these alerts, a clock tick.

Only the active screen is asked. A screen that was hidden catches up in full when it comes
back (`on_screen_resume`) — hidden screens never render for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

    def on_screen_resume(self) -> None:
        if self.dash_ready:
            self.full_refresh()


class DashScreen(DashMixin, Screen):
    pass


class DashModal(DashMixin, ModalScreen):
    pass
