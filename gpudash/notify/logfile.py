"""The alert log: one line per alert, 0600, bounded by rotation (one ``.1`` kept).

It is plain text that people ``tail`` in a terminal, so every line is sanitised again here even
though event text already is: a log file must never carry an escape sequence.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from gpudash.sanitize import clean_field

MAX_BYTES = 4 * 1024 * 1024


class AlertLog:
    def __init__(self, path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, lines: list[str], at: float | None = None) -> bool:
        """Append ``lines`` (timestamped); False if the file cannot be written."""
        if not lines:
            return True
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() if at is None else at))
        data = "".join(f"{stamp} {clean_field(ln, max_len=2000)}\n" for ln in lines).encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._rotate_if_big(len(data))
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                             | getattr(os, "O_NOFOLLOW", 0), 0o600)
                try:
                    if os.fstat(fd).st_mode & 0o077:
                        os.fchmod(fd, 0o600)
                    os.write(fd, data)
                finally:
                    os.close(fd)
                return True
            except OSError:
                return False

    def _rotate_if_big(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + incoming > self.max_bytes:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
