"""Aggregated rows, grouping, filtering, sorting and the fleet summary for big fleets.

Views are built by the real health engine from snapshots (temperatures from the H100 trace's
range, one GPU over the 85 °C warning line), not hand-set states.
"""

from __future__ import annotations

import pytest

from gpudash.health import engine as health
from gpudash.model import GpuSample, HostSnapshot, LinkStatus, Reason, State
from gpudash.sources.aggregate import (
    aggregate_row, filter_views, fleet_summary, group_by, gpu_stats, sort_views,
)
from gpudash.watch.view import HostView

NOW = 1_800_000_000.0


def view(name, utils, temps=None, *, labels=None, link_ok=True) -> HostView:
    temps = temps or [57.0] * len(utils)
    gpus = tuple(GpuSample(index=i, uuid=f"GPU-{name}-{i}", util_pct=u, temp_c=t,
                           mem_used_mib=40000.0, mem_total_mib=80000.0)
                 for i, (u, t) in enumerate(zip(utils, temps)))
    link = LinkStatus(ok=True) if link_ok else LinkStatus(ok=False, reason=Reason.UNREACHABLE,
                                                           since=NOW - 60)
    snap = HostSnapshot(name=name, transport="prometheus", taken_at=NOW, link=link, gpus=gpus,
                        gpu_at=NOW)
    checks = health.evaluate(snap, now=NOW)
    state, reason = health.host_state(checks)
    return HostView(snapshot=snap, state=state, reason=reason, checks=checks,
                    labels=labels or {})


def test_aggregate_row_reads_like_the_spec():
    v = view("node-a17", [100, 100, 100, 88, 100, 100, 100, 88], [57, 60, 61, 62, 88, 59, 58, 57])
    assert aggregate_row(v) == "node-a17: 8 GPUs, util 97% avg, mem 50%, 1 hot"
    assert v.state is State.WARN


def test_unavailable_numbers_are_not_averaged_in_as_zero():
    v = view("n", [None, 80.0])
    assert gpu_stats(v)["util"] == 80.0
    assert aggregate_row(view("m", [None])) == "m: 1 GPU, mem 50%"
    assert aggregate_row(view("cpu-box", [])) == "cpu-box: no GPU data"


def test_unknown_hosts_say_why():
    v = view("n9", [50], link_ok=False)
    assert v.state is State.UNKNOWN
    assert aggregate_row(v).endswith("unreachable")


@pytest.fixture
def fleet():
    return [
        view("b-ok", [90, 95], labels={"rack": "r1"}),
        view("a-hot", [99, 99], [90, 50], labels={"rack": "r2"}),
        view("c-down", [10], link_ok=False, labels={"rack": "r1"}),
        view("d-idle", [0, 0], labels={}),
    ]


def test_only_problems_and_states_and_search(fleet):
    assert [v.name for v in filter_views(fleet, only_problems=True)] == ["a-hot", "c-down"]
    assert [v.name for v in filter_views(fleet, states={State.UNKNOWN})] == ["c-down"]
    assert [v.name for v in filter_views(fleet, text="R1")] == ["b-ok", "c-down"]  # label value
    assert [v.name for v in filter_views(fleet, text="idle")] == ["d-idle"]


def test_group_by_label_and_by_state(fleet):
    by_rack = group_by(fleet, "rack")
    assert list(by_rack) == ["r1", "r2", "(none)"]
    assert [v.name for v in by_rack["r1"]] == ["b-ok", "c-down"]
    by_state = group_by(fleet, "state")
    assert list(by_state) == ["WARN", "UNKNOWN", "OK"]  # worst group first


def test_sorting(fleet):
    assert [v.name for v in sort_views(fleet, "state")] == ["a-hot", "c-down", "b-ok", "d-idle"]
    assert [v.name for v in sort_views(fleet, "util")][:2] == ["d-idle", "c-down"]  # idle first
    assert [v.name for v in sort_views(fleet, "temp")][0] == "a-hot"
    assert [v.name for v in sort_views(fleet, "name")] == ["a-hot", "b-ok", "c-down", "d-idle"]
    with pytest.raises(ValueError):
        sort_views(fleet, "colour")


def test_fleet_summary(fleet):
    assert fleet_summary(fleet) == "4 hosts, 7 GPUs: 1 WARN, 1 UNKNOWN, 2 OK; util 56% avg"
    assert fleet_summary([]) == "0 hosts, 0 GPUs"
