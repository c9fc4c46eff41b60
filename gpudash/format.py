"""Plain-text formatting shared by the CLI and the TUI: numbers a person reads at a glance.
Unavailable values print as "n/a", never as 0."""

from __future__ import annotations

import dataclasses
import enum
import time

NA = "n/a"


def pct(value: float | None, digits: int = 0) -> str:
    return NA if value is None else f"{value:.{digits}f}%"


def gib_from_mib(mib: float | None) -> str:
    return NA if mib is None else f"{mib / 1024:.1f}"


def human_bytes(n: float | None) -> str:
    if n is None:
        return NA
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} PB"  # pragma: no cover


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def clock(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    try:
        return time.strftime("%H:%M", time.localtime(epoch))
    except (OverflowError, OSError, ValueError):  # a nonsense timestamp from a box
        return "?"


def duration(seconds: float | None) -> str:
    return "?" if seconds is None else age(seconds)


def to_jsonable(obj):
    """Dataclasses, enums, tuples and bytes → plain JSON values (bytes: decoded with replacement)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for prop in ("bytes_pct", "inodes_pct", "used_pct", "count", "total_bytes"):
            if hasattr(type(obj), prop) and isinstance(getattr(type(obj), prop), property):
                out[prop] = to_jsonable(getattr(obj, prop))
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if hasattr(obj, "to_json"):
        return obj.to_json()
    return obj
