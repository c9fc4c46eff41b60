"""The log parsers' shortcuts change nothing they find.

- metrics: one pattern for the four keys instead of four searches per segment, and the epoch
  header looked for only where a segment has no point (and names an epoch);
- metrics: ``newest=N`` parses from the end only as far back as N points go;
- progress: lines that cannot show progress (no ``/``, no step word, plain ASCII) are not
  observed.

Each is checked against the way it was done before, on every line of the real logs and on
lines built from the keys, separators, numbers, escapes and the letters that ``re.I`` folds
(``ſ``, ``ı``, ``İ``, ``K``).
"""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import MetricPoint
from gpudash.sanitize import clean_text, cleaning_deletes
from gpudash.training import metrics as tm
from gpudash.training import progress as tp

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
REAL = [line for p in sorted(LOGS.glob("*.log")) for line in p.read_text(errors="replace").splitlines()]


def _demo_logs() -> list[str]:
    from gpudash.demo.scenarios import build

    return [line for sc in build(7) for line in bytes(sc.log.data).decode(errors="replace").splitlines()]


DEMO = _demo_logs()  # the demo's logs, from real runs' traces: thousands of metric lines

TOKENS = [
    "loss", "Loss", "LOSS", "train_loss", "train loss", "total_loss", "train/loss", "eval/loss",
    "val_loss", "loss_scale", "grad_norm", "gnorm", "grad norm", "gradient_norm",
    "grad_norm_total", "lr", "LR", "learning_rate", "learning rate", "epoch", "Epoch", "EPOCH",
    "step", "Step", "iter", "iteration", "global_step", "num_updates", "update", "updates",
    "'", '"', ":", "=", " is ", " ", "  ", "/", " of ", ".", ",", "\r", "\x1b[2K", "\x1b[0m",
    "\u200b", "\t", "0", "1", "7", "2.5", "1e-4", "-3", "+.5", "nan", "inf", "NaN", "-inf",
    "{", "}", "[", "]", "<", "it/s", "s/it", "00:01", "0:00:03", "ſtep", "ıter", "İter", "loſs",
    "\u212a", "train_runtime", "|", "%", "━", "x", "_", "\ufffd",
]
KEYS = ["loss", "Loss", "train_loss", "total loss", "train/loss", "val_loss", "grad_norm", "gnorm",
        "gradient norm", "lr", "learning_rate", "epoch", "Epoch", "step", "iter", "num_updates",
        "global_step", "update", "loſs", "ſtep", "ıter"]
SEPS = ["=", ": ", " ", " is ", "': '", '":"', ":", " = ", "#"]
NUMS = ["0.5", "1e-4", "nan", "'2.5'", "3", "-inf", "7.", "12", "40", "1.0e+3"]
# a key with a value, a count out of a total, a tqdm bar: what the parsers look for
phrases = st.one_of(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(SEPS), st.sampled_from(NUMS)).map("".join),
    st.tuples(st.sampled_from(KEYS), st.sampled_from([" ", ": ", "="]), st.sampled_from(["3", "12"]),
              st.sampled_from(["/", " / ", " of "]), st.sampled_from(["40", "100"])).map("".join),
    st.sampled_from(["12/40 [00:01<00:03, 3.5it/s]", "7/7 0:00:03 • 0:00:00 2.1it/s",
                     "Training: 30/100 [00:02<00:05, 1.5s/it]", "Eval 3/9 [00:01]",
                     "2026-11-23 10:00:01.5 ", "Epoch 2/3", "EPOCH 4", "epoch 1:"]),
)
lines = st.lists(st.one_of(st.sampled_from(TOKENS), phrases, phrases), max_size=12).map("".join)


# ----------------------------------------------------------------------------- metrics


def _first(pat, seg):
    m = pat.search(seg)
    return tm._num(m["v"]) if m else None


def reference_segment(seg, *, line_no=None, epoch_hint=None):
    """parse_segment as it was: one search per key."""
    if tm._SUMMARY.search(seg):
        return None
    loss, grad, lr = _first(tm._LOSS, seg), _first(tm._GRAD, seg), _first(tm._LR, seg)
    if loss is None and grad is None and lr is None:
        return None
    epoch = _first(tm._EPOCH, seg)
    return MetricPoint(step=tm._step(seg), epoch=epoch if epoch is not None else epoch_hint,
                       loss=loss, grad_norm=grad, lr=lr, line_no=line_no)


