"""Processes of the run: `pgrep -f PATTERN` → `ps` rows, and a cheap "are these pids alive" check.

Two hazards shape the script:

- ``pgrep -f`` matches full command lines, and the probe's own shell has the pattern in *its*
  command line (``sh -c '… pgrep -f -- train …'``), as do the ``timeout`` wrapping it, any
  subshell it forks, and other gpudash probes that name the run (a log read of ``train.log``,
  the log follower). pgrep only excludes itself. Every gpudash process carries the
  ``gpudash-probe`` marker first in its script (``transport.base.marked``), so on Linux the
  script drops a match whose ``/proc/PID/cmdline`` holds it — read with the builtin ``read``, no
  fork. Without /proc (macOS) it drops its own shell, ancestors and descendants, walking parent
  pids with ``ps``; the parser drops marked rows in any case.
- ``lstart`` is printed in the box's local time zone, which we do not know: the script runs ps
  with ``TZ=UTC0`` so the start time converts to epoch seconds exactly and stays stable between
  rounds (the watcher tells a restart from a pid reuse by it).

Output blocks are introduced by ``@@gd:NONCE:NAME`` lines whose nonce is random per built step,
so no process name or path can forge a block boundary (see :func:`split_blocks`).
"""

from __future__ import annotations

import calendar
import re
import secrets
import shlex
from collections.abc import Iterable

from gpudash.model import ProbeError, ProcessInfo, Reason
from gpudash.sanitize import clean_field, decode
from gpudash.transport.base import PROBE_MARKER, Step


_MARK = "@@gd:"

# POSIX-sh helpers shared by every script that must not see its own process tree.
# gd_skip PID   -> true when PID is a gpudash probe (this one, its wrappers, another instance's).
#                  Linux: its command line holds the marker. `read` drops the NULs between the
#                  arguments and stops at the first newline, which in a probe follows the marker;
#                  an unreadable one (gone, hidepid) is kept: ps decides. Without /proc: gd_mine.
# gd_ppid PID   -> sets gd_pp to the parent pid (comm may hold spaces and ')': cut at the last ') ').
# gd_probe PID  -> true when PID's command line carries the probe marker.
# gd_mine PID   -> true when PID is this shell, an ancestor of it up to the session's sh (those
#                  whose command line holds the script: the `timeout … sh -c SCRIPT` wrapper), or
#                  a descendant of it (one that already exited, e.g. the `$(pgrep …)` subshell,
#                  counts as ours). The ancestor walk stops at the first ancestor without the
#                  marker, so a run that happens to be an ancestor (a container whose PID 1 is
#                  `python train.py` and started sshd) is still found.
OWN_TREE_SH = r"""gd_skip() {
  if [ -d /proc/self ]; then
    [ -r "/proc/$1/cmdline" ] || return 1
    gd_c=
    { read -r gd_c < "/proc/$1/cmdline"; } 2>/dev/null
    case "$gd_c" in *@MARKER@*) return 0 ;; esac
    return 1
  fi
  gd_mine "$1"
}
gd_ppid() {
  gd_pp=
  if [ -r /proc/$$/stat ]; then
    { read -r gd_s < "/proc/$1/stat"; } 2>/dev/null || return 1
    gd_s=${gd_s##*) }
    set -- $gd_s
    gd_pp=$2
  else
    gd_pp=$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')
  fi
  [ -n "$gd_pp" ]
}
gd_probe() {
  case "$( { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null || ps -o args= -p "$1" 2>/dev/null)" in
    *@MARKER@*) return 0 ;;
  esac
  return 1
}
gd_anc=
gd_mine() {
  if [ -z "$gd_anc" ]; then
    gd_anc=" $$ "
    gd_p=$$
    while gd_ppid "$gd_p" && [ "$gd_pp" -gt 1 ] 2>/dev/null && gd_probe "$gd_pp"; do
      gd_anc="$gd_anc$gd_pp "
      gd_p=$gd_pp
    done
  fi
  case "$gd_anc" in *" $1 "*) return 0 ;; esac
  gd_q=$1
  gd_n=0
  while gd_ppid "$gd_q"; do
    gd_q=$gd_pp
    [ "$gd_q" = "$$" ] && return 0
    [ "$gd_q" -gt 1 ] 2>/dev/null || return 1
    gd_n=$((gd_n + 1))
    [ "$gd_n" -lt 128 ] || return 1
  done
  return 0
}
""".replace("@MARKER@", PROBE_MARKER)

