"""Loss (and grad norm / learning rate when the log has them) against step, drawn by plotext.

plotext writes ANSI-coloured text; we ask it for the colourless string and show it as a plain
`Content` in the theme's colour — never through a markup or ANSI parser. Rendering is cached per
(data, size) so an unchanged chart costs nothing per frame, and a series longer than the chart
is wide reaches plotext as its envelope (:func:`envelope`).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget

from gpudash.model import MetricPoint
from gpudash.training.series import values
from gpudash.ui.text import MUTED, fit
from gpudash.ui.widgets.panel import Panel

SERIES = (("loss", "loss"), ("grad_norm", "grad norm"), ("lr", "learning rate"))


def series_of(points: Sequence[MetricPoint], attr: str) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    # the columns themselves, not a point object per value (training/series.py)
    for i, (step, y) in enumerate(zip(values(points, "step"), values(points, attr))):
        if y is None or y != y or y in (float("inf"), float("-inf")):  # NaN/Inf cannot be drawn
            continue
        xs.append(float(step if step is not None else i + 1))
        ys.append(float(y))
    return xs, ys


def envelope(xs: list[float], ys: list[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most 4 points per x bucket — its first, lowest, highest and last, in order — for a
    series longer than the chart can show. plotext's time grows with the points (~0.045 ms each
    here: a 2,000-point loss curve took 96 ms per redraw, and a growing log redraws it on every
    new point); drawn at the chart's width the shape, every spike and both ends stay. ``xs`` are
    steps, ascending; where they go back (a restarted run) a new group starts: more points, none
    of the extremes lost."""
    n = len(xs)
    if buckets < 1 or n <= 4 * buckets:
        return xs, ys
    x0 = xs[0]
    scale = buckets / ((xs[-1] - x0) or 1.0)
    last = buckets - 1
    keep: list[int] = []
    start, group = 0, 0  # the group being read: from index start, in bucket group
    for i in range(1, n + 1):
        bucket = min(last, int((xs[i] - x0) * scale)) if i < n else -1
        if bucket == group:
            continue
        idx = range(start, i)
        lo = min(idx, key=ys.__getitem__)
        hi = max(idx, key=ys.__getitem__)
        keep.extend(sorted({start, lo, hi, i - 1}))
        start, group = i, bucket
    return [xs[i] for i in keep], [ys[i] for i in keep]


def render_plot(xs: list[float], ys: list[float], width: int, height: int, xlabel: str = "step") -> str:
    """A colourless plotext chart as text; supports plotext 6 (figure API) and 5 (pyplot-like)."""
    import plotext as plt

    width, height = max(20, width), max(5, height)
    if hasattr(plt, "clf"):  # plotext 5.x
        plt.clf()
        plt.plotsize(width, height)
        plt.theme("clear")
        plt.plot(xs, ys, marker="braille")
        plt.xlabel(xlabel)
        return plt.uncolorize(plt.build())
    fig = plt.figure  # plotext 6.x
    fig.clear()
    fig.plot_size(width, height)
    sig = fig.signal(xs, ys)
    sig.lines()
    fig.draw(sig)
    return fig.build().string(colorless=True)


class MetricsChart(Panel):
    TITLE = "Metrics"

    BINDINGS = [Binding("c", "cycle_series", "Chart series", id="chart_series")]

    DEFAULT_CSS = """
    MetricsChart { height: 14; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series_index = 0
        self._cache_key: tuple | None = None
        self._cache: Content = Content("")

    def reset(self, keep_data: bool = False) -> None:
        super().reset(keep_data)
        if keep_data:
            if self.series_index:
                self.series_index = 0
                self.refresh()
            return
        self.series_index = 0
        self._cache_key = None
        self._cache = Content("")

    def available(self) -> list[tuple[str, str]]:
        pts = self.view.snapshot.metrics if self.view is not None else ()
        return [(a, label) for a, label in SERIES if any(v is not None for v in values(pts, a))]

    def action_cycle_series(self) -> None:
        self.series_index += 1
        self.refresh()

    get_content_height = Widget.get_content_height  # measured by Textual (wrapping / fixed)

    def render(self) -> Content:
        width = max(20, self.content_region.width or self.size.width)
        height = max(3, self.content_region.height or self.size.height)
        if self.view is None:
            return Content.styled("waiting for the log…", MUTED)
        points = self.view.snapshot.metrics
        avail = self.available()
        if not avail:
            return Content.styled("no loss/grad-norm/lr lines in the log yet", MUTED)
        attr, label = avail[self.series_index % len(avail)]
        xs, ys = series_of(points, attr)
        last = points[-1]
        head = Content.assemble(
            (label, "bold $primary"), (" vs step", MUTED),
            *(x for a, lab in avail for x in (("  ·  ", MUTED), (f"{lab} ", MUTED),
                                               (_fmt(getattr(_last_with(points, a), a)), "bold"))),
            ("  ·  step ", MUTED), (str(last.step) if last.step is not None else "n/a", "bold"),
            ("  (c: next series)" if len(avail) > 1 else "", MUTED),
        )
        key = (attr, len(points), points[-1], width, height)
        if key != self._cache_key:
            self._cache_key = key
            if len(xs) < 2:
                self._cache = Content.styled("(one point so far)", MUTED)
            else:
                # two dots per column (the axis labels take some columns: a little to spare)
                text = render_plot(*envelope(xs, ys, 2 * width), width, height - 1)
                self._cache = Content.styled(text.rstrip("\n"), "$primary")
        return fit(head, width) + Content("\n") + self._cache


def _last_with(points, attr):
    for p in reversed(points):
        if getattr(p, attr) is not None:
            return p
    return points[-1]


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4g}"
