"""The app builds ONE host screen and reuses it for every host (opening a host is then a data
swap, not ~40 widgets composed). Reuse must never show anything of the host shown before: after
A and back, B's screen is exactly what a new screen for B shows — text, colours, focus, scroll,
search and follow state, column widths, chart series."""

from __future__ import annotations

import dataclasses
import gc

from textual.widgets import Input

from gpudash.ui.screens.host import HostScreen
from gpudash.ui.screens.overview import OverviewScreen
from gpudash.ui.widgets.host_detail import HostScroll
from gpudash.ui.widgets.log_view import LogView, RunLog
from gpudash.ui.widgets.metrics_chart import MetricsChart
from tests.ui.conftest import LARGE, SMALL, make_app
from tests.ui.fake_fleet import FakeFleet, view_h100
from tests.ui.helpers import screen_strips, screen_text


def painted(app) -> list[list[tuple[str, object]]]:
    """Every cell run on screen with its style: text AND colours (focus borders included)."""
    return [[(seg.text, seg.style) for seg in strip] for strip in screen_strips(app)]


async def fresh_screen_of(host: str, size, **app_kwargs):
    """What a brand-new host screen for `host` paints, in an app that opened nothing before."""
    app = make_app(FakeFleet(), **app_kwargs)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.open_host(host)
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == host
        return painted(app), screen_text(app)


async def test_a_then_b_shows_exactly_what_a_new_screen_for_b_shows(fleet):
    want, want_text = await fresh_screen_of("oom-box", LARGE)
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # h100-train
        await pilot.pause()
        first = app.screen
        assert isinstance(first, HostScreen) and first.host == "h100-train"
        h100_text = screen_text(app)
        # leave the screen in every state a user can: searched, paused, chart series moved,
        # another panel focused, the jobs table's cursor down
        await pilot.press("slash", *"grad_norm", "enter")
        await pilot.pause()
        assert first.query_one(LogView).term == "grad_norm" and not first.query_one(LogView).follow
        first.query_one(MetricsChart).focus()
        await pilot.press("c")
        await pilot.press("tab", "down")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("l", "l", "enter")  # oom-box
        await pilot.pause()
        await pilot.pause()
        assert app.screen is first and first.host == "oom-box"  # the same screen, reused
        got_text = screen_text(app)
        assert got_text == want_text
        assert painted(app) == want
        # and nothing that only the h100 screen had: its log lines, its job, its search
        for line in h100_text.splitlines():
            if "train-llama" in line or "grad_norm" in line:
                assert line not in got_text
        assert "search grad_norm" not in got_text and "PAUSED" not in got_text
        lv = first.query_one(LogView)
        assert lv.term == "" and lv.follow and not lv.has_class("-searching")
        assert isinstance(app.focused, RunLog)


async def test_the_same_host_again_keeps_its_data_but_not_what_the_user_changed(fleet):
    want, want_text = await fresh_screen_of("h100-train", LARGE)
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        first = app.screen
        shown = first.query_one(LogView).shown
        await pilot.press("slash", *"grad_norm", "enter")  # searched: the tail is paused
        await pilot.pause()
        await pilot.press("up", "up", "up")
        first.query_one(MetricsChart).focus()
        await pilot.press("c")
        await pilot.press("tab", "down")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("enter")  # h100-train again
        await pilot.pause()
        await pilot.pause()
        assert app.screen is first
        assert first.query_one(LogView).shown is shown  # kept, not written again
        assert screen_text(app) == want_text
        assert painted(app) == want


async def test_narrow_reuse_starts_at_the_top_with_the_page_focused(fleet):
    want, want_text = await fresh_screen_of("eval-box", SMALL)
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # h100-train
        await pilot.pause()
        first = app.screen
        await pilot.press("j", "j", "j", "j", "j", "j")  # scroll the page down
        await pilot.pause()
        assert first.query_one(HostScroll).scroll_y > 0
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("j", "enter")  # eval-box
        await pilot.pause()
        await pilot.pause()
        assert app.screen is first and first.host == "eval-box"
        assert first.query_one(HostScroll).scroll_y == 0
        assert isinstance(app.focused, HostScroll)
        assert screen_text(app) == want_text
        assert painted(app) == want


