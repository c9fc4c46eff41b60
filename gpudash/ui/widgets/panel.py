"""The base of the host-detail panels: focusable (tab moves between them), titled, and fed
only through `update_view` — a panel never reaches for data itself."""

from __future__ import annotations

from datetime import tzinfo

from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from gpudash.watch.view import HostView


class Panel(Widget, can_focus=True):
    """A bordered panel that renders the latest view it was given."""

    TITLE = ""

    def __init__(self, *, id: str | None = None, classes: str = "", tz: tzinfo | None = None) -> None:
        super().__init__(id=id, classes=("panel " + classes).strip())
        self.view: HostView | None = None
        self.now: float = 0.0
        self.tz = tz
        self.border_title = self.TITLE

    def build_lines(self, width: int) -> list[Content]:
        """The panel's lines, each already cut to `width` (panels never wrap)."""
        return []

    def render(self) -> Content:
        return Content("\n").join(self.build_lines(max(20, self.content_size.width)))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # Lines are cut, never wrapped: the height is the line count, whatever the width.
        return max(1, len(self.build_lines(max(20, width))))

    def update_view(self, view: HostView, now: float) -> None:
        changed = view is not self.view
        self.view = view
        self.now = now
        if changed:
            self.refresh(layout=True)
