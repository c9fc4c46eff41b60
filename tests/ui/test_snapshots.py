"""How it looks: SVG snapshots of the overview and a host's detail at a tmux pane's 80×24 and at
160×48, plus triage and split. Deterministic: fixed clock (no clock text on screen), UTC, fixed
views from the fixtures. Update with `pytest tests/ui/test_snapshots.py --snapshot-update`."""

from __future__ import annotations

import pytest

from tests.ui.conftest import LARGE, SMALL, make_app

SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@SIZES
def test_overview(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=_settle)


@SIZES
def test_host_detail(snap_compare, size):
    async def open_host(pilot):
        await _settle(pilot)
        await pilot.press("enter")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=open_host)


@SIZES
def test_host_detail_failed_run(snap_compare, size):
    async def open_host(pilot):
        await _settle(pilot)
        await pilot.press("l", "enter")  # eval-box: the inode trap
        await _settle(pilot)

    app = make_app()
    assert snap_compare(app, terminal_size=size, run_before=open_host)


def test_triage(snap_compare):
    async def open_triage(pilot):
        await _settle(pilot)
        await pilot.press("l", "l", "e")  # oom-box
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=LARGE, run_before=open_triage)


def test_split(snap_compare):
    async def split(pilot):
        await _settle(pilot)
        await pilot.press("s")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=LARGE, run_before=split)
