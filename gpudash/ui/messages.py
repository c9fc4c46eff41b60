"""The messages posted into the app. Small, immutable, one value each.

Host views are not among them: the app keeps the newest per host in a dict that its flush timer
renders (app.py), so a fast host can never build a backlog.
"""

from __future__ import annotations

from textual.message import Message

from gpudash.model import Event


class AlertRaised(Message):
    """A state change worth telling the user about."""

    def __init__(self, event: Event, *, past: bool = False) -> None:
        super().__init__()
        self.event = event
        self.past = past  # fired before this app started: listed, but no bell


class OpenHost(Message):
    """Ask the app to show one host's detail (a card was clicked, a palette entry chosen)."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host


class HostSelected(Message):
    """The overview's cursor moved to a host."""

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host
