"""Training metrics (step, epoch, loss, grad norm, lr) parsed from common log formats.

Formats seen in real logs (tests/fixtures/logs):
- plain: `step 25 loss 0.01922`, `epoch 0 step 20 loss 0.029071 lr 1.00e-04`, `iter: 379
  total_loss: 1.707 … lr: 0.003796` (detectron2), `loss=14.351 … lr=4.8e-06 … num_updates=190`
  (fairseq), `step 5: loss is nan`;
- Hugging Face Trainer dict lines, with QUOTED numbers in recent versions
  (`{'loss': '6.804', 'grad_norm': '0.9595', 'learning_rate': '5e-05', 'epoch': '0.03125'}`) and
  unquoted ones in older ones; the final `train_runtime` summary is not a step and is skipped;
- Lightning: progress-bar metrics (`loss=2.6, v_num=…`, `train_loss: 1.124` on the wrapped line
  under `Epoch 2/2 ━━ 32/32`), the epoch carried from the bar;
- tqdm lines rewritten with `\\r`: every segment is looked at.

Only training loss is charted: `val_loss`/`eval_loss`/`nll_loss` are not the loss. Values are
taken as printed (`nan`/`inf` kept: a non-finite loss is itself the signal).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from gpudash.model import MetricPoint
from gpudash.sanitize import clean_text, cleaning_deletes
from gpudash.training.progress import completion_line, parse_progress  # noqa: F401  (re-exported)
from gpudash.training.wandb import find_wandb_url  # noqa: F401  (re-exported)

_NUM = r"""['"]?(?P<v>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?))['"]?(?![\w.])"""
_SEP = r"""['"]?\s*(?:is\s+|[=:]\s*)?"""


def _key(names: str) -> re.Pattern:
    # (?<![\w.]) : `val_loss`, `nll_loss`, `eval/loss` and `loss_scale` are other things.
    return re.compile(rf"""(?<![\w./])['"]?(?:{names})(?![\w/]){_SEP}{_NUM}""", re.I)


_KEY_NAMES = {
    "loss": r"loss|train[_ ]loss|total[_ ]loss|train/loss",
    "grad": r"grad[_ ]norm|gnorm|gradient[_ ]norm|grad_norm_total",
    "lr": r"lr|learning[_ ]rate",
    "epoch": r"epoch",
}
_LOSS, _GRAD, _LR, _EPOCH = (_key(names) for names in _KEY_NAMES.values())
# All four in one pattern, one pass over a segment instead of four. The first match of a kind
# is that kind's first match on its own: a match spans a key, a separator and a number, and no
# key of another kind can start inside one (each is preceded by none of [\w./]).
_KEYS = re.compile(
    r"""(?<![\w./])['"]?(?:""" + "|".join(f"(?P<{k}>{names})" for k, names in _KEY_NAMES.items())
    + rf""")(?![\w/]){_SEP}{_NUM}""",
    re.I,
)
_STEP = re.compile(
    r"""(?<![\w.])['"]?(?:global[_ ]step|step|iter(?:ation)?|num_updates)['"]?\s*[=:#]?\s*['"]?(?P<v>\d+(?:\.0+)?(?:e\+?\d+)?)(?![\w.])""",
    re.I,
)
_EPOCH_HEADER = re.compile(r"(?<![\w.])epoch\s*[=:]?\s*(?P<v>\d+)(?:\s*/\s*\d+)?", re.I)
_SUMMARY = re.compile(r"""['"]train_runtime['"]""")


def _num(s: str) -> float | None:
    try:
        return float(s.strip("'\""))
    except ValueError:
        return None


def _first(pat: re.Pattern, seg: str) -> float | None:
    m = pat.search(seg)
    return _num(m["v"]) if m else None


def _step(seg: str) -> int | None:
    m = _STEP.search(seg)
    if not m:
        return None
    v = _num(m["v"])
    if v is None or not math.isfinite(v) or v != int(v):
        return None
    return int(v)


def parse_segment(seg: str, *, line_no: int | None = None, epoch_hint: float | None = None) -> MetricPoint | None:
    """One metrics point from one (sanitised) segment, or None when it carries no metric."""
    if "train_runtime" in seg and _SUMMARY.search(seg):
        return None
    loss = grad = lr = epoch = None
    for m in _KEYS.finditer(seg):
        if m["loss"] is not None:
            if loss is None:
                loss = _num(m["v"])
        elif m["grad"] is not None:
            if grad is None:
                grad = _num(m["v"])
        elif m["lr"] is not None:
            if lr is None:
                lr = _num(m["v"])
        elif epoch is None:
            epoch = _num(m["v"])
    if loss is None and grad is None and lr is None:
        return None
    if epoch is None:
        epoch = epoch_hint
    return MetricPoint(step=_step(seg), epoch=epoch, loss=loss, grad_norm=grad, lr=lr, line_no=line_no)


def _has_metric_word(low: str) -> bool:
    return "loss" in low or "lr" in low or "learning" in low or "norm" in low


def parse_metrics(lines: Iterable[str], start_line_no: int = 1, *,
                  newest: int | None = None) -> list[MetricPoint]:
    """Every metrics point in `lines` (oldest first); never raises.

    `start_line_no` is the 1-based number of the first line, so points carry their line in the
    run's log. An epoch printed on a header/progress line (`Epoch 3/10`) is carried to later
    points that print none.

    `newest`: only the newest that many points, the same as the end of a full parse, read from
    the end of `lines` only as far back as they go. A watch's first read of a day-old log is
    ~4,000 lines, most of them metric lines, of which it keeps 2,000 points: parsing them all
    was a third of a 200-host fleet's CPU while it started.
    """
    if newest is None:
        return _parse(lines, start_line_no, None)[0]
    seq = lines if isinstance(lines, (list, tuple)) else list(lines)
    out: list[MetricPoint] = []
    hi, size = len(seq), max(1, newest)
    while hi > 0 and len(out) < newest:
        lo = max(0, hi - size)
        got, _ = _parse(seq[lo:hi], start_line_no + lo, _hint_before(seq, lo))
        out[:0] = got
        # the next block: as many lines as the points still wanted took here, and a fifth more
        size = int((newest - len(out)) * (hi - lo) / len(got) * 1.2) + 16 if got else 2 * size
        hi = lo
    return out[len(out) - newest:] if newest > 0 else []


_UNSET = object()


def _hint_before(seq: Sequence, lo: int):
    """The epoch carried into line ``lo`` by the lines before it: set by the newest of them that
    sets one. Only a line that names an epoch can (or one that cleaning changes, or one not
    ASCII, where ``lower()`` and ``re.I`` differ): parsed alone, does it set the hint?"""
    for k in range(lo - 1, -1, -1):
        line = _text(seq[k])
        if line and ("epoch" in line.lower() or not line.isascii() or cleaning_deletes(line)):
            _, hint = _parse((line,), 1, _UNSET)
            if hint is not _UNSET:
                return hint
    return None


def _text(line) -> str:
    if isinstance(line, str):
        return line
    return line.decode("utf-8", errors="replace") if isinstance(line, (bytes, bytearray)) else str(line)


def _parse(lines: Iterable[str], start_line_no: int, epoch_hint) -> tuple[list[MetricPoint], object]:
    """The points of `lines`, and the epoch carried past them, starting from `epoch_hint`."""
    out: list[MetricPoint] = []
    for i, line in enumerate(lines):
        line = _text(line)
        if not line:
            continue
        low = line.lower()
        plain = not cleaning_deletes(line)  # then a keyword absent raw is absent cleaned
        if plain and not _has_metric_word(low):
            m = _EPOCH_HEADER.search(line) if "epoch" in low else None
            if m:
                epoch_hint = float(m["v"])
            continue
        for seg in line.split("\r"):
            if not seg.strip():
                continue
            if plain and "\r" in line and not _has_metric_word(seg.lower()):
                # a progress-bar state without a metric (tqdm redraws many per line): only an
                # epoch header can matter here, as on a line without metric words
                m = _EPOCH_HEADER.search(seg) if "epoch" in seg.lower() else None
                if m:
                    epoch_hint = float(m["v"])
                continue
            seg = clean_text(seg, max_len=None)
            p = parse_segment(seg, line_no=start_line_no + i, epoch_hint=epoch_hint)
            if p is not None:
                out.append(p)
                if p.epoch is not None:
                    epoch_hint = p.epoch
            elif "epoch" in seg.lower() or not seg.isascii():  # re.I: see progress._may_show_progress
                m = _EPOCH_HEADER.search(seg)
                if m:
                    epoch_hint = float(m["v"])
    return out, epoch_hint


def last_loss(points: Iterable[MetricPoint]) -> float | None:
    loss = None
    for p in points:
        if p.loss is not None:
            loss = p.loss
    return loss
