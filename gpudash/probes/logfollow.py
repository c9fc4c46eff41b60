"""Following the run's log with one long-lived, bounded sampler on the box.

Why: a polled read (:mod:`gpudash.probes.logtail`) costs the box ~6 ms of CPU per read for the
`timeout`, `sh`, `stat`, `tail` and `head` it starts — 0.6% of a core for a log that grows every
second, more than every other probe together. The follower is ONE `python3` process per watched
log that wakes every ``interval``, `stat`s the file (~20 µs) and sends only what changed: a
quiet log costs the box almost nothing and the client one heartbeat line every few seconds.

It decides exactly as the polled script does, from the same offset and inode (rotation,
truncation, a glob's newest file, skip-to-newest under a flood with the skipped bytes counted),
and each record it sends is byte-for-byte the polled step's output, so
:func:`gpudash.probes.logtail.parse_log` checks it with the same offset arithmetic: a record
that does not follow from the client's own offset is refused, never spliced in.

Bounds: a record carries at most ``max_bytes`` of log; the process lives at most the stream's
lifetime (the transport's `timeout -k`), and dies of EPIPE at its next write — a heartbeat at
the latest — once its channel is gone. Without ``python3`` on the box it prints ``NOPYTHON`` and
exits; the watcher then polls as before.

Lines it prints (one record per line; the log bytes travel base64-encoded, so a record can never
be split or forged by the log's own content)::

    L <base64 of the polled step's output>   something changed (bytes, reset, missing, first look)
    H                                        heartbeat: looked, nothing changed
    E <text>                                 the file could not be read (sanitised by the caller)
    NOPYTHON                                 no python3 on the box
"""

from __future__ import annotations

import binascii
import shlex
from dataclasses import dataclass

from gpudash.probes.files import glob_parts
from gpudash.transport.base import PROBE_MARKER, Step

__all__ = ["follow_step", "parse_follow_line", "FollowLine", "py_glob"]

# Python 3.6+ (old distro pythons), no site import (-S: ~10 ms less start-up), isolated from the
# user's PYTHON* variables (-I). Every input arrives as an argv word.
# The marker leads the agent's own command line (python3 … -c AGENT): a process scan whose
# pattern names the log (`pgrep -f train` with `train.log`) must not take the follower for the run.
_AGENT = "# " + PROBE_MARKER + r"""
import os, sys, glob, time, stat, binascii
iv, hb, mx = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
off = int(sys.argv[4]); pino = int(sys.argv[5]) if sys.argv[5] else None
pat, magic, shown = sys.argv[6], sys.argv[7] == "1", sys.argv[8].encode("utf-8", "surrogateescape")
if pat == "~" or pat.startswith("~/"):
    pat = os.path.expanduser("~") + pat[1:]
out = sys.stdout.buffer

def send(b):
    try:
        out.write(b)
        out.flush()
    except Exception:
        os._exit(0)

def pick():
    if not magic:
        return pat if os.path.isfile(pat) else None
    f = fm = None
    for c in sorted(glob.glob(pat)):
        try:
            st = os.stat(c)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (f is None or st.st_mtime >= fm):
            f, fm = c, st.st_mtime
    return f

def rec(b):
    send(b"L " + binascii.b2a_base64(b).rstrip(b"\n") + b"\n")

first, missing, quiet = True, False, time.monotonic()
while True:
    sent = False
    f = pick()
    st = None
    if f is not None:
        try:
            st = os.stat(f)
        except OSError:
            st = None
    if st is None:
        if not missing:
            rec(b"MISSING\n" + shown + b"\0")
            missing, sent, off, pino = True, True, 0, 0
    else:
        missing = False
        size, ino = st.st_size, st.st_ino
        reset = (pino is not None and ino != pino) or size < off
        if first or reset or size != off:
            if reset:
                off = 0
            start = off
            skipped = 0
            if size - off > mx:
                start = size - mx
                skipped = start - off
            count = size - start
            data = b""
            if count > 0:
                try:
                    with open(f, "rb") as fh:
                        fh.seek(start)
                        data = fh.read(count)
                except OSError as e:
                    send(b"E " + str(e).encode("utf-8", "replace").replace(b"\n", b" ")[:300] + b"\n")
            head = "LOG\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n" % (
                size, ino, int(st.st_mtime), start, count, 1 if reset else 0, skipped)
            rec(head.encode() + f.encode("utf-8", "surrogateescape") + b"\0" + data)
            off, pino, sent = start + len(data), ino, True
    first = False
    now = time.monotonic()
    if sent:
        quiet = now
    elif now - quiet >= hb:
        send(b"H\n")
        quiet = now
    time.sleep(iv)
"""

