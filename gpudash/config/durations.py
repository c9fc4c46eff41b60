"""Durations as people write them: ``90``, ``"3600"``, ``"90m"``, ``"6h"``, ``"1h30m"``, ``"2d"``.

A bare number is seconds. Shared by the config (intervals, ``*_s`` thresholds,
``expected_duration``) and the CLI (``gpudash wait --timeout 3h``) so both read the same way.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_WHOLE = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)?\s*)+")


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string; ``ValueError`` (with a message) otherwise.

    Negative, NaN and infinite values are refused here; whether zero is allowed is the caller's
    business. Booleans are not numbers.
    """
    if isinstance(value, bool):
        raise ValueError("must be a duration (seconds, or a string like \"90m\"), not a boolean")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError("is far too large") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-"):
            raise ValueError("must not be negative")
        if not text or not _WHOLE.fullmatch(text):
            raise ValueError("is not a duration: write seconds (3600) or a number with a unit "
                             "ms/s/m/h/d (\"90m\", \"6h\", \"1h30m\")")
        parts = _PART.findall(text)
        if len(parts) > 1 and any(not unit for _, unit in parts):
            raise ValueError("is not a duration: give every part a unit (\"1m30s\", not \"1m 30\")")
        units = [unit or "s" for _, unit in parts]
        if len(set(units)) != len(units):
            raise ValueError("is not a duration: repeat no unit (\"1h30m\", not \"1h2h\")")
        seconds = sum(float(num) * _UNITS[unit or "s"] for num, unit in parts)
    else:
        raise ValueError("must be a duration (seconds, or a string like \"90m\")")
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError("must be a finite duration")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form used in messages and written configs: ``6h``, ``90m``, ``1h30m``, ``45s``."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(round(seconds))
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            out += f"{whole // size}{unit}"
            whole %= size
    if whole or not out:
        out += f"{whole}s"
    return out
