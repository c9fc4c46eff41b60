"""Per GPU: util and memory sparklines over the watcher's window, temperature, power vs limit,
throttle reasons in words, ECC, pstate; then the host/cgroup memory and the compute apps.

Every value the box could not report is printed as "n/a" — never as 0 — and a sparkline gap
marks a missing sample. The sparklines are drawn as text (not `Sparkline`) for that reason:
`Sparkline` has no way to show a gap.
"""

from __future__ import annotations

from textual.content import Content

from gpudash.model import GpuHealthFields, GpuSample, Reason
from gpudash.ui.text import (MUTED, decode_throttle, fit, fmt_bytes, fmt_num, level_style,
                             pct_text, plain, safe, spark)
from gpudash.ui.widgets.panel import Panel


def _window_avg(series) -> float | None:
    vals = [v for v in series if v is not None]
    return sum(vals) / len(vals) if vals else None


def _gib(mib: float | None) -> str:
    return "n/a" if mib is None else f"{mib / 1024:.1f}"


class GpuPanel(Panel):
    TITLE = "GPU"

    DEFAULT_CSS = """
    GpuPanel { height: auto; min-height: 4; }
    """

    def build_lines(self, width: int) -> list[Content]:
        v = self.view
        if v is None:
            return [Content.styled("waiting for the first sample…", MUTED)]
        snap = v.snapshot
        lines: list[Content] = []
        if snap.gpu_error is not None and not snap.gpus:
            err = snap.gpu_error
            lines.append(Content.assemble(("GPU unavailable: ", "bold $warning"),
                                          (err.reason.value, "bold"), " — ",
                                          plain(err.reason.advice)))
            if err.message:
                lines.append(plain(err.message, MUTED))
        elif not snap.gpus:
            lines.append(Content.styled("no GPU sample yet", MUTED))
        health = {h.index: h for h in snap.gpu_health}
        for pos, g in enumerate(snap.gpus):
            util_hist = snap.util_history[pos] if pos < len(snap.util_history) else ()
            mem_hist = snap.mem_history[pos] if pos < len(snap.mem_history) else ()
            lines.extend(self._gpu_lines(g, health.get(g.index), util_hist, mem_hist, width))
        if snap.gpu_error is not None and snap.gpus:
            lines.append(Content.assemble(("last probe failed: ", "$warning"),
                                          plain(snap.gpu_error.reason.value), " ",
                                          plain(snap.gpu_error.message, MUTED)))
        lines.append(self._memory_line())
        lines.append(self._apps_line())
        return [fit(line, width) for line in lines]

    def _gpu_lines(self, g: GpuSample, h: GpuHealthFields | None, util_hist, mem_hist, width: int):
        power = "n/a" if g.power_w is None else f"{g.power_w:.0f}"
        limit = "n/a" if g.power_limit_w is None else f"{g.power_limit_w:.0f}"
        temp = fmt_num(g.temp_c, "°C")
        if g.mem_temp_c is not None:
            temp += f" (mem {g.mem_temp_c:.0f}°C)"
        ecc = "n/a" if h is None or h.ecc_uncorrected is None else str(h.ecc_uncorrected)
        throttle = decode_throttle(None if h is None else h.throttle_mask)
        head = Content.assemble(
            (f"GPU{g.index} ", "bold"), plain(g.name or "?", max_len=40), (" · ", MUTED),
            (safe(g.pstate or "P?"), ""), (" · ", MUTED), temp, (" · ", MUTED),
            f"{power}/{limit} W", (" · ", MUTED),
            ("ECC ", MUTED), (ecc, "bold $error" if ecc not in ("0", "n/a") else ""),
            (" · throttle ", MUTED),
            (throttle, "$warning" if throttle not in ("none", "idle", "n/a") else ""),
        )
        mem_pct = (100.0 * g.mem_used_mib / g.mem_total_mib
                   if g.mem_used_mib is not None and g.mem_total_mib else None)
        mem_text = f"{_gib(g.mem_used_mib)}/{_gib(g.mem_total_mib)} GiB"
        avg = _window_avg(util_hist)
        fixed = 2 + 5 + 5 + 12 + 3 + 4 + 5 + len(mem_text) + 3
        spark_w = max(4, (width - fixed) // 2)
        body = Content.assemble(
            "  ", ("util ", MUTED), spark(util_hist, spark_w, style="$primary"), " ",
            (pct_text(g.util_pct), "bold"), (f" avg {pct_text(avg, 3)}", MUTED), "   ",
            ("mem ", MUTED), spark(mem_hist, spark_w, style="$secondary"), " ",
            (pct_text(mem_pct), level_style(mem_pct, warn=95, crit=99)), " ", (mem_text, MUTED),
        )
        return [head, body]

    def _memory_line(self) -> Content:
        m = self.view.snapshot.memory
        if m is None:
            return Content.styled("RAM n/a", MUTED)
        if m.limit_bytes:
            used = f"{fmt_bytes(m.used_bytes)}/{fmt_bytes(m.limit_bytes)}"
        elif m.host_total_bytes:
            used_b = (m.host_total_bytes - m.host_available_bytes
                      if m.host_available_bytes is not None else None)
            used = f"{fmt_bytes(used_b)}/{fmt_bytes(m.host_total_bytes)}"
        else:
            used = fmt_bytes(m.used_bytes)
        pct = m.used_pct
        load = "n/a" if m.load1 is None else f"{m.load1:.1f}"
        cpus = m.nproc if m.cpu_quota is None else f"{m.cpu_quota:g} (quota)"
        oom = "n/a" if m.oom_kills is None else str(m.oom_kills)
        return Content.assemble(
            ("RAM ", "bold"), (f"{safe(m.source)} ", MUTED), used, " ",
            (pct_text(pct), level_style(pct, warn=90, crit=97)),
            (" · load ", MUTED), load, ("/", MUTED), str(cpus if cpus is not None else "n/a"),
            (" cpu · oom kills ", MUTED), (oom, "bold $error" if oom not in ("0", "n/a") else ""),
        )

    def _apps_line(self) -> Content:
        snap = self.view.snapshot
        apps = snap.apps
        if apps is None:
            return Content.styled("GPU apps: unknown", MUTED)
        if not apps:
            held = any((g.mem_used_mib or 0) > 1024 for g in snap.gpus)
            if held:
                return Content.assemble(("GPU apps: ", "bold"),
                                        (Reason.NOT_VISIBLE.advice, "$warning"))
            return Content.assemble(("GPU apps: ", "bold"), ("none", MUTED))
        parts = [Content.assemble(("GPU apps: ", "bold"))]
        for a in apps[:6]:
            mem = "n/a" if a.used_mib is None else f"{a.used_mib:.0f} MiB"
            parts.append(Content.assemble((str(a.pid), "$primary"), " ", plain(a.process_name, max_len=40),
                                          " ", (mem, MUTED), "  "))
        if len(apps) > 6:
            parts.append(Content.styled(f"+{len(apps) - 6} more", MUTED))
        return Content.assemble(*parts)
