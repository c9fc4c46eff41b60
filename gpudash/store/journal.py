"""The events/alerts journal and the cross-instance alert claim.

Two gpudash processes may share one history file (a TUI in a tmux pane and a cron ``status``).
Both see the same state change; only one may notify. ``claim_alert`` decides that atomically: the
``conditions`` table keeps, per (host, check), the last state someone was told about and an
episode counter that grows on every change; the alert's dedup key is (host, key, state, episode)
and the journal's UNIQUE constraint on it lets exactly one INSERT succeed. A fresh process that
sees a condition that already held (cron re-evaluating a full disk every 10 minutes) finds the
same episode and is told "already sent".
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gpudash.model import Event, State


@dataclass(frozen=True)
class JournalEntry:
    """One journal row: a health state change (``kind`` "state"), a job change ("job"), or a
    note the app recorded ("note"). ``old``/``new`` are State values for "state", the job's own
    status words for "job"."""

    id: int
    at: float
    host: str
    key: str
    kind: str
    old: str | None
    new: str
    message: str
    triage_class: str | None = None
    acked: bool = False
    notified: bool = False

    def to_event(self) -> Event | None:
        """The model.Event for a "state" entry (None for other kinds)."""
        if self.kind != "state":
            return None
        try:
            old = State(self.old) if self.old else None
            return Event(self.at, self.host, self.key, old, State(self.new), self.message,
                         self.triage_class)
        except ValueError:
            return None


_COLS = "id, at, host, key, kind, old, new, message, triage_class, acked, notified"


def _entry(row) -> JournalEntry:
    return JournalEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                        bool(row[9]), bool(row[10]))


def _state_value(s) -> str | None:
    return None if s is None else getattr(s, "value", str(s))


def insert_entry(conn: sqlite3.Connection, *, at: float, host: str, key: str, kind: str,
                 old: str | None, new: str, message: str, triage_class: str | None = None,
                 session: int | None = None, notified: bool = False,
                 dedup: str | None = None) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO events (at, host, key, kind, old, new, message, triage_class, "
        "notified, session, dedup) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (float(at), host, key, kind, old, new, message, triage_class, int(notified), session,
         dedup))
    return cur.rowcount == 1


def record_event(conn: sqlite3.Connection, event: Event, session: int | None) -> None:
    insert_entry(conn, at=event.at, host=event.host, key=event.key, kind="state",
                 old=_state_value(event.old), new=_state_value(event.new) or "",
                 message=event.message, triage_class=event.triage_class, session=session)


def claim_alert(conn: sqlite3.Connection, event: Event, session: int | None,
                repeat_window_s: float) -> bool:
    """True for exactly one claimer of this (host, key, state) episode. Call inside
    ``BEGIN IMMEDIATE`` (the write lock makes read-then-insert atomic across processes).

    A change back into a state that was notified less than ``repeat_window_s`` ago opens a new
    episode (it is journaled) but is not notified again: no repeats while a condition flaps.
    """
    new = _state_value(event.new) or ""
    row = conn.execute("SELECT state, episode FROM conditions WHERE host = ? AND key = ?",
                       (event.host, event.key)).fetchone()
    if row is not None and row[0] == new:
        return False  # this episode was claimed already (by us or another instance)
    episode = int(row[1]) + 1 if row is not None else 1
    conn.execute(
        "INSERT INTO conditions (host, key, state, since, episode) VALUES (?,?,?,?,?) "
        "ON CONFLICT (host, key) DO UPDATE SET state = excluded.state, "
        "since = excluded.since, episode = excluded.episode",
        (event.host, event.key, new, float(event.at), episode))
    recent = repeat_window_s > 0 and conn.execute(
        "SELECT 1 FROM events WHERE host = ? AND key = ? AND new = ? AND notified = 1 "
        "AND kind = 'state' AND at > ? LIMIT 1",
        (event.host, event.key, new, float(event.at) - repeat_window_s)).fetchone() is not None
    dedup = "\x1f".join((event.host, event.key, new, str(episode)))
    inserted = insert_entry(conn, at=event.at, host=event.host, key=event.key, kind="state",
                            old=_state_value(event.old), new=new, message=event.message,
                            triage_class=event.triage_class, session=session,
                            notified=not recent, dedup=dedup)
    return inserted and not recent


def observe_clear(conn: sqlite3.Connection, host: str, key: str, at: float) -> bool:
    """A check seen OK again: close its episode so the next failure is a new alert. Only a
    change of the stored state writes. Call inside a transaction."""
    row = conn.execute("SELECT state, episode FROM conditions WHERE host = ? AND key = ?",
                       (host, key)).fetchone()
    if row is None or row[0] == State.OK.value:
        return False
    conn.execute("UPDATE conditions SET state = ?, since = ?, episode = ? WHERE host = ? "
                 "AND key = ?", (State.OK.value, float(at), int(row[1]) + 1, host, key))
    return True


def events(conn: sqlite3.Connection, since: float, host: str | None = None,
           until: float | None = None, limit: int = 1000) -> list[JournalEntry]:
    """Journal entries with ``since <= at (<= until)``, oldest first, newest ``limit`` kept."""
    sql = f"SELECT {_COLS} FROM events WHERE at >= ?"
    args: list = [float(since)]
    if until is not None:
        sql += " AND at <= ?"
        args.append(float(until))
    if host is not None:
        sql += " AND host = ?"
        args.append(host)
    sql = f"SELECT * FROM ({sql} ORDER BY at DESC, id DESC LIMIT ?) ORDER BY at, id"
    args.append(int(limit))
    return [_entry(r) for r in conn.execute(sql, args).fetchall()]


def ack(conn: sqlite3.Connection, host: str | None = None) -> int:
    if host is None:
        return conn.execute("UPDATE events SET acked = 1 WHERE acked = 0").rowcount
    return conn.execute("UPDATE events SET acked = 1 WHERE acked = 0 AND host = ?",
                        (host,)).rowcount


def unacked(conn: sqlite3.Connection, host: str | None = None) -> int:
    """Unacknowledged WARN/CRIT entries (what the alert counter shows after a restart)."""
    sql = "SELECT count(*) FROM events WHERE acked = 0 AND kind = 'state' AND new IN ('WARN', 'CRIT')"
    args: tuple = ()
    if host is not None:
        sql += " AND host = ?"
        args = (host,)
    return int(conn.execute(sql, args).fetchone()[0])


def prune(conn: sqlite3.Connection, now: float, keep_s: float, max_rows: int) -> int:
    """Retention for the journal: older than ``keep_s`` go, and never more than ``max_rows``."""
    n = conn.execute("DELETE FROM events WHERE at < ?", (now - keep_s,)).rowcount
    n += conn.execute("DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC "
                      "LIMIT 1 OFFSET ?)", (max_rows,)).rowcount
    return n
