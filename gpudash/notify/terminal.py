"""Terminal sinks: the bell and desktop notifications by OSC 777 / OSC 9, passed through tmux.

An OSC string ends at BEL or ST and separates its fields with ``;``. Alert text carries remote
words (job names, log lines), so before it goes inside an OSC it is sanitised (escape sequences
removed, controls made visible) and ``;`` is replaced: a hostile job name can neither end the
sequence early nor add a field, let alone start a sequence of its own.

Inside tmux an OSC reaches the outer terminal only wrapped in a DCS passthrough
(``ESC P tmux; … ESC \\``, every ESC inside doubled) and only with ``set -g allow-passthrough on``
(tmux >= 3.3). The bell needs no wrapping: tmux forwards it by its ``bell-action``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gpudash.sanitize import clean_field

BEL = "\x07"
OSC_MAX = 200  # characters per field: terminals truncate anyway, and a flood must stay small


def osc_safe(text: str, max_len: int = OSC_MAX) -> str:
    """Text that is inert inside an OSC field: no ESC, BEL, ST, C0/C1 or ``;``."""
    text = clean_field(str(text), max_len=max_len)
    # clean_field turns controls into U+FFFD; drop the ones that would still matter in OSC and
    # the field separator.
    out = "".join(ch for ch in text if ch >= " " and ch != "\x7f" and not "\x80" <= ch <= "\x9f")
    return out.replace(";", ",")


def osc777(title: str, body: str) -> str:
    """urxvt/foot/WezTerm/Ghostty/VTE-style desktop notification."""
    return f"\x1b]777;notify;{osc_safe(title)};{osc_safe(body)}{BEL}"


def osc9(title: str, body: str) -> str:
    """iTerm2/Windows Terminal/WezTerm-style notification (one text field). The text starts
    with a word so ConEmu never reads it as an ``OSC 9 ; <number>`` command."""
    return f"\x1b]9;{osc_safe('gpudash: ' + title + ': ' + body, 2 * OSC_MAX)}{BEL}"


def tmux_passthrough(seq: str) -> str:
    return "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def pick_protocol(env: Mapping[str, str]) -> str:
    """"9" for terminals known to show OSC 9 and not 777 (iTerm2, Windows Terminal), else
    "777". LC_TERMINAL survives ssh and tmux where TERM_PROGRAM does not."""
    if (env.get("LC_TERMINAL") == "iTerm2" or env.get("TERM_PROGRAM") == "iTerm.app"
            or "WT_SESSION" in env):
        return "9"
    return "777"


def desktop_sequence(title: str, body: str, env: Mapping[str, str], protocol: str = "auto") -> str:
    """The bytes to write for one desktop notification (``protocol``: auto, 777, 9 or both)."""
    proto = pick_protocol(env) if protocol == "auto" else protocol
    seqs = []
    if proto in ("777", "both"):
        seqs.append(osc777(title, body))
    if proto in ("9", "both"):
        seqs.append(osc9(title, body))
    if env.get("TMUX"):
        seqs = [tmux_passthrough(s) for s in seqs]
    return "".join(seqs)


class TtyWriter:
    """Writes to the controlling terminal (``/dev/tty``), not stdout: `status` may be piped,
    and the bell must still reach the person. Silently does nothing without a terminal.

    In the TUI pass a writer that goes through the app's own driver instead, so these bytes
    never land in the middle of an escape sequence Textual is writing."""

    def __init__(self, path: str = "/dev/tty") -> None:
        self.path = path
        self._fd: int | None = None
        self._failed = False

    def __call__(self, text: str) -> None:
        if self._failed:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
            os.write(self._fd, text.encode("utf-8", "replace"))
        except OSError:
            self._failed = True

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
