"""Restarting gpudash: a real watcher (local transport, real sh, the H100 stand-in nvidia-smi)
persists through attach_fleet; a second one restores its sparklines and reads exactly the log
bytes written while nobody watched."""

from __future__ import annotations

import os
from pathlib import Path

from gpudash.transport.local import LocalTransport
from gpudash.watch.fleet import Fleet
from gpudash.watch.spec import WatchSpec
from gpudash.store import Store
from gpudash.store.wiring import attach_fleet, restore_watcher

BIN = Path(__file__).resolve().parents[1] / "bin"


def fleet_for(spec: WatchSpec) -> Fleet:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    return Fleet([spec], transports={spec.name: LocalTransport(spec.name, env=env)})


async def test_restart_restores_sparklines_log_position_and_journal(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("".join(f"step {i} loss {1 / (i + 1):.4f}\n" for i in range(50)))
    spec = WatchSpec(name="box", log=str(log), mounts=(str(tmp_path),))
    db = tmp_path / "history.sqlite3"

    st = Store.open(db)
    fleet = fleet_for(spec)
    attach_fleet(fleet, st)
    await fleet.one_round(30)
    w1 = fleet.watchers["box"]
    assert w1.gpus, w1.gpu_error  # the stand-in nvidia-smi answered
    first_util = {i: list(h) for i, h in w1.util_hist.items()}
    assert st.log_position("box")["offset"] == log.stat().st_size
    journal_1 = [e.key for e in st.events(0, host="box")]
    st.close()

    with open(log, "a") as f:
        f.write("step 50 loss 0.0190\nTraining completed\n")

    st = Store.open(db)
    fleet = fleet_for(spec)
    w2 = fleet.watchers["box"]
    restored = restore_watcher(w2, st)
    assert restored["log"]["offset"] == w1.log_offset
    assert {i: list(h) for i, h in w2.util_hist.items()} == first_util
    attach_fleet(fleet, st)
    await fleet.one_round(30)
    # only the bytes written since the last session crossed: exactly the two new lines
    assert list(w2.log_lines) == ["step 50 loss 0.0190", "Training completed"]
    assert w2.log_skipped == 0
    # the history has both sessions' GPU samples; the restarted engine's re-reports of
    # conditions that still hold are not journaled twice
    assert len(st.history("box", since=0)["gpu_util"][0]) == 2
    keys = [e.key for e in st.events(0, host="box")]
    assert sorted(set(keys)) == sorted(keys), keys
    assert set(journal_1) <= set(keys)
    assert st.unwatched_gap("box") is None  # a restart seconds later is no unwatched night
    st.close()
