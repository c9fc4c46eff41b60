"""The log's lines render as Textual's own Log renders them, and stay right as the log moves.

RunLog keeps rendered lines in Log's cache (Textual 8 stores them only while text is selected)
and renders a line with nothing to mark without Rich. Both are checked against Log's own
rendering, cell by cell, on the real training logs and failures of tests/fixtures/logs plus
hostile lines, in a real (headless) app.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.style import Style
from textual.app import App, ComposeResult
from textual.widgets import Log

from gpudash.ui.widgets.log_view import LogView, RunLog

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
HOSTILE = [
    "", " ", "\t indented\twith tabs", "宽字符 training 步骤 loss=0.5 😀", "x" * 400,
    "Traceback (most recent call last):", "RuntimeError: CUDA out of memory", "WARNING: slow",
    "Training completed in 3h", "loss nan at step 7", "bell \x07 and escape \x1b[31mred",
]


def corpus() -> list[str]:
    lines = []
    for f in sorted(LOGS.glob("*.log")):
        lines += f.read_text(errors="replace").splitlines()[:120]
    return lines + HOSTILE


def cells(strip) -> list[tuple[str, Style | None]]:
    """Each cell's character and style (a null style and None are the same)."""
    out = []
    for seg in strip:
        style = seg.style if seg.style else None
        out += [(ch, style) for ch in seg.text]
    return out


class LogApp(App):
    def compose(self) -> ComposeResult:
        yield LogView(id="view", max_lines=100)


def original(log: RunLog, y: int):
    """What Textual's Log renders for line y: its own method, through Rich, never from the
    cache (it would answer with RunLog's strip); the cache is left as it was."""
    cache = log._render_line_cache
    kept = cache.get(y)
    cache.discard(y)
    try:
        return Log._render_line_strip(log, y, log.rich_style)
    finally:
        if kept is not None:
            cache[y] = kept


async def test_every_line_renders_as_textual_log_renders_it():
    lines = corpus()
    assert len(lines) > 150  # more than the log keeps: pruning happens below
    app = LogApp()
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(LogView)
        log = view.run_log
        log.write_lines(lines[:80])
        await pilot.pause()
        for y in range(len(log.lines)):
            assert cells(log._render_line_strip(y, log.rich_style)) == cells(original(log, y)), y
        # kept: the next frame renders none of them again
        assert all(y in log._render_line_cache for y in range(len(log.lines)))
        # more lines than max_lines: the oldest go, and every kept line is still its own
        log.write_lines(lines[80:])
        await pilot.pause()
        assert len(log.lines) == 100
        for y in range(len(log.lines)):
            got = log._render_line_strip(y, log.rich_style)
            assert cells(got) == cells(original(log, y)), y
        # a search term marks its matches at once: the kept lines are rendered anew
        view.set_term("loss")
        hit = next(y for y, line in enumerate(log.lines) if re.search("loss", line, re.I))
        got = cells(log._render_line_strip(hit, log.rich_style))
        assert got == cells(original(log, hit))
        assert len({style for _, style in got}) > 1  # the match is styled apart
        # cleared and rewritten (another host): nothing of the old lines survives
        log.clear()
        log.write_lines(["only line"])
        await pilot.pause()
        assert cells(log._render_line_strip(0, log.rich_style)) == cells(original(log, 0))
        assert "".join(ch for ch, _ in cells(log._render_line_strip(0, log.rich_style))) == "only line"
