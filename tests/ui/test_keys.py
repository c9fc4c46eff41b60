"""Every key of issue 4 driven through Pilot: navigation, enter/esc, tab, /, ?, a, r, p, s, t, q,
the keymap remap, the command palette and the mouse."""

from __future__ import annotations

from textual.widgets import Input

from gpudash.ui.screens.help import HelpScreen
from gpudash.ui.screens.host import HostScreen
from gpudash.ui.screens.overview import OverviewScreen
from gpudash.ui.screens.split import HostColumn, SplitScreen
from gpudash.ui.screens.teardown import TeardownScreen, find_engine
from gpudash.ui.screens.triage import TriageScreen
from gpudash.ui.widgets.host_card import HostCard
from gpudash.ui.widgets.log_view import LogView, RunLog
from gpudash.ui.widgets.metrics_chart import MetricsChart
from tests.ui.conftest import LARGE, SMALL, make_app
from tests.ui.helpers import screen_text


async def test_q_quits_with_exit_code_0(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert fleet.running  # the fleet runs in its worker while the UI is up
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not fleet.running  # the worker was cancelled on exit


async def test_arrows_and_jk_move_between_hosts(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert app.screen.selected_host() == "h100-train"
        await pilot.press("j")
        assert app.screen.selected_host() == "eval-box"
        await pilot.press("down")
        assert app.screen.selected_host() == "oom-box"
        await pilot.press("k")
        assert app.screen.selected_host() == "eval-box"
        await pilot.press("up", "up")  # clamps at the top
        assert app.screen.selected_host() == "h100-train"
        assert "▶ OK      h100-train" in screen_text(app)


async def test_enter_opens_host_and_escape_returns(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("j", "enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == "eval-box"
        assert "eval-box (ssh)" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        assert app.screen.selected_host() == "eval-box"


async def test_grid_on_wide_terminal_moves_by_column(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        assert app.screen.columns == 2
        await pilot.press("l")
        assert app.screen.selected_host() == "eval-box"
        await pilot.press("j")  # one row down = two hosts on
        assert app.screen.selected_host() == "slurm-login"
        await pilot.press("h")
        assert app.screen.selected_host() == "oom-box"


async def test_click_on_a_card_opens_that_host(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        cards = list(app.screen.query(HostCard))
        await pilot.click(cards[2])
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == "oom-box"


async def test_tab_moves_between_panels(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        seen = []
        for _ in range(8):
            await pilot.press("tab")
            focused = app.focused
            panel = next((n for n in focused.ancestors_with_self if "panel" in n.classes), None)
            assert panel is not None, f"tab landed outside a panel: {focused!r}"
            seen.append(panel.id)
        assert {"gpu", "disk", "jobs", "alerts", "log-view", "metrics", "triage"} <= set(seen)
        await pilot.press("shift+tab")
        assert app.focused is not None


async def test_slash_searches_the_log_and_n_steps(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"grad_norm", "enter")
        await pilot.pause()
        lv = app.screen.query_one(LogView)
        assert lv.term == "grad_norm" and lv.matches == 9  # the dict lines of hf-trainer.log
        assert not lv.follow  # reading a match pauses the tail
        first = lv.run_log.current_match
        assert first is not None and "grad_norm" in lv.run_log.lines[first]
        await pilot.press("escape")  # closes the search box, stays on the host
        assert isinstance(app.screen, HostScreen)
        assert not lv.has_class("-searching")
        await pilot.press("n")
        second = lv.run_log.current_match
        assert second > first and "grad_norm" in lv.run_log.lines[second]
        await pilot.press("N")
        assert lv.run_log.current_match == first
        assert "search grad_norm 1/9 matches" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_slash_filters_hosts_on_overview(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"oom")
        await pilot.pause()
        assert [c.host for c in app.screen.cards()] == ["oom-box"]
        await pilot.press("enter")  # closes the box, keeps the filter
        await pilot.press("enter")  # opens the one host left
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == "oom-box"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")  # clears the filter
        assert len(app.screen.cards()) == 5


async def test_f_toggles_follow_and_c_cycles_chart_series(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        lv = app.screen.query_one(LogView)
        assert isinstance(app.focused, RunLog)
        await pilot.press("f")
        assert not lv.follow and "PAUSED (f: follow)" in screen_text(app)
        await pilot.press("f")
        assert lv.follow
        chart = app.screen.query_one(MetricsChart)
        chart.focus()
        await pilot.pause()
        assert "loss vs step" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert "grad norm vs step" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert "learning rate vs step" in screen_text(app)


async def test_question_mark_shows_help_with_every_key(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for needle in ("id: quit", "id: split", "id: teardown", "id: acknowledge", "id: probe_now",
                       "id: pause", "id: search", "id: next_panel", "id: open_host", "id: back"):
            assert needle in text
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_a_acknowledges_the_selected_host(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("j", "j")  # oom-box: 2 unacked
        assert "2 alerts" in screen_text(app)
        await pilot.press("a")
        await pilot.pause()
        assert ("acknowledge", "oom-box") in fleet.calls
        assert app.views["oom-box"].alerts_unacked == 0
        assert "2 alerts" not in screen_text(app)


async def test_r_probes_all_on_overview_and_one_on_host(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("r")
        assert fleet.calls[-1] == ("probe_now", None)
        await pilot.press("j", "enter")
        await pilot.pause()
        await pilot.press("r")
        assert fleet.calls[-1] == ("probe_now", "eval-box")


async def test_p_pauses_and_resumes_the_host(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert fleet.calls[-1] == ("set_paused", "h100-train", True)
        assert "PAUSED" in screen_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert fleet.calls[-1] == ("set_paused", "h100-train", False)
        assert "PAUSED" not in screen_text(app)


async def test_s_split_columns_from_160x40(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SplitScreen) and app.screen.mode == "columns"
        cols = [c.host for c in app.screen.query(HostColumn)]
        assert cols == ["h100-train", "eval-box", "oom-box", "slurm-login"]
        await pilot.press("l")
        assert app.screen.active == "eval-box"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == "eval-box"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("s")  # s again leaves the split
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_s_split_below_160x40_is_overview_plus_one_host(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert app.screen.mode == "stacked"
        assert [c.host for c in app.screen.query(HostColumn)] == ["h100-train"]
        await pilot.press("j")
        await pilot.pause()
        await pilot.pause()
        assert [c.host for c in app.screen.query(HostColumn)] == ["eval-box"]
        assert "eval-box (ssh)" in screen_text(app)


async def test_t_opens_the_teardown_checklist(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TeardownScreen) and app.screen.host == "h100-train"
        if find_engine(app) is None:
            assert "teardown engine is not available" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_e_opens_triage_and_escape_closes(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("l", "l", "enter")  # two columns here: l moves by one host
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, TriageScreen)
        text = screen_text(app)
        assert "cuda_oom" in text and "What to do" in text
        assert "4 │ torch.OutOfMemoryError: CUDA out of memory." in text
        await pilot.press("escape")
        assert isinstance(app.screen, HostScreen)


async def test_keymap_from_config_remaps_keys(fleet):
    app = make_app(fleet, config={"keymap": {"split": "v", "quit": "x"}})
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)  # s no longer splits
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, SplitScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        split_line = next(line for line in screen_text(app).splitlines() if "id: split" in line)
        assert split_line.strip("█ ").split()[0] == "v"
        await pilot.press("escape", "escape")
        await pilot.press("x")
        await pilot.pause()
    assert app.return_code == 0


async def test_palette_jumps_to_a_host_and_switches_theme(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"jump oom")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == "oom-box"
        assert app.theme == "gpudash-dark"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"theme gpudash-contrast")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "gpudash-contrast"


async def teardown_done(app, pilot) -> None:
    running = [w for w in app.workers if w.group == "teardown"]
    if running:  # (an empty list would mean "wait for every worker", the fleet's included)
        await app.workers.wait_for_complete(running)
    await pilot.pause()


async def test_teardown_screen_runs_a_wired_engine_and_shows_each_check(fleet):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Check:  # the shape of gpudash.teardown's Check (id, title, state, evidence, missing)
        id: str
        title: str
        state: str
        evidence: tuple = ()
        missing: str = ""

    asked = []

    async def engine(host):
        asked.append(host)
        return [Check("job", "job finished with its marker", "green", ("Training completed",)),
                Check("gpu", "no GPU process left", "unknown", (), "processes not visible"),
                Check("artifacts", "artifacts complete", "red", ("3 of 4 files",), "pred_3.json missing")]

    app = make_app(fleet, teardown=engine)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        await teardown_done(app, pilot)
        text = screen_text(app)
        assert asked == ["h100-train"]
        assert "[ green ] job finished with its marker" in text
        assert "[unknown] no GPU process left  processes not visible" in text
        assert "[  red  ] artifacts complete  pred_3.json missing" in text
        assert "3 of 4 files" in text
        await pilot.press("r")  # re-run on demand
        await pilot.pause()
        await teardown_done(app, pilot)
        assert asked == ["h100-train", "h100-train"]


async def test_the_key_bar_follows_the_screen_and_a_click_runs_the_key(fleet):
    from gpudash.ui.widgets.key_bar import KeyBar

    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        bar = app.screen.query_one(KeyBar)
        text = bar.render().plain
        assert "⏎ Open" in text and "/ Filter" in text and "q Quit" in text and "? Help" in text
        assert "Back" not in text
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        text = app.screen.query_one(KeyBar).render().plain
        assert "esc Back" in text and "tab Panel" in text and "Open" not in text
        await pilot.press("escape")
        await pilot.pause()
        bar = app.screen.query_one(KeyBar)
        x = bar.render().plain.index("? Help")
        await pilot.click(KeyBar, offset=(x + 1, 0))
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_a_long_loss_curve_reaches_plotext_as_its_envelope(fleet, monkeypatch):
    """2,000 points took plotext 96 ms a redraw here; the chart hands it at most 4 per bucket."""
    import dataclasses
    import time

    from gpudash.model import MetricPoint
    from gpudash.ui.widgets import metrics_chart as mc

    drawn: list[tuple[int, int]] = []
    real = mc.render_plot

    def spy(xs, ys, width, height, *a, **kw):
        drawn.append((len(xs), width))
        return real(xs, ys, width, height, *a, **kw)

    monkeypatch.setattr(mc, "render_plot", spy)
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        chart = app.screen.query_one(MetricsChart)
        view = chart.view
        points = tuple(MetricPoint(step=i, loss=1.0 / i) for i in range(1, 2001))
        chart.update_view(dataclasses.replace(view, snapshot=dataclasses.replace(view.snapshot, metrics=points)),
                          time.time())
        chart.refresh()
        await pilot.pause()
        n, width = drawn[-1]
        assert 2 <= n <= 4 * 2 * width < 2000
        assert "loss vs step" in screen_text(app) and "2000" in screen_text(app)
