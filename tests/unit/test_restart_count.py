"""The restart count a view carries comes from `gpudash restart`'s ledger on disk, re-read when
the file changes — a restart made from another terminal shows up in a running TUI."""

from __future__ import annotations

import os

from gpudash.restart import RestartEntry, RestartLedger, ledger_path, load_ledger, save_ledger
from gpudash.transport.local import LocalTransport
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import WatchSpec


async def test_the_view_counts_the_ledger_and_follows_its_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUDASH_STATE_DIR", str(tmp_path))
    t = LocalTransport()
    try:
        w = HostWatcher(WatchSpec(name="gpu-a/1", transport="local"), t)
        assert w.refresh().restarts == 0  # no ledger: gpudash restarted nothing

        ledger = RestartLedger()
        ledger.record(RestartEntry(1.0, "cuda_oom", False, "tmux", "tmux train"))
        save_ledger("gpu-a/1", ledger)
        path = ledger_path("gpu-a/1")
        assert path.parent == tmp_path and "/" not in path.name  # the name is made file-safe
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert w.refresh().restarts == 1

        ledger.record(RestartEntry(2.0, "cuda_oom", True, "tmux", "tmux train"))
        save_ledger("gpu-a/1", ledger)
        assert w.refresh().restarts == 2
        assert load_ledger("gpu-a/1").automatic_count() == 1

        path.write_text("{not json")  # a torn or hand-edited file never breaks the view
        assert w.refresh().restarts == 0
        path.unlink()
        assert w.refresh().restarts == 0
    finally:
        await t.close()
