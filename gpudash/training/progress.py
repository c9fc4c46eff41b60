"""Progress (`~current/max` exactly as the log printed it) and completion lines.

Progress is read, never computed: tqdm's `40/64`, `step 100/1000`, Lightning's `Epoch 2/2` are
taken literally (no rounding, no percent maths); a bare `step 650` gives `~650/unknown`. Rate and
ETA come from two observations with times (log timestamps, or the caller's arrival times), or
from tqdm's own `[elapsed<remaining, rate]` field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from gpudash.model import Progress
from gpudash.sanitize import clean_text, cleaning_deletes

# ----------------------------------------------------------------------------- completion

# Default completion markers (product.md: `Training completed`, `Early stopping`, `FINISHED`,
# `QUEUE DONE`, plus the frameworks' own end lines). Case rules follow how they are printed.
DEFAULT_COMPLETION: tuple[re.Pattern, ...] = (
    re.compile(r"\btraining (?:is |has )?(?:completed?|finished|done)\b", re.I),  # HF: "Training completed."
    re.compile(r"\bearly stopping\b(?!\s*(?:patience|counter|callback|enabled|delta|=|:))", re.I),
    re.compile(r"\bFINISHED\b"),
    re.compile(r"\bQUEUE DONE\b"),
    re.compile(r"""['"]train_runtime['"]\s*:"""),  # HF Trainer's final summary dict
    re.compile(r"`Trainer\.fit` stopped"),  # Lightning
    re.compile(r"\bdone training in [\d.]+\s*(?:seconds|s)\b", re.I),  # fairseq
    re.compile(r"\b\d+ epochs? completed in\b", re.I),  # ultralytics
)
# Lower-case substrings one of which every default marker contains: a cheap prefilter.
COMPLETION_ANCHORS: tuple[str, ...] = (
    "complet", "early stop", "finished", "queue done", "train_runtime", "fit` stopped",
    "done training", "training done", "training is done", "training has done",
)
_DEFAULT_SET = frozenset(DEFAULT_COMPLETION)
_DEFAULT_NAMES = frozenset(("training completed", "early stopping", "finished", "queue done"))


def completion_markers(extra: Iterable[str] = ()) -> tuple:
    """The default markers plus the config's literal strings (skipping the defaults' own names,
    which the regexes above already cover more carefully)."""
    out: list = list(DEFAULT_COMPLETION)
    for s in extra or ():
        if isinstance(s, re.Pattern):
            out.append(s)
        elif isinstance(s, str) and s.strip() and s.strip().lower() not in _DEFAULT_NAMES:
            out.append(s)
    return tuple(out)


def is_completion(segment: str, markers: Sequence = DEFAULT_COMPLETION) -> bool:
    anchored: bool | None = None  # does the segment hold one of the defaults' anchors?
    for m in markers:
        if isinstance(m, str):
            if m in segment:
                return True
        elif m in _DEFAULT_SET:
            # The defaults' regexes run only on segments that contain one of their anchors:
            # this runs on every new log line of every host (8 regexes each, otherwise).
            if anchored is None:
                low = segment.lower()
                anchored = any(a in low for a in COMPLETION_ANCHORS)
            if anchored and m.search(segment):
                return True
        elif m.search(segment):
            return True
    return False


