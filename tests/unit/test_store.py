"""The history store: files and modes, schema, samples round trip, journal and alert claims,
job registry, log positions, teardown records, unwatched gaps."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from gpudash.model import (
    CheckResult, DiskUsage, Event, GpuSample, HostSnapshot, MemorySample, ProcessInfo, SlurmJob,
    State, TmuxSession,
)
from gpudash.store import Store, StoreError
from gpudash.store.schema import SCHEMA_VERSION


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def gpu_snap(host: str, at: float, utils=(50.0,), mem=(40.0,)) -> HostSnapshot:
    gpus = tuple(GpuSample(i, util_pct=u, mem_used_mib=m * 800, mem_total_mib=80000)
                 for i, (u, m) in enumerate(zip(utils, mem)))
    return HostSnapshot(name=host, taken_at=at, gpus=gpus, gpu_at=at)


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "state" / "gpudash" / "history.sqlite3"


# ----------------------------------------------------------------------------- files


def test_files_private_even_under_a_permissive_umask(db, clock):
    old = os.umask(0o022)
    try:
        st = Store.open(db, clock=clock)
        st.record_samples("a", gpu_snap("a", clock.t))
    finally:
        os.umask(old)
    assert st.journal_mode == "wal"
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    for f in files:
        assert f.exists(), f
        assert mode(f) == 0o600, (f, oct(mode(f)))
    assert mode(db.parent) == 0o700
    st.close()


def test_rollback_journal_file_is_private_too(db, clock):
    old = os.umask(0o022)
    try:
        st = Store.open(db, clock=clock, journal_mode="delete")
        assert st.journal_mode == "delete"
        # hold a write transaction open so the -journal file exists, and look at it
        st.conn.execute("BEGIN IMMEDIATE")
        st.conn.execute("INSERT INTO teardowns (host, at, outcome) VALUES ('a', 1, '{}')")
        journal = db.with_name(db.name + "-journal")
        assert journal.exists()
        assert mode(journal) == 0o600
        st.conn.execute("ROLLBACK")
    finally:
        os.umask(old)
    st.close()


def test_schema_version_recorded_and_reopen_keeps_data(db, clock):
    st = Store.open(db, clock=clock)
    st.record_samples("a", gpu_snap("a", clock.t))
    st.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()
    st = Store.open(db, clock=clock)
    assert st.history("a", 0)["gpu_util"] == {0: [(clock.t, 50.0)]}
    st.close()


def test_newer_schema_refused(db, clock):
    Store.open(db, clock=clock).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(db, clock=clock)


def test_not_a_database_is_a_clear_error(db, clock):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable"):
        Store.open(db, clock=clock)


# ----------------------------------------------------------------------------- samples


def test_samples_written_only_when_a_probe_has_a_newer_sample(db, clock):
    st = Store.open(db, clock=clock)
    snap = gpu_snap("a", clock.t, utils=(10.0, 90.0), mem=(20.0, 30.0))
    assert st.record_samples("a", snap) == 1
    assert st.record_samples("a", snap) == 0  # same gpu_at: nothing new
    later = gpu_snap("a", clock.t + 2, utils=(11.0, None), mem=(21.0, 31.0))
    disk = DiskUsage("/data", size_bytes=1000, used_bytes=900, avail_bytes=100,
                     inodes_total=50, inodes_used=49, inodes_free=1)
    mem = MemorySample(source="cgroup_v2", used_bytes=5, limit_bytes=10)
    later = HostSnapshot(name="a", gpus=later.gpus, gpu_at=clock.t + 2, disks=(disk,),
                         disk_at=clock.t + 2, memory=mem, memory_at=clock.t + 2)
    assert st.record_samples("a", later) == 3
    h = st.history("a", since=clock.t - 1)
    assert h["gpu_util"] == {0: [(clock.t, 10.0), (clock.t + 2, 11.0)],
                             1: [(clock.t, 90.0), (clock.t + 2, None)]}  # None stays None
    assert h["gpu_mem"][1] == [(clock.t, 30.0), (clock.t + 2, 31.0)]
    assert h["disk"] == {"/data": [(clock.t + 2, 900, 1000, 49, 50)]}
    assert h["memory"] == [(clock.t + 2, 5, 10)]
    assert st.history("b", since=0)["gpu_util"] == {}
    st.close()


# ----------------------------------------------------------------------------- journal


def ev(at, key="disk.bytes:/", new=State.CRIT, old=None, host="a") -> Event:
    return Event(at, host, key, old, new, f"{key}: {new.value}")


def test_claim_alert_once_per_episode_and_again_after_a_clear(db, clock):
    st = Store.open(db, clock=clock, repeat_window_s=0)
    assert st.claim_alert(ev(clock.t)) is True
    assert st.claim_alert(ev(clock.t + 60)) is False  # same condition, re-evaluated
    assert st.claim_alert(ev(clock.t + 120, new=State.OK, old=State.CRIT)) is True
    assert st.claim_alert(ev(clock.t + 180)) is True  # it came back: a new alert
    kinds = [(e.new, e.notified) for e in st.events(0)]
    assert kinds == [("CRIT", True), ("OK", True), ("CRIT", True)]
    st.close()


def test_repeat_window_journals_but_does_not_renotify(db, clock):
    st = Store.open(db, clock=clock, repeat_window_s=600)
    assert st.claim_alert(ev(clock.t)) is True
    assert st.claim_alert(ev(clock.t + 30, new=State.OK, old=State.CRIT)) is True
    assert st.claim_alert(ev(clock.t + 60, old=State.OK)) is False  # back within 10 min
    assert st.claim_alert(ev(clock.t + 300, new=State.OK, old=State.CRIT)) is False  # OK told at +30
    assert st.claim_alert(ev(clock.t + 1400, old=State.OK)) is True  # last CRIT told at t
    assert [e.notified for e in st.events(0)] == [True, True, False, False, True]
    st.close()


def test_two_stores_on_one_file_never_both_claim(db, clock):
    a = Store.open(db, clock=clock, repeat_window_s=0)
    b = Store.open(db, clock=clock, repeat_window_s=0)
    got = []
    for i in range(20):
        first, second = (a, b) if i % 2 else (b, a)
        # each instance sees the change at its own time (its own probe round)
        got.append((first.claim_alert(ev(clock.t + i, key=f"k{i}")),
                    second.claim_alert(ev(clock.t + i + 3, key=f"k{i}"))))
    assert got == [(True, False)] * 20
    assert len(a.events(0)) == 20
    a.close()
    b.close()


def test_observe_checks_clears_a_condition_a_fresh_process_never_reported(db, clock):
    # cron `status` runs: 1st sees CRIT (alert), 2nd starts fresh and sees OK (no event: the
    # engine reports a first OK silently), 3rd sees CRIT again: that is a new alert.
    st = Store.open(db, clock=clock, repeat_window_s=0)
    assert st.claim_alert(ev(clock.t)) is True
    second = Store.open(db, clock=clock, repeat_window_s=0)
    second.observe_checks("a", [CheckResult("disk.bytes:/", State.OK, "fine")], at=clock.t + 600)
    second.close()
    third = Store.open(db, clock=clock, repeat_window_s=0)
    assert third.claim_alert(ev(clock.t + 1200)) is True
    third.close()
    st.close()


def test_ack_and_unacked(db, clock):
    st = Store.open(db, clock=clock, repeat_window_s=0)
    st.claim_alert(ev(clock.t, host="a"))
    st.claim_alert(ev(clock.t, host="b", new=State.WARN))
    st.record_event(ev(clock.t, host="b", key="gpu.temp:0", new=State.OK, old=State.WARN))
    assert st.unacked() == 2
    assert st.ack("a") == 1
    assert st.unacked("a") == 0 and st.unacked("b") == 1
    assert st.ack() == 2  # b's WARN and its OK entry
    assert st.unacked() == 0
    st.close()


def test_events_filters_and_roundtrips_to_model(db, clock):
    st = Store.open(db, clock=clock)
    e = Event(clock.t, "a", "run.ended", State.OK, State.CRIT, "run ended", "host_oom")
    st.record_event(e)
    st.record_event(ev(clock.t + 5, host="b"))
    assert [x.host for x in st.events(clock.t)] == ["a", "b"]
    assert [x.host for x in st.events(clock.t + 1)] == ["b"]
    assert [x.to_event() for x in st.events(0, host="a")] == [e]
    st.close()


# ----------------------------------------------------------------------------- jobs, logs, teardown


def test_job_registry_tracks_changes_and_disappearance(db, clock):
    st = Store.open(db, clock=clock)
    s1 = HostSnapshot(name="a", jobs_at=clock.t,
                      tmux=(TmuxSession("train", pane_pid=10),),
                      slurm=(SlurmJob("123", state="RUNNING"),),
                      processes=(ProcessInfo(10, "python train.py"),))
    st.record_samples("a", s1)
    s2 = HostSnapshot(name="a", jobs_at=clock.t + 15,
                      tmux=(TmuxSession("train", pane_dead=True, pane_dead_status=137),),
                      slurm=(SlurmJob("123", state="FAILED", source="sacct"),))
    st.record_samples("a", s2)
    jobs = {j["job_key"]: j["status"] for j in st.jobs("a")}
    assert jobs == {"tmux:train": "exited 137", "slurm:123": "FAILED", "pid:10": "gone"}
    changes = [(e.key, e.old, e.new) for e in st.events(0, host="a") if e.kind == "job"]
    assert ("tmux:train", "running", "exited 137") in changes
    assert ("slurm:123", "RUNNING", "FAILED") in changes
    assert ("pid:10", "running", "gone") in changes
    # a snapshot whose job probes did not run again changes nothing
    st.record_samples("a", HostSnapshot(name="a", jobs_at=clock.t + 15))
    assert {j["job_key"]: j["status"] for j in st.jobs("a")} == jobs
    assert st.bump_restart("a", "tmux:train") == 1
    assert st.bump_restart("a", "tmux:train") == 2
    st.close()


def test_log_position_roundtrip(db, clock):
    st = Store.open(db, clock=clock)
    assert st.log_position("a") is None
    st.save_log_position("a", "/runs/x/train.log", 12345, 777)
    st.save_log_position("a", "/runs/x/train.log", 23456, 777)
    st.close()
    st = Store.open(db, clock=clock)
    assert st.log_position("a") == {"path": "/runs/x/train.log", "offset": 23456, "inode": 777,
                                    "at": clock.t}
    st.close()


def test_teardown_records_never_keep_secrets(db, clock):
    st = Store.open(db, clock=clock)
    st.record_teardown("a", {
        "ok": True, "checks": [{"key": "artifacts", "state": "OK"}],
        "stop_command": "runpodctl stop pod abc --api-key SEKRIT1",
        "output": "posted to https://hooks.slack.com/services/T0/B0/SEKRIT2 ok",
        "env": "HF_TOKEN=SEKRIT3 python verify.py",
    })
    raw = db.read_bytes() + db.with_name(db.name + "-wal").read_bytes()
    for secret in (b"SEKRIT1", b"SEKRIT2", b"SEKRIT3"):
        assert secret not in raw
    rec = st.teardowns("a")[0]["outcome"]
    assert rec["ok"] is True and rec["checks"] == [{"key": "artifacts", "state": "OK"}]
    assert "https://hooks.slack.com/" in rec["output"]
    st.close()


# ----------------------------------------------------------------------------- gaps


def test_unwatched_gap_and_since_you_last_looked(db, clock):
    st = Store.open(db, clock=clock, repeat_window_s=0)
    assert st.unwatched_gap("a") is None  # never watched
    st.record_samples("a", gpu_snap("a", clock.t))
    st.claim_alert(ev(clock.t, key="gpu.temp:0", new=State.WARN))  # seen by session 1
    st.record_samples("a", gpu_snap("a", clock.t + 100))
    st.close()
    # a cron `status` at night records a job change and an alert
    clock.t += 3600
    cron = Store.open(db, clock=clock, repeat_window_s=0)
    cron.claim_alert(ev(clock.t, key="disk.bytes:/", new=State.CRIT))
    cron.record_jobs("a", HostSnapshot(name="a", jobs_at=clock.t,
                                       slurm=(SlurmJob("9", state="COMPLETED"),)))
    cron.record_samples("a", gpu_snap("a", clock.t))
    cron.close()
    # the morning: a new session, before its first data
    clock.t += 8 * 3600
    st = Store.open(db, clock=clock)
    start = clock.t
    assert st.unwatched_gap("a") == (start - 8 * 3600, start)
    # the cron run looked last (and notified): nothing happened after its look
    assert st.since_you_last_looked("a") == []
    assert st.last_seen("a") == start - 8 * 3600
    st.close()


def test_since_you_last_looked_lists_what_happened_after_the_last_look(db, clock):
    first = Store.open(db, clock=clock, repeat_window_s=0)
    first.record_samples("a", gpu_snap("a", clock.t))
    first.claim_alert(ev(clock.t, key="gpu.temp:0", new=State.WARN))
    first.close()  # 23:10
    clock.t += 8 * 3600
    st = Store.open(db, clock=clock, repeat_window_s=0)
    # the first round reads the log written overnight and finds the run died, then data arrives
    st.claim_alert(Event(clock.t, "a", "run.ended", State.OK, State.CRIT, "run ended: OOM",
                         "host_oom"))
    st.record_jobs("a", HostSnapshot(name="a", jobs_at=clock.t,
                                     tmux=(TmuxSession("train", pane_dead=True,
                                                       pane_dead_status=137),)))
    st.record_samples("a", gpu_snap("a", clock.t + 1))
    gap = st.unwatched_gap("a")
    assert gap == (clock.t - 8 * 3600, clock.t + 1)
    got = [(e.kind, e.key, e.new) for e in st.since_you_last_looked("a")]
    assert got == [("state", "run.ended", "CRIT"), ("job", "tmux:train", "exited 137")]
    assert st.last_seen("a") == clock.t + 1
    st.close()


def test_a_short_restart_is_not_a_gap(db, clock):
    st = Store.open(db, clock=clock)
    st.record_samples("a", gpu_snap("a", clock.t))
    st.close()
    clock.t += 30
    st = Store.open(db, clock=clock)
    assert st.unwatched_gap("a") is None
    st.close()
