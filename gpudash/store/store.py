"""The history file: samples, the events/alerts journal, the job registry, log positions,
teardown records — one SQLite file in the user's state dir, shared safely by several gpudash
processes.

Crash safety: every write is one short transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); SQLite's
journal (WAL, or the rollback journal on network filesystems) makes a ``kill -9`` at any instant
leave either the old or the new state, never a torn one. ``synchronous=NORMAL`` in WAL loses at
most the last transactions on *power* loss, never consistency; the rollback journal uses FULL.

Every method is cheap (milliseconds) and synchronous; writes that fail (a lock held past the busy
timeout, a full disk) are logged and counted, never raised into the watcher: history is a
convenience, the live dashboard must keep running without it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from gpudash.model import CheckResult, Event, HostSnapshot, State
from gpudash.store import journal, registry, samples
from gpudash.store.journal import JournalEntry
from gpudash.store.paths import default_db_path, ensure_private_file, is_network_fs, tighten_sidecars
from gpudash.store.schema import migrate

log = logging.getLogger(__name__)

MAINTAIN_EVERY_S = 300.0
EVENTS_KEEP_S = 30 * 86400.0
EVENTS_MAX_ROWS = 100_000
JOBS_KEEP_S = 30 * 86400.0
SESSIONS_KEEP_S = 30 * 86400.0
MIN_GAP_S = 120.0  # a shorter hole between two looks is a restart, not an unwatched night


class StoreError(RuntimeError):
    """The history file cannot be used (not a database, newer schema, unwritable)."""


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path, journal_mode: str,
                 clock: Callable[[], float], repeat_window_s: float) -> None:
        self.conn = conn
        self.path = path
        self.journal_mode = journal_mode
        self.clock = clock
        self.repeat_window_s = repeat_window_s
        self.write_errors = 0
        self._lock = threading.RLock()
        self._last_t: dict[tuple[str, str], float] = {}
        self._last_pos: dict[str, tuple] = {}
        self._observed: dict[tuple[str, str], State] = {}
        self._maintained_at = 0.0
        self.session = self._write(lambda c: registry.start_session(c, os.getpid(), clock()), 0)

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, clock: Callable[[], float] = time.time,
             journal_mode: str | None = None, mounts_text: str | None = None,
             busy_timeout_s: float = 5.0, repeat_window_s: float = 600.0) -> "Store":
        """Open (creating, 0600) the history file. ``journal_mode`` None: WAL, or the rollback
        journal ("delete") when the directory is on NFS/SMB/sshfs (``mounts_text`` stands in for
        /proc/mounts in tests). Raises StoreError when the file cannot be used."""
        path = Path(path) if path is not None else default_db_path()
        try:
            ensure_private_file(path)
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from exc
        if journal_mode is None:
            journal_mode = "delete" if is_network_fs(path.parent, mounts_text) else "wal"
        if journal_mode not in ("wal", "delete"):
            raise ValueError(f"journal_mode must be 'wal' or 'delete', not {journal_mode!r}")
        try:
            conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            got = conn.execute(f"PRAGMA journal_mode={journal_mode}").fetchone()[0].lower()
            if got != journal_mode:
                log.warning("history: journal_mode %s refused (got %s)", journal_mode, got)
            conn.execute("PRAGMA synchronous=" + ("NORMAL" if got == "wal" else "FULL"))
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable gpudash history ({exc}); move it aside "
                             "and start again") from exc
        except RuntimeError as exc:  # SchemaTooNew
            raise StoreError(str(exc)) from exc
        tighten_sidecars(path)
        return cls(conn, path, got, clock, repeat_window_s)

    def close(self) -> None:
        """Mark this session closed (the next start measures its gap from here) and close."""
        with self._lock:
            if self.conn is None:
                return
            self._write(lambda c: registry.close_session(c, self.session, self.clock()), None)
            try:
                self.conn.execute("PRAGMA optimize")
            except sqlite3.DatabaseError:
                pass
            self.conn.close()
            self.conn = None  # type: ignore[assignment]

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self):
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _write(self, fn, default):
        """Run ``fn(conn)`` in one transaction; on a database error log, count, return default."""
        if self.conn is None:
            return default
        try:
            with self._tx() as c:
                return fn(c)
        except sqlite3.Error as exc:
            self.write_errors += 1
            log.warning("history write failed: %s", exc)
            return default

    def _read(self, fn, default):
        if self.conn is None:
            return default
        try:
            with self._lock:
                return fn(self.conn)
        except sqlite3.Error as exc:
            log.warning("history read failed: %s", exc)
            return default

    # ------------------------------------------------------------------ samples

    def record_samples(self, host: str, snapshot: HostSnapshot) -> int:
        """Store the probes whose sample is newer than the last one stored (call after every
        refresh: unchanged probes cost nothing), the job registry when the job probes ran, and
        that this session saw the host. Returns the number of probe readings stored."""
        fresh = [(p, t, v) for p, (t, v) in samples.encode_probes(snapshot).items()
                 if t > self._last_t.get((host, p), float("-inf"))]
        jobs_fresh = (snapshot.jobs_at is not None
                      and snapshot.jobs_at > self._last_t.get((host, "jobs"), float("-inf")))
        if not fresh and not jobs_fresh:
            return 0

        def write(c):
            n = samples.insert_raw(c, host, fresh)
            # "seen" is now (data just arrived), not the sample's own time: the events of this
            # refresh were stamped after the samples and belong to this look.
            seen = max([t for _, t, _ in fresh] + ([snapshot.jobs_at] if jobs_fresh else [])
                       + [self.clock()])
            registry.touch_span(c, self.session, host, seen)
            if jobs_fresh:
                self._journal_jobs(c, host, registry.update_jobs(c, host, snapshot,
                                                                 snapshot.jobs_at))
            return n

        n = self._write(write, None)
        if n is None:
            return 0
        for p, t, _ in fresh:
            self._last_t[(host, p)] = t
        if jobs_fresh:
            self._last_t[(host, "jobs")] = snapshot.jobs_at
        if self.clock() - self._maintained_at >= MAINTAIN_EVERY_S:
            self.maintain()
        return n

    def record_jobs(self, host: str, snapshot: HostSnapshot, at: float | None = None) -> list:
        """Update the job registry from a snapshot; journal each status change (kind "job")."""
        at = self.clock() if at is None else at
        return self._write(lambda c: self._journal_jobs(
            c, host, registry.update_jobs(c, host, snapshot, at), at), [])

    def _journal_jobs(self, c, host: str, changes, at: float | None = None) -> list:
        at = self.clock() if at is None else at
        for key, old, new in changes:
            msg = f"{key}: {old or 'new'} → {new}"
            journal.insert_entry(c, at=at, host=host, key=key, kind="job", old=old, new=new,
                                 message=msg, session=self.session)
        return changes

    def history(self, host: str, since: float, until: float | None = None,
                step_s: float | None = None) -> dict:
        """Series to restore sparklines/trends (see samples.history for the shape);
        ``step_s`` averages into buckets (long chart windows)."""
        return self._read(lambda c: samples.history(c, host, since, until, step_s),
                          {"gpu_util": {}, "gpu_mem": {}, "disk": {}, "memory": []})

    def maintain(self, now: float | None = None) -> None:
        """Downsample and apply retention (run every few minutes by record_samples)."""
        now = self.clock() if now is None else now
        self._maintained_at = now

        def work(c):
            samples.compact(c, now)
            journal.prune(c, now, EVENTS_KEEP_S, EVENTS_MAX_ROWS)
            registry.prune_jobs(c, now, JOBS_KEEP_S)
            registry.prune_sessions(c, now, SESSIONS_KEEP_S)

        self._write(work, None)

    # ------------------------------------------------------------------ log positions

    def save_log_position(self, host: str, path: str, offset: int, inode: int | None,
                          at: float | None = None, job_key: str | None = None) -> None:
        key = (path, int(offset), inode)
        if self._last_pos.get(host) == key:
            return
        at = self.clock() if at is None else at
        if self._write(lambda c: registry.save_log_position(c, host, path, offset, inode, at,
                                                            job_key) or True, None):
            self._last_pos[host] = key

    def log_position(self, host: str) -> dict | None:
        """``{"path", "offset", "inode", "at"}`` where the previous session stopped reading."""
        return self._read(lambda c: registry.log_position(c, host), None)

    # ------------------------------------------------------------------ journal / alerts

    def record_event(self, event: Event) -> None:
        """Journal an event as is (no dedup; alerts go through claim_alert instead)."""
        self._write(lambda c: journal.record_event(c, event, self.session), None)

    def note(self, host: str, key: str, message: str, at: float | None = None) -> None:
        """Journal a free-form note (kind "note"), e.g. the result of triaging the bytes that
        were written while nobody watched."""
        at = self.clock() if at is None else at
        self._write(lambda c: journal.insert_entry(c, at=at, host=host, key=key, kind="note",
                                                   old=None, new="note", message=message,
                                                   session=self.session), None)

    def claim_alert(self, event: Event) -> bool:
        """Journal ``event`` and return True only for the first of all processes sharing this
        file to claim this (host, check, state) episode — and not when the same state was
        notified within ``repeat_window_s``. On a database error returns True: a duplicate
        notification is better than a lost one."""
        return self._write(lambda c: journal.claim_alert(c, event, self.session,
                                                         self.repeat_window_s), True)

    def observe_checks(self, host: str, checks: Iterable[CheckResult], at: float | None = None) -> int:
        """Tell the store which checks are OK now, so a condition that cleared without an event
        (a fresh `status` process starts from OK silently) re-alerts when it comes back."""
        at = self.clock() if at is None else at
        cleared = [c.key for c in checks if c.state is State.OK
                   and self._observed.get((host, c.key)) is not State.OK]
        for c in checks:
            self._observed[(host, c.key)] = c.state
        if not cleared:
            return 0
        return self._write(lambda conn: sum(journal.observe_clear(conn, host, k, at)
                                            for k in cleared), 0)

    def events(self, since: float, host: str | None = None, until: float | None = None,
               limit: int = 1000) -> list[JournalEntry]:
        return self._read(lambda c: journal.events(c, since, host, until, limit), [])

    def ack(self, host: str | None = None) -> int:
        return self._write(lambda c: journal.ack(c, host), 0)

    def unacked(self, host: str | None = None) -> int:
        return self._read(lambda c: journal.unacked(c, host), 0)

    # ------------------------------------------------------------------ jobs / teardown

    def jobs(self, host: str) -> list[dict]:
        return self._read(lambda c: registry.jobs(c, host), [])

    def bump_restart(self, host: str, job_key: str, at: float | None = None) -> int:
        at = self.clock() if at is None else at
        return self._write(lambda c: registry.bump_restart(c, host, job_key, at), 0)

    def record_teardown(self, host: str, outcome: dict, at: float | None = None) -> int | None:
        """Store a teardown outcome (URLs cut to scheme://host, token-like values redacted)."""
        at = self.clock() if at is None else at
        return self._write(lambda c: registry.record_teardown(c, host, outcome, at), None)

    def teardowns(self, host: str, limit: int = 50) -> list[dict]:
        return self._read(lambda c: registry.teardowns(c, host, limit), [])

    # ------------------------------------------------------------------ while nobody watched

    def last_seen(self, host: str) -> float | None:
        """The last time any session got data from ``host``."""
        return self._read(lambda c: registry.last_seen(c, host), None)

    def unwatched_gap(self, host: str, now: float | None = None,
                      min_gap_s: float = MIN_GAP_S) -> tuple[float, float] | None:
        """(from, to): the previous session's last look at ``host`` and this session's first
        (or now). None on the first ever watch or when the hole is shorter than ``min_gap_s``."""
        now = self.clock() if now is None else now

        def q(c):
            to = registry.span_start(c, self.session, host) or now
            prev = registry.previous_look(c, host, self.session, to)
            if prev is None or to - prev < min_gap_s:
                return None
            return (prev, to)

        return self._read(q, None)

    def since_you_last_looked(self, host: str, now: float | None = None,
                              limit: int = 200) -> list[JournalEntry]:
        """Journal entries (state changes, job changes, notes) since an earlier session last
        looked at ``host`` — what happened while this one was not running. [] on a first watch."""
        now = self.clock() if now is None else now

        def q(c):
            to = registry.span_start(c, self.session, host) or now
            prev = registry.previous_look(c, host, self.session, to)
            if prev is None:
                return []
            # strictly after: what the earlier session saw at its last look it already showed
            return journal.events(c, prev + 1e-6, host, None, limit)

        return self._read(q, [])

    def integrity_check(self) -> str:
        return self._read(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0], "closed")
