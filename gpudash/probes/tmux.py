"""tmux sessions of the box: names, age, attached, and whether the pane's command has ended.

One script runs ``list-sessions`` and ``list-panes -a``. Rows are tab-separated with the one
free-text field LAST (session name, pane command) and panes joined to sessions by ``session_id``
(``$N``), so a session called ``a|b`` or ``x<TAB>y`` cannot shift a column. tmux itself escapes
control characters in names (ESC becomes the four characters ``\\033``), so a row is one line.

``pane_dead``/``pane_dead_status`` only exist when the session keeps its pane after the command
ends (``remain-on-exit on``): then a finished run shows as dead with its exit status (137 = killed).
No server at all is the normal state of a box without tmux sessions: an empty tuple, not an error.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from gpudash.model import ProbeError, Reason, TmuxSession
from gpudash.probes.processes import PROBE_MARKER, block, error_message, new_nonce, script_head, split_blocks, to_int
from gpudash.sanitize import clean_field, clean_line, decode
from gpudash.transport.base import Step

_SESSION_FMT = "\t".join(
    ["#{session_id}", "#{session_created}", "#{session_windows}", "#{session_attached}", "#{session_name}"]
)
_ID_NAME_FMT = "#{session_id}\t#{session_name}"
_PANE_FMT = "\t".join(
    [
        "#{session_id}",
        "#{window_active}",
        "#{pane_active}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{pane_dead_status}",
        "#{pane_tty}",
        "#{pane_current_command}",
    ]
)

# What tmux says when there is no server to talk to (socket missing, or the server just exited).
_NO_SERVER = ("no server running", "error connecting to", "server exited unexpectedly", "no sessions")


def tmux_cmd(socket: str | None) -> str:
    # -u: the scripts run under LC_ALL=C, where tmux would print every TAB and non-ASCII byte
    # of its output as `_` (a session named 训练 would read `__`); -u keeps UTF-8 as it is.
    return "tmux -u" + (f" -L {shlex.quote(socket)}" if socket else "")


def tmux_script(nonce: str, socket: str | None = None) -> str:
    """The list-sessions + list-panes part, reused by discovery. Exits with tmux's code."""
    t = tmux_cmd(socket)
    return (
        "if command -v tmux >/dev/null 2>&1; then\n"
        f"  {block(nonce, 'sessions')}\n"
        f"  {t} list-sessions -F {shlex.quote(_SESSION_FMT)}\n"
        "  gd_trc=$?\n"
        '  if [ "$gd_trc" = 0 ]; then\n'
        f"    {block(nonce, 'panes')}\n"
        f"    {t} list-panes -a -F {shlex.quote(_PANE_FMT)}\n"
        "  fi\n"
        "else\n"
        f"  {block(nonce, 'no_tmux')}\n"
        "  gd_trc=127\n"
        "fi\n"
    )


def tmux_step(socket: str | None = None, *, timeout: float = 5.0) -> Step:
    """Sessions and panes. ``socket`` selects a private server (``tmux -L``)."""
    nonce = new_nonce()
    script = script_head(nonce) + tmux_script(nonce, socket) + 'exit "$gd_trc"\n'
    return Step("tmux", script, timeout=timeout, params={"socket": socket})


@dataclass(frozen=True)
class PaneRow:
    session_id: str
    pane_pid: int | None
    dead: bool
    dead_status: int | None
    tty: str
    command: str
    active: bool = True


def no_server(stdout: bytes | str, stderr: bytes | str) -> bool:
    text = (error_message(stdout, stderr, limit=2000) or "").lower()
    return any(s in text for s in _NO_SERVER)


def parse_tmux(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0):
    """→ ``tuple[TmuxSession, ...]`` (empty: no server) or :class:`ProbeError`."""
    try:
        return _parse_tmux(stdout, stderr, exit_code)
    except Exception as exc:  # never raise on remote input
        return ProbeError(Reason.PROBE_ERROR, clean_field(f"tmux: {exc!r}"))


def _parse_tmux(stdout, stderr, exit_code):
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, "tmux did not answer", exit_code)
    blocks = split_blocks(stdout)
    if exit_code == 127 or any(h[:1] == ["no_tmux"] for h, _ in blocks):
        return ProbeError(Reason.NOT_FOUND, "tmux is not installed", exit_code)
    if exit_code != 0:
        if no_server(stdout, stderr):
            return ()
        return ProbeError(Reason.PROBE_ERROR, error_message(stdout, stderr) or "tmux failed", exit_code)
    sessions_text = panes_text = ""
    for header, body in blocks:
        if header[:1] == ["sessions"]:
            sessions_text = body
        elif header[:1] == ["panes"]:
            panes_text = body
        elif not header:
            sessions_text = body  # a raw list-sessions output (fixture) without block headers
    return sessions_from_rows(parse_session_rows(sessions_text), parse_pane_rows(panes_text))


