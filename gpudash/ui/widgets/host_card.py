"""One host in three lines: the overview's unit. Fits a tmux pane at 80 columns.

    ▶ OK      gpu-a   tmux train: running  ~31/64 ETA 2m            2 alerts  seen 3s ago
      GPU ▁▃▆█ 87%  MEM ▂▃▄▅ 42%  dsk /     ███░░ 21%  ino /mnt  █████ 100%
      cuda_oom │ torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …

The state is a word as well as a colour; an unreachable host says why and since when.
"""

from __future__ import annotations

from datetime import tzinfo

from textual.content import Content
from textual.widget import Widget

from gpudash.model import State
from gpudash.ui import viewinfo as vi
from gpudash.ui.messages import OpenHost
from gpudash.ui.text import (MUTED, fit, gauge, level_style, pct_text, plain, safe, spark,
                             state_word)
from gpudash.watch.view import HostView


DISK_CELL = 4 + 5 + 1 + 4 + 1 + 4  # "dsk " mount gauge pct


class CardLine(Widget):
    """One line of a card. Separate widgets so the once-a-second "seen 3s ago" repaints one
    line, not the whole card (the overview's idle cost is mostly that tick)."""

    DEFAULT_CSS = """
    CardLine { height: 1; width: 1fr; }
    """

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line

    def render(self) -> Content:
        card = self.parent
        width = max(20, self.size.width)
        if not isinstance(card, HostCard):
            return Content("")
        build = (card._line1, card._line2, card._line3)[self.line]
        return fit(build(width), width)


class HostCard(Widget):
    """A compact, clickable summary of one host."""

    DEFAULT_CSS = """
    HostCard { height: 3; width: 1fr; layout: vertical; }
    """

    def __init__(self, view: HostView, *, now: float, tz: tzinfo | None) -> None:
        super().__init__(classes="host-card")
        self.view = view
        self.now = now
        self.tz = tz
        self.selected = False
        self._seen_text = ""

    def compose(self):
        yield CardLine(0)
        yield CardLine(1)
        yield CardLine(2)

    @property
    def host(self) -> str:
        return self.view.name

    def _refresh_lines(self, *which: int) -> None:
        lines = list(self.query(CardLine))
        for i in which:
            if i < len(lines):
                lines[i].refresh()

    def update_view(self, view: HostView | None = None, *, now: float | None = None) -> None:
        if now is not None:
            self.now = now
        if view is not None:
            self.view = view
            self.set_class(self.view.state is State.CRIT, "-crit")
            self._refresh_lines(0, 1, 2)
            return
        # a clock tick: only the first line shows time, and only if its text changed
        seen = vi.seen_text(self.view, self.now, self.tz)
        if seen != self._seen_text:
            self._refresh_lines(0)

    def set_selected(self, selected: bool) -> None:
        if selected != self.selected:
            self.selected = selected
            self.set_class(selected, "-selected")
            self._refresh_lines(0)

    def on_click(self) -> None:
        self.post_message(OpenHost(self.host))

    def render_text(self, width: int = 80) -> str:
        """The card as plain text (tests, debugging)."""
        return "\n".join(fit(f(width), width).plain for f in (self._line1, self._line2, self._line3))

    # ------------------------------------------------------------------ lines

    def _line1(self, width: int) -> Content:
        v = self.view
        left = Content.assemble(
            ("▶ " if self.selected else "  ", "bold $accent"),
            state_word(v.state, width=7),
            " ",
            plain(v.name, "bold", max_len=24),
        )
        if v.paused:
            left += Content.styled("  PAUSED", "bold $warning")
        job = " ".join(x for x in (safe(v.job_summary, max_len=60), vi.progress_text(v)) if x)
        if job:
            left += Content("  ") + plain(job, max_len=80)
        right_parts = []
        if v.alerts_unacked:
            n = v.alerts_unacked
            right_parts.append(Content.styled(f"{n} alert{'s' if n != 1 else ''}", "bold $warning"))
        seen = vi.seen_text(v, self.now, self.tz)
        self._seen_text = seen
        right_parts.append(Content.styled(seen, "$accent" if vi.unknown_reason(v) else MUTED))
        right = Content("  ").join(right_parts)
        room = width - right.cell_length - 2
        if room < 20:  # narrow: the reason/seen text matters more than the job text
            return left.truncate(max(0, width - right.cell_length - 1)) + Content(" ") + right
        left = fit(left, room)
        return left + Content(" " * (width - left.cell_length - right.cell_length)) + right

    def _line2(self, width: int) -> Content:
        v = self.view
        parts: list[Content] = []
        show_disks = width >= 70
        disk_w = 2 * (DISK_CELL + 2) if show_disks else 0
        if v.snapshot.gpus:
            # "GPU " spark " 100%" + "  " + "MEM " spark " 100%": 22 cells besides the sparks
            spark_w = max(4, min(30, (width - 2 - disk_w - 22) // 2))
            util = vi.current_util(v)
            mem = vi.current_mem_pct(v)
            parts.append(Content.assemble(
                ("GPU ", MUTED), spark(vi.util_series(v), spark_w, style="$primary"), " ",
                (pct_text(util), "bold" if util is not None else MUTED),
                "  ",
                ("MEM ", MUTED), spark(vi.mem_series(v), spark_w, style="$secondary"), " ",
                (pct_text(mem), level_style(mem, warn=95, crit=99) if mem is not None else MUTED),
            ))
        else:
            err = v.snapshot.gpu_error
            why = err.reason.value if err is not None else "no data yet"
            parts.append(Content.styled(f"GPU n/a ({why})".ljust(max(0, width - 2 - disk_w - 2)), MUTED))
        if show_disks or not v.snapshot.gpus:
            parts.append(self._disk(v, inodes=False))
            parts.append(self._disk(v, inodes=True))
        line = Content("  ") + Content("  ").join(parts)
        if vi.is_unreachable(v) or v.state is State.STALE:
            line = line.stylize(MUTED)  # last known values, not live ones
        return line

    def _disk(self, v: HostView, *, inodes: bool) -> Content:
        label = "ino " if inodes else "dsk "
        d = vi.worst_disk(v, inodes)
        if d is None:
            return Content.styled((label + "n/a").ljust(DISK_CELL), MUTED)
        pct = d.inodes_pct if inodes else d.bytes_pct
        state = vi.check_state(v, f"disk.{'inodes' if inodes else 'bytes'}:{d.mount}")
        mount = safe(d.mount, max_len=40)
        mount = (mount if len(mount) <= 5 else "…" + mount[-4:]).ljust(5)
        style = level_style(pct, state)
        return Content.assemble((label, MUTED), plain(mount), " ", gauge(pct, 4, style), " ",
                                (pct_text(pct), style))

    def _line3(self, width: int) -> Content:
        v = self.view
        t = vi.triage_info(v)
        prefix = Content("  ")
        if t is not None and t.is_failure:
            prefix += Content.styled(safe(t.cls, max_len=20), "bold $error") + Content.styled(" │ ", MUTED)
        elif t is not None and t.cls == "completed":
            prefix += Content.styled("completed", "bold $success") + Content.styled(" │ ", MUTED)
        line = vi.last_log_line(v)
        if not line:
            return prefix + Content.styled("(no log line yet)", MUTED)
        return prefix + plain(line, MUTED, max_len=width)
