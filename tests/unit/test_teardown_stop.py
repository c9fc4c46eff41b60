"""execute_stop: runs only on an all-green checklist after the exact host name, and records it."""

from __future__ import annotations

import json
import os
import stat

import pytest

from gpudash.teardown import stop as stop_mod
from gpudash.teardown.presets import stop_plan
from gpudash.teardown.stop import execute_stop, read_journal, refusal, set_recorder
from gpudash.teardown.types import GREEN, RED, Check, Checklist, TeardownSettings
from gpudash.transport.local import LocalTransport


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUDASH_STATE_DIR", str(tmp_path / "state"))
    set_recorder(None)
    yield tmp_path / "state"
    set_recorder(None)


def checklist(tmp_path, *, command: str, where: str = "local", states=(GREEN,) * 6,
              host: str = "gpu-1") -> Checklist:
    s = TeardownSettings(host=host, stop_command=command, stop_runs_on=where)
    checks = tuple(Check(id=f"c{i}", title=f"check {i}", state=st, missing="" if st == GREEN
                         else "something") for i, st in enumerate(states, 1))
    return Checklist(host=host, checks=checks, stop=stop_plan(s), taken_at=1.0)


async def test_all_green_and_the_exact_name_runs_it_once_and_records(tmp_path, state_dir):
    flag = tmp_path / "stopped"
    cl = checklist(tmp_path, command=f"echo stopping; touch {flag}")
    out = await execute_stop(cl, "gpu-1")
    assert out.status == "done" and flag.exists()
    assert "stopping" in out.output
    journal = state_dir / "teardown.jsonl"
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    [rec] = read_journal(journal)
    assert rec["host"] == "gpu-1" and rec["status"] == "done" and rec["kind"] == "teardown_stop"
    assert [c["state"] for c in rec["checks"]] == ["green"] * 6


@pytest.mark.parametrize("typed", ["gpu-2", "GPU-1", "", None, "gpu-1; true", "yes"])
async def test_a_wrong_name_runs_nothing(tmp_path, state_dir, typed):
    flag = tmp_path / "stopped"
    out = await execute_stop(checklist(tmp_path, command=f"touch {flag}"), typed)
    assert out.status == "refused" and "type the host name" in out.message
    assert not flag.exists() and not (state_dir / "teardown.jsonl").exists()


async def test_a_red_check_runs_nothing_even_with_the_right_name(tmp_path):
    flag = tmp_path / "stopped"
    cl = checklist(tmp_path, command=f"touch {flag}", states=(GREEN, GREEN, GREEN, RED, GREEN,
                                                              GREEN))
    out = await execute_stop(cl, "gpu-1")
    assert out.status == "refused" and "check 4" in out.message and not flag.exists()
    assert refusal(cl, "gpu-1") == out.message


async def test_a_failing_stop_is_recorded_as_failed(tmp_path, state_dir):
    out = await execute_stop(checklist(tmp_path, command="echo nope >&2; exit 3"), "gpu-1")
    assert out.status == "failed" and out.exit_code == 3 and "nope" in out.output
    assert read_journal(state_dir / "teardown.jsonl")[0]["status"] == "failed"


async def test_a_box_command_runs_over_the_transport(tmp_path):
    flag = tmp_path / "box-stopped"
    t = LocalTransport()
    try:
        out = await execute_stop(checklist(tmp_path, command=f"touch {flag}", where="box"),
                                 "gpu-1", transport=t)
    finally:
        await t.close()
    assert out.status == "done" and flag.exists()
    no_link = await execute_stop(checklist(tmp_path, command="true", where="box"), "gpu-1")
    assert no_link.status == "refused"


async def test_the_recorder_hook_can_be_replaced(tmp_path, state_dir):
    seen: list[dict] = []
    set_recorder(seen.append)
    await execute_stop(checklist(tmp_path, command="true"), "gpu-1")
    assert len(seen) == 1 and seen[0]["status"] == "done"
    assert not (state_dir / "teardown.jsonl").exists()
    json.dumps(seen[0])  # what the store gets is plain JSON


async def test_a_stop_that_hangs_is_killed_and_unconfirmed(tmp_path):
    out = await execute_stop(checklist(tmp_path, command="sleep 30"), "gpu-1", timeout=0.5)
    assert out.status == "unconfirmed"


def test_the_default_recorder_is_the_module_hook():
    assert stop_mod.record_teardown is stop_mod._default_recorder
