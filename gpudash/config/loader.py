"""Reading a config file: bytes → TOML → ``Config``, or ``ConfigError`` with file:line problems."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from .build import build_config
from .errors import ConfigError, Problem
from .line_index import LineIndex
from .types import Config

MAX_CONFIG_BYTES = 1 << 20  # a config is hand-written; anything bigger is a mistake
_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def default_config_path() -> Path:
    """``gpudash/config.toml`` in the platform's user config dir (XDG on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("gpudash", appauthor=False)) / "config.toml"


def load_config(path: Path | str | None = None) -> Config:
    """The config at ``path`` (default: ``default_config_path()``).

    With no ``path`` and no file at the default place: ``Config.default_local()`` (watch this
    machine). A ``path`` given explicitly must exist. Raises ``ConfigError`` listing every problem.
    """
    explicit = path is not None
    path = Path(os.path.expanduser(path)) if explicit else default_config_path()
    if not explicit and not path.exists():
        return Config.default_local()
    file = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([Problem(file, 0, "", "no such config file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(file, 0, "", f"cannot read: {exc.strerror or exc}")]) from None
    return parse_config(data, file=file, path=path)


def parse_config(data: bytes | str, *, file: str = "<config>", path: Path | None = None) -> Config:
    """A config from its text (what ``load_config`` does after reading the file)."""
    if isinstance(data, bytes):
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError([Problem(file, 0, "", f"is larger than {MAX_CONFIG_BYTES} bytes: "
                                       "not a config file?")])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError([Problem(file, line, "", "is not valid UTF-8 text")]) from None
    else:
        text = data
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(file, text, str(exc))]) from None
    return build_config(parsed, LineIndex.build(text), file, path)


def _syntax_problem(file: str, text: str, message: str) -> Problem:
    """tomllib puts the position in its message: "Invalid value (at line 3, column 7)"."""
    m = _POSITION.search(message)
    if m:
        return Problem(file, int(m.group(1)), "",
                       f"TOML syntax error: {message[: m.start()]} (column {m.group(2)})")
    m = _AT_END.search(message)
    body = message[: m.start()] if m else message
    last = text.count("\n") + (0 if text.endswith("\n") else 1)
    return Problem(file, max(last, 1), "", f"TOML syntax error at the end of the file: {body}")
