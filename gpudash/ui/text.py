"""Small builders that turn view values into `Content` for the widgets.

Two rules live here so every widget follows them without thinking:

- **Remote text is never markup.** Every string that came from a box goes through :func:`safe`,
  which sanitises it again (defence in depth: the data path already did) and returns it as a
  plain `Content` — a `[bold]` in a log line stays six literal characters.
- **Colour comes from the theme.** Styles are theme variables (`$success`, `$error` …), resolved
  by Textual at render time, so a theme switch recolours everything and NO_COLOR still works.
  A state is always written as a word too: colour alone never carries meaning.
"""

from __future__ import annotations

import weakref
from datetime import datetime, tzinfo

from textual.content import Content

from gpudash.model import State
from gpudash.sanitize import clean_text

# One style per state; the word is always printed next to it.
STATE_STYLE: dict[State, str] = {
    State.OK: "bold $success",
    State.WARN: "bold $warning",
    State.CRIT: "bold reverse $error",
    State.UNKNOWN: "bold $accent",
    State.STALE: "bold $foreground-muted",
}
MUTED = "$foreground-muted"
SPARK_CHARS = "▁▂▃▄▅▆▇█"
UI_MAX_LINE = 1000  # cut even a sanitised line here: rendering cost is per cell
CUT_MARK = " …[cut]"


def safe(text: object, *, max_len: int = UI_MAX_LINE) -> str:
    """Remote text → a plain string safe to show (escape sequences gone, bounded)."""
    s = clean_text("" if text is None else str(text), max_len=None).replace("\n", " ")
    if len(s) > max_len:
        s = s[:max_len] + CUT_MARK
    return s


def plain(text: object, style: str = "", *, max_len: int = UI_MAX_LINE) -> Content:
    """Remote text as Content with no markup parsing, optionally styled with a theme style."""
    return Content.styled(safe(text, max_len=max_len), style)


def state_word(state: State, *, width: int = 0) -> Content:
    """The state as a coloured word, padded so columns line up."""
    word = state.value.ljust(width) if width else state.value
    return Content.styled(word, STATE_STYLE.get(state, ""))


def level_style(pct: float | None, state: State | None = None, warn: float = 80.0,
                crit: float = 90.0) -> str:
    """Gauge colour: the health check's state when we have it, else fixed levels."""
    if state is not None:
        return {State.OK: "$success", State.WARN: "$warning", State.CRIT: "$error"}.get(state, MUTED)
    if pct is None:
        return MUTED
    return "$error" if pct >= crit else "$warning" if pct >= warn else "$success"


def gauge(pct: float | None, width: int, style: str) -> Content:
    """A bar of `width` cells: filled part in `style`, the rest muted; `?` bars when unknown."""
    width = max(1, width)
    if pct is None:
        return Content.styled("?" * width, MUTED)
    filled = round(max(0.0, min(100.0, pct)) / 100.0 * width)
    return Content.assemble(("█" * filled, style), ("░" * (width - filled), MUTED))


def spark(values, width: int, *, lo: float = 0.0, hi: float = 100.0, style: str = "$primary") -> Content:
    """A one-line sparkline of the newest `width` values on a fixed scale.

    Unavailable samples (None) are shown as gaps, never as zeros.
    """
    if width <= 0:
        return Content("")
    vals = list(values)[-width:]
    span = (hi - lo) or 1.0
    out = []
    for v in vals:
        if v is None:
            out.append(" ")
        else:
            i = int((max(lo, min(hi, v)) - lo) / span * (len(SPARK_CHARS) - 1) + 0.5)
            out.append(SPARK_CHARS[i])
    text = "".join(out).rjust(width)
    return Content.styled(text, style)


def pct_text(pct: float | None, width: int = 4) -> str:
    return "n/a".rjust(width) if pct is None else f"{pct:.0f}%".rjust(width)


def fmt_num(v: float | None, unit: str = "", fmt: str = "{:.0f}") -> str:
    return "n/a" if v is None else fmt.format(v) + unit


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "K", "M", "G", "T", "P"):
        if abs(n) < 1024 or unit == "P":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024.0
    return f"{n:.1f}P"  # pragma: no cover


def fmt_count(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def fmt_duration(seconds: float | None) -> str:
    """Compact duration: 42s, 3m, 2h05m, 3d04h."""
    if seconds is None:
        return "n/a"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def hhmm(epoch: float | None, tz: tzinfo | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M")


def hhmmss(epoch: float | None, tz: tzinfo | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M:%S")


# NVML clocks_event_reasons bits (nvml.h: nvmlClocksEventReason*), decoded for people.
THROTTLE_BITS: tuple[tuple[int, str], ...] = (
    (0x1, "idle"),
    (0x2, "app-clocks"),
    (0x4, "sw-power-cap"),
    (0x8, "hw-slowdown"),
    (0x10, "sync-boost"),
    (0x20, "sw-thermal"),
    (0x40, "hw-thermal"),
    (0x80, "power-brake"),
    (0x100, "display-clocks"),
)


def decode_throttle(mask: int | None) -> str:
    """A throttle bitmask in words; 'n/a' when the box could not tell us."""
    if mask is None:
        return "n/a"
    if mask == 0:
        return "none"
    names = [name for bit, name in THROTTLE_BITS if mask & bit]
    rest = mask & ~sum(bit for bit, _ in THROTTLE_BITS)
    if rest:
        names.append(f"0x{rest:x}")
    return ",".join(names)


def fit(content: Content, width: int) -> Content:
    """Cut a line of content to `width` cells with an ellipsis (never wraps a card row)."""
    if width <= 0:
        return Content("")
    if content.cell_length <= width:
        return content
    return content.truncate(max(0, width - 1)) + Content("…")


def rtext(text: object, style: str = "", *, remote: bool = True, max_len: int = UI_MAX_LINE):
    """A `rich.text.Text` (for DataTable cells, which parse `str` as markup) with a theme style
    resolved now. Rebuild the cells when the theme changes."""
    from rich.text import Text

    s = safe(text, max_len=max_len) if remote else str(text)
    if not style:
        return Text(s, end="")
    return Text(s, style=_rich_style(style) or "", end="")


# per app, its theme's resolved styles: a table of hundreds of rows (the alerts of a big fleet)
# parsed the same few style strings for every cell it rebuilt (~10% of the app's CPU at 1,000
# hosts). Keyed by theme: a theme switch resolves `$warning` anew.
_STYLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _rich_style(style: str):
    from textual._context import active_app
    from textual.markup import parse_style

    try:
        app = active_app.get()
    except LookupError:  # no active app (unit use): unstyled rather than wrong
        return None
    cache = _STYLES.get(app)
    if cache is None:
        cache = _STYLES[app] = {}
    key = (style, app.theme)
    got = cache.get(key, cache)
    if got is cache:
        if len(cache) > 256:
            cache.clear()
        try:
            got = parse_style(style).rich_style
        except Exception:  # a style the theme cannot resolve: unstyled rather than wrong
            got = None
        cache[key] = got
    return got


def plain_lines(text: object, style: str = "") -> Content:
    """Multi-line text (an explanation, a remediation): each line made safe, newlines kept."""
    lines = ("" if text is None else str(text)).splitlines() or [""]
    return Content("\n").join(Content.styled(safe(line), style) for line in lines)
