"""Incremental, bounded reads of the run's log.

Each tick asks the box for the bytes appended since the last read: the script resolves the path
(a glob picks the newest matching file), stats it, and decides *on the box* where to read, so a
50 GB log costs one bounded read and no round trip is spent on a separate `stat`:

- same inode and size >= offset: read from ``offset`` (only the new bytes travel);
- inode changed (rotation, or a glob's newest file changed) or size < offset (truncation):
  read from 0 and say ``reset``;
- more than ``max_bytes`` pending: skip ahead so only the newest ``max_bytes`` are read, and say
  exactly how many bytes were skipped. The newest bytes win: a flood must never make the
  dashboard lag further behind the run.

Output of the step (one record, whatever the file holds)::

    LOG\\tSIZE\\tINODE\\tMTIME\\tSTART\\tCOUNT\\tRESET\\tSKIPPED\\n PATH \\0 DATA

The numbers come first on their own line and the path after, NUL-terminated, because a path may
contain tabs and newlines while it can never contain NUL; DATA is the raw bytes, up to COUNT.
A missing file prints ``MISSING\\n PATTERN \\0`` and exits 0: a clear state, never a hang.
"""

from __future__ import annotations

import os
from shlex import quote

from gpudash.model import LogChunk, ProbeError, Reason
from gpudash.probes.files import STAT_FUNCS, glob_word
from gpudash.sanitize import clean_field, decode
from gpudash.transport.base import Step

__all__ = ["log_step", "parse_log", "read_local_tail", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 256 * 1024
_HEADER_SLACK = 8192  # header + path on top of the data bound

_SCRIPT = r"""off=%(offset)d; pino=%(inode)s; max=%(max)d
f=
for c in %(word)s; do
  [ -f "$c" ] || continue
  # newest by mtime; on a tie the later name wins (train-2.log over train-1.log)
  if [ -z "$f" ] || [ ! "$f" -nt "$c" ]; then f=$c; fi
done
if [ -z "$f" ]; then printf 'MISSING\n%%s\000' %(quoted)s; exit 0; fi
_st "$f"
if ! _num "$size"; then echo "cannot stat the log" >&2; exit 3; fi
reset=0
if [ -n "$pino" ] && [ -n "$ino" ] && [ "$ino" != "$pino" ]; then reset=1; fi
if [ $((size < off)) = 1 ]; then reset=1; fi
if [ $reset = 1 ]; then off=0; fi
start=$off; skipped=0
if [ $((size - off > max)) = 1 ]; then start=$((size - max)); skipped=$((start - off)); fi
count=$((size - start))
printf 'LOG\t%%s\t%%s\t%%s\t%%s\t%%s\t%%s\t%%s\n%%s\000' \
  "$size" "$ino" "$mt" "$start" "$count" "$reset" "$skipped" "$f"
if [ "$count" -gt 0 ]; then tail -c +$((start + 1)) -- "$f" | head -c "$count"; fi
"""


def log_step(
    path_or_glob: str,
    offset: int,
    inode: int | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    key: str = "log",
    timeout: float = 8.0,
) -> Step:
    """The step that reads what was appended to the log since ``offset`` (see module doc).

    ``inode`` is the inode of the last read (None on the first read: then only truncation can
    cause a reset). The user's text only ever reaches the script as quoted words
    (:func:`gpudash.probes.files.glob_word`); numbers are formatted from ints.
    """
    offset = max(0, int(offset))
    max_bytes = max(1, int(max_bytes))
    inode_word = str(int(inode)) if inode is not None and int(inode) >= 0 else "''"
    script = STAT_FUNCS + _SCRIPT % {
        "offset": offset,
        "inode": inode_word,
        "max": max_bytes,
        "word": glob_word(path_or_glob),
        "quoted": quote(path_or_glob),
    }
    return Step(
        key=key,
        script=script,
        timeout=timeout,
        params={"path": path_or_glob, "offset": offset, "inode": inode, "max_bytes": max_bytes},
        max_bytes=max_bytes + _HEADER_SLACK,
    )


def _error(reason: Reason, message: str, exit_code) -> ProbeError:
    return ProbeError(reason, message, exit_code)


def parse_log(
    stdout,
    stderr=b"",
    exit_code=0,
    *,
    prev_offset: int,
    prev_inode: int | None,
) -> LogChunk | ProbeError:
    """The step's output → the new bytes, where they sit in the file and what happened.

    A read cut short (the box's timeout, or the transport's byte cap) still yields the bytes that
    arrived: ``end`` is exactly ``start + len(data)``, so the next tick resumes where this one
    stopped and nothing is lost or read twice. ``path`` is sanitised for display.
    """
    try:
        out = stdout.encode("utf-8", "surrogateescape") if isinstance(stdout, str) else bytes(stdout or b"")
        err = stderr.encode("utf-8", "replace") if isinstance(stderr, str) else bytes(stderr or b"")
        head, nl, rest = out.partition(b"\n")
        if nl and head == b"MISSING":
            path = decode(rest.partition(b"\0")[0])
            return LogChunk(
                path=clean_field(path, max_len=4096),
                start=prev_offset,
                end=prev_offset,
                size=0,
                inode=prev_inode,
                data=b"",
                missing=True,
            )
        fields = head.split(b"\t")
        if not nl or len(fields) != 8 or fields[0] != b"LOG" or b"\0" not in rest:
            if exit_code in (124, 137) or exit_code is None:
                return _error(Reason.TIMEOUT, "log: no answer before the deadline", exit_code)
            msg = clean_field(err or out, max_len=300).strip()
            return _error(Reason.PROBE_ERROR, f"log: {msg or 'unreadable output'}", exit_code)
        size_s, ino_s, _mt, start_s, count_s, reset_s, skipped_s = (decode(f) for f in fields[1:])
        if not (size_s.isdigit() and start_s.isdigit() and count_s.isdigit() and skipped_s.isdigit()):
            return _error(Reason.PROBE_ERROR, "log: bad header", exit_code)
        size, start, count, skipped = int(size_s), int(start_s), int(count_s), int(skipped_s)
        inode = int(ino_s) if ino_s.isdigit() else None
        reset = reset_s == "1"
        base = 0 if reset else prev_offset
        # The box decided from the same offset/inode the caller holds; if not, the caller mixed up
        # two logs' states and any bytes we would hand on could be torn or duplicated.
        if start != base + skipped or start + count != size:
            return _error(Reason.PROBE_ERROR, "log: offsets disagree with the last read", exit_code)
        raw_path, _, data = rest.partition(b"\0")
        data = data[:count]
        return LogChunk(
            path=clean_field(decode(raw_path), max_len=4096),
            start=start,
            end=start + len(data),
            size=size,
            inode=inode,
            data=data,
            reset=reset,
            skipped=skipped,
        )
    except Exception as exc:  # a parser never raises
        return _error(Reason.PROBE_ERROR, f"log: {type(exc).__name__}", exit_code)


def read_local_tail(path, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of a local file, read by seeking from the end (a 50 MB log costs
    one bounded read). The first line may be a fragment; callers that care drop it."""
    max_bytes = max(0, int(max_bytes))
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        return fh.read(max_bytes)
