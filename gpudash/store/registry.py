"""Job registry, log read positions, teardown records, sessions and watch spans.

A *session* is one gpudash process that opened the store; a *watch span* is the first and last
time that session got data from a host. "Not watched 23:10–07:42" is the hole between the newest
span of any earlier session and the first data of this one.
"""

from __future__ import annotations

import json
import re
import sqlite3

from gpudash.model import HostSnapshot

MAX_JOBS_PER_SNAPSHOT = 32  # a discovery that lists every python process must not flood the registry
TERMINAL = {"gone", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SUCCEEDED", "STOPPED", "aged out"}


def job_statuses(snap: HostSnapshot) -> dict[str, str]:
    """job key → status words, as the sources say them (tmux, Slurm, Ray, processes)."""
    out: dict[str, str] = {}
    for t in snap.tmux:
        if t.pane_dead:
            out[f"tmux:{t.name}"] = ("exited" if t.pane_dead_status is None
                                     else f"exited {t.pane_dead_status}")
        else:
            out[f"tmux:{t.name}"] = "running"
    for j in snap.slurm:
        out[f"slurm:{j.job_id}"] = "aged out" if j.source == "aged_out" else (j.state or "?")
    for r in snap.ray:
        out[f"ray:{r.job_id}"] = r.status or "?"
    for p in snap.processes:
        out[f"pid:{p.pid}"] = "running"
    return dict(list(out.items())[:MAX_JOBS_PER_SNAPSHOT])


def is_terminal(status: str) -> bool:
    return status in TERMINAL or status.startswith("exited")


def update_jobs(conn: sqlite3.Connection, host: str, snap: HostSnapshot, at: float
                ) -> list[tuple[str, str | None, str]]:
    """Upsert the jobs this snapshot lists; a live job no longer listed becomes "gone".
    Returns the changes (job key, old status or None, new status). Call inside a transaction."""
    now_status = job_statuses(snap)
    known = {k: s for k, s in conn.execute(
        "SELECT job_key, status FROM jobs WHERE host = ?", (host,)).fetchall()}
    changes: list[tuple[str, str | None, str]] = []
    for key, status in now_status.items():
        old = known.get(key)
        if old is None:
            conn.execute("INSERT INTO jobs (host, job_key, status, first_seen, last_seen) "
                         "VALUES (?,?,?,?,?)", (host, key, status, at, at))
            changes.append((key, None, status))
        else:
            conn.execute("UPDATE jobs SET status = ?, last_seen = ? WHERE host = ? AND job_key = ?",
                         (status, at, host, key))
            if old != status:
                changes.append((key, old, status))
    for key, old in known.items():
        if key not in now_status and not is_terminal(old):
            conn.execute("UPDATE jobs SET status = 'gone' WHERE host = ? AND job_key = ?",
                         (host, key))
            changes.append((key, old, "gone"))
    return changes


def jobs(conn: sqlite3.Connection, host: str) -> list[dict]:
    rows = conn.execute(
        "SELECT job_key, status, restart_count, log_path, log_offset, log_inode, first_seen, "
        "last_seen FROM jobs WHERE host = ? ORDER BY last_seen DESC", (host,)).fetchall()
    names = ("job_key", "status", "restart_count", "log_path", "log_offset", "log_inode",
             "first_seen", "last_seen")
    return [dict(zip(names, r)) for r in rows]


def bump_restart(conn: sqlite3.Connection, host: str, job_key: str, at: float) -> int:
    conn.execute(
        "INSERT INTO jobs (host, job_key, status, restart_count, first_seen, last_seen) "
        "VALUES (?,?,'restarted',1,?,?) ON CONFLICT (host, job_key) DO UPDATE SET "
        "restart_count = restart_count + 1, status = 'restarted', last_seen = excluded.last_seen",
        (host, job_key, at, at))
    return int(conn.execute("SELECT restart_count FROM jobs WHERE host = ? AND job_key = ?",
                            (host, job_key)).fetchone()[0])


def prune_jobs(conn: sqlite3.Connection, now: float, keep_s: float) -> int:
    return conn.execute("DELETE FROM jobs WHERE last_seen < ?", (now - keep_s,)).rowcount


# ----------------------------------------------------------------------------- log positions


def save_log_position(conn: sqlite3.Connection, host: str, path: str, offset: int,
                      inode: int | None, at: float, job_key: str | None = None) -> None:
    conn.execute(
        "INSERT INTO log_positions (host, path, offset, inode, at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (host) DO UPDATE SET path = excluded.path, offset = excluded.offset, "
        "inode = excluded.inode, at = excluded.at",
        (host, path, int(offset), None if inode is None else int(inode), float(at)))
    if job_key is not None:
        conn.execute("UPDATE jobs SET log_path = ?, log_offset = ?, log_inode = ? "
                     "WHERE host = ? AND job_key = ?", (path, int(offset), inode, host, job_key))


def log_position(conn: sqlite3.Connection, host: str) -> dict | None:
    row = conn.execute("SELECT path, offset, inode, at FROM log_positions WHERE host = ?",
                       (host,)).fetchone()
    if row is None:
        return None
    return {"path": row[0], "offset": int(row[1]), "inode": row[2], "at": row[3]}


# ----------------------------------------------------------------------------- teardowns

# A URL keeps only scheme://host (its path or query can carry a token); `--token X`-like flags
# and KEY=VALUE secrets lose their value. Teardown outcomes hold commands and their output.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/\s@]*@)?([^/\s?#:]+)(?::\d+)?[^\s\"']*")
_SECRET_FLAG = re.compile(
    r"(?i)(--?(?:api[-_]?key|token|secret|password|passwd|auth)[= ])(\S+)")
_SECRET_ASSIGN = re.compile(r"(?i)\b([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|API_KEY|APIKEY)[A-Z0-9_]*=)(\S+)")


def redact(text: str) -> str:
    text = _URL.sub(lambda m: f"{m.group(1)}{m.group(2)}/…", text)
    text = _SECRET_FLAG.sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _SECRET_ASSIGN.sub(lambda m: f"{m.group(1)}[redacted]", text)


def _redact_tree(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_tree(v) for v in value]
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return redact(str(value))


def record_teardown(conn: sqlite3.Connection, host: str, outcome: dict, at: float) -> int:
    body = json.dumps(_redact_tree(outcome), separators=(",", ":"), default=str)
    return int(conn.execute("INSERT INTO teardowns (host, at, outcome) VALUES (?,?,?)",
                            (host, float(at), body)).lastrowid)


def teardowns(conn: sqlite3.Connection, host: str, limit: int = 50) -> list[dict]:
    rows = conn.execute("SELECT at, outcome FROM teardowns WHERE host = ? ORDER BY at DESC, id DESC "
                        "LIMIT ?", (host, limit)).fetchall()
    out = []
    for at, body in rows:
        try:
            out.append({"at": at, "outcome": json.loads(body)})
        except ValueError:
            continue
    return out


# ----------------------------------------------------------------------------- sessions


def start_session(conn: sqlite3.Connection, pid: int, at: float) -> int:
    return int(conn.execute("INSERT INTO sessions (pid, started_at) VALUES (?,?)",
                            (pid, float(at))).lastrowid)


def close_session(conn: sqlite3.Connection, session: int, at: float) -> None:
    conn.execute("UPDATE sessions SET closed_at = ? WHERE id = ?", (float(at), session))


def touch_span(conn: sqlite3.Connection, session: int, host: str, at: float) -> None:
    conn.execute(
        "INSERT INTO watch_spans (session, host, first_at, last_at) VALUES (?,?,?,?) "
        "ON CONFLICT (session, host) DO UPDATE SET last_at = max(last_at, excluded.last_at)",
        (session, host, float(at), float(at)))


def last_seen(conn: sqlite3.Connection, host: str) -> float | None:
    row = conn.execute("SELECT max(last_at) FROM watch_spans WHERE host = ?", (host,)).fetchone()
    return None if row[0] is None else float(row[0])


def previous_look(conn: sqlite3.Connection, host: str, session: int, before: float
                  ) -> float | None:
    """When an earlier (or concurrent) session last got data from ``host``, up to ``before``."""
    row = conn.execute("SELECT max(last_at) FROM watch_spans WHERE host = ? AND session != ? "
                       "AND last_at <= ?", (host, session, float(before))).fetchone()
    return None if row[0] is None else float(row[0])


def span_start(conn: sqlite3.Connection, session: int, host: str) -> float | None:
    row = conn.execute("SELECT first_at FROM watch_spans WHERE session = ? AND host = ?",
                       (session, host)).fetchone()
    return None if row is None else float(row[0])


def prune_sessions(conn: sqlite3.Connection, now: float, keep_s: float) -> None:
    # Keep each host's newest span whatever its age: it is where the next gap starts.
    conn.execute("DELETE FROM watch_spans WHERE last_at < ? AND last_at < (SELECT max(last_at) "
                 "FROM watch_spans w2 WHERE w2.host = watch_spans.host)", (now - keep_s,))
    conn.execute("DELETE FROM sessions WHERE started_at < ? AND id NOT IN "
                 "(SELECT session FROM watch_spans)", (now - keep_s,))
