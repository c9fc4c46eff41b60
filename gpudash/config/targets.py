"""SSH targets: an alias from ~/.ssh/config, ``host``, ``user@host``, ``user@host:port``, ``[v6]:port``.

A target ends up as an argument to an SSH library (or, for a user copying a command, to ``ssh``),
so it is checked strictly: no whitespace, no shell metacharacters, nothing that starts with ``-``
(``ssh -oProxyCommand=…`` is the classic option injection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOCAL_NAMES = ("local", "localhost")

_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")
_V6 = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._-]+)?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@+-]*")


@dataclass(frozen=True)
class Target:
    """Where an SSH host is. ``user``/``port`` are None when the SSH config (or default) decides."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and self.port is not None else self.host
        out = f"{self.user}@{host}" if self.user else host
        return f"{out}:{self.port}" if self.port is not None else out


def parse_target(text: str) -> Target:
    """``Target`` from its text form; ``ValueError`` with a plain message when it is malformed."""
    if not isinstance(text, str):
        raise ValueError("must be a string")
    if not text:
        raise ValueError("must not be empty")
    if any(c.isspace() for c in text):
        raise ValueError("must not contain whitespace")
    if text.startswith("-"):
        raise ValueError("must not start with '-' (ssh would read it as an option)")
    user = None
    rest = text
    if "@" in text:
        user, rest = text.rsplit("@", 1)
        if not _USER.fullmatch(user):
            raise ValueError("has an invalid user name before '@'")
    port: int | None = None
    if rest.startswith("["):  # [v6] or [v6]:port
        close = rest.find("]")
        if close < 0:
            raise ValueError("has an unclosed '[' around an IPv6 address")
        host, after = rest[1:close], rest[close + 1 :]
        if not _V6.fullmatch(host):
            raise ValueError("has an invalid IPv6 address in brackets")
        if after:
            if not after.startswith(":"):
                raise ValueError("has text after ']' that is not ':PORT'")
            port = _parse_port(after[1:])
    elif rest.count(":") > 1:  # a bare IPv6 address, no port
        if not _V6.fullmatch(rest):
            raise ValueError("is not a host, user@host or user@host:port")
        host = rest
    else:
        host, sep, port_text = rest.partition(":")
        if sep:
            port = _parse_port(port_text)
        if not _HOST.fullmatch(host):
            raise ValueError("has an invalid host name (letters, digits, '.', '_', '+', '-')")
    return Target(host=host, user=user, port=port)


def _parse_port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise ValueError("has an invalid port (1-65535)")
    return int(text)


def is_local_target(text: str) -> bool:
    """``local`` / ``localhost`` on the command line mean this machine, without SSH."""
    return text in LOCAL_NAMES
