"""`t`: the teardown checklist of one host — the gate before paying to stop a box.

The checks themselves belong to `gpudash.teardown` (another module). When it offers
`run_checks`, this screen runs it in a worker with a deadline and shows one line per check with
its state word and evidence; `r` re-runs. Until then it says plainly that the engine is not
there and lists what the checklist will verify — it never pretends a check passed.
"""

from __future__ import annotations

import asyncio
import inspect

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from gpudash.model import State
from gpudash.ui.screens.base import DashScreen
from gpudash.ui.text import MUTED, STATE_STYLE, plain
from gpudash.ui.widgets.key_bar import KeyBar

RUN_DEADLINE_S = 120.0
WORD_STYLE = {"green": "bold $success", "red": "bold reverse $error", "unknown": "bold $accent"}
PLANNED = (
    "the job is in a terminal state with its completion marker",
    "no GPU compute process is left (unknown, not green, when processes are not visible)",
    "the durable artifacts dir has the expected count, files non-empty, its disk not full",
    "the local pull dir matches the remote (count and bytes; sha256 on request)",
    "the verify command passed locally (OK N/N)",
    "only then: the platform's meter-stop command, run after you type the host name",
)


OFFERED = ("host", "view", "fleet", "config")


def find_engine(app=None):
    """Who can run the checks for the UI, by preference: a `teardown=` callable given to the app,
    the fleet's `teardown_checks(host)`, or `gpudash.teardown.run_checks` when it can be called
    with what the UI has (host, view, fleet, config). None: show the placeholder."""
    if app is not None:
        for fn in (getattr(app, "teardown", None), getattr(getattr(app, "fleet", None), "teardown_checks", None)):
            if callable(fn):
                return fn
    try:
        import gpudash.teardown as td
    except Exception:  # pragma: no cover - the package exists in the skeleton
        return None
    fn = getattr(td, "run_checks", None)
    if not callable(fn):
        return None
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    required = {p.name for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return fn if required <= set(OFFERED) else None


class TeardownScreen(DashScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("r", "rerun", "Re-run checks", id="probe_now"),
    ]

    def __init__(self, host: str | None) -> None:
        super().__init__(classes="teardown-screen")
        self.host = host
        self.engine = None

    def compose(self) -> ComposeResult:
        with Vertical(id="teardown-box"):
            with VerticalScroll():
                yield Static(Content(""), id="teardown-text")
        yield KeyBar()

    def on_mount(self) -> None:
        self.engine = find_engine(self.app)
        self.query_one("#teardown-box").border_title = f"Teardown checklist · {self.host or 'no host'}"
        if self.engine is None:
            self._show_placeholder()
        else:
            self.action_rerun()

    def context_host(self) -> str | None:
        return self.host

    def _text(self) -> Static:
        return self.query_one("#teardown-text", Static)

    def _show_placeholder(self) -> None:
        lines = [
            Content.styled("The teardown engine is not available in this build yet", "bold $warning"),
            Content.styled("(no teardown runner is wired to this view). Nothing was checked; nothing "
                           "will be stopped or destroyed from here. `gpudash teardown HOST` runs the "
                           "checklist without the TUI.", MUTED),
            Content(""),
            Content.styled("The checklist will verify, in order:", "bold"),
        ]
        for i, item in enumerate(PLANNED, 1):
            lines.append(Content.assemble((f"  {i}. ", "$accent"), ("[ not checked ] ", MUTED), item))
        self._text().update(Content("\n").join(lines))

    def action_rerun(self) -> None:
        if self.engine is None:
            self.notify("teardown engine not available yet", severity="warning", markup=False)
            return
        self._text().update(Content.styled("running the checks…", MUTED))
        self.run_worker(self._run(), exclusive=True, group="teardown", exit_on_error=False)

    async def _run(self) -> None:
        fn = self.engine
        offered = {"host": self.host, "view": self.app.views.get(self.host or ""),
                   "fleet": self.app.fleet, "config": self.app.config}
        try:
            params = inspect.signature(fn).parameters
            kwargs = {k: v for k, v in offered.items() if k in params}
            if not kwargs and params:  # a plain fn(host)
                kwargs = {next(iter(params)): self.host}
            async with asyncio.timeout(RUN_DEADLINE_S):
                if inspect.iscoroutinefunction(fn):
                    results = await fn(**kwargs)
                else:
                    results = await asyncio.to_thread(fn, **kwargs)
        except Exception as exc:  # the engine's failure is shown, never raised into the UI
            self._text().update(Content.assemble(("teardown checks failed: ", "bold $error"),
                                                 plain(f"{type(exc).__name__}: {exc}")))
            return
        self._text().update(self._render_results(results))

    @staticmethod
    def _render_results(results) -> Content:
        """A Checklist (or any iterable of checks): one line per check with its state word and
        evidence, then the stop plan as it WOULD run — it is not run from here."""
        items = list(getattr(results, "checks", results) or ())
        if not items:
            return Content.styled("the engine returned no checks", MUTED)
        lines: list[Content] = []
        for n, item in enumerate(items, 1):
            state = getattr(item, "state", None)
            word = state.value if isinstance(state, State) else str(state or "?")
            style = STATE_STYLE.get(state, "") if isinstance(state, State) else WORD_STYLE.get(word, "")
            title = getattr(item, "title", None) or getattr(item, "name", None) or getattr(item, "key", "")
            summary = getattr(item, "summary", "") or getattr(item, "missing", "") or ""
            lines.append(Content.assemble((f"{n}. ", "$accent"), (f"[{word:^7}]", style), " ",
                                          plain(title, "bold"), "  ", plain(summary, MUTED)))
            evidence = getattr(item, "evidence", None)
            for ev in ([evidence] if isinstance(evidence, str) else list(evidence or ()))[:8]:
                lines.append(Content("             ") + plain(ev, MUTED))
        stop = getattr(results, "stop", None)
        if stop is not None:
            lines += [Content(""), Content.styled("Meter stop (not run from this screen)", "bold $primary")]
            cmd = getattr(stop, "command", None)
            lines.append(Content.assemble(("command: ", MUTED), plain(cmd or "unknown", "bold")))
            lines.append(Content.assemble(("where: ", MUTED), plain(getattr(stop, "where_text", "") or "")))
            lines.append(Content.assemble(("survives: ", MUTED), plain(getattr(stop, "survives", "") or "")))
            for w in getattr(stop, "warnings", ()) or ():
                lines.append(Content.assemble(("! ", "bold $warning"), plain(w)))
        return Content("\n").join(lines)

    def action_back(self) -> None:
        self.app.pop_screen()