async def test_a_screen_built_ahead_of_time_shows_the_host_as_a_new_one(fleet):
    want, _ = await fresh_screen_of("slurm-login", LARGE)
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await app._prebuild_host_screen()  # what the app does by itself after the first frame
        await pilot.pause()
        assert gc.get_freeze_count() > 0  # what exists now is out of the collector's way
        built = app._host_screen
        assert built is not None and built.is_mounted and built.host is None
        assert isinstance(app.screen, OverviewScreen)  # built, not shown
        app.open_host("slurm-login")
        await pilot.pause()
        await pilot.pause()
        assert app.screen is built and built.host == "slurm-login"
        assert painted(app) == want
    assert gc.get_freeze_count() == 0  # and given back when the app ends


async def test_live_views_reach_the_host_shown_and_never_the_one_before(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # h100-train
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("l", "enter")  # eval-box
        await pilot.pause()
        v = view_h100()
        fleet.push(dataclasses.replace(v, snapshot=dataclasses.replace(
            v.snapshot, log_lines=v.snapshot.log_lines + ("h100 only: step 999",))))
        app._flush_views()
        await pilot.pause()
        assert app.screen.host == "eval-box"
        assert "h100 only" not in screen_text(app)
        assert "h100-train" not in screen_text(app).splitlines()[0]
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("h", "enter")  # back to h100-train: it catches up
        await pilot.pause()
        assert app.screen.host == "h100-train"
        assert app.screen.query_one(LogView).run_log.lines[-1] == "h100 only: step 999"


async def test_a_theme_switched_while_hidden_is_applied_when_shown_again(fleet):
    want, _ = await fresh_screen_of("h100-train", LARGE)
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        theme = app.theme
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        light = painted(app)
        assert light != want  # restyled for the new theme, not the old styles kept
        await pilot.press("escape")
        await pilot.pause()
        app.theme = theme
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert painted(app) == want


async def test_a_host_opened_over_the_host_screen_gets_its_own_screen(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # h100-train, on the reused screen
        await pilot.pause()
        first = app.screen
        app.open_host("oom-box")  # the command palette's "Jump to host" does this
        await pilot.pause()
        second = app.screen
        assert isinstance(second, HostScreen) and second is not first and second.host == "oom-box"
        assert first.host == "h100-train"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is first and "h100-train (ssh)" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert app.screen.selected_host() == "oom-box"  # the overview followed the jump
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is first and first.host == "oom-box"


async def test_search_box_of_the_previous_host_is_closed_and_empty(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("slash", *"loss")  # typed, not submitted
        assert isinstance(app.focused, Input)
        app.pop_screen()
        await pilot.pause()
        await pilot.press("l", "enter")
        await pilot.pause()
        lv = app.screen.query_one(LogView)
        assert not lv.has_class("-searching") and lv.query_one(Input).value == ""
        assert isinstance(app.focused, RunLog)


async def test_a_view_that_lands_between_the_fill_and_the_push_is_shown(fleet):
    """Opening a host fills its screen, then pushes it; the screen skips a second fill as it
    comes back only when nothing arrived in between. A view that did is shown."""
    from tests.ui.test_updates import with_snapshot

    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        app.open_host("h100-train")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        v = app.views["oom-box"]
        newer = with_snapshot(v, log_lines=v.snapshot.log_lines + ("arrived in between",))
        real_push = app.push_screen

        def push(screen, *a, **kw):
            app.views["oom-box"] = newer  # as the app's flush does while the overview is active
            return real_push(screen, *a, **kw)

        app.push_screen = push
        app.open_host("oom-box")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == "oom-box"
        assert "arrived in between" in screen_text(app)