PS_FIELDS = "pid=,etimes=,pcpu=,rss=,nlwp=,lstart=,args="


# ----------------------------------------------------------------------------- block framing


def new_nonce() -> str:
    return secrets.token_hex(6)


def script_head(nonce: str) -> str:
    """First lines of every job-probe script: the marker, C locale, and the nonce line."""
    return (
        f": {PROBE_MARKER}\n"
        "LC_ALL=C; export LC_ALL\n"
        f"printf '{_MARK}%s\\n' {nonce}\n"
    )


def block(nonce: str, name: str, *args: str) -> str:
    """A shell command printing a block header; ``args`` are shell words (already quoted)."""
    extra = "".join(f" {a}" for a in args)
    fmt = "%s" + " %s" * len(args)
    return f"printf '{_MARK}{nonce}:{fmt}\\n' {name}{extra}"


def split_blocks(data: bytes | str) -> list[tuple[list[str], str]]:
    """Cut a script's output into ``(header words, body text)`` blocks.

    The nonce comes from the output's first ``@@gd:NONCE`` line; only headers carrying it count.
    Output without that line (a hand-made fixture, a raw tool output) is one block with no
    header words. Never raises.
    """
    text = decode(data) if isinstance(data, (bytes, bytearray)) else str(data)
    lines = text.split("\n")
    nonce = None
    start = 0
    for i, line in enumerate(lines[:50]):
        if line.startswith(_MARK) and ":" not in line[len(_MARK):]:
            nonce = line[len(_MARK):].strip()
            start = i + 1
            break
    if not nonce:
        return [([], text)]
    tag = f"{_MARK}{nonce}:"
    blocks: list[tuple[list[str], list[str]]] = [([], [])]
    for line in lines[start:]:
        if line.startswith(tag):
            blocks.append((line[len(tag):].split(" "), []))
        else:
            blocks[-1][1].append(line)
    return [(h, "\n".join(body)) for h, body in blocks if h or any(x.strip() for x in body)]


def error_message(stdout: bytes | str, stderr: bytes | str, limit: int = 300) -> str:
    """A short, sanitised message for a ProbeError: stderr first, else stdout."""
    for data in (stderr, stdout):
        text = decode(data) if isinstance(data, (bytes, bytearray)) else str(data or "")
        text = " ".join(t for t in text.strip().splitlines() if t.strip() and not t.startswith(_MARK))
        if text.strip():
            return clean_field(text, max_len=limit)
    return ""


def is_uint(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts '²', which ``int`` rejects)."""
    return bool(text) and text.isascii() and text.isdigit()


def to_int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def to_float(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


# ----------------------------------------------------------------------------- processes


def processes_step(pattern: str, *, timeout: float = 8.0) -> Step:
    """Processes whose full command line matches the ERE ``pattern``, minus the probe's tree."""
    nonce = new_nonce()
    script = (
        script_head(nonce)
        + OWN_TREE_SH
        + f"gd_pids=$(pgrep -f -- {shlex.quote(pattern)})\n"
        "gd_rc=$?\n"
        # pgrep: 1 = no match (fine), 2 = bad pattern, 3 = fatal, 127 = not installed.
        '[ "$gd_rc" -gt 1 ] && exit "$gd_rc"\n'
        "gd_keep=\n"
        'for gd_x in $gd_pids; do gd_skip "$gd_x" || gd_keep="$gd_keep${gd_keep:+,}$gd_x"; done\n'
        '[ -n "$gd_keep" ] || exit 0\n'
        + block(nonce, "ps")
        + "\n"
        f'TZ=UTC0 ps -ww -o {PS_FIELDS} -p "$gd_keep"\n'
        # ps exits 1 when every pid vanished in between: that is "no match", not an error.
        "gd_rc=$?\n"
        '[ "$gd_rc" = 1 ] && exit 0\n'
        'exit "$gd_rc"\n'
    )
    return Step("procs", script, timeout=timeout, params={"pattern": pattern})


_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_TIME = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})$")