def completion_line(text: str | bytes, markers: Sequence | None = None, *,
                    extra: Iterable[str] = ()) -> tuple[int, str] | None:
    """The LAST completion line of `text` as (1-based line number, sanitised text), or None.

    `markers` replaces the defaults (regexes or literal strings); `extra` adds literal strings
    (the config's `completion_lines`) to them.
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", errors="replace")
    marks = completion_markers(extra) if markers is None else tuple(markers) + tuple(extra or ())
    if all(m in _DEFAULT_SET for m in marks) and not cleaning_deletes(text):
        # Only the defaults, and cleaning cannot join letters: no anchor in the raw text means
        # no marker in any cleaned segment (most chunks of most logs end here, unsplit).
        low = text.lower()
        if not any(a in low for a in COMPLETION_ANCHORS):
            return None
    lines = text.split("\n")
    for idx in range(len(lines) - 1, -1, -1):
        line = lines[idx]
        for seg in reversed(line.split("\r")):
            if seg.strip() and is_completion(clean_text(seg, max_len=None), marks):
                return idx + 1, clean_text(seg)
    return None


# ----------------------------------------------------------------------------- progress

# tqdm: "40/64 [00:01<00:00, 44.92it/s]"; rich (Lightning): "32/32 0:00:00 • 0:00:00 258.35it/s";
# keras: "100/100 [======]".
_BAR = re.compile(
    r"(?P<cur>\d+)/(?P<tot>\d+|\?)\s*(?:\[(?P<el>[\d:]+)?(?:<(?P<rem>[\d:?]+))?(?:,\s*(?P<rate>[\d.]+)\s*(?P<unit>s/it|it/s|\w+/s))?|(?P<rich>\d+:\d\d:\d\d)\b)"
)
_STEP_OF = re.compile(
    r"(?<![\w.])(?:global[_ ]step|step|iter(?:ation)?|update|num_updates)s?\s*[=:#]?\s*(?P<cur>\d+)\s*(?:/|of)\s*(?P<tot>\d+)\b",
    re.I,
)
_STEP = re.compile(r"(?<![\w.])(?:global[_ ]step|step|iter(?:ation)?|num_updates)s?\s*[=:#]?\s*(?P<cur>\d+)\b", re.I)
_EPOCH_OF = re.compile(r"(?<![\w.])epoch\s*[=:]?\s*(?P<cur>\d+)\s*/\s*(?P<tot>\d+)\b", re.I)
# A described tqdm bar is a training bar only when its description says so.
_TRAIN_DESC = re.compile(r"epoch|train|step|iter|fit", re.I)
_TS = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:[.,](\d+))?")


def _hms(s: str | None) -> float | None:
    if not s or "?" in s:
        return None
    try:
        parts = [int(p) for p in s.split(":")]
    except ValueError:
        return None
    total = 0
    for p in parts:
        total = total * 60 + p
    return float(total)


def _observe(seg: str):
    """(current, total|None, rate|None, eta|None) for one progress segment, or None."""
    m = _STEP_OF.search(seg)
    if m:
        return int(m["cur"]), int(m["tot"]), None, None
    m = _EPOCH_OF.search(seg)  # Lightning's "Epoch 2/2 ━━ 32/32": the run-level count wins
    if m:
        return int(m["cur"]), int(m["tot"]), None, None
    for m in _BAR.finditer(seg):
        desc = seg[: m.start()]
        desc = desc.split("|")[0] if "|" in desc else desc
        desc = re.sub(r"[\d.%\s:]+$", "", desc).strip()
        if desc and not _TRAIN_DESC.search(desc):
            continue  # "Writing model shards", "Downloading", an eval bar…
        tot = None if m["tot"] == "?" else int(m["tot"])
        rate = eta = None
        if m["rate"]:
            r = float(m["rate"])
            rate = (1.0 / r if r else None) if m["unit"] == "s/it" else r
            eta = _hms(m["rem"])
        return int(m["cur"]), tot, rate, eta
    m = _STEP.search(seg)
    if m:
        return int(m["cur"]), None, None, None
    return None


def _may_show_progress(line: str) -> bool:
    """False when no segment of ``line`` can show progress: every pattern of :func:`_observe`
    needs a ``/`` or a step word, and where cleaning cannot join letters (it only deletes
    escapes and invisible characters) one absent from the raw line is absent from its cleaned
    segments. Not ASCII: maybe (``re.I`` matches ``ſtep`` and ``ıter``, ``lower()`` keeps
    them). A log without progress lines (a first read of 4,000 of them) was observed line by
    line, back to its start, at ~25 µs a line."""
    if "/" in line or not line.isascii() or cleaning_deletes(line):
        return True
    low = line.lower()
    return "step" in low or "iter" in low or "update" in low


def _timestamp(seg: str) -> float | None:
    m = _TS.search(seg)
    if not m:
        return None
    try:
        dt = datetime.fromisoformat(f"{m[1]} {m[2]}")
    except ValueError:
        return None
    return dt.timestamp() + (float("0." + m[3]) if m[3] else 0.0)


def parse_progress(lines: Iterable[str], *, times: Sequence[float | None] | None = None) -> Progress | None:
    """The newest progress observation of `lines` as `Progress` (exact as printed), or None.

    Rate/ETA: from two observations with times (timestamps in the lines, or `times[i]`, the wall
    time line i was read), else from tqdm's own rate and remaining-time fields.
    """
    lines = lines if isinstance(lines, Sequence) else list(lines)

    def observe(i: int):
        line = lines[i]
        if not isinstance(line, str):
            line = line.decode("utf-8", errors="replace") if isinstance(line, (bytes, bytearray)) else str(line)
        if not _may_show_progress(line):
            return None
        at = times[i] if times is not None and i < len(times) else None
        segs = [s for s in line.split("\r") if s.strip()]
        for seg in reversed(segs):  # the last segment is what the terminal showed
            seg = clean_text(seg, max_len=None)
            o = _observe(seg)
            if o is not None:
                return (*o, at if at is not None else _timestamp(seg))
        return None

    # Newest first, and only as far back as needed: the newest observation, then (for a rate)
    # the nearest earlier one of the same count. A log tick of a busy run has dozens of lines;
    # observing every one was most of the cost of reading it.
    older = (observe(i) for i in range(len(lines) - 1, -1, -1))
    newest = next((o for o in older if o is not None), None)
    if newest is None:
        return None
    cur, tot, rate, eta, at = newest
    if at is not None:
        for prev in older:
            if prev is None:
                continue
            pcur, ptot, _r, _e, pat = prev
            if pat is not None and pat < at and pcur < cur and ptot == tot:
                rate = (cur - pcur) / (at - pat)
                eta = (tot - cur) / rate if tot is not None and rate > 0 else None
                break
    if eta is None and rate and tot is not None:
        eta = max(0.0, (tot - cur) / rate)
    return Progress(current=cur, total=tot, rate_per_s=rate, eta_s=eta)
