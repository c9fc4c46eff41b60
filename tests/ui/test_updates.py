"""Panels update from pushed views; a dead host shows why while the others keep updating;
views are coalesced per host; hidden screens do not render; triage opens on a NEW failure."""

from __future__ import annotations

import dataclasses

from gpudash.model import Event, LinkStatus, Reason, State
from gpudash.ui.screens.host import HostScreen
from gpudash.ui.screens.overview import OverviewScreen
from gpudash.ui.screens.triage import TriageScreen
from gpudash.ui.widgets.alerts_list import AlertsPanel
from gpudash.ui.widgets.host_card import HostCard
from gpudash.ui.widgets.log_view import LogView
from tests.ui.conftest import LARGE, SMALL, make_app
from tests.ui.fake_fleet import OOM_TRIAGE, T0, view_h100, view_inodes
from tests.ui.helpers import screen_text


def with_snapshot(view, **changes):
    return dataclasses.replace(view, snapshot=dataclasses.replace(view.snapshot, **changes))


def card(app, host: str) -> HostCard:
    return next(c for c in app.screen.query(HostCard) if c.host == host)


async def settle(pilot) -> None:
    await pilot.pause()
    pilot.app._flush_views()  # the ~5 Hz flush, now: tests never wait on the timer
    await pilot.pause()


