"""The footer: the active screen's shown key bindings on one line, drawn as text.

    ⏎ Open  / Filter  f Problems  q Quit  ? Help  r Probe  p Pause  a Ack  s Split  t Teardown

Why not Textual's ``Footer``: it mounts one widget per key and re-composes them all whenever the
bindings change — on every screen push and pop. With a dozen keys that was ~100 ms of the
~260 ms it took to open a host's screen (benchmarks/, section e). This is one line of Content,
repainted when the screen says its bindings changed. Clicking a key runs its action, as in
Textual's footer.
"""

from __future__ import annotations

from textual.content import Content
from textual.events import Click
from textual.widget import Widget


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._spans: list[tuple[int, int, str, object]] = []  # (start, end, action, node): clicks
        self._shown: list | None = None  # the keys last drawn

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        # the signal fires on every push, pop and focus change; most change no key shown
        if self.is_attached and screen is self.screen and self.keys() != self._shown:
            self.refresh()

    def keys(self) -> list[tuple[str, str, str, bool, object]]:
        """(key display, description, action, enabled, node) of the shown bindings, one per
        action, in the screen's binding order."""
        seen: set[str] = set()
        out = []
        for node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            out.append((self.app.get_key_display(binding), binding.description, binding.action,
                        enabled, node))
        return out

    def render(self) -> Content:
        parts: list[Content] = []
        spans: list[tuple[int, int, str, object]] = []
        x = 0
        self._shown = keys = self.keys()
        for key, description, action, enabled, node in keys:
            part = Content.assemble(
                (f" {key}", "bold $footer-key-foreground" if enabled else "$text-disabled"),
                (f" {description} ", "$footer-description-foreground" if enabled
                 else "$text-disabled"),
            )
            spans.append((x, x + part.cell_length, action, node))
            x += part.cell_length
            parts.append(part)
        self._spans = spans
        return Content("").join(parts)

    async def on_click(self, event: Click) -> None:
        for start, end, action, node in self._spans:
            if start <= event.x < end:
                event.stop()
                await self.app.run_action(action, node)
                return
