"""Jobs: tmux sessions, matching processes, GPU compute apps with memory, Slurm and Ray jobs with
the source's own state words; above them the progress `~cur/max`, ETA, restarts and W&B link.

Cells are `rich.text.Text`: DataTable parses `str` cells as markup, and these strings (session
names, command lines, Slurm job names) come from the box.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from gpudash.model import RAY_TERMINAL, SLURM_TERMINAL
from gpudash.ui import viewinfo as vi
from gpudash.ui.text import MUTED, fmt_bytes, fmt_duration, plain, rtext, safe
from gpudash.ui.widgets.panel import rewind_table
from gpudash.watch.view import HostView

COLUMNS = ("kind", "id", "state", "detail")
GOOD_END = frozenset({"COMPLETED", "SUCCEEDED"})


def job_state_style(state: str) -> str:
    s = state.upper()
    if s in GOOD_END:
        return "bold $success"
    if s in ("RUNNING", "COMPLETING"):
        return "bold $primary"
    if s == "PENDING" or s.startswith("AGED"):
        return MUTED
    if s in SLURM_TERMINAL or s in RAY_TERMINAL or s.startswith("EXITED"):
        return "bold $error"
    return ""


def job_rows(view: HostView) -> list[tuple[str, str, str, str]]:
    """(kind, id, state, detail) rows, plain strings (sanitised when rendered)."""
    snap = view.snapshot
    rows: list[tuple[str, str, str, str]] = []
    for t in snap.tmux:
        if t.pane_dead:
            state = f"exited {t.pane_dead_status}" if t.pane_dead_status is not None else "exited"
        else:
            state = "attached" if t.attached else "detached"
        detail = f"{t.windows if t.windows is not None else '?'} win"
        if t.pane_command:
            detail += f" · {t.pane_command}"
        if t.pane_pid is not None:
            detail += f" · pid {t.pane_pid}"
        rows.append(("tmux", t.name, state, detail))
    for p in snap.processes:
        detail = " ".join(x for x in (
            f"cpu {p.cpu_pct:.0f}%" if p.cpu_pct is not None else "",
            f"rss {fmt_bytes(p.rss_kb * 1024)}" if p.rss_kb is not None else "",
            f"thr {p.threads}" if p.threads is not None else "",
        ) if x)
        rows.append(("proc", str(p.pid), fmt_duration(p.elapsed_s) if p.elapsed_s is not None else "n/a",
                     f"{detail} · {p.command}" if detail else p.command))
    for a in snap.apps or ():
        mem = "n/a" if a.used_mib is None else f"{a.used_mib:.0f} MiB"
        rows.append(("gpu app", str(a.pid), mem, a.process_name))
    for j in snap.slurm:
        state = "AGED OUT" if j.source == "aged_out" else j.state or "?"
        bits = [j.name, f"{j.elapsed}/{j.time_limit}" if j.elapsed or j.time_limit else "",
                j.reason, f"exit {j.exit_code}" if j.exit_code else "", f"({j.source})"]
        rows.append(("slurm", j.job_id, state, " ".join(b for b in bits if b)))
    for r in snap.ray:
        rows.append(("ray", r.job_id, r.status, r.message))
    return rows


class JobsTable(DataTable):
    """The jobs table; j/k move like the arrows."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table_down"),
        Binding("k", "cursor_up", "Up", show=False, id="table_up"),
    ]


class JobsPanel(Vertical):
    """Summary line + table. The table is what takes focus."""

    DEFAULT_CSS = """
    JobsPanel { height: auto; }
    JobsPanel > #jobs-summary { height: auto; }
    JobsPanel > JobsTable { height: auto; max-height: 12; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.border_title = "Jobs"
        self._rows: list[tuple[str, str, str, str]] | None = None
        self._summary_key: tuple | None = None
        self._theme_seen: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Content(""), id="jobs-summary")
        table = JobsTable(cursor_type="row", zebra_stripes=True, id="jobs-table")
        table.add_columns(*COLUMNS)
        yield table

    def reset(self, keep_data: bool = False) -> None:
        """Forget the host shown, as a new panel (column widths too: DataTable only widens).
        `keep_data` (the same host again): only the cursor goes back to the top."""
        if keep_data:
            rewind_table(self.query_one(JobsTable))
            return
        self._rows = None
        self._summary_key = None
        self.query_one("#jobs-summary", Static).update(Content(""))
        self.query_one(JobsTable).clear(columns=True).add_columns(*COLUMNS)

    def update_view(self, view: HostView, now: float) -> None:
        summary = self._summary(view)
        key = (summary.plain, tuple(summary.spans))
        if key != self._summary_key:  # a Static's update is a layout pass: only on a change
            self._summary_key = key
            self.query_one("#jobs-summary", Static).update(summary)
        rows = job_rows(view)
        if rows == self._rows and self._theme_seen == self.app.theme:
            return
        self._rows, self._theme_seen = rows, self.app.theme
        table = self.query_one(JobsTable)
        cursor = table.cursor_row
        table.clear()
        if not rows:
            table.add_row(rtext("—", MUTED), rtext("no jobs found", MUTED), rtext(""), rtext(""))
        for kind, ident, state, detail in rows:
            table.add_row(rtext(kind, MUTED, remote=False), rtext(ident, max_len=40),
                          rtext(state, job_state_style(state), max_len=30), rtext(detail, max_len=300))
        if rows and 0 <= cursor < len(rows):
            table.move_cursor(row=cursor, animate=False)

    def _summary(self, view: HostView) -> Content:
        parts: list[Content] = []
        summary = safe(view.job_summary) or "no job found"
        parts.append(Content.assemble(("job ", MUTED), plain(summary, "bold")))
        prog = vi.progress_text(view)
        parts.append(Content.assemble(("progress ", MUTED), (prog or "n/a", "bold $primary" if prog else MUTED)))
        n = vi.restarts(view)
        parts.append(Content.assemble(("restarts ", MUTED), ("n/a" if n is None else str(n),
                                                              "bold $warning" if n else "")))
        url = vi.wandb_url(view)
        if url:
            parts.append(Content.assemble(("W&B ", MUTED), plain(url, "underline", max_len=120)))
        line = Content.styled(" · ", MUTED).join(parts)
        notes = safe(view.notes, max_len=200)
        if notes:
            line += Content("\n") + Content.assemble(("notes ", MUTED), plain(notes))
        return line
