"""`worst`: a host's state is its worst check (product.md's health model), on any input order."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from gpudash.model import State, worst

ORDER = [State.OK, State.STALE, State.UNKNOWN, State.WARN, State.CRIT]


@settings(deadline=None)
@given(st.lists(st.sampled_from(list(State)), max_size=40))
def test_worst_is_the_highest_rank(states):
    expected = max(states, key=ORDER.index) if states else State.OK
    assert worst(states) is expected
    assert worst(iter(states)) is expected  # any iterable, once
    assert worst(states).rank == max((s.rank for s in states), default=0)


def test_the_order_of_badness():
    assert [s.rank for s in ORDER] == [0, 1, 2, 3, 4]
    assert worst([State.STALE, State.UNKNOWN, State.OK]) is State.UNKNOWN
    assert worst([State.WARN, State.CRIT, State.STALE]) is State.CRIT
    assert worst([]) is State.OK
