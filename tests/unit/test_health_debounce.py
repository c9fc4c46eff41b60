"""Hysteresis (2 results AND 10 s), flapping (4 changes in 10 min, alerts held until 10 stable
minutes), events on changes only, disappearing checks, host state. Time is passed explicitly."""

from dataclasses import replace

from gpudash.health import HealthEngine, Thresholds, host_state
from gpudash.model import CheckResult, Reason, State

KEY = "disk.bytes:/data"


def r(state: State, key: str = KEY, summary: str = "") -> CheckResult:
    reason = Reason.UNREACHABLE if state is State.UNKNOWN else None
    return CheckResult(key, state, summary or f"{key} is {state.value}", reason=reason)


def feed(eng: HealthEngine, t: float, *states, key=KEY):
    checks, events = eng.update("box", [r(s, key) for s in states], t)
    return checks[0] if checks else None, events


def test_first_result_is_taken_at_once_and_alerted_when_not_ok():
    eng = HealthEngine()
    c, ev = feed(eng, 0, State.CRIT)
    assert c.state is State.CRIT and c.since == 0
    assert [(e.old, e.new) for e in ev] == [(None, State.CRIT)]
    c, ev = feed(HealthEngine(), 0, State.OK)
    assert c.state is State.OK and ev == []


def test_one_off_spike_does_not_flip():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    c, ev = feed(eng, 2, State.CRIT)
    assert c.state is State.OK and ev == [] and c.detail["pending"] == "CRIT"
    c, ev = feed(eng, 30, State.OK)
    assert c.state is State.OK and ev == [] and "pending" not in c.detail
    c, ev = feed(eng, 40, State.CRIT)  # a second isolated spike starts counting afresh
    assert c.state is State.OK and ev == []


def test_two_results_within_10_s_do_not_flip():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    feed(eng, 2, State.WARN)
    c, ev = feed(eng, 11.9, State.WARN)
    assert c.state is State.OK and ev == []


def test_two_results_10_s_apart_flip_with_one_event():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    feed(eng, 10, State.WARN)
    c, ev = feed(eng, 20, State.WARN)
    assert c.state is State.WARN and c.since == 20
    assert [(e.old, e.new, e.key, e.host) for e in ev] == [(State.OK, State.WARN, KEY, "box")]


def test_one_result_held_10_s_is_not_enough():
    eng = HealthEngine(replace(Thresholds(), hysteresis_results=3))
    feed(eng, 0, State.OK)
    feed(eng, 10, State.WARN)
    c, _ = feed(eng, 20, State.WARN)
    assert c.state is State.OK
    c, _ = feed(eng, 21, State.WARN)
    assert c.state is State.WARN


def test_no_repeated_events_while_a_condition_holds():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    events = []
    for t in range(10, 2000, 10):
        events += feed(eng, t, State.CRIT)[1]
    assert len(events) == 1 and events[0].new is State.CRIT


def _flip(eng, t, state):
    feed(eng, t, state)
    return feed(eng, t + 10, state)


def test_flapping_holds_alerts_until_ten_stable_minutes_then_one_event():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    events = []
    t = 10
    for state in (State.WARN, State.OK, State.WARN, State.OK, State.WARN):
        c, ev = _flip(eng, t, state)
        assert c.state is state
        events += ev
        t += 20
    # changes at 20, 40, 60, 80, 100: the 4th (at 80) marks it flapping and is held
    assert [e.new for e in events] == [State.WARN, State.OK, State.WARN]
    assert c.flapping
    last_change = t - 10
    while t < last_change + 600:
        c, ev = feed(eng, t, State.WARN)
        assert ev == [] and c.flapping
        t += 30
    c, ev = feed(eng, last_change + 600, State.WARN)
    assert not c.flapping
    assert len(ev) == 1 and ev[0].new is State.WARN and "settled" in ev[0].message
    c, ev = feed(eng, last_change + 700, State.WARN)
    assert ev == []


