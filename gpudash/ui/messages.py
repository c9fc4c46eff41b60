"""The messages the watcher side posts into the app. Small, immutable, one value each.

`HostUpdated` is *replaceable*: when the UI falls behind, a newer view of the same host supersedes
the pending one in the queue (toolong's trick), so a fast host can never build a backlog.
"""

from __future__ import annotations

from textual.message import Message

from gpudash.model import Event
from gpudash.watch.view import HostView


class HostUpdated(Message):
    """A new view of one host arrived."""

    def __init__(self, view: HostView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostUpdated) and message.view.name == self.view.name


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
