"""The history schema and its migrations.

``schema_version`` holds one row; each migration is a list of statements applied in one
transaction, so a crash mid-migration leaves the previous version intact. Times are epoch seconds
(REAL). No table ever holds a secret: webhook URLs and tokens are read from their file or env var
at send time and never written here.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_V1 = [
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    # One row per probe reading per GPU / mount ("key"); a..d are the values (see samples.py),
    # untyped so byte counts stay integers. res = 0: a raw sample; res = 60: the mean of a
    # minute standing for n raw rows. WITHOUT ROWID: the primary key is the only index.
    """CREATE TABLE IF NOT EXISTS samples (
        host TEXT NOT NULL, probe TEXT NOT NULL, key TEXT NOT NULL, res INTEGER NOT NULL,
        t REAL NOT NULL, n INTEGER NOT NULL DEFAULT 1, a, b, c, d,
        PRIMARY KEY (host, probe, t, key, res)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS samples_by_age ON samples (res, t)",
    # The events/alerts journal. dedup is NULL for plain journal entries and a unique key for
    # alerts claimed through claim_alert (two instances sharing the file: only one inserts it).
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY, at REAL NOT NULL, host TEXT NOT NULL, key TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'state', old TEXT, new TEXT NOT NULL, message TEXT NOT NULL,
        triage_class TEXT, acked INTEGER NOT NULL DEFAULT 0, notified INTEGER NOT NULL DEFAULT 0,
        session INTEGER, dedup TEXT UNIQUE)""",
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (at)",
    "CREATE INDEX IF NOT EXISTS events_by_host ON events (host, at)",
    # The last state told about per check, and how many times it changed (the alert episode):
    # an alert's dedup key is (host, key, state, episode).
    """CREATE TABLE IF NOT EXISTS conditions (
        host TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
        episode INTEGER NOT NULL, PRIMARY KEY (host, key))""",
    """CREATE TABLE IF NOT EXISTS jobs (
        host TEXT NOT NULL, job_key TEXT NOT NULL, status TEXT NOT NULL,
        restart_count INTEGER NOT NULL DEFAULT 0, log_path TEXT, log_offset INTEGER,
        log_inode INTEGER, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        PRIMARY KEY (host, job_key))""",
    # The run log's read position per host (where the next session resumes reading).
    """CREATE TABLE IF NOT EXISTS log_positions (
        host TEXT PRIMARY KEY, path TEXT NOT NULL, offset INTEGER NOT NULL, inode INTEGER,
        at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS teardowns (
        id INTEGER PRIMARY KEY, host TEXT NOT NULL, at REAL NOT NULL, outcome TEXT NOT NULL)""",
    # One row per gpudash process that opened the store; closed_at NULL: still running, or it
    # died (then its watch spans' last_at tells when it last looked).
    """CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY, pid INTEGER, started_at REAL NOT NULL, closed_at REAL)""",
    """CREATE TABLE IF NOT EXISTS watch_spans (
        session INTEGER NOT NULL, host TEXT NOT NULL, first_at REAL NOT NULL,
        last_at REAL NOT NULL, PRIMARY KEY (session, host))""",
    "CREATE INDEX IF NOT EXISTS spans_by_host ON watch_spans (host, last_at)",
]

MIGRATIONS: dict[int, list[str]] = {1: _V1}


class SchemaTooNew(RuntimeError):
    """The file was written by a newer gpudash: refuse rather than guess."""


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if row is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file to SCHEMA_VERSION; each step atomic. Returns the version."""
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; the other waits and sees it done
    try:
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"history schema v{version} is newer than this gpudash "
                               f"(v{SCHEMA_VERSION}): upgrade gpudash or move the file")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            for stmt in MIGRATIONS[v]:
                conn.execute(stmt)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (v,))
        conn.execute("COMMIT")
        return max(version, SCHEMA_VERSION)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
