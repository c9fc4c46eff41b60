"""The base of the host-detail panels: focusable (tab moves between them), titled, and fed
only through `update_view` — a panel never reaches for data itself."""

from __future__ import annotations

from datetime import tzinfo

from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from gpudash.watch.view import HostView


def rewind_table(table) -> None:
    """A DataTable's cursor on its first row, scrolled to the top left: how a new one starts."""
    table.move_cursor(row=0, column=0, animate=False, scroll=False)
    table.scroll_to(0, 0, animate=False, immediate=True)


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

    def reset(self, keep_data: bool = False) -> None:
        """Start over as a new panel (the host screen is reused for the next host). With
        `keep_data` (the same host again) only what the user changed is undone."""
        if keep_data:
            return
        self.view = None
        self.now = 0.0
        self.refresh(layout=True)

    def update_view(self, view: HostView, now: float) -> None:
        changed = view is not self.view
        self.view = view
        self.now = now
        if changed:
            self.refresh(layout=True)
