"""The history file under real processes: SIGKILL in the middle of writes never corrupts it or
loses a committed write, and two processes sharing it never claim the same alert twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gpudash.model import Event, State
from gpudash.store import Store

ROOT = Path(__file__).resolve().parents[2]

# Writes in a loop; prints i only after everything of step i is committed. Each step is several
# transactions (samples with 8 GPUs, a claimed alert, a journal entry, a log position) so a kill
# lands inside one of them most of the time.
WRITER = textwrap.dedent("""
    import sys
    from gpudash.model import Event, GpuSample, HostSnapshot, State
    from gpudash.store import Store
    path, mode, start, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    st = Store.open(path, journal_mode=mode, repeat_window_s=0)
    i = start
    while True:
        t = base + i
        gpus = tuple(GpuSample(g, util_pct=float(i % 100), mem_used_mib=1.0, mem_total_mib=2.0)
                     for g in range(8))
        st.record_samples("box", HostSnapshot(name="box", gpus=gpus, gpu_at=t))
        # (a step may run twice: the previous writer can commit it and die before the parent
        # reads its line; the claim then says "already claimed", which is right)
        st.claim_alert(Event(t, "box", f"k{i}", None, State.CRIT, "m" * 300))
        st.record_event(Event(t, "box", f"j{i}", State.OK, State.WARN, "x" * 300))
        st.save_log_position("box", "/runs/train.log", i * 4096, 42, t)
        if st.write_errors:
            sys.exit(3)
        print(i, flush=True)
        i += 1
""")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_sigkill_mid_write_never_corrupts(tmp_path, mode):
    db = tmp_path / "history.sqlite3"
    committed = -1
    base = float(int(time.time()) - 1800)  # recent: retention must not touch these samples
    for round_no in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), mode, str(committed + 1),
                                 str(base)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                                text=True)
        want = 20 + 17 * round_no  # kill after a different number of steps each round
        seen = 0
        for line in proc.stdout:
            committed = int(line)
            seen += 1
            if seen >= want:
                break
        os.kill(proc.pid, signal.SIGKILL)  # the writer is already into its next step
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert committed > 100

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    st = Store.open(db, journal_mode=mode)
    assert st.integrity_check() == "ok"
    ts = {t for t, _ in st.history("box", since=0)["gpu_util"][0]}
    assert all(base + i in ts for i in range(committed + 1))
    entries = st.events(0, limit=100_000)
    keys = {e.key for e in entries}
    assert all(f"k{i}" in keys and f"j{i}" in keys for i in range(committed + 1))
    claims = [e.key for e in entries if e.key.startswith("k")]
    assert len(claims) == len(set(claims))  # a step re-run after a kill never claims twice
    assert st.log_position("box")["offset"] >= committed * 4096
    st.close()


CLAIMER = textwrap.dedent("""
    import os, sys, time
    from gpudash.model import Event, State
    from gpudash.store import Store
    path, go, n, reverse = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    st = Store.open(path, repeat_window_s=0)
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        e = Event(time.time(), "box", f"disk.bytes:/m{i}", None, State.CRIT, "full")
        if st.claim_alert(e):
            print(i, flush=True)
    st.close()
""")


def test_two_processes_never_send_the_same_alert(tmp_path):
    db = tmp_path / "history.sqlite3"
    Store.open(db).close()  # created before both start: they race on claims, not on creation
    go = tmp_path / "go"
    n = 300
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(db), str(go), str(n), rev],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                              text=True) for rev in ("0", "1")]
    time.sleep(0.5)  # let both open the store (not an assertion on time: just a head start)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append({int(x) for x in out.split()})
    a, b = outs
    assert a.isdisjoint(b)
    assert a | b == set(range(n))
    # a third process (cron `status` re-evaluating the same conditions) claims nothing
    st = Store.open(db, repeat_window_s=0)
    assert not any(st.claim_alert(Event(time.time(), "box", f"disk.bytes:/m{i}", None,
                                        State.CRIT, "full")) for i in range(n))
    assert len(st.events(0, limit=10_000)) == n
    st.close()
