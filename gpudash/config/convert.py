"""Value converters: raw TOML value → typed value, or ``Invalid`` with a plain message.

Each converter checks the type first (a TOML ``true`` is never an integer, a date is never a
string) and then the value. Messages say what is expected, not what was given, so secret values
are never echoed.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from .durations import parse_duration
from .errors import Invalid, show_value
from .frozen_map import FrozenMap

Converter = Callable[[Any], Any]

KEY_MATERIAL = ("-----BEGIN", "PRIVATE KEY-----")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _expect(value: Any, ok: bool, what: str) -> None:
    if not ok:
        raise Invalid(f"must be {what}, not {type_name(value)}")


def looks_like_key_material(text: str) -> bool:
    return any(mark in text for mark in KEY_MATERIAL)


# ---------------------------------------------------------------------------- scalars
def boolean(value: Any) -> bool:
    _expect(value, isinstance(value, bool), "a boolean (true or false)")
    return value


MAX_INT = 2**53  # beyond this a count is a typo, and floats lose integer precision


def _finite(value: Any) -> float:
    """TOML integers are unbounded: 10**400 must be an error, not an OverflowError."""
    try:
        out = float(value)
    except OverflowError:
        raise Invalid("is far too large") from None
    if math.isnan(out) or math.isinf(out):
        raise Invalid("must be a finite number")
    return out


def integer(lo: int | None = None, hi: int | None = MAX_INT) -> Converter:
    def conv(value: Any) -> int:
        _expect(value, isinstance(value, int) and not isinstance(value, bool), "an integer")
        _bounds(value, lo, hi)
        return value
    return conv


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Converter:
    def conv(value: Any) -> float:
        _expect(value, isinstance(value, (int, float)) and not isinstance(value, bool), "a number")
        value = _finite(value)
        if lo_open and lo is not None and value <= lo:
            raise Invalid(f"must be greater than {lo:g}")
        _bounds(value, None if lo_open else lo, hi)
        return float(value)
    return conv


def percent(value: Any) -> float:
    _expect(value, isinstance(value, (int, float)) and not isinstance(value, bool),
            "a percentage (a number 0-100)")
    value = _finite(value)
    if not 0 <= value <= 100:
        raise Invalid("must be a percentage between 0 and 100")
    return float(value)


def _bounds(value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise Invalid(f"must be at least {_num(lo)}")
    if hi is not None and value > hi:
        raise Invalid(f"must be at most {_num(hi)}")


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


MAX_DURATION_S = 366 * 86400  # a longer interval, timeout or run length is a typo


def duration(*, positive: bool = True) -> Converter:
    """Seconds as a number or a string with a unit ("90m", "6h")."""
    def conv(value: Any) -> float:
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise Invalid(f"must be a duration (seconds, or a string like \"90m\"), "
                          f"not {type_name(value)}")
        if isinstance(value, int):
            value = _finite(value)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if positive and seconds <= 0:
            raise Invalid("must be greater than zero")
        if seconds > MAX_DURATION_S:
            raise Invalid("must be at most 366 days")
        return seconds
    return conv


def string(*, pattern: str | None = None, what: str = "", allow_empty: bool = False,
           max_len: int = 4096) -> Converter:
    rx = re.compile(pattern) if pattern else None

    def conv(value: Any) -> str:
        _expect(value, isinstance(value, str), "a string")
        if not value and not allow_empty:
            raise Invalid("must not be empty")
        if "\x00" in value:
            raise Invalid("must not contain a NUL character")
        if len(value) > max_len:
            raise Invalid(f"is too long (at most {max_len} characters)")
        if rx and not rx.fullmatch(value):
            raise Invalid(f"must be {what}" if what else "has an invalid form")
        return value
    return conv


def one_line(value: Any) -> str:
    """A single-line string: commands and patterns where a newline would change meaning."""
    text = string()(value)
    if "\n" in text or "\r" in text:
        raise Invalid("must be on one line")
    return text


def choice(options: tuple[str, ...]) -> Converter:
    def conv(value: Any) -> str:
        _expect(value, isinstance(value, str), "a string")
        if value not in options:
            # echo short words only (the typo "runpd"), never a long value that may be a secret
            got = f"; got {show_value(value)}" if len(value) <= 24 else ""
            raise Invalid(f"must be one of {', '.join(options)}{got}")
        return value
    return conv


def remote_path(value: Any) -> str:
    """A path on the box: absolute, since a remote ``~`` is never expanded (arguments are quoted)."""
    text = one_line(value)
    if not text.startswith("/"):
        raise Invalid("must be an absolute path on the box (starting with '/'; '~' is not expanded)")
    return text


def local_path(value: Any) -> Path:
    """A path on this machine; ``~`` is expanded."""
    text = one_line(value)
    if _URL_SCHEME.match(text):
        raise Invalid("must be a file path, not a URL")
    expanded = os.path.expanduser(text)  # never raises (Path.expanduser does on "~nobody")
    if expanded.startswith("~"):
        raise Invalid("starts with '~' but names no known home directory")
    return Path(expanded)


def secret_file(value: Any) -> Path:
    """Where a secret lives: a path, never the secret itself."""
    _expect(value, isinstance(value, str), "a file path")
    if looks_like_key_material(value) or "\n" in value:
        raise Invalid("must be a file path, not the secret itself")
    return local_path(value)


def env_name(value: Any) -> str:
    _expect(value, isinstance(value, str), "an environment variable name")
    if not _ENV_NAME.fullmatch(value):
        raise Invalid("must name an environment variable (letters, digits, '_'), "
                      "not hold the secret itself")
    return value


def glob_or_path(value: Any) -> str:
    """A marker: an absolute path or glob on the box, or a bare file-name pattern like ``*_DONE``."""
    text = one_line(value)
    if "/" in text and not text.startswith("/"):
        raise Invalid("must be an absolute path/glob, or a bare file-name pattern without '/'")
    return text


def fstype(value: Any) -> str:
    return string(pattern=r"[A-Za-z0-9_.-]+", what="a filesystem type name like ext4")(value)


# ---------------------------------------------------------------------------- containers
def array(item: Converter, *, unique: bool = False, min_len: int = 0) -> Converter:
    def conv(value: Any) -> tuple:
        _expect(value, isinstance(value, list), "an array")
        if len(value) < min_len:
            raise Invalid(f"must have at least {min_len} element{'s' if min_len > 1 else ''}")
        out, found = [], []
        for i, v in enumerate(value):
            try:
                converted = item(v)
            except Invalid as exc:
                found.extend(Invalid(e.message, (i,) + e.subpath) for e in exc.all())
                continue
            if unique and converted in out:
                found.append(Invalid("is listed twice", (i,)))
            out.append(converted)
        if found:
            raise Invalid.collect(found)
        return tuple(out)
    return conv


def str_table(key_pattern: str = r"[A-Za-z0-9_.-]+", value: Converter | None = None) -> Converter:
    value = value or string(allow_empty=True, max_len=256)
    rx = re.compile(key_pattern)

    def conv(raw: Any) -> FrozenMap:
        _expect(raw, isinstance(raw, dict), "a table")
        out, found = {}, []
        for k, v in raw.items():
            if not rx.fullmatch(k):
                found.append(Invalid("has an invalid key (letters, digits, '_', '.', '-')", (k,)))
                continue
            try:
                out[k] = value(v)
            except Invalid as exc:
                found.extend(Invalid(e.message, (k,) + e.subpath) for e in exc.all())
        if found:
            raise Invalid.collect(found)
        return FrozenMap(out)
    return conv
