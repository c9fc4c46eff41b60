"""The classifier re-run on a growing log (triage/classifier.py ``ScanMemo``, the one-pass
``_steps_before`` and ``_TeardownSweep``): the same verdicts as classifying afresh, and only
the new lines searched. The watch classifies a host's last 4,000 lines again whenever new ones
came, so this is what a day-long watch pays per re-triage."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.triage import classifier as cl
from gpudash.triage.classifier import ScanMemo, classify

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LOGS = sorted((FIXTURES / "logs").glob("*.log"))

# every line of the real logs, and the lines the rules turn on
POOL = sorted({x for p in LOGS for x in p.read_text(errors="replace").splitlines()} | {
    "Exception ignored in: <function Pool.__del__ at 0x7f>", "Traceback (most recent call last):",
    '  File "train.py", line 3, in <module>', "KeyError: 'labels'", "step 10 loss 1.0",
    "step 3 loss 2.0", "epoch 1 iter 7 loss 0.5", " 40%|####      | 4/10 [00:01<00:02]",
    "***** Running training *****", "Training completed", "a\rb\rRuntimeError: CUDA error",
    "UserWarning: something", "loss nan", "step 12 loss 0.9", "",
})


def _windows(lines: list[str], size: int, shifts):
    for s in shifts:
        yield "\n".join(lines[s:s + size])


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_sliding_over_each_real_log_matches_a_fresh_classification(log):
    base = log.read_text(errors="replace").splitlines()
    lines = [f"{base[i % len(base)]}" for i in range(400)]
    memo = ScanMemo()
    for text in _windows(lines, 300, range(0, 100, 7)):
        assert classify(text, memo=memo) == classify(text)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=80),
       st.lists(st.integers(0, 20), min_size=1, max_size=6),
       st.sampled_from([None, ["custom done"]]))
def test_any_sequence_of_windows_matches(lines, shifts, markers):
    memo = ScanMemo()
    for s in shifts:
        text = "\n".join(lines[s:s + 50])
        assert classify(text, memo=memo, completion_markers=markers) == \
            classify(text, completion_markers=markers)


def test_only_new_lines_are_searched(monkeypatch):
    searched: list[list[str]] = []
    real = cl._candidates

    def spy(lines, extra):
        searched.append(list(lines))
        return real(lines, extra)

    monkeypatch.setattr(cl, "_candidates", spy)
    lines = [f"step {i} loss {1 / (i + 1):.4f}" for i in range(203)]
    memo = ScanMemo()
    classify("\n".join(lines[:200]), memo=memo)
    assert len(searched) == 1 and len(searched[0]) == 200
    searched.clear()
    classify("\n".join(lines[3:203]), memo=memo)  # the window slid by three lines
    assert searched == [lines[200:203]]
    searched.clear()
    classify("\n".join(lines[3:203]), memo=memo)  # nothing new: nothing searched
    assert searched == []


def test_other_completion_markers_are_not_answered_from_the_memo():
    text = "step 1 loss 2\nstep 2 loss 1\nall epochs finished ok"
    memo = ScanMemo()
    plain = classify(text, memo=memo)
    custom = classify(text, memo=memo, completion_markers=["all epochs finished ok"])
    assert custom == classify(text, completion_markers=["all epochs finished ok"])
    assert plain == classify(text)


def test_the_memo_stays_bounded():
    memo = ScanMemo()
    lines = [f"step {i} loss 0.5 note {i}" for i in range(5000)]
    for s in range(0, 4900, 50):
        classify("\n".join(lines[s:s + 100]), memo=memo)
        assert len(memo._said) <= 100 + 500 + 50  # the window + 500, + one step's new lines
        assert len(memo._exc) <= len(memo._said) and len(memo._step) <= len(memo._said)
    # a watch's 4,000-line tail: a quarter more at most, so that a dict of every line never
    # doubles its table (Python's dicts grow at 2/3 full: 5,461 keys fit the table of 4,000)
    memo = ScanMemo()
    lines = [f"step {i} loss 0.5 note {i}" for i in range(9000)]
    for s in range(0, 5000, 250):
        cl.classify_lines(lines[s:s + 4000], memo=memo)
        assert len(memo._said) <= 4000 + 1000 + 250 < 5461


# ----------------------------------------------------------------------------- the one-pass helpers

TEARDOWN_ALPHABET = ["Exception ignored in: <function X.__del__>", "Traceback (most recent call last):",
                     '  File "x.py", line 1, in f', "KeyError: 'x'", "RuntimeError: boom", "ok", ""]


def _runs(alphabet, longest: int):
    """Lines as runs of one line repeated, so that gaps as long as a look-back limit occur."""
    return st.lists(st.tuples(st.sampled_from(alphabet), st.integers(1, longest)), min_size=1, max_size=12) \
        .map(lambda runs: [line for line, n in runs for _ in range(n)])


@settings(deadline=None, max_examples=200)
@given(_runs(TEARDOWN_ALPHABET, 100), st.data())
def test_teardown_sweep_equals_looking_back(lines, data):
    idxs = sorted(data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=40)))
    if data.draw(st.booleans()):  # out of order too: answered by looking back
        idxs = data.draw(st.permutations(idxs))
    sweep = cl._TeardownSweep(lines)
    for i in idxs:
        assert sweep(i) == cl._in_ignored_traceback(lines, i)


def _step_before_reference(lines, idx):
    """What each hit used to do: look back up to _LOOKBACK_LINES lines for a step."""
    for k in range(idx - 1, max(-1, idx - cl._LOOKBACK_LINES), -1):
        v = cl._step_value(lines[k])
        if v is not None:
            return v
    return None


def test_a_teardown_traceback_is_looked_for_within_80_lines():
    lines = ["Exception ignored in: <function X.__del__>"] + ["ok"] * 100
    sweep = cl._TeardownSweep(lines)
    assert [sweep(i) for i in (1, 79, 80, 100)] == [True, True, False, False]


def test_a_step_is_looked_for_within_the_lookback():
    n = cl._LOOKBACK_LINES
    lines = ["step 5 loss 1"] + ["noise"] * (n + 5)
    got = cl._steps_before(lines, 0)
    assert got[1] == got[n - 1] == 5.0 and got[n] is None and got[0] is None


@settings(deadline=None, max_examples=100)
@given(_runs(["step 5 loss 1", "iter 9", "update 2 x", "noise", "", "a\rstep 7"], 450), st.data())
def test_steps_before_equals_looking_back(lines, data):
    lo = data.draw(st.integers(0, len(lines)))
    got = cl._steps_before(lines, lo)
    assert got == [_step_before_reference(lines, i) for i in range(lo, len(lines) + 1)]


@settings(deadline=None, max_examples=150)
@given(st.lists(st.sampled_from(POOL + ["x" * 300]), max_size=60), st.sampled_from([40, 300, 5000]),
       st.booleans())
def test_classify_lines_is_classify_of_the_joined_lines(lines, first_window, with_memo):
    """The watch's path (the tail's lines, no join): the same windows, offsets and verdicts, with
    small first windows so the widening is exercised."""
    saved = cl.FIRST_WINDOW
    cl.FIRST_WINDOW = first_window
    try:
        memo = ScanMemo() if with_memo else None
        assert cl.classify_lines(lines, memo=memo) == classify("\n".join(lines))
    finally:
        cl.FIRST_WINDOW = saved


def test_the_memo_holds_the_tails_own_strings():
    lines = [f"step {i} loss 0.5" for i in range(50)]
    memo = ScanMemo()
    cl.classify_lines(lines, memo=memo)
    assert {id(k) for k in memo._said} == {id(x) for x in lines}
