"""Per watched mount: bytes and inodes as two gauges side by side, with time-to-full.

Inodes get the same space as bytes on purpose: many-small-files outputs exhaust inodes while
the byte gauge still looks fine (fixture df-*-small.txt: 2% bytes, 100% inodes).
"""

from __future__ import annotations

from textual.content import Content

from gpudash.model import DiskUsage
from gpudash.ui import viewinfo as vi
from gpudash.ui.text import (MUTED, fit, fmt_bytes, fmt_count, fmt_duration, gauge, level_style,
                             pct_text, plain, safe)
from gpudash.ui.widgets.panel import Panel


class DiskGauges(Panel):
    TITLE = "Disk"

    DEFAULT_CSS = """
    DiskGauges { height: auto; min-height: 3; }
    """

    def build_lines(self, width: int) -> list[Content]:
        v = self.view
        if v is None:
            return [Content.styled("waiting for the first sample…", MUTED)]
        lines: list[Content] = []
        disks = v.snapshot.disks
        if not disks and not v.snapshot.disk_errors:
            lines.append(Content.styled("no disk sample yet", MUTED))
        mount_w = min(24, max([len(safe(d.mount, max_len=24)) for d in disks] + [6]))
        side_by_side = width >= 2 * 31 + 3 + mount_w  # two gauges of at least 5 cells
        for d in disks:
            b = self._gauge(v, d, "bytes", side_by_side, width, mount_w)
            i = self._gauge(v, d, "inodes", side_by_side, width, mount_w)
            name = plain(safe(d.mount, max_len=mount_w).ljust(mount_w), "bold")
            if side_by_side:
                lines.append(name + Content(" ") + b + Content("  ") + i)
            else:
                lines.append(name + Content(" ") + b)
                lines.append(Content(" " * (mount_w + 1)) + i)
            fits = vi.check_detail(v, f"disk.bytes:{d.mount}", "checkpoint_fits")
            if isinstance(fits, bool):
                lines.append(Content(" " * (mount_w + 1)) + (
                    Content.styled("next checkpoint fits", "$success") if fits
                    else Content.styled("next checkpoint does NOT fit", "bold $error")))
        for mount, message in v.snapshot.disk_errors:
            lines.append(Content.assemble(plain(mount, "bold", max_len=mount_w), " ",
                                          ("unavailable: ", "$warning"), plain(message, MUTED)))
        return [fit(line, width) for line in lines]

    def _gauge(self, v, d: DiskUsage, kind: str, side_by_side: bool, width: int, mount_w: int) -> Content:
        """label, bar, pct, amount, time-to-full — padded to its half so both columns line up."""
        if kind == "bytes":
            pct, label = d.bytes_pct, "bytes "
            amount = f"{fmt_bytes(d.used_bytes)}/{fmt_bytes(d.size_bytes)}"
        else:
            pct, label = d.inodes_pct, "inodes"
            amount = f"{fmt_count(d.inodes_used)}/{fmt_count(d.inodes_total)}"
        state = vi.check_state(v, f"disk.{kind}:{d.mount}")
        style = level_style(pct, state)
        ttf = vi.time_to_full(v, d.mount, kind)
        tail = f" full in {fmt_duration(ttf)}" if ttf is not None else ""
        room = (width - mount_w - 3) // 2 if side_by_side else width - mount_w - 1
        fixed = len(label) + 1 + 1 + 4 + 1 + 13
        bar_w = max(5, min(30, room - fixed - len(tail)))
        out = Content.assemble(
            (label, MUTED), " ", gauge(pct, bar_w, style), " ", (pct_text(pct), style), " ",
            (amount.ljust(13), MUTED), (tail, "bold $warning" if tail else ""),
        )
        return out + Content(" " * max(0, room - out.cell_length)) if side_by_side and kind == "bytes" else out
