"""Host aliases from an OpenSSH client config (``~/.ssh/config``), following ``Include``.

Only what ``gpudash init`` needs: the concrete aliases a user can ``ssh`` to, in file order, with
the HostName/User/Port/IdentityFile written in their block (for display and for skipping code
forges). Patterns (``*``, ``?``), negations (``!host``) and ``Match`` blocks are not hosts.
Connecting is asyncssh's business: it reads the same file itself.

Read as ssh does: keywords are case-insensitive, ``Keyword=value`` is allowed, arguments may be
double-quoted; a relative ``Include`` is relative to ``~/.ssh``; globs are expanded; includes are
bounded in depth and never followed twice (a cycle is not an error, just the end of it).
"""

from __future__ import annotations

import glob
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

MAX_INCLUDE_DEPTH = 16  # OpenSSH's own limit
MAX_FILE_BYTES = 1 << 20
# Aliases that are code forges, not GPU boxes: skipped by `gpudash init`.
FORGE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "ssh.dev.azure.com",
                         "vs-ssh.visualstudio.com", "codeberg.org", "git.sr.ht",
                         "hf.co", "huggingface.co", "ssh.github.com", "altssh.gitlab.com"})


@dataclass
class SshHost:
    alias: str
    hostname: str | None = None
    user: str | None = None
    port: str | None = None
    identity_file: str | None = None
    source: Path | None = None
    line: int = 0

    @property
    def is_forge(self) -> bool:
        return self.alias.lower() in FORGE_HOSTS or (self.hostname or "").lower() in FORGE_HOSTS


@dataclass
class _State:
    hosts: list[SshHost] = field(default_factory=list)
    seen_aliases: set[str] = field(default_factory=set)
    visited: set[Path] = field(default_factory=set)
    current: list[SshHost] = field(default_factory=list)  # the block now being read
    problems: list[str] = field(default_factory=list)


def default_ssh_config_path() -> Path:
    return Path(os.path.expanduser("~/.ssh/config"))


def read_ssh_hosts(path: Path | str | None = None) -> tuple[list[SshHost], list[str]]:
    """Concrete Host aliases (first definition wins) and any problems met (unreadable files…).

    A missing top-level file gives ``([], [])``: having no SSH config is normal.
    """
    path = Path(os.path.expanduser(path)) if path is not None else default_ssh_config_path()
    state = _State()
    if path.exists():
        _read_file(path, state, depth=0, ssh_dir=path.parent)
    return state.hosts, state.problems


def read_ssh_aliases(path: Path | str | None = None) -> list[str]:
    """Just the alias names, in order."""
    return [h.alias for h in read_ssh_hosts(path)[0]]


def _read_file(path: Path, state: _State, depth: int, ssh_dir: Path) -> None:
    try:
        real = path.resolve()
    except OSError:
        real = path
    if real in state.visited:
        return
    state.visited.add(real)
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        state.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        return
    for lineno, raw in enumerate(text.splitlines(), 1):
        keyword, args = _split(raw)
        if keyword is None:
            continue
        if keyword == "host":
            state.current = []
            for alias in args:
                if _is_pattern(alias) or alias in state.seen_aliases:
                    continue
                state.seen_aliases.add(alias)
                host = SshHost(alias=alias, source=path, line=lineno)
                state.hosts.append(host)
                state.current.append(host)
        elif keyword == "match":
            state.current = []
        elif keyword == "include":
            if depth + 1 > MAX_INCLUDE_DEPTH:
                state.problems.append(f"{path}:{lineno}: Include nested too deep; not followed")
                continue
            saved = state.current
            for pattern in args:
                for inc in _expand_include(pattern, ssh_dir):
                    _read_file(inc, state, depth + 1, ssh_dir)
            state.current = saved  # an included file's blocks end with it
        elif keyword in ("hostname", "user", "port", "identityfile") and args:
            attr = "identity_file" if keyword == "identityfile" else keyword
            for host in state.current:
                if getattr(host, attr) is None:  # first value wins, as in ssh
                    setattr(host, attr, args[0])


def _split(line: str) -> tuple[str | None, list[str]]:
    """``Keyword value…`` or ``Keyword=value``; comments and blank lines give (None, [])."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None, []
    head, sep, rest = stripped.partition("=") if _eq_first(stripped) else (stripped, "", "")
    if sep:
        keyword, args_text = head.strip(), rest.strip()
    else:
        parts = stripped.split(None, 1)
        keyword, args_text = parts[0], (parts[1] if len(parts) > 1 else "")
    try:
        args = shlex.split(args_text, comments=True, posix=True)
    except ValueError:  # an unbalanced quote: take the words as they are
        args = args_text.split()
    return keyword.lower(), args


def _eq_first(text: str) -> bool:
    """True when ``=`` separates the keyword (before any whitespace-separated argument)."""
    eq = text.find("=")
    if eq < 0:
        return False
    ws = next((i for i, ch in enumerate(text) if ch.isspace()), len(text))
    return eq < ws or text[:eq].strip().isalpha()


def _is_pattern(alias: str) -> bool:
    return alias.startswith("!") or "*" in alias or "?" in alias


def _expand_include(pattern: str, ssh_dir: Path) -> list[Path]:
    expanded = os.path.expanduser(pattern)
    if not os.path.isabs(expanded):
        expanded = str(ssh_dir / expanded)
    return [Path(p) for p in sorted(glob.glob(expanded)) if os.path.isfile(p)]
