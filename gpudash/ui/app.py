"""The Textual app: a thin renderer of what the fleet sends.

Data flow, one way only:

    fleet view callback ──▶ pending views (newest wins); fleet event ──post──▶ AlertRaised
    flush timer (~5 Hz) ──▶ app.views ──▶ the ACTIVE screen's apply_views(changed)

The fleet runs in an async worker; nothing here waits on the network. A slow or dead host only
means its views stop changing. Views are coalesced per host, so a burst of rounds costs one
render per frame; screens that are not shown are not rendered and catch up when shown again.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

from textual import on
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.worker import Worker, WorkerState

from gpudash.model import Event, State
from gpudash.ui.commands import GpudashCommands
from gpudash.ui.messages import AlertRaised, OpenHost
from gpudash.ui.screens.base import DashMixin
from gpudash.ui.themes import DEFAULT_THEME, load_themes
from gpudash.ui.viewinfo import triage_info
from gpudash.ui.widgets.alerts_list import MAX_ALERTS, AlertItem
from gpudash.ui.widgets.log_view import DEFAULT_MAX_LINES
from gpudash.watch.view import FleetLike, HostView

REFRESH_HZ = 5.0
HOST_SCREEN = "host-detail"  # the installed, reused HostScreen
PREBUILD_AFTER_S = 0.5  # the host screen is built this long after the first frame


def config_option(config, name: str, default=None):
    """Read a UI option from whatever config object we were given (dataclass, namespace, dict),
    at the top level or under a `ui` section."""
    if config is None:
        return default
    for src in (config, getattr(config, "ui", None) if not isinstance(config, dict) else config.get("ui")):
        if src is None:
            continue
        value = src.get(name) if isinstance(src, dict) else getattr(src, name, None)
        if value is not None:
            return value
    return default


def _preload_chart() -> None:
    import plotext  # noqa: F401


class GpudashApp(App[int]):
    """`GpudashApp(fleet, config=None)`; `run()` returns the exit code (0 on `q`)."""

    CSS_PATH = "gpudash.tcss"
    TITLE = "gpudash"
    COMMANDS = App.COMMANDS | {GpudashCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit_app", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("r", "probe_now", "Probe", id="probe_now"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("a", "acknowledge", "Ack", id="acknowledge"),
        Binding("s", "split", "Split", id="split"),
        Binding("t", "teardown", "Teardown", id="teardown"),
    ]

    def __init__(self, fleet: FleetLike, *, config=None, clock: Callable[[], float] | None = None,
                 tz: tzinfo | None = None, refresh_hz: float | None = None,
                 themes_dirs: list[Path] | None = None, teardown: Callable | None = None) -> None:
        super().__init__()
        self.fleet = fleet
        self.teardown = teardown  # host -> Checklist (sync or async); None: the screen says so
        self.config = config
        self._clock = clock or time.time
        self.tz = tz
        self.refresh_hz = float(refresh_hz or config_option(config, "refresh_hz", REFRESH_HZ))
        self.max_log_lines = int(config_option(config, "max_log_lines", DEFAULT_MAX_LINES))
        self.bell_on_critical = bool(config_option(config, "bell", True))
        self.host_order: list[str] = list(fleet.host_names())
        self.views: dict[str, HostView] = {}
        self._pending: dict[str, HostView] = {}
        self.alerts: list[AlertItem] = []
        self.alerts_gen = 0  # bumped whenever `alerts` changes (a screen tells if it is current)
        self._alerts_dirty = False
        self._triage_keys: dict[str, str | None] = {}
        self.selected_host: str | None = self.host_order[0] if self.host_order else None
        self._host_screen = None  # HostScreen, built on first use and reused
        self._gc_frozen = False
        self.theme_errors = []
        themes, self.theme_errors = load_themes(themes_dirs)
        for theme in themes.values():
            self.register_theme(theme)
        wanted = config_option(config, "theme", DEFAULT_THEME)
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME \
            if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.user_keymap: dict[str, str] = dict(config_option(config, "keymap", {}) or {})
        if self.user_keymap:
            self.set_keymap(self.user_keymap)

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        return self._clock()

    # ------------------------------------------------------------------ start-up

    def on_mount(self) -> None:
        for host in self.host_order:
            view = self.fleet.view(host)
            if view is not None:
                self.views[host] = view
                self._note_triage(view, startup=True)
        self.fleet.subscribe(self._on_fleet_view, self._on_fleet_event)
        # Alerts that fired before the first frame (a restored journal, a warm fleet) are listed
        # too, quietly: no bell for the past.
        for event in list(getattr(self.fleet, "journal", ()))[-200:]:
            self.post_message(AlertRaised(event, past=True))
        self.set_interval(1.0 / self.refresh_hz, self._flush_views, name="flush")
        self.set_interval(1.0, self._tick, name="tick")
        for err in self.theme_errors:
            self.notify(str(err), title="theme skipped", severity="warning", markup=False)
        from gpudash.ui.screens.overview import OverviewScreen

        self.push_screen(OverviewScreen())
        # The fleet starts once the first frame is on screen: its first rounds (connections,
        # the first health + triage of every host) would otherwise delay that frame by ~0.5 s.
        self.call_after_refresh(self._start_fleet)

    def _start_fleet(self) -> None:
        if not self._exit:
            self.run_worker(self.fleet.run(), name="fleet", group="fleet", exit_on_error=False)
            # plotext (the host screen's chart) takes ~0.3 s to import: do it now, off the event
            # loop, rather than on the first `enter`.
            self.run_worker(_preload_chart, name="preload", group="preload", thread=True,
                            exit_on_error=False)
            self.set_timer(PREBUILD_AFTER_S, self._prebuild_host_screen, name="prebuild")

    # Called by the fleet on the event loop (its async worker): never touch widgets here.
    def _on_fleet_view(self, view: HostView) -> None:
        # Noted, not posted: the flush timer renders it, and a newer view of the host replaces
        # it. A message per view (250/s at 500 hosts) cost Textual's queue and dispatch ~2% of
        # the client's CPU only to end in this same dict.
        self._pending[view.name] = view

    def _on_fleet_event(self, event: Event) -> None:
        self.post_message(AlertRaised(event))

    @on(AlertRaised)
    def _alert_raised(self, message: AlertRaised) -> None:
        ev = message.event
        self.alerts.append(AlertItem(ev))
        del self.alerts[:-MAX_ALERTS]
        self.alerts_gen += 1
        self._alerts_dirty = True
        if (ev.new is State.CRIT and ev.old is not State.CRIT and self.bell_on_critical
                and not message.past):
            self.bell()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface: shown, never fatal to the UI."""
        if event.state is WorkerState.ERROR:
            err = event.worker.error
            self.notify(f"{event.worker.name or 'worker'} failed: {type(err).__name__}: {err}",
                        title="error", severity="error", markup=False, timeout=10)

    # ------------------------------------------------------------------ rendering

    def _flush_views(self) -> None:
        changed: set[str] = set()
        if self._pending:
            pending, self._pending = self._pending, {}
            for host, view in pending.items():
                if host not in self.views and host not in self.host_order:
                    self.host_order.append(host)
                self.views[host] = view
                changed.add(host)
        screen = self._ready_screen()
        try:
            if changed and screen is not None:
                screen.apply_views(changed)
            if self._alerts_dirty and screen is not None:
                self._alerts_dirty = False
                screen.apply_alerts()
        except NoMatches:  # the screen is being dismantled (popped, app closing)
            pass
        for host in changed:
            self._note_triage(self.views[host])

    def _tick(self) -> None:
        screen = self._ready_screen()
        try:
            if screen is not None:
                screen.tick()
        except NoMatches:  # the screen is being dismantled (popped, app closing)
            pass

    def _ready_screen(self) -> DashMixin | None:
        """The active screen if it is one of ours, composed, and not closing."""
        if self._exit or not self.screen_stack:
            return None
        screen = self.screen
        return screen if isinstance(screen, DashMixin) and screen.dash_ready else None

    def _note_triage(self, view: HostView, startup: bool = False) -> None:
        """Open the triage by itself when the selected host shows a NEW failure."""
        info = triage_info(view)
        key = info.key if info is not None and info.is_failure else None
        had = view.name in self._triage_keys
        prev = self._triage_keys.get(view.name)
        self._triage_keys[view.name] = key
        if startup or not had or key is None or key == prev:
            return
        if view.name == self.context_host():
            self.show_triage(view.name)
        else:
            self.notify(f"{view.name}: {info.cls}", title="new failure", severity="error",
                        markup=False, timeout=6)

    # ------------------------------------------------------------------ navigation

    def context_host(self) -> str | None:
        screen = self.screen
        host = screen.context_host() if isinstance(screen, DashMixin) else None
        return host or self.selected_host

    def open_host(self, host: str) -> None:
        from gpudash.ui.screens.host import HostScreen

        if host not in self.views:
            self.notify(f"no data for {host} yet", markup=False, severity="warning")
            return
        self.selected_host = host
        if isinstance(self.screen, HostScreen) and self.screen.host == host:
            return
        self._sync_overview_cursor(host)
        self.push_screen(self._host_screen_for(host))

    def _host_screen_for(self, host: str):
        """The one reused host screen, pointed at `host`. A new one only while the reused one
        is in the stack already (a host opened from the palette or the triage above it) or is
        being built this very moment; that one goes when it is popped, as every screen did."""
        from gpudash.ui.screens.host import HostScreen

        screen = self._host_screen or self._install_host_screen(host)
        if screen in self.screen_stack:
            return HostScreen(host)
        if screen.is_mounted:
            screen.show_host(host)
        elif not screen.is_running:
            screen.host = host  # built by this push
        else:
            return HostScreen(host)
        return screen

    def _install_host_screen(self, host: str | None):
        from gpudash.ui.screens.host import HostScreen

        # installed: Textual keeps it (and its widgets) when it is popped
        self._host_screen = screen = HostScreen(host)
        self.install_screen(screen, name=HOST_SCREEN)
        return screen

    async def _prebuild_host_screen(self) -> None:
        """Build the host screen now, while nothing happens, rather than on the first `enter`
        (composing and mounting its ~40 widgets takes ~100 ms): the step of `push_screen` that
        mounts a screen, without showing it. Then set the garbage collector's baseline."""
        if self._exit or not self.is_running:
            return
        mount = getattr(self, "_get_screen", None)  # Textual's own; without it: built on first use
        if self._host_screen is None and mount is not None:
            screen, mounted = mount(self._install_host_screen(None))
            await mounted
            if not self.is_running:
                return
            screen.styled_while_hidden()
        self._freeze_startup_objects()

    def _freeze_startup_objects(self) -> None:
        """Everything built so far (modules, styles, both screens' widgets) lives as long as
        the app: move it out of the collector's way. A full collection walks every tracked
        object, ~60-80 ms with 50 hosts, and the rendering of a key press is what usually
        triggers it — that was the slow tail of `enter` and `escape` (and why an idle app,
        where the key presses do most of the allocating, opened a host slower than a busy one).
        Frozen, it walks only what was made since (~20 ms). Undone when the app ends."""
        if self._exit or self._gc_frozen or not self.is_running:
            return
        gc.collect()  # what is garbage now is not frozen
        gc.freeze()
        self._gc_frozen = True

    def on_unmount(self) -> None:
        if self._gc_frozen:
            self._gc_frozen = False
            gc.unfreeze()  # the app's objects can be collected again once it is gone

    def _sync_overview_cursor(self, host: str) -> None:
        from gpudash.ui.screens.overview import OverviewScreen

        for screen in self.screen_stack:
            if isinstance(screen, OverviewScreen):
                screen.select_host(host)

    def show_triage(self, host: str) -> None:
        from gpudash.ui.screens.triage import TriageScreen

        if isinstance(self.screen, TriageScreen) and self.screen.host == host:
            return
        self.push_screen(TriageScreen(host))

    # ------------------------------------------------------------------ actions

    def action_quit_app(self) -> None:
        self.exit(0)

    def action_help(self) -> None:
        from gpudash.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_probe_now(self) -> None:
        from gpudash.ui.screens.overview import OverviewScreen

        host = None if isinstance(self.screen, OverviewScreen) else self.context_host()
        self.fleet.probe_now(host)
        self.notify(f"probing {host or 'all hosts'} now", markup=False, timeout=2)

    def action_pause(self) -> None:
        host = self.context_host()
        view = self.views.get(host or "")
        if view is None:
            return
        paused = not view.paused
        self.fleet.set_paused(host, paused)
        self._patch_view(host, paused=paused)
        self.notify(f"{host}: {'paused' if paused else 'resumed'}", markup=False, timeout=2)

    def action_acknowledge(self) -> None:
        host = self._focused_alert_host() or self.context_host()
        if host is None:
            return
        self.fleet.acknowledge(host)
        n = 0
        for item in self.alerts:
            if item.event.host == host and not item.acked:
                item.acked = True
                n += 1
        self.alerts_gen += 1
        self._alerts_dirty = True
        self._patch_view(host, alerts_unacked=0)
        self._flush_views()
        self.notify(f"{host}: {n} alert{'s' if n != 1 else ''} acknowledged", markup=False, timeout=2)

    def _focused_alert_host(self) -> str | None:
        """When an alerts table has focus, `a` acknowledges the highlighted alert's host."""
        from gpudash.ui.widgets.alerts_list import AlertsPanel

        node = self.focused
        while node is not None:
            if isinstance(node, AlertsPanel):
                return node.selected_host()
            node = node.parent
        return None

    def action_split(self) -> None:
        from gpudash.ui.screens.split import SplitScreen

        if isinstance(self.screen, SplitScreen):
            self.pop_screen()
            return
        self.push_screen(SplitScreen(self.context_host()))

    def action_teardown(self) -> None:
        from gpudash.ui.screens.teardown import TeardownScreen

        if not isinstance(self.screen, TeardownScreen):
            self.push_screen(TeardownScreen(self.context_host()))

    def _patch_view(self, host: str, **changes) -> None:
        """A local, optimistic change (pause, ack) shown now; the fleet's next view confirms it."""
        base = self._pending.get(host) or self.views.get(host)
        if base is not None:
            self._pending[host] = dataclasses.replace(base, **changes)
            self._flush_views()

    @on(OpenHost)
    def _open_host(self, message: OpenHost) -> None:
        self.open_host(message.host)
