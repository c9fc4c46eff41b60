"""The small pure pieces behind the panels: sparklines with gaps, gauges, throttle words, the
log continuation rule, "seen ago"/"unreachable since", and the plotext chart as plain text."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import LinkStatus, Reason, State
from gpudash.ui import viewinfo as vi
from gpudash.ui.text import decode_throttle, fmt_duration, gauge, safe, spark
from gpudash.ui.widgets.jobs_table import job_rows
from gpudash.ui.widgets.log_view import _continuation
from gpudash.ui.widgets.metrics_chart import envelope, render_plot, series_of
from tests.ui.fake_fleet import T0, UTC, gpu_from_query, hf_metrics, series, view_gone, view_h100, view_slurm


def test_sparkline_shows_missing_samples_as_gaps_not_zeros():
    assert spark([0.0, None, 100.0], 3).plain == "▁ █"
    assert spark([50.0], 4).plain == "   ▅"  # right-aligned: newest at the right edge
    util, _ = series()  # the real H100 series: idle, busy, a stall, busy
    line = spark(util, 68).plain
    assert line.startswith("▁") and "█" in line


def test_gauge_fills_proportionally_and_marks_unknown():
    assert gauge(50.0, 10, "$success").plain == "█████░░░░░"
    assert gauge(100.0, 4, "$error").plain == "████"
    assert gauge(None, 4, "$error").plain == "????"


def test_throttle_mask_in_words_from_the_real_capture():
    _, idle = gpu_from_query("query-idle-nounits.csv")
    _, busy = gpu_from_query("query-busy-nounits.csv")
    assert decode_throttle(idle.throttle_mask) == "idle"  # 0x1 while idle
    assert decode_throttle(busy.throttle_mask) == "none"
    assert decode_throttle(0x4 | 0x40) == "sw-power-cap,hw-thermal"
    assert decode_throttle(None) == "n/a"
    assert decode_throttle(0x10000) == "0x10000"


def test_durations():
    assert [fmt_duration(s) for s in (5, 125, 3600 + 300, 3 * 86400 + 7200)] == ["5s", "2m05s", "1h05m", "3d02h"]


def test_continuation_appends_only_new_lines():
    old = [f"l{i}" for i in range(20)]
    assert _continuation(old, tuple(old[5:] + ["l20", "l21"])) == 15
    assert _continuation(old, tuple(old)) == 20
    assert _continuation(old, tuple(old[:-1] + ["l19 rewritten"])) is None  # a \r progress rewrite
    assert _continuation(old, ("other",)) is None  # rotation
    assert _continuation([], ("a",)) == 0


@settings(deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=30), st.lists(st.sampled_from(["a", "b", "c"]), max_size=30))
def test_continuation_never_claims_more_than_it_has(old, new):
    start = _continuation(old, tuple(new))
    assert start is None or 0 <= start <= len(new)


@settings(deadline=None)
@given(st.text())
def test_safe_never_lets_escapes_through(s):
    out = safe(s)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out


def test_seen_and_unreachable_text():
    assert vi.seen_text(view_h100(), T0, UTC) == "seen 3s ago"
    assert vi.seen_text(view_gone(), T0, UTC) == "unreachable since 14:02"
    v = view_h100()
    auth = dataclasses.replace(v, snapshot=dataclasses.replace(
        v.snapshot, link=LinkStatus(ok=False, reason=Reason.AUTH_FAILED, since=T0 - 60)), state=State.UNKNOWN)
    assert vi.seen_text(auth, T0, UTC) == "auth failed since 14:29"


def test_worst_disk_finds_the_inode_trap():
    from tests.ui.fake_fleet import view_inodes

    v = view_inodes()
    assert vi.worst_disk(v, inodes=True).mount == "/mnt/small"
    assert vi.worst_disk(v, inodes=False).mount == "/"


def test_job_rows_keep_the_sources_state_words():
    rows = job_rows(view_slurm())
    assert ("slurm", "5", "PENDING") == rows[0][:3] and ("slurm", "4", "RUNNING") == rows[1][:3]
    kinds = [r[0] for r in job_rows(view_h100())]
    assert kinds == ["tmux", "tmux", "proc", "gpu app"]


def test_chart_is_plain_text_without_ansi():
    xs, ys = series_of(hf_metrics(), "loss")
    assert len(xs) == 9 and ys[0] == 6.804
    text = render_plot(xs, ys, 60, 12)
    assert "\x1b" not in text
    assert "6.8" in text and len(text.splitlines()) >= 10


def test_nan_points_are_left_out_of_the_chart():
    from gpudash.model import MetricPoint

    xs, ys = series_of((MetricPoint(step=1, loss=1.0), MetricPoint(step=2, loss=float("nan")),
                        MetricPoint(step=3, loss=0.5)), "loss")
    assert xs == [1.0, 3.0] and ys == [1.0, 0.5]


def test_a_series_the_chart_can_show_is_drawn_as_it_is():
    xs, ys = [float(i) for i in range(400)], [float(i % 7) for i in range(400)]
    assert envelope(xs, ys, 100) == (xs, ys)  # 4 per bucket would not be fewer


@settings(deadline=None, max_examples=200)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000), st.integers(1, 200),
       st.integers(0, 3))
def test_the_envelope_keeps_every_buckets_ends_and_extremes_in_order(ys, buckets, gaps):
    xs = [float(i * (gaps + 1)) for i in range(len(ys))]  # ascending steps
    ex, ey = envelope(xs, ys, buckets)
    pairs = list(zip(xs, ys))
    kept = list(zip(ex, ey))
    # a subsequence of the series, in order
    it = iter(pairs)
    assert all(any(p == q for q in it) for p in kept)
    assert kept[0] == pairs[0] and kept[-1] == pairs[-1]
    assert min(ey) == min(ys) and max(ey) == max(ys)
    if len(ys) > 4 * buckets:
        assert len(kept) <= 4 * buckets
        scale = buckets / ((xs[-1] - xs[0]) or 1.0)
        bucket = lambda x: min(buckets - 1, int((x - xs[0]) * scale))  # noqa: E731
        by_bucket: dict[int, list[float]] = {}
        for x, y in pairs:
            by_bucket.setdefault(bucket(x), []).append(y)
        for b, vals in by_bucket.items():  # each bucket's own lowest and highest are drawn
            mine = [y for x, y in kept if bucket(x) == b]
            assert min(mine) == min(vals) and max(mine) == max(vals)
    else:
        assert kept == pairs


def test_a_long_curve_is_drawn_on_the_same_axes_with_its_spike():
    """A 2,000-point loss curve (96 ms a redraw through plotext here, before): the chart drawn
    from its envelope has the same axes, and the spike still reaches the top row."""
    import random

    rnd = random.Random(5)
    xs, ys, y = [], [], 6.0
    for step in range(1, 2001):
        y += rnd.gauss(0, 0.05) - 0.002
        xs.append(float(step))
        ys.append(y + (3.0 if step == 1234 else 0.0))
    full = render_plot(xs, ys, 56, 12).splitlines()
    drawn = render_plot(*envelope(xs, ys, 2 * 56), 56, 12).splitlines()
    assert len(envelope(xs, ys, 2 * 56)[0]) <= 4 * 2 * 56
    axis = [ln.split("┤")[0] for ln in full if "┤" in ln]
    assert axis == [ln.split("┤")[0] for ln in drawn if "┤" in ln]  # the y scale
    assert full[-1] == drawn[-1]  # the x labels
    top = next(i for i, ln in enumerate(full) if "┤" in ln)
    ink = lambda ln: {i for i, c in enumerate(ln) if c not in " │┤"}  # noqa: E731
    assert ink(full[top]) and ink(full[top]) == ink(drawn[top])  # the spike's column