async def test_pushed_views_update_the_overview_and_host_panels(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        v = view_h100()
        fleet.push(dataclasses.replace(with_snapshot(v, log_lines=v.snapshot.log_lines + ("step 99 loss 0.5",)),
                                       job_summary="tmux train-llama: running (pushed)"))
        await settle(pilot)
        assert "running (pushed)" in screen_text(app)
        assert "step 99 loss 0.5" in screen_text(app)  # the card's last log line
        await pilot.press("enter")
        await pilot.pause()
        log = app.screen.query_one(LogView).run_log
        n = len(log.lines)
        g = dataclasses.replace(v.snapshot.gpus[0], temp_c=71.0, power_w=655.0)
        fleet.push(with_snapshot(v, gpus=(g,),
                                 log_lines=v.snapshot.log_lines + ("step 99 loss 0.5", "step 100 loss 0.4")))
        await settle(pilot)
        text = screen_text(app)
        assert "71°C" in text and "655/700 W" in text
        assert log.lines[-1] == "step 100 loss 0.4"
        assert len(log.lines) == n + 1  # only the new line was appended, nothing duplicated


async def test_a_rewritten_progress_line_stays_one_line(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        v = view_h100()
        base = v.snapshot.log_lines
        fleet.push(with_snapshot(v, log_lines=base + (" 10%|█ | 6/64",)))
        await settle(pilot)
        fleet.push(with_snapshot(v, log_lines=base + (" 20%|██ | 13/64",)))
        await settle(pilot)
        lines = list(app.screen.query_one(LogView).run_log.lines)
        assert lines[-1] == " 20%|██ | 13/64"
        assert " 10%|█ | 6/64" not in lines
        assert len(lines) == len(base) + 1


async def test_unreachable_host_says_since_when_and_others_keep_updating(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        v = view_h100()
        dead = dataclasses.replace(
            with_snapshot(v, link=LinkStatus(ok=False, reason=Reason.UNREACHABLE,
                                             message="connect timeout", since=T0 - 600, last_ok=T0 - 610)),
            state=State.UNKNOWN, reason=Reason.UNREACHABLE)
        fleet.push(dead)
        await settle(pilot)
        assert "unreachable since 14:20" in screen_text(app)
        assert "UNKNOWN h100-train" in screen_text(app)  # a word, not only a colour
        other = dataclasses.replace(view_inodes(), job_summary="tmux eval: restarted")
        fleet.push(other)
        await settle(pilot)
        assert "tmux eval: restarted" in screen_text(app)
        assert card(app, "eval-box").view is other
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "unreachable since 14:20" in text and "check the provider's console" in text


async def test_views_are_coalesced_newest_wins(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        calls = []
        screen = app.screen
        original = screen.apply_views
        screen.apply_views = lambda changed: (calls.append(set(changed)), original(changed))
        views = [dataclasses.replace(view_h100(), job_summary=f"round {i}") for i in range(50)]
        for v in views:
            fleet.push(v)
        await pilot.pause()
        assert list(app._pending) in ([], ["h100-train"])  # never more than one per host
        app._flush_views()
        await pilot.pause()
        assert card(app, "h100-train").view is views[-1]
        assert len(calls) <= 2  # 50 views, at most a couple of renders
        assert "round 49" in screen_text(app)


async def test_hidden_overview_does_not_render_and_catches_up(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        overview = app.screen
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        newer = dataclasses.replace(view_inodes(), job_summary="tmux eval: running again")
        fleet.push(newer)
        await settle(pilot)
        hidden_card = next(c for c in overview.query(HostCard) if c.host == "eval-box")
        assert hidden_card.view is not newer  # not rendered while hidden
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert card(app, "eval-box").view is newer
        assert "tmux eval: running again" in screen_text(app)


async def test_triage_opens_by_itself_on_a_new_failure_of_the_selected_host(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        v = view_h100()
        failed = dataclasses.replace(v, triage=OOM_TRIAGE, state=State.CRIT)
        fleet.push(failed)
        await settle(pilot)
        assert isinstance(app.screen, TriageScreen) and app.screen.host == "h100-train"
        assert "cuda_oom" in screen_text(app)
        await pilot.press("escape")
        fleet.push(dataclasses.replace(failed, job_summary="still failed"))  # same failure: not new
        await settle(pilot)
        assert isinstance(app.screen, HostScreen)


async def test_failure_of_another_host_notifies_without_taking_the_screen(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        fleet.push(dataclasses.replace(view_inodes(), triage=OOM_TRIAGE))  # eval-box: disk_full -> cuda_oom
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert any(str(n.message) == "eval-box: cuda_oom" and n.title == "new failure"
                   for n in app._notifications)


async def test_alert_appears_in_alerts_list_and_critical_rings_the_bell(fleet):
    app = make_app(fleet)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        fleet.push_event(Event(T0 - 30, "h100-train", "disk.bytes:/", State.WARN, State.CRIT,
                               "disk / 97% used", None))
        fleet.push_event(Event(T0 - 20, "h100-train", "gpu.temp:0", State.OK, State.WARN,
                               "GPU0 at 86°C", None))
        await settle(pilot)
        assert bells == [1]  # the CRIT rang, the WARN did not
        assert "2 unacked" in screen_text(app) and "GPU0 at 86°C" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        panel = app.screen.query_one(AlertsPanel)
        assert [i.event.message for i in panel.items] == ["GPU0 at 86°C", "disk / 97% used"]
        text = screen_text(app)
        assert "14:29:30" in text and "CRIT" in text and "NEW" in text
        panel.query_one("AlertsTable").focus()
        await pilot.press("a")
        await pilot.pause()
        assert ("acknowledge", "h100-train") in fleet.calls
        assert all(i.acked for i in panel.items)
        assert "NEW" not in screen_text(app)


async def test_the_alerts_table_makes_a_rows_cells_once_and_anew_for_an_ack_or_a_theme(fleet):
    """A big fleet adds alerts all the time and the newest goes on top, so the table is refilled:
    an alert's cells are made once and reused, made anew when it is acknowledged (the row
    changes) or the theme changes (styles are resolved against it)."""
    from textual.markup import parse_style

    from gpudash.ui.text import STATE_STYLE
    from gpudash.ui.widgets.alerts_list import AlertsTable

    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        fleet.push_event(Event(T0 - 30, "h100-train", "disk.bytes:/", State.WARN, State.CRIT,
                               "disk / 97% used", None))
        await settle(pilot)
        panel = app.screen.query_one(AlertsPanel)
        table = panel.query_one(AlertsTable)
        first = table.get_row_at(0)
        fleet.push_event(Event(T0 - 20, "h100-train", "gpu.temp:0", State.OK, State.WARN,
                               "GPU0 at 86°C", None))
        await settle(pilot)
        assert [i.event.message for i in panel.items] == ["GPU0 at 86°C", "disk / 97% used"]
        again = table.get_row_at(1)
        assert all(a is b for a, b in zip(first, again))  # the older row: the same cells
        assert str(again[4]) == "disk / 97% used" and str(table.get_row_at(0)[4]) == "GPU0 at 86°C"
        # a theme switch resolves the styles anew: new cells, in the new theme's colours
        old_sev = again[1].style
        app.theme = "dracula" if app.theme != "dracula" else "nord"
        await pilot.pause()
        panel.update_alerts(app.alerts)
        fresh = table.get_row_at(1)
        assert not any(a is b for a, b in zip(again, fresh))
        assert str(fresh[4]) == "disk / 97% used" and fresh[1].style != old_sev
        assert fresh[1].style == parse_style(STATE_STYLE[State.CRIT]).rich_style  # the new theme's
        # an acknowledged alert's row says so: made anew too
        panel.query_one("AlertsTable").focus()
        await pilot.press("a")
        await settle(pilot)
        assert [str(table.get_row_at(i)[2]) for i in range(2)] == ["ack", "ack"]
