"""Issue 8 in the overview: a 125-host, 1,000-GPU fleet stays usable — compact one-line rows,
only problems (f), grouping (g), sorting (o), search (/ with key=value and state: tokens),
cards ↔ lines (c) — each proven by what is on screen. Live updates repaint only the changed
rows, never rebuild widgets, and never move the selection off its host."""

from __future__ import annotations

import dataclasses
import re

from textual.widgets import Input

from gpudash.ui.screens.host import HostScreen
from gpudash.ui.screens.overview import REORDER_S
from gpudash.ui.widgets.fleet_list import FleetList
from gpudash.ui.widgets.host_card import HostCard
from tests.ui.big_fleet import advanced_fleet, cluster_views
from tests.ui.conftest import LARGE, SMALL, make_app
from tests.ui.fake_fleet import FakeFleet
from tests.ui.helpers import screen_text
from tests.ui.test_hostile import MARKUP, assert_inert

PROBLEMS = {"gpu-r00-n03", "gpu-r00-n07", "gpu-r02-n01", "gpu-r06-n00", "gpu-r11-n01"}


def big() -> FakeFleet:
    return FakeFleet(list(cluster_views()))


def rows(app) -> list[str]:
    """The host names on the overview (lines or cards), top to bottom, left to right, as on
    screen — above the fleet's alerts list, which names hosts too."""
    text = screen_text(app).split("╭─ Alerts")[0]
    return list(dict.fromkeys(re.findall(r"\bgpu-r\d\d-n\d\d\b", text)))


def headers(app) -> list[str]:
    return [ln.strip() for ln in screen_text(app).splitlines() if ln.strip().startswith("──")]


