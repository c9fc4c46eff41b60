"""The metric points a host keeps (training/series.py): columns that read back as exactly the
points appended, the newest ``cap`` of them, in views that never change once handed out."""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.health.context import RunContext
from gpudash.health.thresholds import Thresholds
from gpudash.health.training import ingest_metrics
from gpudash.model import HostSnapshot, MetricPoint
from gpudash.training.metrics import parse_metrics
from gpudash.training.series import FIELDS, MetricLog, MetricSeries, values

floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
ints = st.one_of(st.none(), st.integers(-(2**60), 2**60))
odd = st.one_of(st.booleans(), st.integers(-3, 3), st.text(max_size=3))  # not what columns hold
LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
points = st.builds(
    MetricPoint,
    step=st.one_of(ints, odd), epoch=st.one_of(floats, odd), loss=floats, grad_norm=floats,
    lr=floats, line_no=ints, at=floats,
)


def same(a: MetricPoint, b: MetricPoint) -> bool:
    """Field by field, types included, NaN equal to NaN."""
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if type(x) is not type(y):
            return False
        if isinstance(x, float) and math.isnan(x):
            if not math.isnan(y):
                return False
        elif x != y:
            return False
    return True


def same_seq(got, want) -> bool:
    got, want = list(got), list(want)
    return len(got) == len(want) and all(same(a, b) for a, b in zip(got, want))


@settings(deadline=None, max_examples=200)
@given(st.lists(st.one_of(points, st.just("clear")), max_size=60), st.integers(1, 9),
       st.integers(1, 5), st.one_of(st.none(), st.floats(allow_nan=False)))
def test_views_read_back_the_newest_points_and_never_change(ops, cap, slack, at):
    log = MetricLog(cap, slack=slack)
    oracle: deque = deque(maxlen=cap)
    handed: list[tuple[MetricSeries, list]] = []
    for op in ops:
        if op == "clear":
            log.clear()
            oracle.clear()
        else:
            log.append(op, at=at)
            oracle.append(op if op.at is not None or at is None else MetricPoint(
                op.step, op.epoch, op.loss, op.grad_norm, op.lr, op.line_no, at))
        view = log.view()
        assert len(view) == len(log) == len(oracle)
        assert same_seq(view, oracle)
        handed.append((view, list(oracle)))
    for view, then in handed:  # appended to, compacted and cleared since: unchanged
        assert same_seq(view, then)
        assert same_seq(reversed(view), reversed(then))
        for i in range(-len(then), len(then)):
            assert same(view[i], then[i])
        for f in FIELDS:
            assert same_seq([MetricPoint(**{f: v}) for v in values(view, f)],
                            [MetricPoint(**{f: getattr(p, f)}) for p in then])


def test_slices_indexing_and_equality_behave_like_a_tuple():
    pts = [MetricPoint(step=i, loss=1.0 / (i + 1), line_no=i + 1) for i in range(10)]
    log = MetricLog(6, slack=2)
    log.extend(pts)
    view = log.view()
    want = tuple(pts[-6:])
    assert view == want and want == view and tuple(view) == want
    assert view[1:4] == want[1:4] and isinstance(view[1:4], MetricSeries)
    assert view[::2] == want[::2] and view[-200:] == want and view[4:2] == ()
    assert view[-1] is not view[-1] and view[-1] == view[-1]
    with pytest.raises(IndexError):
        view[6]
    with pytest.raises(IndexError):
        view[-7]
    assert view != want[:-1] and view != want[:-1] + (MetricPoint(step=99),)
    assert log.view() is view  # the same object until the next change
    log.append(MetricPoint(step=10))
    assert log.view() is not view and log.view()[-1].step == 10
    assert hash(view) == hash(want)


def test_a_nan_loss_point_read_twice_is_equal_to_itself():
    log = MetricLog(4)
    log.append(MetricPoint(step=1, loss=float("nan")))
    assert log.view()[-1] == log.view()[-1]


