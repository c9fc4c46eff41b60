"""Classify a training log: what ended the current run, the line that proves it, what to do.

How a verdict is reached (product.md, "Triage classes" rules):

1. Prefilter. The lower-cased text is searched for the short coarse anchors of signatures.py
   (plain `str.find`, one pass each); only lines containing one are looked at.
2. Hits. Each candidate segment (a `\\r` progress line has several) is matched against the
   signature table (first match wins, specific before generic); if none matches but it is a
   Python exception line (`KeyError: 'x'`), the exception's name decides (code_error for
   KeyError…, unknown_error for a name we do not know). Hits on warning lines, on retry messages
   and inside `Exception ignored in` teardown tracebacks are *soft*: they count only when nothing
   else does ("the final exception outranks earlier warnings"; routine noise is not a failure).
   A printed `loss nan` is void when a finite loss is printed after it (fp16 skips).
3. Episodes. Hits are grouped into failure episodes; an episode ends when the run is seen
   progressing again after it: a fresh start (a start banner, or the step counter going
   backwards) followed by progress, or three advancing progress lines. An ended episode is
   history (`past`), not the current state: a shared master log that concatenates runs cannot
   false-alarm a healthy later run.
4. Root cause. In the last episode, the lowest band of signatures.py wins (hardware, then the
   run's physical limits, then the scheduler, then consequences such as NCCL timeouts, network
   errors, signals and code errors, then unknown); inside a band the first occurrence wins (a
   `ConnectionResetError` before `DataLoader worker … killed by signal: Killed` is host_oom, a
   KeyError on one rank before the NCCL watchdog fires is code_error).
5. Completion. A completion line after the last non-soft hit makes the run `completed`.

Nothing here raises on any input; every text in the result is sanitised.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gpudash.sanitize import clean_text
from gpudash.training.progress import COMPLETION_ANCHORS, completion_markers, is_completion
from gpudash.triage import signatures as sigs
from gpudash.triage.classes import info
from gpudash.triage.result import Evidence, TriageResult, make_result

FIRST_WINDOW = 256 << 10  # look at the last 256 KiB first; widen (x8) only when the episode starts earlier
MAX_BYTES = 8 << 20
MAX_EVIDENCE = 6
MAX_PAST = 5
_SUMMARY_TEXT = 160
_LOOKBACK_LINES = 400  # how far back a hit looks for its traceback header / the last step


@dataclass
class _Hit:
    idx: int  # line index in the analysed window
    cls: str
    band: int
    soft: bool
    text: str  # sanitised segment
    name: str  # signature name, or "exception:<Name>"
    cause: str | None = None
    metric: bool = False
    exception: bool = False


@dataclass
class _Episode:
    hits: list[_Hit]
    closed: bool = False  # the run was seen progressing after it

    @property
    def strong(self) -> list[_Hit]:
        return [h for h in self.hits if not h.soft]


# ----------------------------------------------------------------------------- progress

_BANNER = re.compile(
    r"\*{3,}\s*Running training\s*\*{3,}|^\s*GPU available: |wandb: (?:Tracking run with wandb version|Syncing run)|"
    r"\b(?:starting|start|begin(?:ning)?|launching)\s+(?:the\s+)?(?:training|fine-?tuning|train run|experiment)\b|"
    r"\btraining (?:started|starts|begins|is starting)\b|\bresum(?:e|ing|ed) (?:training|from)\b|"
    r"^\s*Namespace\(|Starting elastic_operator|Starting worker group|\battempt \d+\s*(?:of|/)\s*\d+|"
    r"\brestart(?:ing)? (?:attempt )?#?\d+|^\s*={3,}.{0,60}\b(?:run|attempt|restart|start)\b",
    re.I,
)
_P_STEP = re.compile(r"(?<![\w.])(?:global[_ ]step|step|iter(?:ation)?|num_updates)s?\s*[=:#]?\s*(\d+)(?![\d.])", re.I)
_P_BAR = re.compile(r"/(?:\d+|\?)\s*(?:\[|\d+:\d\d:\d\d)")  # literal first char: fast search
_DIGITS_BEFORE = re.compile(r"(\d+)$")
_P_LOSS = re.compile(
    r"""(?<![\w./])['"]?(?:loss|train[_ ]loss|total[_ ]loss)(?![\w/])['"]?\s*(?:is\s+|[=:]\s*)?['"]?"""
    r"""([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)""",
    re.I,
)


def _last_segment(line: str) -> str:
    if "\r" in line:
        for seg in reversed(line.split("\r")):
            if seg.strip():
                return seg
        return ""
    return line


_BANNER_TOKENS = ("running training", "gpu available", "wandb:", "start", "begin", "launch", "resum",
                  "namespace(", "elastic_operator", "worker group", "attempt", "restart", "===")




def _banner(seg: str) -> bool:
    low = seg.lower()
    for t in _BANNER_TOKENS:  # a plain loop of `in` tests: far cheaper than a regex on every line
        if t in low:
            return bool(_BANNER.search(seg))
    return False


def _progress(seg: str) -> tuple[str, float | None] | None:
    """('step'|'bar'|'metric', value) when the segment shows training progress."""
    low = seg.lower()
    if "step" in low or "iter" in low or "update" in low:
        m = _P_STEP.search(seg)
        if m:
            return "step", float(m.group(1))
    if "/" in seg:
        for m in _P_BAR.finditer(seg):
            d = _DIGITS_BEFORE.search(seg, max(0, m.start() - 12), m.start())
            if d:
                return "bar", float(d.group(1))
    m = _P_LOSS.search(seg) if "loss" in low else None
    if m:
        try:
            v = float(m.group(1))
        except ValueError:
            return None
        return ("metric", None) if math.isfinite(v) else None
    return None


def _moves_on(lines: Sequence[str], lo: int, hi: int, prev_step: float | None) -> bool:
    """Is the run seen progressing in lines[lo:hi]: a fresh start then progress, or three
    advancing progress lines? Stops at the first yes."""
    count = 0
    fresh = False
    last_step = prev_step
    last_bar: float | None = None
    for k in range(lo, hi):
        line = lines[k]
        if not line:
            continue
        seg = _last_segment(line)
        if not fresh and _banner(seg):
            fresh = True
            continue
        obs = _progress(seg)
        if obs is None:
            continue
        kind, v = obs
        if kind == "step":
            if last_step is not None and v < last_step:
                fresh = True  # the step counter went backwards: a new process started
                count += 1
            elif last_step is None or v > last_step:
                count += 1
            last_step = v
        elif kind == "bar":
            if last_bar is None or v != last_bar:
                count += 1
            last_bar = v
        else:
            count += 1
        if (fresh and count >= 1) or count >= 3:
            return True
    return False


def _step_value(line: str) -> float | None:
    """The step counter a line shows (its last ``\r`` segment), if any."""
    seg = _last_segment(line)
    low = seg.lower()
    if "step" in low or "iter" in low or "update" in low:
        m = _P_STEP.search(seg)
        if m:
            return float(m.group(1))
    return None


def _steps_before(lines: Sequence[str], lo: int, step_value=_step_value) -> list[float | None]:
    """``out[i - lo]``, for ``lo <= i <= len(lines)``: the step shown by the nearest line before
    ``i`` that shows one, within ``_LOOKBACK_LINES`` (None if none). One forward pass: looking
    back from every hit instead cost 400 lines per hit (1.2 s for 4,000 lines of repeated
    tracebacks, which have no step to find)."""
    n = len(lines)
    out: list[float | None] = []
    last_k, last_v = -_LOOKBACK_LINES - 1, None
    for k in range(max(0, lo - _LOOKBACK_LINES + 1), n + 1):
        if k >= lo:
            out.append(last_v if last_k > k - _LOOKBACK_LINES else None)
        if k < n:
            v = step_value(lines[k])
            if v is not None:
                last_k, last_v = k, v
    return out


def _last_finite_loss(lines: Sequence[str]) -> int:
    """Index of the last line printing a finite loss (-1 if none)."""
    for k in range(len(lines) - 1, -1, -1):
        line = lines[k]
        if "oss" not in line:
            continue
        for seg in reversed(line.split("\r")):
            m = _P_LOSS.search(seg)
            if m:
                try:
                    if math.isfinite(float(m.group(1))):
                        return k
                except ValueError:
                    pass
    return -1


# ----------------------------------------------------------------------------- hits

_COARSE_TO_FINE: dict[str, tuple[str, ...]] = {}
_UNCOVERED: list[str] = []  # fine anchors no coarse anchor is part of: checked on every candidate


def _fine_index() -> dict[str, tuple[str, ...]]:
    if not _COARSE_TO_FINE:
        fine = set(sigs.ANCHOR_INDEX) | set(sigs.EXCEPTION_ANCHORS) | set(COMPLETION_ANCHORS) | set(sigs.IGNORE_ANCHORS)
        for c in sigs.COARSE_ANCHORS:
            _COARSE_TO_FINE[c] = tuple(sorted(f for f in fine if c in f))
        _UNCOVERED.extend(sorted(f for f in fine if not any(c in f for c in sigs.COARSE_ANCHORS)))
    return _COARSE_TO_FINE


def _candidates(lines: Sequence[str], extra: Sequence[str]) -> dict[int, set[str]]:
    """Line index -> coarse anchors found in it: one ``str.find`` pass per anchor over the
    lower-cased lines joined (an anchor never spans a line)."""
    low_lines = [x.lower() for x in lines]  # per line: lower() may change a line's length
    starts = [0]
    starts.extend(itertools.accumulate(len(x) + 1 for x in low_lines))
    low = "\n".join(low_lines)
    out: dict[int, set[str]] = {}
    n = len(lines)
    for a in itertools.chain(sigs.COARSE_ANCHORS, extra):
        i = low.find(a)
        while i != -1:
            k = bisect_right(starts, i) - 1
            if k >= n:
                break
            out.setdefault(k, set()).add(a)
            i = low.find(a, starts[k + 1])
    return out


class ScanMemo:
    """What each line already looked at says (its coarse anchors and, where it has one, its
    hit or completion), for a log classified again and again as it grows: the watch
    re-classifies a host's last 4,000 lines whenever new ones came.

    Finding the lines worth a look and matching them against the signatures was almost all of a
    classification's cost (on the benchmark VM, 4,000 lines: ~25 ms for a healthy log, 0.1-0.5 s
    for one full of tracebacks), and both depend only on the line. With a memo only the lines
    not seen before are searched and matched; what depends on a line's place (episodes, the
    traceback around a hit, the verdict) is worked out afresh each time. Keyed by the line's
    text, not its position: the window slides. Holds the lines of the largest window classified
    with it and a quarter more (500 at least), at most: older lines are forgotten, and a memo of
    a 4,000-line tail stays within the table of 4,000 keys; with :func:`classify_lines`
    its keys are the caller's own strings, not copies. Results are exactly those without a
    memo."""

    def __init__(self) -> None:
        self._said: dict[str, _LineOutcome] = {}
        self._exc: dict[str, bool] = {}  # is the line an exception line (ends a traceback)
        self._step: dict[str, float | None] = {}  # the step counter the line shows
        self._key: tuple = ()
        self._most = 0  # lines in the largest window since the last pruning

    def step_value(self, line: str) -> float | None:
        try:
            return self._step[line]
        except KeyError:
            got = self._step[line] = _step_value(line)
            return got

    def exception_line(self, line: str) -> bool:
        got = self._exc.get(line)
        if got is None:
            got = self._exc[line] = _exception_line(line)
        return got

    def outcomes(self, lines: Sequence[str], markers: tuple, extra: tuple[str, ...]):
        """``(index, outcome)`` of every line that says something, in line order."""
        said = self._said
        if (markers, extra) != self._key:  # other completion markers: other outcomes
            said.clear()
            self._key = (markers, extra)
        misses = [x for x in dict.fromkeys(lines) if x not in said]
        if misses:
            cands = _candidates(misses, extra)
            for j, line in enumerate(misses):
                got = cands.get(j)
                said[line] = _line_outcome(line, _fine_here(got), markers, extra) if got else _NOTHING
        out = [(k, o) for k, line in enumerate(lines) if (o := said[line]) is not _NOTHING]
        # classify() may look at a short window, then the whole text: bounded by the largest
        self._most = max(self._most, len(lines))
        if len(said) > self._most + max(500, self._most // 4):
            self._said = {line: said[line] for line in lines}
            self._exc = {line: self._exc[line] for line in lines if line in self._exc}
            self._step = {line: self._step[line] for line in lines if line in self._step}
            self._most = len(lines)
        return out


_TEARDOWN_LOOKBACK = 80


def _in_ignored_traceback(lines: Sequence[str], idx: int) -> bool:
    """Is line idx inside an `Exception ignored in: …` traceback (interpreter teardown noise)?
    The nearest line at or before it (within 80) that decides says so (:func:`_decides`)."""
    for k in range(idx, max(-1, idx - _TEARDOWN_LOOKBACK), -1):
        said = _decides(lines, k, own=k == idx)
        if said is not None:
            return said
    return False


def _exception_line(line: str) -> bool:
    return bool(sigs.EXCEPTION_LINE.match(sigs.LINE_PREFIX.sub("", clean_text(line, max_len=400))))


def _decides(lines: Sequence[str], k: int, *, own: bool, exception_line=_exception_line) -> bool | None:
    """What line k says about the lines after it (``own``: about itself, where an exception
    line does not end the traceback it closes): an exception line ends any traceback (False),
    `Exception ignored in` opens one (True), a traceback header is one if that line came just
    before it; None: nothing, look further back."""
    line = lines[k]
    if not own and exception_line(line):
        return False
    if "Exception ignored in" in line:
        return True
    if "Traceback (most recent call last)" in line:
        return k > 0 and "Exception ignored in" in lines[k - 1]
    return None


class _TeardownSweep:
    """:func:`_in_ignored_traceback` for hits met in line order, by one forward sweep that
    remembers the nearest deciding line: looking back 80 lines from every hit cost 320,000
    regex checks for 4,000 lines that all hit (3 s). A hit before the sweep's position (not in
    order) is answered by looking back, as before."""

    def __init__(self, lines: Sequence[str], memo: ScanMemo | None = None) -> None:
        self.lines = lines
        self.exception_line = _exception_line if memo is None else memo.exception_line
        self.next = 0  # lines before this one were swept
        self.said_at = -1  # the nearest deciding line swept, and what it said
        self.said = False

    def __call__(self, idx: int) -> bool:
        if idx < self.next:
            return _in_ignored_traceback(self.lines, idx)
        lo = max(0, idx - _TEARDOWN_LOOKBACK + 1)
        for k in range(max(self.next, lo), idx):
            said = _decides(self.lines, k, own=False, exception_line=self.exception_line)
            if said is not None:
                self.said_at, self.said = k, said
        self.next = idx
        own = _decides(self.lines, idx, own=True)
        if own is not None:
            return own
        return self.said if self.said_at >= lo else False


def _exception_hit(body: str) -> tuple[str, int, str] | None:
    m = sigs.EXCEPTION_LINE.match(body)
    if not m:
        return None
    name = m.group("name").rsplit(".", 1)[-1]
    if name.endswith("Warning") or name in ("SystemExit", "GeneratorExit"):
        return None
    cls, band = sigs.EXCEPTION_CLASSES.get(name, ("unknown_error", sigs.UNKNOWN))
    if name in ("HTTPError", "HfHubHTTPError", "ClientResponseError"):
        if re.search(r"\b(?:429|5\d\d)\b", body):
            cls, band = "network", sigs.CONSEQUENCE
        elif re.search(r"\b4\d\d\b", body):
            cls, band = "code_error", sigs.CONSEQUENCE
    if name == "OutOfMemoryError":
        cls, band = "cuda_oom", sigs.PHYSICAL
    return cls, band, name


@dataclass(frozen=True)
class _LineOutcome:
    """What one line says, whatever its place in the log: the text of its last completion
    segment before its hit (or of all its segments), and its hit with ``idx`` -1 and ``soft``
    only as far as the line itself tells (``teardown``: whether the lines before it decide)."""

    completion: str | None
    hit: _Hit | None
    teardown: bool = False


_NOTHING = _LineOutcome(None, None)


def _line_outcome(line: str, fine_here: set[str], markers: tuple, extra: tuple[str, ...]) -> _LineOutcome:
    completion = None
    for seg in line.split("\r") if "\r" in line else (line,):
        if not seg.strip():
            continue
        clean = clean_text(seg, max_len=None)
        low = clean.lower()
        present = [f for f in fine_here if f in low]
        if not present:
            continue
        if any(a in low for a in sigs.IGNORE_ANCHORS) and any(i.pattern.search(clean) for i in sigs.IGNORE):
            continue
        if (any(a in low for a in COMPLETION_ANCHORS) or any(a in low for a in extra)) \
                and is_completion(clean, markers):
            completion = clean_text(seg)
            continue
        body = sigs.LINE_PREFIX.sub("", clean, count=1) or clean
        hit = _match(clean, body, present)
        if hit is not None:  # one hit per line: the first segment that says something
            soft = hit.soft or bool(sigs.WARNING_LINE.search(clean))
            return _LineOutcome(completion, replace(hit, soft=soft), teardown=not soft)
    return _LineOutcome(completion, None) if completion is not None else _NOTHING


def _match(clean: str, body: str, present: list[str]) -> _Hit | None:
    order = sorted({j for a in present for j in sigs.ANCHOR_INDEX.get(a, ())})
    for j in order:
        sig = sigs.SIGNATURES[j]
        if sig.pattern.search(body) or (body is not clean and sig.pattern.search(clean)):
            looks = bool(sigs.EXCEPTION_LINE.match(body))
            return _Hit(-1, sig.cls, sig.band, sig.soft, clean_text(clean), sig.name, sig.cause, sig.metric,
                        exception=looks)
    if any(a in present for a in sigs.EXCEPTION_ANCHORS):
        exc = _exception_hit(body)
        if exc is not None:
            cls, band, name = exc
            return _Hit(-1, cls, band, False, clean_text(clean), "exception:" + name, exception=True)
    return None


def _fine_here(anchors) -> set[str]:
    fine = _fine_index()
    here = set(_UNCOVERED)
    for c in anchors:
        here.update(fine.get(c, (c,)))
    return here


class _Scan:
    """One pass over a window of text: hits, completion line, progress."""

    def __init__(self, text: str | list[str], markers: tuple, extra_anchors: tuple[str, ...],
                 memo: ScanMemo | None = None) -> None:
        if isinstance(text, list):  # already lines (classify_lines): the same strings, no copy
            lines = text
        else:
            lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        self.lines = lines
        self.markers = markers
        self.extra = extra_anchors
        teardown = _TeardownSweep(lines, memo)
        self.step_value = _step_value if memo is None else memo.step_value
        self.hits: list[_Hit] = []
        self.completion: int | None = None
        self.completion_text = ""
        if memo is None:
            cands = _candidates(lines, extra_anchors)
            outcomes = ((k, _line_outcome(lines[k], _fine_here(cands[k]), markers, extra_anchors))
                        for k in sorted(cands))
        else:
            outcomes = memo.outcomes(lines, markers, extra_anchors)
        for k, out in outcomes:
            if out.completion is not None:
                self.completion, self.completion_text = k, out.completion
            hit = out.hit
            if hit is not None:
                soft = hit.soft or (out.teardown and teardown(k))  # in line order: one sweep
                self.hits.append(_Hit(k, hit.cls, hit.band, soft, hit.text, hit.name, hit.cause,
                                      hit.metric, hit.exception))


# ----------------------------------------------------------------------------- verdict


def _episodes(scan: _Scan) -> list[_Episode]:
    lines = scan.lines
    eps: list[_Episode] = []
    if not scan.hits:
        return eps
    lo = scan.hits[0].idx + 1
    before = _steps_before(lines, lo, scan.step_value)  # before[i - lo]: the step seen before line i
    for h in scan.hits:
        if eps and not eps[-1].closed:
            last = eps[-1].hits[-1].idx
            if _moves_on(lines, last + 1, h.idx, before[last + 1 - lo]):
                eps[-1].closed = True
            else:
                eps[-1].hits.append(h)
                continue
        eps.append(_Episode([h]))
    if eps and not eps[-1].closed:
        last = eps[-1].hits[-1].idx
        eps[-1].closed = _moves_on(lines, last + 1, len(lines), before[last + 1 - lo])
    return eps


def _winner(ep: _Episode) -> _Hit:
    pool = ep.strong or ep.hits
    best = min(h.band for h in pool)
    tier = [h for h in pool if h.band == best]
    if best >= sigs.UNKNOWN:
        exc = [h for h in tier if h.exception]
        return (exc or tier)[-1]  # unknown: show the FINAL exception line
    return tier[0]


def _result_for(ep: _Episode, offset: int, **kw) -> TriageResult:
    win = _winner(ep)
    ci = info(win.cls)
    others = [h for h in ep.hits if h is not win and (h.cls == win.cls or not h.soft)]
    others.sort(key=lambda h: h.idx)
    evidence = [Evidence(offset + win.idx + 1, win.text)]
    evidence += [Evidence(offset + h.idx + 1, h.text) for h in others[: MAX_EVIDENCE - 1]]
    cause = win.cause or next((h.cause for h in ep.hits if h.cls == win.cls and h.cause), None)
    short = win.text if len(win.text) <= _SUMMARY_TEXT else win.text[:_SUMMARY_TEXT] + "…"
    summary = f"{ci.title} (line {offset + win.idx + 1}): {short}"
    if cause:
        summary = f"{ci.title}, {cause} (line {offset + win.idx + 1}): {short}"
    return make_result(win.cls, summary, evidence, cause=cause if win.cls == "disk_full" else None, **kw)


@dataclass
class _Analysis:
    result: TriageResult
    needs_more: bool  # the current episode may have started before this window


def _analyse(text: str | list[str], offset: int, at_start: bool, markers: tuple, extra: tuple[str, ...],
             source: str, truncated: bool, memo: ScanMemo | None = None) -> _Analysis:
    scan = _Scan(text, markers, extra, memo)
    lines = scan.lines
    if any(h.metric for h in scan.hits):
        last_finite = _last_finite_loss(lines)
        scan.hits = [h for h in scan.hits if not h.metric or h.idx > last_finite]
    eps = _episodes(scan)
    current = eps[-1] if eps and not eps[-1].closed else None
    past_eps = [e for e in eps if e.closed and e.strong]
    comp = scan.completion
    common = dict(source=source, lines_read=len(lines), truncated=truncated)
    needs_more = False

    if current is not None:
        last_strong = max((h.idx for h in current.strong), default=-1)
        if comp is not None and comp > last_strong:
            if current.strong:
                past_eps.append(current)
            current = None  # the run completed after these errors: they did not stop it
        elif eps[0] is current and not at_start:
            needs_more = not _moves_on(lines, 0, current.hits[0].idx, None)

    past = tuple(_result_for(e, offset, **common) for e in past_eps[-MAX_PAST:])
    last_strong_any = max((h.idx for e in eps for h in e.strong), default=-1)
    if current is not None:
        res = _result_for(current, offset, past=past, **common)
    elif comp is not None and comp > last_strong_any and not _restarted_after(lines, comp):
        res = make_result("completed", f"run completed (line {offset + comp + 1}): {scan.completion_text[:_SUMMARY_TEXT]}",
                          [Evidence(offset + comp + 1, scan.completion_text)], past=past, **common)
    else:
        summary = "no failure in the current run"
        if past:
            p = past[-1]
            summary += (f"; an earlier {p.cls} (line {p.evidence[0].line_no}) was followed by a fresh "
                        f"start that is progressing")
        res = make_result("none", summary, (), past=past, **common)
    return _Analysis(res, needs_more)


def _restarted_after(lines: Sequence[str], idx: int) -> bool:
    """A completion line followed by a new run that progresses: the new run is the current one."""
    for k in range(idx + 1, len(lines)):
        if _banner(_last_segment(lines[k])):
            return _moves_on(lines, k + 1, len(lines), None) or _moves_on(lines, k, len(lines), None)
    return False


# ----------------------------------------------------------------------------- API


def _prepare(completion_markers_: Sequence[str] | None) -> tuple[tuple, tuple[str, ...]]:
    markers = completion_markers(completion_markers_ or ())
    extra = tuple(m.lower() for m in markers if isinstance(m, str))
    return markers, extra


def classify(text: str | bytes, *, source: str = "", completion_markers: Sequence[str] | None = None,
             max_chars: int = MAX_BYTES, memo: ScanMemo | None = None) -> TriageResult:
    """Classify a log (the run's own log, or its tail). Never raises.

    Only the last `max_chars` characters are examined (widening from the last 256 KiB when the
    failure episode starts earlier); line numbers stay those of the whole text. `memo`: for a
    text classified again as it grows (see :class:`ScanMemo`); the result is the same.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    markers, extra = _prepare(completion_markers)
    total = len(text)
    window = min(total, FIRST_WINDOW)
    while True:
        start = total - window
        if start > 0:
            nl = text.find("\n", start)
            start = total if nl == -1 else nl + 1  # drop the partial first line
        offset = text.count("\n", 0, start) if start else 0
        an = _analyse(text[start:], offset, start == 0, markers, extra, source, start > 0, memo)
        if not an.needs_more or window >= min(total, max_chars):
            return an.result
        window = min(total, max_chars, window * 8)


def classify_lines(lines: Sequence[str], *, source: str = "", completion_markers: Sequence[str] | None = None,
                   max_chars: int = MAX_BYTES, memo: ScanMemo | None = None) -> TriageResult:
    """:func:`classify` of ``"\\n".join(lines)``, for lines that hold no newline (the watch's tail),
    without joining and splitting them: the same windows and line numbers, and a memo keyed by
    these very strings, so it holds no copy of the tail. Never raises."""
    markers, extra = _prepare(completion_markers)
    lines = list(lines)
    starts = [0]  # where each line starts in the joined text
    starts.extend(itertools.accumulate(len(x) + 1 for x in lines))
    total = max(0, starts.pop() - 1)
    window = min(total, FIRST_WINDOW)
    while True:
        start = total - window
        first = 0
        if start > 0:  # drop the partial first line, as classify does
            first = bisect_right(starts, start)
        part = lines[first:]
        an = _analyse(part, min(first, max(0, len(lines) - 1)), start <= 0, markers, extra, source,
                      start > 0, memo)
        if not an.needs_more or window >= min(total, max_chars):
            return an.result
        window = min(total, max_chars, window * 8)


def classify_file(path: str | os.PathLike, max_bytes: int = MAX_BYTES, *, source: str | None = None,
                  completion_markers: Sequence[str] | None = None,
                  exact_line_numbers: bool = True) -> TriageResult:
    """Classify a log file, reading only its tail (seek from the end): the last 256 KiB first, up to
    `max_bytes` when the failure episode started earlier.

    With `exact_line_numbers` the skipped head is newline-counted (no decoding, no regex: a
    memchr-speed pass) so evidence line numbers are those of the whole file; without it they are
    counted from the first line read. Raises OSError when the file cannot be read.
    """
    markers, extra = _prepare(completion_markers)
    src = source if source is not None else os.fspath(path)
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        window = min(size, FIRST_WINDOW)
        while True:
            start = size - window
            fh.seek(start)
            data = fh.read(window)
            if start > 0:
                nl = data.find(b"\n")
                data = b"" if nl == -1 else data[nl + 1:]
                start = size - len(data)
            offset = _count_newlines(path, start) if (start and exact_line_numbers) else 0
            text = data.decode("utf-8", errors="replace")
            an = _analyse(text, offset, start == 0, markers, extra, clean_text(src, max_len=500), start > 0)
            if not an.needs_more or window >= min(size, max_bytes):
                return an.result
            window = min(size, max_bytes, window * 8)


def _count_newlines(path, end: int, chunk: int = 1 << 22) -> int:
    """Newlines in the first `end` bytes: unbuffered readinto + bytearray.count, no decoding."""
    buf = bytearray(chunk)
    n = pos = 0
    with open(path, "rb", buffering=0) as raw:
        while pos < end:
            k = raw.readinto(memoryview(buf)[: min(chunk, end - pos)])
            if not k:
                break
            n += buf.count(b"\n", 0, k)
            pos += k
    return n