def parse_session_rows(text: str) -> list[tuple[str, TmuxSession]]:
    """``(join key, session)`` per row. Tab rows (ours) or the ``name|created|windows|attached``
    rows of the fixtures, whose name is split off from the right."""
    rows = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        if "\t" in line:
            parts = line.split("\t", 4)
            if len(parts) != 5:
                continue
            sid, created, windows, attached, name = parts
            key, pane_pid, pane_dead = sid, None, False
        else:
            # name|created|windows|attached[|pane_pid|pane_dead]
            parts = line.rsplit("|", 5)
            pane_pid, pane_dead = None, False
            if len(parts) == 6 and all(to_int(x) is not None for x in parts[1:5]) and parts[5] in ("0", "1"):
                name, created, windows, attached = parts[:4]
                pane_pid, pane_dead = to_int(parts[4]), parts[5] == "1"
            else:
                parts = line.rsplit("|", 3)
                if len(parts) != 4:
                    continue
                name, created, windows, attached = parts
            key = name
        if to_int(created) is None:
            continue
        att = to_int(attached)
        rows.append(
            (
                key,
                TmuxSession(
                    name=clean_field(name),
                    created_epoch=to_int(created),
                    windows=to_int(windows),
                    attached=bool(att),
                    pane_pid=pane_pid,
                    pane_dead=pane_dead,
                ),
            )
        )
    return rows


def parse_pane_rows(text: str) -> list[PaneRow]:
    rows = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        if "\t" in line:
            parts = line.split("\t", 7)
            if len(parts) != 8:
                continue
            sid, win_active, pane_active, pid, dead, status, tty, cmd = parts
            active = win_active == "1" and pane_active == "1"
        else:
            # name|pane_pid|pane_current_command|pane_dead|pane_dead_status (fixture format)
            head = line.rsplit("|", 2)
            if len(head) != 3:
                continue
            front, dead, status = head
            front_parts = front.rsplit("|", 2)
            if len(front_parts) != 3:
                continue
            sid, pid, cmd = front_parts
            tty, active = "", True
        rows.append(
            PaneRow(
                session_id=sid,
                pane_pid=to_int(pid),
                dead=dead.strip() == "1",
                dead_status=to_int(status.strip()),
                tty=clean_field(tty),
                command=clean_field(cmd),
                active=active,
            )
        )
    return rows


def sessions_from_rows(sessions: list[tuple[str, TmuxSession]], panes: list[PaneRow]) -> tuple[TmuxSession, ...]:
    """Attach each session's pane: the active pane of its active window, else its first pane."""
    chosen: dict[str, PaneRow] = {}
    for p in panes:
        if p.session_id not in chosen or (p.active and not chosen[p.session_id].active):
            chosen[p.session_id] = p
    out = []
    for key, s in sessions:
        p = chosen.get(key)
        if p is None:
            out.append(s)
            continue
        out.append(
            TmuxSession(
                name=s.name,
                created_epoch=s.created_epoch,
                windows=s.windows,
                attached=s.attached,
                pane_pid=p.pane_pid,
                pane_dead=p.dead,
                pane_dead_status=p.dead_status if p.dead else None,
                pane_command=p.command,
            )
        )
    return tuple(out)


# ----------------------------------------------------------------------------- capture-pane


def tmux_capture_step(session: str, lines: int = 200, *, socket: str | None = None, timeout: float = 5.0) -> Step:
    """The last ``lines`` lines of the session's active pane (wrapped lines joined).

    The session is resolved to its id (``$N``) by an exact name comparison in the script, then
    captured as ``-t $N:``. A name target would not do: tmux takes a prefix or a glob (``a``
    would match ``abc``), and even the exact form ``=NAME`` fails for a name that starts with
    ``$``, which tmux reads as a session id.
    """
    n = max(1, min(int(lines), 100_000))
    t = tmux_cmd(socket)
    script = (
        f": {PROBE_MARKER}\n"
        f"gd_want={shlex.quote(session)}\n"
        "gd_tab=$(printf '\\t')\n"
        "gd_id=\n"
        "while IFS= read -r gd_l; do\n"
        '  [ "${gd_l#*"$gd_tab"}" = "$gd_want" ] && { gd_id=${gd_l%%"$gd_tab"*}; break; }\n'
        "done <<GD_EOF\n"
        f"$({t} list-sessions -F {shlex.quote(_ID_NAME_FMT)} 2>/dev/null)\n"
        "GD_EOF\n"
        '[ -n "$gd_id" ] || { printf "can\'t find session: %s\\n" "$gd_want" >&2; exit 1; }\n'
        f'{t} capture-pane -p -J -S -{n} -t "$gd_id:"\n'
    )
    return Step(
        "tmux_capture", script, timeout=timeout, params={"session": session, "lines": n, "socket": socket}
    )


def parse_tmux_capture(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0):
    """→ ``tuple[str, ...]`` of sanitised lines (trailing blank screen rows dropped) or ProbeError."""
    try:
        if exit_code is None or exit_code in (124, 137):
            return ProbeError(Reason.TIMEOUT, "tmux did not answer", exit_code)
        if exit_code == 127:
            return ProbeError(Reason.NOT_FOUND, "tmux is not installed", exit_code)
        if exit_code != 0:
            msg = error_message(stdout, stderr) or "capture-pane failed"
            low = msg.lower()
            if "can't find" in low or any(s in low for s in _NO_SERVER):
                return ProbeError(Reason.NOT_FOUND, msg, exit_code)
            return ProbeError(Reason.PROBE_ERROR, msg, exit_code)
        text = decode(stdout) if isinstance(stdout, (bytes, bytearray)) else str(stdout)
        lines = [clean_line(x) for x in text.split("\n")]
        while lines and not lines[-1].strip():
            lines.pop()
        return tuple(lines)
    except Exception as exc:
        return ProbeError(Reason.PROBE_ERROR, clean_field(f"tmux capture: {exc!r}"))
