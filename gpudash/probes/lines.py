"""Turn the log's byte chunks into whole lines: bounded, never torn, never duplicated.

The tail probe hands over arbitrary byte ranges (a tick can end mid-line, mid-UTF-8 character or
mid-escape sequence). :class:`LineAssembler` keeps the incomplete last line between ticks and
returns only completed lines, each as a :class:`LogLine` with two forms:

- ``raw``: the decoded text (UTF-8 with replacement, never raising), unsanitised, newline
  stripped, ``\\r`` segments kept — what metric/progress/completion parsers read;
- ``display``: the same line through :func:`gpudash.sanitize.clean_line` — escape sequences,
  controls and bidi overrides removed, a ``\\r``-rewritten line shown in its last state, cut at
  ``max_line`` with a visible marker. The only form a screen may show. ``str(line)`` is this.

Notices from gpudash itself (rotation, skipped bytes) are ``LogLine(marker=True)`` with
``raw == ""``, so parsers never mistake them for the run's output.

Bounds: the incomplete line is at most ``max_partial`` bytes. A longer line is emitted cut (with
the marker) as soon as it passes the bound and the rest of it is dropped as it arrives, so a
10 MB line without a newline costs ``max_partial`` bytes, not 10 MB. A tqdm bar that rewrites
itself with ``\\r`` for a whole epoch without a newline is compacted to its last state once it
grows past a few KiB (raw text of such a line then holds only its last states), so it never hits
the bound; :meth:`LineAssembler.pending_progress` shows it live.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpudash.model import LogChunk
from gpudash.sanitize import ELLIPSIS_MARK, clean_line, decode

__all__ = ["LogLine", "LineAssembler", "ROTATED_MARK", "skipped_mark"]

ROTATED_MARK = "── log rotated/truncated ──"


def skipped_mark(n: int) -> str:
    return f"── {n} bytes skipped ──"


@dataclass(frozen=True, slots=True)
class LogLine:
    raw: str
    display: str
    marker: bool = False  # a notice from gpudash, not a line of the log
    cut: bool = False  # the line was longer than the bound; the rest was dropped

    def __str__(self) -> str:
        return self.display


class LineAssembler:
    """Feed it the tail probe's chunks in order; it returns the lines each chunk completed."""

    def __init__(self, max_line: int = 4096, max_partial: int = 65536, *, rotation_marker: bool = True):
        if max_line < 1 or max_partial < 1:
            raise ValueError("bounds must be positive")
        self.max_line = max_line
        self.max_partial = max_partial
        self.rotation_marker = rotation_marker
        self._partial = bytearray()
        self._discard = False  # inside an over-long line: drop bytes up to its newline
        self._fragment = False  # after a skip: the first line is torn, drop through its newline
        # Compact a \r-line only once it is big: below this, raw text does not depend on how
        # the bytes were chunked.
        self._compact_at = max(1, min(8192, max_partial // 2))

    # ------------------------------------------------------------------ input

    def feed(self, chunk: LogChunk) -> list[LogLine]:
        out: list[LogLine] = []
        if chunk.missing:
            return out
        if chunk.reset:
            self._forget()
            if self.rotation_marker:
                out.append(LogLine("", ROTATED_MARK, marker=True))
        if chunk.skipped:
            # The partial line continued into the skipped bytes and the first new line starts
            # somewhere inside one: neither may be shown torn.
            self._forget()
            self._fragment = True
            out.append(LogLine("", skipped_mark(chunk.skipped), marker=True))
        self._split(chunk.data, out)
        return out

    def feed_bytes(self, data: bytes, *, skipped: int = 0) -> list[LogLine]:
        """Convenience for local reads (triage on a file): ``data`` follows the last call."""
        return self.feed(LogChunk(path="", start=0, end=len(data), size=len(data), inode=None,
                                  data=data, skipped=skipped))

    def flush(self) -> list[LogLine]:
        """The unterminated last line as a line (a finished log without a final newline)."""
        if self._fragment or self._discard or not self._partial:
            self._forget()
            return []
        return [self._emit()]

    # ------------------------------------------------------------------ state

    def pending_progress(self) -> str | None:
        """The incomplete ``\\r``-rewritten line in its current state (a live progress bar), or
        None when the pending bytes are not a progress line."""
        if self._fragment or self._discard or b"\r" not in self._partial:
            return None
        return clean_line(bytes(self._partial), max_len=self.max_line) or None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the incomplete line (never more than ``max_partial``)."""
        return len(self._partial)

    # ------------------------------------------------------------------ internals

    def _forget(self) -> None:
        self._partial.clear()
        self._discard = False
        self._fragment = False

    def _split(self, data: bytes, out: list[LogLine]) -> None:
        pos, n = 0, len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._add_partial(data[pos:], out)
                return
            if self._fragment or self._discard:
                self._fragment = self._discard = False
                self._partial.clear()
            else:
                room = self.max_partial - len(self._partial)
                if nl - pos > room:
                    self._partial += data[pos : pos + room]
                    out.append(self._emit(cut=True))
                else:
                    self._partial += data[pos:nl]
                    out.append(self._emit())
            pos = nl + 1

    def _add_partial(self, piece: bytes, out: list[LogLine]) -> None:
        if self._fragment or self._discard:
            return
        self._partial += piece
        if len(self._partial) > self._compact_at and b"\r" in self._partial:
            self._compact()
        if len(self._partial) > self.max_partial:
            del self._partial[self.max_partial :]
            out.append(self._emit(cut=True))
            self._discard = True

    def _compact(self) -> None:
        """Keep only what a terminal would still show of a ``\\r``-rewritten line: its last
        non-blank state (and a blank state being written after it)."""
        if self._partial.count(b"\r") < 2:
            return
        parts = bytes(self._partial).split(b"\r")
        last = parts[-1]
        if last.strip():
            kept = b"\r" + last
        else:
            prev = next((p for p in reversed(parts[:-1]) if p.strip()), b"")
            kept = b"\r" + prev + b"\r" + last
        self._partial[:] = kept

    def _emit(self, cut: bool = False) -> LogLine:
        data = bytes(self._partial)
        self._partial.clear()
        if data.endswith(b"\r"):
            data = data[:-1]  # CRLF line ends
        raw = decode(data)
        display = clean_line(raw, max_len=self.max_line)
        if cut and not display.endswith(ELLIPSIS_MARK):
            display += ELLIPSIS_MARK
        return LogLine(raw, display, cut=cut)
