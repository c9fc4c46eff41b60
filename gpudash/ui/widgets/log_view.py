"""The run's log, live: a bounded `Log` (plain text — never markup), markers highlighted,
follow/pause, and `/` search with `n`/`N` to step through the matches.

The watcher hands over the newest N sanitised lines each time. Usually that is the old tail plus a
few new lines, and only those are appended. When the tail is not a pure continuation (a `\\r`
progress bar rewrote its line, the file was rotated or truncated) the widget is rewritten from
the tuple: the progress bar stays one updating line and a rotation never duplicates lines.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.segment import Segment
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Input, Log, Static

from gpudash.ui.text import MUTED, UI_MAX_LINE, fmt_bytes, plain, safe
from gpudash.watch.view import HostView

DEFAULT_MAX_LINES = 2000
OVERLAP_PROBE = 8  # lines of the old tail used to find where the new tuple continues it

COMPLETION_RE = re.compile(
    r"Training completed|Early stopping|\bFINISHED\b|QUEUE DONE|\b\w*_DONE\b|`Trainer.fit` stopped",
)
ERROR_RE = re.compile(
    r"Traceback \(most recent call last\)|\b\w*(?:Error|Exception)\b|\bKilled\b|\bSegmentation fault\b"
    r"|out of memory|No space left|\bnan\b|\bNaN\b|\bCANCELLED\b|\bFAILED\b",
)
WARN_RE = re.compile(r"\b(?:WARN(?:ING)?|[Ww]arning)\b")


class MarkerHighlighter(Highlighter):
    """Colours completion lines, errors, warnings and the current search term."""

    def __init__(self, styles: dict[str, object]) -> None:
        self.styles = styles
        self.term: re.Pattern[str] | None = None

    def marks(self, line: str) -> bool:
        """Whether :meth:`highlight` would style anything in ``line``."""
        return bool(COMPLETION_RE.search(line) or ERROR_RE.search(line) or WARN_RE.search(line)
                    or (self.term is not None and self.term.search(line)))

    def highlight(self, text: Text) -> None:
        plain_text = text.plain
        if COMPLETION_RE.search(plain_text):
            text.stylize(self.styles["done"])
        for rx, key in ((ERROR_RE, "error"), (WARN_RE, "warn")):
            for m in rx.finditer(plain_text):
                text.stylize(self.styles[key], m.start(), m.end())
        if self.term is not None:
            for m in self.term.finditer(plain_text):
                text.stylize(self.styles["match"], m.start(), m.end())


class RunLog(Log):
    """A `Log` with vi keys and a current-match line. It only ever receives sanitised plain strings."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False, id="log_down"),
        Binding("k", "scroll_up", "Up", show=False, id="log_up"),
    ]

    current_match: int | None = None
    current_style = None

    def _render_line_strip(self, y: int, rich_style) -> Strip:
        # Textual 8's Log stores a rendered line in its cache only while text is selected (the
        # store's test is the wrong way round), so every frame ran every visible line through
        # Rich again: a quarter of opening a host. Kept here, in Log's own cache, which Log
        # keeps true (lines written, pruned, cleared; restyled: theme, search term).
        if self.text_selection is not None:
            return super()._render_line_strip(y, rich_style)
        cache = self._render_line_cache
        strip = cache.get(y)
        if strip is None:
            line = self._process_line(self._lines[y])
            if self.highlight and (not isinstance(self.highlighter, MarkerHighlighter)
                                   or self.highlighter.marks(line)):
                strip = super()._render_line_strip(y, rich_style)  # Rich lays out the marks
            else:  # nothing to mark: the line in the log's style, as Rich renders it
                strip = Strip([Segment(line, rich_style)], cell_len(line))
            cache[y] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.current_match is not None and self.current_style is not None \
                and int(self.scroll_offset.y) + y == self.current_match:
            strip = strip.apply_style(self.current_style)
        return strip


