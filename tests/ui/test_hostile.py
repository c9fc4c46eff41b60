"""Hostile text from a box renders inert: no escape sequence reaches the terminal, no markup is
interpreted. The strings are pushed RAW (as if the data path had failed to sanitise them), so
this proves the UI's own defence, not the sanitiser's."""

from __future__ import annotations

import dataclasses

from gpudash.model import ComputeApp, ProcessInfo, TmuxSession
from tests.ui.conftest import LARGE, make_app
from tests.ui.fake_fleet import FakeEvidence, FakeTriage, view_h100
from tests.ui.helpers import screen_text, segments

CLEAR = "\x1b[2J"
OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # a clipboard write
MARKUP = "[bold red]x[/]"
HOSTILE = f"evil{CLEAR}{OSC52}{MARKUP}"


def hostile_view():
    v = view_h100()
    snap = dataclasses.replace(
        v.snapshot,
        log_lines=v.snapshot.log_lines + (f"log says {HOSTILE}",),
        processes=(ProcessInfo(pid=4242, command=f"python {HOSTILE}"),),
        apps=(ComputeApp(pid=4242, process_name=f"proc{HOSTILE}", used_mib=100.0),),
        tmux=(TmuxSession(name=f"tmux{HOSTILE}", windows=1),),
    )
    triage = FakeTriage(cls="code_error", category="real bug", summary=f"KeyError {MARKUP}",
                        evidence=(FakeEvidence(7, f"ev {HOSTILE}"),), remediation="fix it")
    return dataclasses.replace(v, snapshot=snap, triage=triage, job_summary=f"job {MARKUP}")


def assert_inert(app, only: str | None = None) -> None:
    """No ESC/BEL in any output segment, and every `[bold red]x[/]` on screen sits inside ONE
    segment: had it been parsed, the style would change at `x` and split it. (`only`: check just
    the segments holding that text — under a modal, its edge splits background segments.)"""
    found = 0
    for seg in segments(app):
        assert "\x1b" not in seg.text and "\x07" not in seg.text, repr(seg.text)
        if only is not None and only not in seg.text:
            continue
        if "x[/]" in seg.text or "[bold red]" in seg.text:
            assert MARKUP in seg.text, f"markup split by a style change: {seg.text!r}"
            found += 1
    assert found, "the hostile string is not on screen"
    svg = app.export_screenshot()
    assert "\x1b" not in svg and "\x07" not in svg


async def test_hostile_log_line_and_process_name_render_literally(fleet):
    fleet.views["h100-train"] = hostile_view()
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert f"log says evil{MARKUP}" in text  # overview card: last log line
        assert f"job {MARKUP}" in text
        assert_inert(app)
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert f"log says evil{MARKUP}" in text  # the Log panel
        assert f"python evil{MARKUP}" in text  # the jobs table (DataTable cell)
        assert f"procevil{MARKUP}" in text  # GPU apps line
        assert f"tmuxevil{MARKUP}" in text
        assert_inert(app)
        await pilot.press("e")
        await pilot.pause()
        text = screen_text(app)
        assert f"7 │ ev evil{MARKUP}" in text  # triage evidence
        assert f"KeyError {MARKUP}" in text
        assert_inert(app, only="ev evil")
        assert_inert(app, only="KeyError")


async def test_hostile_text_in_log_search_term_is_inert(fleet):
    fleet.views["h100-train"] = hostile_view()
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("slash", *"[bold]", "enter")
        await pilot.pause()
        assert "search [bold]" in screen_text(app)
        assert_inert(app)
