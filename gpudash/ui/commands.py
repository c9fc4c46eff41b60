"""Command palette (ctrl+p): jump to a host, switch theme, and every keyed action by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from gpudash.ui.text import safe

ACTIONS = (
    ("Split view", "split", "show 2–4 hosts side by side"),
    ("Teardown checklist", "teardown", "the checks before stopping the selected host"),
    ("Probe now", "probe_now", "run a probe round now"),
    ("Pause / resume host", "pause", "stop or restart probing the selected host"),
    ("Acknowledge alerts", "acknowledge", "acknowledge the selected host's alerts"),
    ("Keys (help)", "help", "every key and its id for [keymap]"),
)


class GpudashCommands(Provider):
    def _commands(self):
        app = self.app
        for host in app.host_order:
            yield f"Jump to host: {safe(host, max_len=80)}", partial(app.open_host, host), "open its detail"
        for name in sorted(app.available_themes):
            if name.startswith("gpudash-") or name == app.theme:
                yield f"Theme: {name}", partial(setattr, app, "theme", name), "switch theme"
        for name in sorted(app.available_themes):
            if not name.startswith("gpudash-") and name != app.theme:
                yield f"Theme: {name}", partial(setattr, app, "theme", name), "switch theme"
        for label, action, help_text in ACTIONS:
            yield label, partial(app.run_action, action), help_text

    async def discover(self) -> Hits:
        for label, callback, help_text in self._commands():
            if label.startswith(("Jump", "Theme: gpudash")) or not label.startswith("Theme"):
                yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, callback, help_text in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)