class Mono:
    """The throttle's clock, advanced by the test (no sleeping, no timing)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_125_hosts_render_as_one_line_each_with_the_fleet_summary():
    app = make_app(big())
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "125 hosts, 1000 GPUs: 4 WARN, 1 STALE, 120 OK; util" in text.splitlines()[0]
        assert app.screen.compact and not list(app.screen.query(HostCard))
        assert "▶ OK      gpu-r00-n00  8 GPUs, util" in text
        assert "gpu-r00-n07  8 GPUs, util" in text and ", 1 hot" in text
        assert rows(app)[:3] == ["gpu-r00-n00", "gpu-r00-n01", "gpu-r00-n02"]
        assert len(app.screen.query_one(FleetList).rows) == 125


async def test_f_keeps_only_problems_and_says_so():
    app = make_app(big())
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("f")  # five hosts: cards
        await pilot.pause()
        assert set(rows(app)) == PROBLEMS and not app.screen.compact
        bar = screen_text(app).splitlines()[0]
        assert "5 shown" in bar and "only problems" in bar
        await pilot.press("f")
        await pilot.pause()
        assert len(app.screen.order) == 125 and "only problems" not in screen_text(app).splitlines()[0]


async def test_g_groups_by_state_then_by_each_label_with_group_summaries():
    app = make_app(big())
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        assert headers(app)[0].startswith("── state WARN   4 hosts, 32 GPUs: 4 WARN; util")
        assert rows(app)[:4] == ["gpu-r00-n03", "gpu-r00-n07", "gpu-r06-n00", "gpu-r11-n01"]
        assert app.screen.group_choices() == [None, "state", "job", "pool", "rack", "source"]
        await pilot.press("g", "g")  # job, then pool
        await pilot.pause()
        assert "group pool" in screen_text(app).splitlines()[0]
        assert [g for g, _ in app.screen.groups] == ["eval", "infer", "train"]
        await pilot.press("home")  # the selection stayed on gpu-r00-n00 (train), far down
        await pilot.pause()
        assert headers(app)[0].startswith("── pool=eval   24 hosts, 192 GPUs: 24 OK; util")
        assert rows(app)[:2] == ["gpu-r04-n00", "gpu-r04-n01"]
        await pilot.press("f")  # the problems are all on training racks
        await pilot.pause()
        assert [h.split("   ")[0] for h in headers(app)] == ["── pool=train"]


async def test_o_sorts_state_name_util_and_back_to_fleet_order():
    app = make_app(big())
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("o", "home")  # state: worst first
        await pilot.pause()
        assert "sort state" in screen_text(app).splitlines()[0]
        assert set(rows(app)[:5]) == PROBLEMS and rows(app)[4] == "gpu-r02-n01"  # STALE after WARN
        await pilot.press("o", "o", "home")  # name, util: least busy first
        await pilot.pause()
        first = next(v for v in cluster_views() if v.name == rows(app)[0])
        assert "util 0% avg" in screen_text(app).splitlines()[1] and first.name == "gpu-r01-n03"
        for _ in range(4):  # temp, mem, gpus, back to the fleet's order
            await pilot.press("o")
        await pilot.pause()
        await pilot.press("home")
        await pilot.pause()
        assert app.screen.sort_key is None and rows(app)[0] == "gpu-r00-n00"


async def test_search_matches_label_values_key_value_and_state_tokens():
    app = make_app(big())
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"rack=r06")
        await pilot.pause()
        assert rows(app) == [f"gpu-r06-n0{i}" for i in range(8)]  # not r60..r69: exact value
        assert "8 shown" in screen_text(app).splitlines()[0]
        box = app.screen.query_one("#host-filter", Input)
        box.value = "pool=train state:warn"
        await pilot.pause()
        assert set(rows(app)) == PROBLEMS - {"gpu-r02-n01"}
        box.value = "pool=infer state:warn"
        await pilot.pause()
        assert rows(app) == []
        box.value = "is:stale"
        await pilot.pause()
        assert rows(app) == ["gpu-r02-n01"]
        box.value = "r11-n0 is:ok"
        await pilot.pause()
        assert rows(app) == [f"gpu-r11-n0{i}" for i in range(8) if i != 1]
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen.order) == 125


async def test_c_flips_cards_and_lines_and_back_to_auto(fleet):
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        assert not app.screen.compact and len(app.screen.cards()) == 5
        await pilot.press("c")
        await pilot.pause()
        text = screen_text(app)
        assert app.screen.compact and "▶ OK      h100-train   1 GPU, util" in text
        assert "CRIT    eval-box     1 GPU, util 0% avg, mem 0%" in text
        assert "lines" not in text and "compact" in text.splitlines()[0]
        await pilot.press("c")
        await pilot.pause()
        assert not app.screen.compact and app.screen.mode == "auto"
        assert "▶ OK      h100-train  tmux train-llama: running" in screen_text(app)


async def test_a_short_window_gets_lines_automatically():
    views = list(cluster_views())[:10]
    app = make_app(FakeFleet(views))
    async with app.run_test(size=SMALL) as pilot:  # 10 cards need 39 lines; 21 are there
        await pilot.pause()
        assert app.screen.compact and len(rows(app)) == 10
    app = make_app(FakeFleet(views[:7]))
    async with app.run_test(size=SMALL) as pilot:  # 7 cards need 27: cards, one scroll away
        await pilot.pause()
        assert not app.screen.compact and len(app.screen.cards()) == 7


async def test_live_updates_repaint_changed_rows_only_and_build_no_widgets():
    fleet = big()
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        screen = app.screen
        fl = screen.query_one(FleetList)
        widgets = len(list(screen.walk_children()))
        repainted: list[int] = []
        orig = fl.refresh_line
        fl.refresh_line = lambda y: (repainted.append(y), orig(y))
        changed = ["gpu-r00-n02", "gpu-r03-n05", "gpu-r09-n01"]
        for name in changed:
            v = fleet.views[name]
            gpus = tuple(dataclasses.replace(g, util_pct=3.0) for g in v.snapshot.gpus)
            fleet.push(dataclasses.replace(v, snapshot=dataclasses.replace(v.snapshot, gpus=gpus)))
        await pilot.pause(0.5)
        assert len(list(screen.walk_children())) == widgets
        assert sorted(set(repainted)) == sorted(fl.rows.index(("host", h)) for h in changed)
        line = next(ln for ln in screen_text(app).splitlines() if "gpu-r00-n02 " in ln)
        assert "util 3% avg" in line


async def test_reorder_is_throttled_and_the_selection_stays_on_its_host():
    fleet = big()
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.mono = mono = Mono()
        await pilot.press("o", "o", "o")  # sort by util: the least busy first
        await pilot.press("home", "down", "down", "j")
        await pilot.pause()
        picked = screen.selected_host()
        assert rows(app).index(picked) == 3 and f"▶ OK      {picked}" in screen_text(app)
        # a busy host goes idle: it belongs at the top now
        v = fleet.views["gpu-r09-n06"]
        gpus = tuple(dataclasses.replace(g, util_pct=0.0) for g in v.snapshot.gpus)
        fleet.push(dataclasses.replace(v, snapshot=dataclasses.replace(v.snapshot, gpus=gpus)))
        await pilot.pause(0.5)
        assert "gpu-r09-n06" not in rows(app)[:5]  # not within REORDER_S of the last change
        mono.t += REORDER_S
        screen.tick()
        await pilot.pause()
        # among the idle hosts, by name: r01-n03, r05-n00, r08-n05, then r09-n06, then `picked`
        assert rows(app)[3] == "gpu-r09-n06" and picked == "gpu-r12-n02"
        assert screen.selected_host() == picked and rows(app).index(picked) == 4
        assert f"▶ OK      {picked}" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen) and app.screen.host == picked


async def test_arrow_keys_move_the_selection_not_the_scroller():
    views = list(cluster_views())[:12]
    app = make_app(FakeFleet(views))
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        if app.screen.compact:
            await pilot.press("c")  # twelve cards, more than the window holds
            await pilot.pause()
        assert not app.screen.compact and app.focused is None
        for _ in range(9):
            await pilot.press("down")
        assert app.screen.selected_host() == "gpu-r01-n01"
        card = next(c for c in app.screen.cards() if c.host == "gpu-r01-n01")
        assert "▶ OK      gpu-r01-n01" in screen_text(app) and card.region.y < 40
        await pilot.press("up")
        assert app.screen.selected_host() == "gpu-r01-n00"


async def test_group_and_label_text_from_the_fleet_is_inert():
    views = [dataclasses.replace(v, labels={"pool": f"evil{MARKUP}"}) for v in cluster_views()[:3]]
    app = make_app(FakeFleet(views))
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        await pilot.press("c", "g", "g")  # lines; group by state, then pool
        await pilot.pause()
        assert f"── pool=evil{MARKUP}" in screen_text(app)
        assert_inert(app)


async def test_opening_a_prometheus_host_loads_its_history_once():
    fleet, clock = advanced_fleet(hosts=4, rounds=3)
    asked = []
    orig = fleet.source.history

    async def history(host, seconds, *, step=None):
        asked.append(host)
        return await orig(host, seconds, step=step)

    fleet.source.history = history
    app = make_app(fleet)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.pause()
        before = len(fleet.view("gpu-r00-n01").snapshot.util_history[0])
        await pilot.press("l", "enter")
        await pilot.pause(0.5)
        assert isinstance(app.screen, HostScreen) and asked == ["gpu-r00-n01"]
        after = app.views["gpu-r00-n01"].snapshot.util_history[0]
        assert before < 10 and len(after) >= 100  # 300 s of history at the 2 s step