def _continuation(old: list[str], new: tuple[str, ...]) -> int | None:
    """Index in `new` where lines not yet shown begin, or None if `new` does not continue `old`."""
    if not old:
        return 0
    probe = old[-OVERLAP_PROBE:]
    m = len(probe)
    for end in range(len(new), m - 1, -1):
        if list(new[end - m:end]) == probe:
            return end
    if len(new) < m and list(new) == probe[-len(new):]:
        return len(new)
    return None


class LogView(Vertical):
    """Header + log + (hidden) search box."""

    BINDINGS = [
        Binding("f", "toggle_follow", "Follow", id="log_follow"),
        Binding("n", "search_next", "Next match", show=False, id="search_next"),
        Binding("N", "search_prev", "Prev match", show=False, id="search_prev"),
        Binding("escape", "close_search", "Close search", show=False, id="close_search"),
    ]

    DEFAULT_CSS = """
    LogView { height: 1fr; min-height: 8; }
    LogView > #log-header { height: 1; }
    LogView > RunLog { height: 1fr; }
    LogView > Input { height: 3; display: none; }
    LogView.-searching > Input { display: block; }
    """

    def __init__(self, *, id: str | None = None, max_lines: int = DEFAULT_MAX_LINES) -> None:
        super().__init__(id=id, classes="panel")
        self.border_title = "Log"
        self.max_lines = max_lines
        self.shown: list[str] = []  # the tail as last written (bounded by max_lines)
        self.follow = True
        self.view: HostView | None = None
        self.term: str = ""
        self.matches = 0
        self._theme_seen: str | None = None
        self._subtitle: str | None = None  # the path on the bottom border

    def compose(self) -> ComposeResult:
        yield Static(Content(""), id="log-header")
        yield RunLog(max_lines=self.max_lines, highlight=True, id="log")
        yield Input(placeholder="search the log (enter: next, esc: close)", id="log-search")

    @property
    def run_log(self) -> RunLog:
        return self.query_one(RunLog)

    def on_mount(self) -> None:
        self._apply_theme()

    def _apply_theme(self) -> None:
        from textual.markup import parse_style

        log = self.run_log
        old = getattr(log.highlighter, "term", None)
        log.highlighter = MarkerHighlighter({
            "done": parse_style("bold $success").rich_style,
            "error": parse_style("bold $error").rich_style,
            "warn": parse_style("$warning").rich_style,
            "match": parse_style("reverse $accent").rich_style,
        })
        log.highlighter.term = old
        log.current_style = parse_style("underline bold").rich_style
        self._theme_seen = self.app.theme
        log.notify_style_update()
        log.refresh()

    def reset(self, keep_data: bool = False) -> None:
        """Start over as a new panel (the host screen is reused for the next host): following,
        no search, and an empty log — or, with `keep_data` (the same host again), the lines
        already there, at their end."""
        if keep_data:
            self.remove_class("-searching")
            self.query_one(Input).value = ""
            if self.term or self.run_log.current_match is not None:
                self.set_term("")
            if not self.follow:
                self.action_toggle_follow()
            log = self.run_log
            log.scroll_to(x=0, animate=False, immediate=True)
            log.scroll_end(animate=False, immediate=True, x_axis=False)
            return
        self.view = None
        self.shown = []
        self.follow = True
        self.term = ""
        self.matches = 0
        # the border keeps the path: the next view sets its own, and the panel is repainted
        # (border and all, ~5 ms) only if that differs
        self.remove_class("-searching")
        self.query_one(Input).value = ""
        log = self.run_log
        log.clear()
        log.auto_scroll = True
        log.current_match = None
        log.highlighter.term = None
        log.scroll_to(0, 0, animate=False, immediate=True)
        self.query_one("#log-header", Static).update(Content(""), layout=False)

    # ------------------------------------------------------------------ data

    def update_view(self, view: HostView, now: float) -> None:
        if self._theme_seen != self.app.theme:
            self._apply_theme()
        self.view = view
        lines = tuple(safe(line, max_len=UI_MAX_LINE) for line in view.snapshot.log_lines)
        lines = lines[-self.max_lines:]
        start = _continuation(self.shown, lines)
        log = self.run_log
        if start is None:
            log.clear()
            log.write_lines(lines, scroll_end=self.follow)
            self.shown = list(lines)
        elif start < len(lines):
            new = lines[start:]
            log.write_lines(new, scroll_end=self.follow)
            self.shown.extend(new)
            del self.shown[:-self.max_lines]
        self._update_header()

    def _update_header(self) -> None:
        """State first (follow, search), then the path: the path is what gets cut."""
        v = self.view
        parts: list[Content] = [
            Content.styled("following" if self.follow else "PAUSED (f: follow)",
                           MUTED if self.follow else "bold $warning")]
        if self.term:
            log = self.run_log
            at = ""
            if log.current_match is not None:
                rx = re.compile(re.escape(self.term), re.IGNORECASE)
                at = f"{sum(1 for line in log.lines[:log.current_match + 1] if rx.search(line))}/"
            parts.append(Content.assemble(("search ", MUTED), plain(self.term, "bold"),
                                          (f" {at}{self.matches} match{'es' if self.matches != 1 else ''}",
                                           MUTED)))
        if v is not None:
            snap = v.snapshot
            if snap.log_error:
                parts.append(plain(snap.log_error, "$warning", max_len=120))
            if snap.log_skipped:
                parts.append(Content.styled(f"{fmt_bytes(snap.log_skipped)} skipped", "$warning"))
            # the header keeps the file's name; the full path goes to the bottom border
            path = safe(snap.log_path or "", max_len=300)
            parts.append(plain(path.rsplit("/", 1)[-1] or "no log file found", "bold", max_len=80))
            if path != self._subtitle:  # setting it repaints the whole panel, border and all
                self._subtitle = self.border_subtitle = path
        # one line high whatever it says: no layout pass (it re-renders the whole screen)
        self.query_one("#log-header", Static).update(Content.styled(" · ", MUTED).join(parts),
                                                      layout=False)

    # ------------------------------------------------------------------ follow / search

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        log = self.run_log
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self._update_header()

    def open_search(self) -> None:
        self.add_class("-searching")
        self.query_one(Input).focus()

    def action_close_search(self) -> None:
        self.remove_class("-searching")
        self.run_log.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_search":
            return self.has_class("-searching")
        if action in ("search_next", "search_prev"):
            return bool(self.term)
        return True

    @on(Input.Submitted, "#log-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        term = event.value
        if term != self.term:
            self.set_term(term)
        self.action_search_next()

    def set_term(self, term: str) -> None:
        self.term = term
        log = self.run_log
        rx = re.compile(re.escape(term), re.IGNORECASE) if term else None
        log.highlighter.term = rx
        self.matches = sum(1 for line in log.lines if rx.search(line)) if rx else 0
        log.current_match = None
        log.notify_style_update()
        log.refresh()
        self._update_header()

    def _find(self, direction: int) -> int | None:
        if not self.term:
            return None
        rx = re.compile(re.escape(self.term), re.IGNORECASE)
        log = self.run_log
        lines = log.lines
        n = len(lines)
        if not n:
            return None
        here = log.current_match if log.current_match is not None else int(log.scroll_y) - direction
        start = here + direction
        for i in range(n):
            y = (start + direction * i) % n
            if rx.search(lines[y]):
                return y
        return None

    def _jump(self, direction: int) -> None:
        y = self._find(direction)
        if y is None:
            self.notify(f"no match for {safe(self.term)!r}", markup=False, severity="warning")
            return
        if self.follow:
            self.action_toggle_follow()  # reading a match: stop the tail from pulling away
        log = self.run_log
        log.current_match = y
        log.scroll_to(y=max(0, y - log.size.height // 2), animate=False)
        log.refresh()
        self._update_header()

    def action_search_next(self) -> None:
        self._jump(+1)

    def action_search_prev(self) -> None:
        self._jump(-1)