def reference_metrics(lines_, start_line_no=1):
    """parse_metrics as it was: the epoch header searched in every segment."""
    out, hint = [], None
    for i, line in enumerate(lines_):
        if not line:
            continue
        low = line.lower()
        plain = not cleaning_deletes(line)
        if plain and not tm._has_metric_word(low):
            m = tm._EPOCH_HEADER.search(line) if "epoch" in low else None
            if m:
                hint = float(m["v"])
            continue
        for seg in line.split("\r"):
            if not seg.strip():
                continue
            if plain and "\r" in line and not tm._has_metric_word(seg.lower()):
                m = tm._EPOCH_HEADER.search(seg) if "epoch" in seg.lower() else None
                if m:
                    hint = float(m["v"])
                continue
            seg = clean_text(seg, max_len=None)
            m = tm._EPOCH_HEADER.search(seg)
            p = reference_segment(seg, line_no=start_line_no + i, epoch_hint=hint)
            if m and p is None:
                hint = float(m["v"])
            if p is not None:
                out.append(p)
                if p.epoch is not None:
                    hint = p.epoch
    return out


def same_points(a, b) -> bool:
    def key(p):
        return tuple("nan" if isinstance(v, float) and math.isnan(v) else v
                     for v in (p.step, p.epoch, p.loss, p.grad_norm, p.lr, p.line_no, p.at))
    return [key(p) for p in a] == [key(p) for p in b]


def test_metrics_of_the_real_logs_are_found_as_before():
    for text in (REAL, DEMO):
        got = tm.parse_metrics(text)
        assert len(got) > 50
        assert same_points(got, reference_metrics(text))


@settings(deadline=None, max_examples=700)
@given(st.lists(lines, min_size=1, max_size=6))
def test_metrics_of_built_lines_are_found_as_before(block):
    assert same_points(tm.parse_metrics(block), reference_metrics(block))
    for seg in block:
        assert same_points([p for p in [tm.parse_segment(seg, epoch_hint=3.0)] if p],
                           [p for p in [reference_segment(seg, epoch_hint=3.0)] if p])


def test_the_newest_points_of_the_real_logs_are_the_end_of_a_full_parse():
    for text in (REAL, DEMO, REAL + DEMO + REAL):
        full = tm.parse_metrics(text, start_line_no=11)
        for n in (0, 1, 2, 7, 100, 2000, len(full), len(full) + 5):
            got = tm.parse_metrics(text, start_line_no=11, newest=n)
            assert same_points(got, full[len(full) - n:] if n else [])


@settings(deadline=None, max_examples=700)
@given(st.lists(lines, max_size=30), st.integers(0, 12))
def test_the_newest_points_of_built_lines_are_the_end_of_a_full_parse(block, n):
    full = tm.parse_metrics(block, start_line_no=5)
    assert same_points(tm.parse_metrics(iter(block), start_line_no=5, newest=n), full[len(full) - n:] if n else [])


# ----------------------------------------------------------------------------- progress


def reference_progress(lines_, times=None):
    """parse_progress observing every line."""
    real = tp._may_show_progress
    tp._may_show_progress = lambda line: True
    try:
        return tp.parse_progress(lines_, times=times)
    finally:
        tp._may_show_progress = real


def test_progress_of_the_real_logs_is_found_as_before():
    for p in sorted(LOGS.glob("*.log")):
        text = p.read_text(errors="replace").splitlines()
        for end in range(0, len(text) + 1, 7):
            assert tp.parse_progress(text[:end]) == reference_progress(text[:end]), (p.name, end)


@settings(deadline=None, max_examples=700)
@given(st.lists(lines, min_size=1, max_size=6), st.booleans())
def test_progress_of_built_lines_is_found_as_before(block, timed):
    times = [100.0 + 7 * i for i in range(len(block))] if timed else None
    assert tp.parse_progress(block, times=times) == reference_progress(block, times=times)


def test_the_shortcut_passes_every_line_that_shows_progress():
    shown = [line for line in REAL if tp._observe(clean_text(line.split("\r")[-1], max_len=None))]
    assert shown and all(tp._may_show_progress(line) for line in shown)
    assert not tp._may_show_progress("2026-11-23 12:00:01 INFO saving checkpoint to ckpt-3")
