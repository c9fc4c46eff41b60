"""The loss history's columns (health.context.TimedValues) against the bounded deque of
``(time, value)`` tuples they replace: every operation the health checks use, in any order."""

from __future__ import annotations

import itertools
import sys
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.health.context import Phase, RunContext, TimedValues
from gpudash.health.thresholds import Thresholds
from gpudash.health.training import check_loss
from gpudash.health.verdict import State

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), finite, finite),
        # many appends at once: enough to cross the compaction threshold
        st.tuples(st.just("run"), st.integers(0, 700), finite),
        st.tuples(st.just("drop"), finite),
        st.tuples(st.just("clear")),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=300)
@given(maxlen=st.integers(1, 600), ops=ops, k=st.integers(1, 20), lo=finite, width=finite)
def test_timed_values_behave_as_a_bounded_deque_of_pairs(maxlen, ops, k, lo, width):
    tv, ref = TimedValues(maxlen), deque(maxlen=maxlen)
    for op in ops:
        if op[0] == "append":
            tv.append(op[1], op[2])
            ref.append((op[1], op[2]))
        elif op[0] == "run":
            for i in range(op[1]):
                tv.append(op[2] + i, float(i))
                ref.append((op[2] + i, float(i)))
        elif op[0] == "drop":
            tv.drop_before(op[1])
            while ref and ref[0][0] < op[1]:
                ref.popleft()
        else:
            tv.clear()
            ref.clear()
        assert len(tv) == len(ref) and bool(tv) == bool(ref)
        assert list(tv) == list(ref)
    if ref:
        assert tv[0] == ref[0] and tv[-1] == ref[-1] and tv[len(ref) // 2] == ref[len(ref) // 2]
    assert tv.newest_values(k) == [v for _, v in itertools.islice(reversed(ref), k)]
    hi = lo + abs(width)
    assert tv.values_in(lo, hi) == [v for t, v in ref if lo < t <= hi]
    other = TimedValues(maxlen + 5)
    for t, v in ref:
        other.append(t, v)
    assert other == tv


def test_the_columns_are_cut_as_old_pairs_are_dropped():
    tv = TimedValues(10_000)
    for i in range(5000):
        tv.append(float(i), 1.0)
    tv.drop_before(4000.0)
    assert len(tv) == 1000 and tv[0] == (4000.0, 1.0)
    assert len(tv._t) == 1000  # cut, not merely skipped: memory follows what is kept


def test_a_pair_costs_16_bytes_not_a_tuple_of_two_floats():
    """What the change is for: 4,500 pairs (75 minutes of a loss a second) in columns, not in a
    deque of tuples (~112 bytes a pair: tuple, two floats, the deque's slot)."""
    tv, ref = TimedValues(50_000), deque(maxlen=50_000)
    for i in range(4500):
        tv.append(1e9 + i, 1.0 / (i + 1))
        ref.append((1e9 + i, 1.0 / (i + 1)))
    cols = sys.getsizeof(tv._t) + sys.getsizeof(tv._v)
    tuples = sys.getsizeof(ref) + sum(sys.getsizeof(p) + sys.getsizeof(p[0]) + sys.getsizeof(p[1]) for p in ref)
    assert cols < 20 * 4500 < 100 * 4500 < tuples


def test_the_plateau_rule_reads_the_columns():
    """check_loss over a history held in columns: flat over two patrol windows → WARN, falling → OK."""
    th = Thresholds()
    w = th.patrol_window_s
    for falling, want in ((False, State.WARN), (True, State.OK)):
        ctx = RunContext()
        ctx.phase = Phase.PATROL
        now = 10 * w
        for i in range(0, int(2 * w), 10):
            t = now - 2 * w + i + 10
            ctx.loss_samples.append(t, (2.0 - t / (2 * now)) if falling else 1.0)
        got = check_loss(ctx, th, now)
        assert got is not None and got.state is want, (falling, got)
