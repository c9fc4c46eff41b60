"""Config problems: every one carries `file:line: key: what is wrong`.

A config is checked as a whole and every problem is reported at once, so a user fixes the file in
one pass instead of one error per run. Messages never contain secret values: a value is echoed
only for short enumerations (a preset, a sink name) and always through `show_value`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpudash.sanitize import clean_field


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a config. ``line`` is 1-based; 0 means the file as a whole."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:"
        if self.key:
            return f"{where} {self.key}: {self.message}"
        return f"{where} {self.message}"


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` lists every reason, sorted by line."""

    def __init__(self, problems: list[Problem]):
        self.problems: list[Problem] = sorted(problems, key=lambda p: (p.file, p.line, p.key, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class Invalid(Exception):
    """Raised by a converter for one value; ``subpath`` points inside it (an array index…)."""

    def __init__(self, message: str, subpath: tuple = (), more: "list[Invalid] | None" = None):
        super().__init__(message)
        self.message = message
        self.subpath = subpath
        self.more = more or []  # further problems in the same value (other array elements…)

    def all(self) -> "list[Invalid]":
        return [Invalid(self.message, self.subpath)] + [m for x in self.more for m in x.all()]

    @staticmethod
    def collect(found: "list[Invalid]") -> "Invalid":
        return Invalid(found[0].message, found[0].subpath, found[1:])


def show_value(value: object, limit: int = 40) -> str:
    """A short, terminal-safe rendering of a NON-secret value for an error message."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return clean_field(text, max_len=limit + 8)


def show_key(path: tuple) -> str:
    """A key path as a user reads it: ``host[a100].teardown.preset``, ``mounts[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, HostRef):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + clean_field(str(part), max_len=64)
    return out


@dataclass(frozen=True)
class HostRef:
    """A host's position in a key path: shown by name when it has one, else as ``#N``."""

    index: int
    name: str | None = None

    def __str__(self) -> str:
        return clean_field(self.name, max_len=64) if self.name else f"#{self.index + 1}"