def test_three_changes_are_not_flapping():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    events = []
    for i, state in enumerate((State.WARN, State.OK, State.WARN)):
        c, ev = _flip(eng, 10 + 20 * i, state)
        events += ev
    assert not c.flapping and len(events) == 3


def test_changes_spread_over_more_than_ten_minutes_are_not_flapping():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    for i, state in enumerate((State.WARN, State.OK, State.WARN, State.OK)):
        c, ev = _flip(eng, 10 + 250 * i, state)
        assert len(ev) == 1
    assert not c.flapping


def test_stale_round_trip_is_silent_and_stale_is_not_alerted():
    eng = HealthEngine()
    feed(eng, 0, State.OK)
    c, ev = _flip(eng, 10, State.STALE)
    assert c.state is State.STALE and ev == []
    c, ev = _flip(eng, 30, State.OK)
    assert c.state is State.OK and ev == []
    _flip(eng, 50, State.STALE)
    c, ev = _flip(eng, 70, State.CRIT)
    assert [(e.old, e.new) for e in ev] == [(State.OK, State.CRIT)]


def test_a_disappearing_check_is_dropped_quietly():
    eng = HealthEngine()
    eng.update("box", [r(State.OK), r(State.CRIT, "disk.bytes:/mnt")], 0)
    checks, events = eng.update("box", [r(State.OK)], 2)
    assert [c.key for c in checks] == [KEY] and events == []
    # coming back is a first result again
    checks, events = eng.update("box", [r(State.OK), r(State.CRIT, "disk.bytes:/mnt")], 4)
    assert [e.key for e in events] == ["disk.bytes:/mnt"]


def test_hosts_are_debounced_apart():
    eng = HealthEngine()
    eng.update("a", [r(State.OK)], 0)
    checks, events = eng.update("b", [r(State.CRIT)], 0)
    assert checks[0].state is State.CRIT and events[0].host == "b"


def test_shown_summary_is_the_one_of_the_shown_state():
    eng = HealthEngine()
    eng.update("box", [r(State.OK, summary="40% used")], 0)
    checks, _ = eng.update("box", [r(State.WARN, summary="91% used")], 2)
    assert checks[0].summary == "40% used" and checks[0].detail["pending_summary"] == "91% used"


def test_host_state_is_the_worst_check_and_unknown_says_why():
    ok, warn, crit = r(State.OK, "a"), r(State.WARN, "b"), r(State.CRIT, "c")
    assert host_state([ok, warn]) == (State.WARN, None)
    assert host_state([ok, warn, crit]) == (State.CRIT, None)
    gpu = CheckResult("gpu.probe", State.UNKNOWN, "no gpu", reason=Reason.NO_GPU)
    link = CheckResult("link", State.UNKNOWN, "down", reason=Reason.UNREACHABLE)
    assert host_state([ok, gpu]) == (State.UNKNOWN, Reason.NO_GPU)
    assert host_state([gpu, link, r(State.STALE, "d")]) == (State.UNKNOWN, Reason.UNREACHABLE)
    assert host_state([ok, r(State.STALE, "d")]) == (State.STALE, None)
    assert host_state([]) == (State.OK, None)


def test_an_unknown_whose_reason_changes_is_news():
    eng = HealthEngine()
    down = CheckResult("link", State.UNKNOWN, "unreachable", reason=Reason.UNREACHABLE)
    changed = CheckResult("link", State.UNKNOWN, "key changed", reason=Reason.HOST_KEY_CHANGED)
    assert len(eng.update("box", [down], 0)[1]) == 1
    assert eng.update("box", [changed], 5)[1] == []  # hysteresis applies to it too
    checks, events = eng.update("box", [changed], 15)
    assert checks[0].reason is Reason.HOST_KEY_CHANGED
    assert len(events) == 1 and "host_key_changed" in events[0].message
    assert "unreachable" in events[0].message
    assert eng.update("box", [changed], 30)[1] == []
