"""Metric points kept as columns, not as objects.

A watched run's log yields a metric point per line; the watch keeps the newest 2,000 per host.
As :class:`~gpudash.model.MetricPoint` objects (each with its own float objects) they cost ~185
bytes a point, ~370 KB per host: 0.37 GB for a 1,000-host fleet whose logs are a day old.
Here a point is one slot in seven ``array('d')`` columns and a byte of None-flags: ~57 bytes.

:class:`MetricLog` is the watch's buffer: points are appended, the oldest beyond ``cap`` are
dropped. :meth:`MetricLog.view` hands out a :class:`MetricSeries`, an immutable sequence of
``MetricPoint`` made on demand: the log only ever writes past the end of a view's range, and
compaction and :meth:`MetricLog.clear` start new columns, so a snapshot's points never change
under it. A point that the columns cannot hold exactly (an int beyond 2**53, a value of another
type) is kept whole beside them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence

from gpudash.model import MetricPoint

__all__ = ["MetricLog", "MetricSeries", "values"]

FIELDS = ("step", "epoch", "loss", "grad_norm", "lr", "line_no", "at")
_INT_FIELD = tuple(f in ("step", "line_no") for f in FIELDS)
_EXACT = 2**53  # ints up to this fit a double exactly
# Every NaN a series hands out is this one object: a tuple (and so a point's ``==``) compares
# items by identity first, so the same point read twice is equal to itself even when its loss
# is NaN (health.training finds the last point it ingested by equality).
_NAN = float("nan")


class MetricLog:
    """The newest ``cap`` metric points of a log, appended in place."""

    def __init__(self, cap: int, *, slack: int | None = None) -> None:
        if cap < 1:
            raise ValueError("cap must be positive")
        self.cap = cap
        # Columns grow to cap + slack, then the newest cap points move to new columns: one copy
        # per `slack` appends, and no view's columns are ever cut.
        self.slack = max(1, slack if slack is not None else cap // 4)
        self._start()

    def _start(self) -> None:
        self._cols = tuple(array("d") for _ in FIELDS)
        self._nones = bytearray()  # per slot: bit k set when field k is None
        self._whole: dict[int, MetricPoint] = {}  # slot -> a point the columns cannot hold
        self._view: MetricSeries | None = None

    def __len__(self) -> int:
        return min(self.cap, len(self._nones))

    def clear(self) -> None:
        self._start()  # new columns: views already handed out keep theirs

    def append(self, p: MetricPoint, *, at: float | None = None) -> None:
        """Add ``p``; ``at`` stands for its ``at`` when that is None (the time it was read)."""
        if len(self._nones) >= self.cap + self.slack:
            self._compact()
        slot = len(self._nones)
        flags = 0
        vals = (p.step, p.epoch, p.loss, p.grad_norm, p.lr, p.line_no, p.at if p.at is not None else at)
        for k, v in enumerate(vals):
            if v is None:
                flags |= 1 << k
                v = 0.0
            elif type(v) is not (int if _INT_FIELD[k] else float) or (_INT_FIELD[k] and not -_EXACT <= v <= _EXACT):
                self._whole[slot] = p if p.at is not None or at is None else _with_at(p, at)
                flags, vals = 0, (0.0,) * len(FIELDS)
                break
        for col, v in zip(self._cols, vals):
            col.append(0.0 if v is None else v)
        self._nones.append(flags)
        self._view = None

    def extend(self, points: Iterable[MetricPoint], *, at: float | None = None) -> None:
        for p in points:
            self.append(p, at=at)

    def view(self) -> MetricSeries:
        """The kept points as an immutable sequence: the same object until the next change."""
        if self._view is None:
            n = len(self._nones)
            self._view = MetricSeries(self._cols, self._nones, self._whole, max(0, n - self.cap), n)
        return self._view

    def _compact(self) -> None:
        n = len(self._nones)
        lo = n - self.cap
        self._cols = tuple(col[lo:] for col in self._cols)
        self._nones = self._nones[lo:]
        self._whole = {k - lo: p for k, p in self._whole.items() if k >= lo}
        self._view = None


class MetricSeries(Sequence):
    """Points ``lo`` to ``hi`` of a :class:`MetricLog`'s columns, as ``MetricPoint``s."""

    __slots__ = ("_cols", "_nones", "_whole", "_lo", "_hi")

    def __init__(self, cols, nones, whole, lo: int, hi: int) -> None:
        self._cols, self._nones, self._whole, self._lo, self._hi = cols, nones, whole, lo, hi

    def __len__(self) -> int:
        return self._hi - self._lo

    def _point(self, slot: int) -> MetricPoint:
        whole = self._whole.get(slot) if self._whole else None
        if whole is not None:
            return whole
        return _build(self._nones[slot], *(col[slot] for col in self._cols))

    def __getitem__(self, i):
        n = self._hi - self._lo
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return MetricSeries(self._cols, self._nones, self._whole, self._lo + start,
                                    self._lo + max(start, stop))
            return tuple(self._point(self._lo + j) for j in range(start, stop, step))
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("MetricSeries index out of range")
        return self._point(self._lo + i)

    def __iter__(self) -> Iterator[MetricPoint]:
        lo, hi = self._lo, self._hi
        if self._whole:
            for slot in range(lo, hi):
                yield self._point(slot)
            return
        # column by column in C, a point per row: ~3x faster than a slot at a time
        for row in zip(self._nones[lo:hi], *(col[lo:hi] for col in self._cols)):
            yield _build(*row)

    def __reversed__(self) -> Iterator[MetricPoint]:
        for slot in range(self._hi - 1, self._lo - 1, -1):
            yield self._point(slot)

    def values(self, field: str) -> list:
        """One field of every point, oldest first (None where the point has none): a chart's
        series without making a point object per value."""
        k = FIELDS.index(field)
        col = self._cols[k][self._lo:self._hi]
        flags = self._nones[self._lo:self._hi]
        bit = 1 << k
        if _INT_FIELD[k]:
            out = [None if f & bit else int(v) for v, f in zip(col, flags)]
        else:
            out = [None if f & bit else (v if v == v else _NAN) for v, f in zip(col, flags)]
        for slot, p in self._whole.items():
            if self._lo <= slot < self._hi:
                out[slot - self._lo] = getattr(p, field)
        return out

    def __eq__(self, other) -> bool:
        if isinstance(other, MetricSeries) and other._cols is self._cols and (other._lo, other._hi) == (self._lo, self._hi):
            return True
        if not isinstance(other, (MetricSeries, tuple, list)) or len(other) != len(self):
            return False if isinstance(other, (MetricSeries, tuple, list)) else NotImplemented
        return all(a == b for a, b in zip(self, other))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"MetricSeries({list(self)!r})"


def _build(f: int, step, epoch, loss, grad, lr, line_no, at) -> MetricPoint:
    """A point from one row of the columns and its None-flags (``FIELDS`` order)."""
    return MetricPoint(
        None if f & 1 else int(step),
        None if f & 2 else (epoch if epoch == epoch else _NAN),
        None if f & 4 else (loss if loss == loss else _NAN),
        None if f & 8 else (grad if grad == grad else _NAN),
        None if f & 16 else (lr if lr == lr else _NAN),
        None if f & 32 else int(line_no),
        None if f & 64 else (at if at == at else _NAN),
    )


def values(points: Sequence[MetricPoint], field: str) -> list:
    """``[getattr(p, field) for p in points]``, from the columns where ``points`` has them."""
    if isinstance(points, MetricSeries):
        return points.values(field)
    return [getattr(p, field) for p in points]


def _with_at(p: MetricPoint, at: float) -> MetricPoint:
    import dataclasses

    return dataclasses.replace(p, at=at)