HEADER_SLACK = 8192  # header + path on top of the data bound, as the polled step allows


def py_glob(pattern: str) -> tuple[str, bool]:
    """The pattern for Python's glob on the box, and whether it globs at all.

    The same operators as :func:`gpudash.probes.files.glob_word` gives the shell; every other
    character is literal (escaped for glob), so a path the poller reads literally is read
    literally here too. ``~/`` is expanded by the agent.
    """
    import glob as _glob

    parts = glob_parts(pattern)
    if not any(op for op, _ in parts):
        return pattern, False
    return "".join(text if op else _glob.escape(text) for op, text in parts), True


def follow_step(
    path_or_glob: str,
    offset: int,
    inode: int | None,
    max_bytes: int,
    *,
    interval: float = 1.0,
    heartbeat: float = 5.0,
) -> Step:
    """The long-lived step (key ``log_follow``) that follows the log from ``offset``/``inode``
    (the client's state after its last read; see the module doc and ``logtail.log_step``)."""
    offset = max(0, int(offset))
    max_bytes = max(1, int(max_bytes))
    inode_word = str(int(inode)) if inode is not None and int(inode) >= 0 else ""
    pattern, magic = py_glob(path_or_glob)
    args = [f"{max(0.05, float(interval)):g}", f"{max(0.5, float(heartbeat)):g}", str(max_bytes),
            str(offset), inode_word, pattern, "1" if magic else "0", path_or_glob]
    script = (
        "command -v python3 >/dev/null 2>&1 || { echo NOPYTHON; exit 0; }\n"
        f"exec python3 -I -S -c {shlex.quote(_AGENT)} " + " ".join(shlex.quote(a) for a in args)
    )
    # one line holds a whole record, base64-encoded (4 bytes per 3)
    line_bound = (max_bytes + HEADER_SLACK) * 4 // 3 + 64
    return Step(
        key="log_follow",
        script=script,
        timeout=8.0,
        params={"path": path_or_glob, "offset": offset, "inode": inode, "max_bytes": max_bytes,
                "interval_ms": int(interval * 1000)},
        max_bytes=line_bound,
    )


@dataclass(frozen=True, slots=True)
class FollowLine:
    """One parsed line of the follower: ``kind`` is "log" (``payload`` = the polled step's
    output, for ``parse_log``), "heartbeat", "error" (``payload`` = raw text), "nopython", or
    "junk" for anything else (a line cut at the transport's bound lands here: never trusted)."""

    kind: str
    payload: bytes = b""


_HEARTBEAT = FollowLine("heartbeat")
_NOPYTHON = FollowLine("nopython")


def parse_follow_line(line: bytes) -> FollowLine:
    """One line of the follower's output → what it says. Never raises."""
    if line.startswith(b"L "):
        try:
            return FollowLine("log", binascii.a2b_base64(line[2:]))
        except (binascii.Error, ValueError):
            return FollowLine("junk", line[:200])
    if line == b"H":
        return _HEARTBEAT
    if line.startswith(b"E "):
        return FollowLine("error", line[2:302])
    if line.strip() == b"NOPYTHON":
        return _NOPYTHON
    return FollowLine("junk", line[:200])