def lstart_epoch(words: list[str]) -> float | None:
    """``Sun Nov 22 20:04:30 2026`` printed under TZ=UTC0 → epoch seconds."""
    if len(words) != 5:
        return None
    _, mon, day, hms, year = words
    m = _TIME.match(hms)
    if mon not in _MONTHS or m is None or not day.isdigit() or not year.isdigit():
        return None
    try:
        return float(calendar.timegm((int(year), _MONTHS[mon], int(day), int(m[1]), int(m[2]), int(m[3]), 0, 0, 0)))
    except (ValueError, OverflowError):
        return None


def parse_ps_line(line: str) -> ProcessInfo | None:
    """One ``ps -o pid=,etimes=,pcpu=,rss=,nlwp=,lstart=,args=`` row (or a ``pgrep -a`` row)."""
    words = line.split(None, 10)
    if not words or not is_uint(words[0]):
        return None
    pid = int(words[0])
    if len(words) >= 10 and all(to_float(w) is not None for w in words[1:5]) and lstart_epoch(words[5:10]):
        args = words[10] if len(words) > 10 else ""
        return ProcessInfo(
            pid=pid,
            command=clean_field(args.strip(), max_len=1000),
            elapsed_s=to_int(words[1]),
            cpu_pct=to_float(words[2]),
            rss_kb=to_int(words[3]),
            threads=to_int(words[4]),
            start_epoch=lstart_epoch(words[5:10]),
        )
    # `pgrep -af` / `pgrep -l`: pid then the command line.
    rest = line.strip()[len(words[0]):].strip()
    return ProcessInfo(pid=pid, command=clean_field(rest, max_len=1000))


def parse_processes(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0):
    """→ ``tuple[ProcessInfo, ...]`` (empty: nothing matches) or :class:`ProbeError`."""
    try:
        return _parse_processes(stdout, stderr, exit_code)
    except Exception as exc:  # a parser never raises: a bug here must not kill the watcher
        return ProbeError(Reason.PROBE_ERROR, clean_field(f"processes: {exc!r}"))


def _parse_processes(stdout, stderr, exit_code):
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, "process scan did not finish", exit_code)
    if exit_code == 127:
        return ProbeError(Reason.NOT_FOUND, "pgrep/ps is not installed", exit_code)
    if exit_code not in (0, 1):
        return ProbeError(Reason.PROBE_ERROR, error_message(stdout, stderr) or "pgrep failed", exit_code)
    out: list[ProcessInfo] = []
    seen: set[int] = set()
    for header, body in split_blocks(stdout):
        if header and header[0] != "ps":
            continue
        for line in body.split("\n"):
            info = parse_ps_line(line)
            if info is None or info.pid in seen or PROBE_MARKER in info.command:
                continue
            seen.add(info.pid)
            out.append(info)
    return tuple(out)


# ----------------------------------------------------------------------------- liveness


def proc_alive_step(pids: Iterable[int], *, timeout: float = 5.0) -> Step:
    """Which of ``pids`` still run (zombies count as dead). One ``read`` per pid, no fork."""
    clean = sorted({int(p) for p in pids if int(p) > 0})
    words = " ".join(str(p) for p in clean)
    script = (
        f": {PROBE_MARKER}\n"
        f"for gd_x in {words}; do\n"
        '  if [ -r "/proc/$gd_x/stat" ]; then\n'
        '    { read -r gd_s < "/proc/$gd_x/stat"; } 2>/dev/null || continue\n'
        "    gd_s=${gd_s##*) }\n"
        '    case "$gd_s" in Z*|X*) ;; *) echo "$gd_x" ;; esac\n'
        "  elif [ -d /proc/self ]; then :\n"
        '  elif kill -0 "$gd_x" 2>/dev/null || ps -p "$gd_x" >/dev/null 2>&1; then echo "$gd_x"\n'
        "  fi\n"
        "done\n"
        "exit 0\n"
    )
    return Step("alive", script, timeout=timeout, params={"pids": tuple(clean)})


def parse_alive(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0):
    """→ ``frozenset[int]`` of live pids, or :class:`ProbeError` when the check did not run."""
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, "liveness check did not finish", exit_code)
    if exit_code != 0:
        return ProbeError(Reason.PROBE_ERROR, error_message(stdout, stderr) or "liveness check failed", exit_code)
    text = decode(stdout) if isinstance(stdout, (bytes, bytearray)) else str(stdout)
    return frozenset(int(w) for w in text.split() if is_uint(w) and len(w) < 12)
