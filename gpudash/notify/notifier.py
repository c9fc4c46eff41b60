"""Alert routing: each event goes to the sinks its severity is routed to, once.

- **Once**: events are state changes already; on top of that, with a Store every event is
  *claimed* in the shared history first (two gpudash processes never both notify, and the same
  (host, check, state) is not re-notified within the store's ``repeat_window_s``); without a
  store, the Notifier's own ``repeat_window_s`` is kept in memory.
- **Few**: when more than ``batch_max`` events reach an interactive sink at once, it gets ONE
  summary ("7 alerts on 3 hosts: …") and the bell rings once. ``submit`` coalesces events that
  arrive within ``coalesce_s`` (the fleet reports hosts one by one) into one batch.
- **Safe**: text inside OSC and tmux formats is neutralised (terminal.py, tmux_sink.py); the
  webhook URL is never logged (webhook.py).

Sinks: file (the alert log), screen (a callback the UI supplies), bell, desktop (OSC 777/9),
tmux (display-message), webhook.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gpudash.model import Event
from gpudash.notify import terminal, tmux_sink, webhook
from gpudash.notify.logfile import AlertLog
from gpudash.notify.summary import Notice, event_line, severity_of, single, summarize

log = logging.getLogger(__name__)

#: The issue's default routing (used when no [alerts] config is given). "webhook" is skipped
#: when no URL is configured, "tmux" outside tmux.
DEFAULT_ROUTES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "info": ("file",),
    "warning": ("screen", "file"),
    "critical": ("screen", "bell", "desktop", "tmux", "file", "webhook"),
})
INTERACTIVE = ("screen", "bell", "desktop", "tmux", "webhook")
MAX_PENDING = 1000


@dataclass
class Delivery:
    """What one ``notify`` call did (for the caller's status line, and for tests)."""

    claimed: list[Event] = field(default_factory=list)
    suppressed: list[Event] = field(default_factory=list)
    notices: dict[str, list[Notice]] = field(default_factory=dict)  # sink → what it was given
    file_lines: int = 0
    webhook: list[webhook.WebhookResult] = field(default_factory=list)


class Notifier:
    def __init__(
        self,
        config_alerts=None,
        store=None,
        *,
        writer: Callable[[str], None] | None = None,
        screen: Callable[[Notice], None] | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        log_path: str | os.PathLike | None = None,
        batch_max: int = 3,
        repeat_window_s: float = 600.0,
        coalesce_s: float = 0.5,
        webhook_deadline_s: float = 15.0,
        webhook_retries: int = 3,
        webhook_backoff_s: float = 0.5,
        tmux_bin: str = "tmux",
        desktop_protocol: str = "auto",
    ) -> None:
        self.config = config_alerts
        self.store = store
        self.writer = writer if writer is not None else terminal.TtyWriter()
        self.screen = screen
        self.env = dict(os.environ if env is None else env)
        self.clock = clock
        self.batch_max = max(1, batch_max)
        self.repeat_window_s = repeat_window_s
        self.coalesce_s = coalesce_s
        self.webhook_deadline_s = webhook_deadline_s
        self.webhook_retries = webhook_retries
        self.webhook_backoff_s = webhook_backoff_s
        self.tmux_bin = tmux_bin
        self.desktop_protocol = desktop_protocol
        if log_path is None:
            log_path = getattr(config_alerts, "log_file", None)
        if log_path is None:
            from gpudash.store.paths import default_alert_log_path

            log_path = default_alert_log_path()
        self.alert_log = AlertLog(log_path)
        self.routes = self._routes()
        self._recent: dict[tuple[str, str, str], float] = {}
        self._pending: list[Event] = []
        self._timer: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self.history: deque[tuple[str, Notice]] = deque(maxlen=200)

    # ------------------------------------------------------------------ routing table

    def _routes(self) -> dict[str, tuple[str, ...]]:
        if self.config is None:
            return dict(DEFAULT_ROUTES)
        routes = {sev: tuple(self.config.sinks_for(sev)) for sev in DEFAULT_ROUTES}
        has_source = bool(getattr(self.config, "webhook_url_file", None)
                          or getattr(self.config, "webhook_url_env", None))
        if has_source and not any("webhook" in s for s in routes.values()):
            # "webhook if set": a configured URL that no severity names goes to critical.
            routes["critical"] = routes["critical"] + ("webhook",)
        return routes

    def sinks_for(self, severity: str) -> tuple[str, ...]:
        sinks = self.routes.get(severity, ())
        if not self.env.get("TMUX"):
            sinks = tuple(s for s in sinks if s != "tmux")
        if not (getattr(self.config, "webhook_url_file", None)
                or getattr(self.config, "webhook_url_env", None)):
            sinks = tuple(s for s in sinks if s != "webhook")
        return sinks

    # ------------------------------------------------------------------ entry points

    def submit(self, event: Event) -> None:
        """From a synchronous callback (Fleet.subscribe): queue; the batch goes out
        ``coalesce_s`` after its first event. Without a running loop, ``drain()`` sends it."""
        self._pending.append(event)
        del self._pending[:-MAX_PENDING]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is None:  # the first event opens the batch; later ones join it
            self._timer = loop.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.coalesce_s)
        self._timer = None
        batch, self._pending = self._pending, []
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self.notify(batch)
        finally:
            self._inflight.discard(task)

    async def drain(self) -> None:
        """Send what is queued now and wait for sends in flight (before `status` exits)."""
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
        batch, self._pending = self._pending, []
        if batch:
            await self.notify(batch)

    async def notify(self, events: Iterable[Event]) -> Delivery:
        """Route one batch of events (they count as "at once" for the summary)."""
        out = Delivery()
        for ev in events:
            (out.claimed if self._claim(ev) else out.suppressed).append(ev)
        if not out.claimed:
            return out
        per_sink: dict[str, list[Event]] = {}
        for ev in out.claimed:
            for sink in self.sinks_for(severity_of(ev)):
                per_sink.setdefault(sink, []).append(ev)
        if "file" in per_sink:
            lines = [event_line(e) for e in per_sink["file"]]
            if self.alert_log.write(lines, at=self.clock()):
                out.file_lines = len(lines)
        jobs = []
        for sink in INTERACTIVE:
            evs = per_sink.get(sink)
            if not evs:
                continue
            notices = [summarize(evs)] if len(evs) > self.batch_max else [single(e) for e in evs]
            if sink == "bell":
                notices = notices[:1]  # one ring per batch
            out.notices[sink] = notices
            for n in notices:
                self.history.append((sink, n))
            if sink == "webhook":
                jobs.append(self._webhook(notices, out))
            elif sink == "tmux":
                jobs.append(self._tmux(notices))
            else:
                self._local(sink, notices)
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        return out

    # ------------------------------------------------------------------ dedup

    def _claim(self, ev: Event) -> bool:
        if self.store is not None:
            return bool(self.store.claim_alert(ev))
        key = (ev.host, ev.key, ev.new.value)
        now = ev.at
        last = self._recent.get(key)
        if last is not None and now - last < self.repeat_window_s:
            return False
        self._recent[key] = now
        if len(self._recent) > 4096:  # bound: forget the oldest half
            for k, _ in sorted(self._recent.items(), key=lambda kv: kv[1])[:2048]:
                del self._recent[k]
        return True

    # ------------------------------------------------------------------ sinks

    def _local(self, sink: str, notices: list[Notice]) -> None:
        try:
            if sink == "screen" and self.screen is not None:
                for n in notices:
                    self.screen(n)
            elif sink == "bell":
                self.writer(terminal.BEL)
            elif sink == "desktop":
                for n in notices:
                    self.writer(terminal.desktop_sequence(n.title, n.body, self.env,
                                                          self.desktop_protocol))
        except Exception as exc:  # a UI callback or a writer must never stop the other sinks
            log.warning("alert sink %s failed: %s", sink, exc)

    async def _tmux(self, notices: list[Notice]) -> None:
        for n in notices:
            await tmux_sink.display_message(n.text, env=self.env, tmux=self.tmux_bin)

    async def _webhook(self, notices: list[Notice], out: Delivery) -> None:
        url = webhook.read_url(self.config, self.env) if self.config is not None else None
        if url is None:
            return
        for n in notices:
            res = await webhook.send(url, n.text, deadline=self.webhook_deadline_s,
                                     retries=self.webhook_retries, backoff=self.webhook_backoff_s)
            out.webhook.append(res)
            if not res.ok:
                msg = (f"webhook to {res.target} failed after {res.attempts} attempt(s): "
                       f"{res.error}")
                log.warning("%s", msg)
                self.alert_log.write([f"ERROR    {msg}"], at=self.clock())