def test_health_ingests_each_point_once_when_the_newest_loss_is_nan():
    # ingest_metrics finds where it stopped by comparing points: a NaN loss must not make the
    # newest point unequal to itself, or every finite point before it would count again
    log = MetricLog(100)
    log.extend([MetricPoint(step=1, loss=0.5, line_no=1), MetricPoint(step=2, loss=float("nan"), line_no=2)],
               at=1000.0)
    ctx, th = RunContext(), Thresholds()
    snap = HostSnapshot(name="h", transport="ssh", taken_at=1000.0, metrics=log.view())
    ingest_metrics(snap, ctx, th, 1000.0)
    ingest_metrics(snap, ctx, th, 1001.0)
    assert [v for _t, v in ctx.loss_samples] == [0.5]
    assert ctx.nonfinite_loss is not None and ctx.nonfinite_loss.step == 2


def test_a_real_logs_points_read_back_exactly_and_take_a_fraction_of_the_memory():
    import sys

    raws = []
    for name in ("hf-trainer.log", "train-healthy.log", "lightning.log", "fail-nan.log"):
        raws += (LOGS / name).read_text(errors="replace").splitlines()
    pts = parse_metrics(raws * 20)
    assert len(pts) > 500
    log = MetricLog(len(pts))
    log.extend(pts, at=5.0)
    assert same_seq(log.view(), [MetricPoint(p.step, p.epoch, p.loss, p.grad_norm, p.lr, p.line_no, 5.0) for p in pts])
    columns = sum(sys.getsizeof(c) for c in log._cols) + sys.getsizeof(log._nones)
    objects = sum(sys.getsizeof(p) + sum(sys.getsizeof(getattr(p, f)) for f in FIELDS
                                         if getattr(p, f) is not None) for p in pts)
    assert columns * 2 < objects


grad_points = st.builds(
    MetricPoint, step=st.one_of(st.none(), st.integers(0, 10**6)),
    grad_norm=st.one_of(st.none(), st.none(), st.floats(0, 1e4), st.sampled_from([float("nan"), float("inf"), 1e9])),
    loss=st.one_of(st.none(), st.floats(0, 10)),
)


@settings(deadline=None, max_examples=150)
@given(st.lists(grad_points, max_size=260))
def test_the_grad_norm_verdict_is_the_same_from_columns_and_from_points(pts):
    from gpudash.health.training import check_grad_norm

    log = MetricLog(300)
    log.extend(pts, at=7.0)
    timed = tuple(MetricPoint(p.step, p.epoch, p.loss, p.grad_norm, p.lr, p.line_no, 7.0) for p in pts)

    def verdict(metrics):
        got = check_grad_norm(HostSnapshot(name="h", transport="ssh", taken_at=7.0, metrics=metrics), Thresholds())
        return None if got is None else (got.key, got.state, got.summary)

    assert verdict(log.view()) == verdict(timed)


def test_health_ingests_a_view_it_has_seen_once_and_then_only_the_points_added():
    """The watcher hands the same metric view until a point is added: a second look at the same
    object has nothing to find. An equal but distinct view (found by comparing points) and a
    longer one add only what is new."""
    log = MetricLog(100)
    log.extend([MetricPoint(step=s, loss=1.0 / s, line_no=s) for s in range(1, 4)], at=1000.0)
    ctx, th = RunContext(), Thresholds()
    view = log.view()

    def ingest(metrics, now):
        ingest_metrics(HostSnapshot(name="h", transport="ssh", taken_at=now, metrics=metrics), ctx, th, now)

    ingest(view, 1000.0)
    ingest(view, 1001.0)
    ingest(view[:], 1002.0)  # a distinct object, equal points: found by comparing
    assert [v for _t, v in ctx.loss_samples] == [1.0, 0.5, 1.0 / 3]
    log.append(MetricPoint(step=4, loss=0.25, line_no=4), at=1003.0)
    ingest(log.view(), 1003.0)
    ingest(log.view(), 1004.0)
    assert [v for _t, v in ctx.loss_samples] == [1.0, 0.5, 1.0 / 3, 0.25]
    assert ctx.last_point.step == 4 and ctx.max_step == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(MetricPoint, step=st.one_of(st.none(), st.integers(0, 10**6))), max_size=40))
def test_steps_advancing_reads_the_column_as_it_read_the_points(points):
    from gpudash.triage.fusion import _steps_advancing

    log = MetricLog(64)
    log.extend(points, at=1.0)
    assert _steps_advancing(log.view()) == _steps_advancing(tuple(log.view()))
