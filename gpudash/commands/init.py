"""``gpudash init``: write a starter config from the Host aliases in ``~/.ssh/config``.

The TOML body is written by tomli-w (so it is valid by construction and is checked with the real
loader before it touches the disk); a comment header, prepended as text, points to the reference
and lists every default, commented out. The file is created 0600 in a 0700 directory. An existing
file is never overwritten without ``--force``, and with it the old file is kept as
``config.toml.bak-YYYYmmdd-HHMMSS``: init may only replace what the user agreed to replace.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path

DOCS = "docs/config.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace an existing config (the old one is kept as .bak-TIMESTAMP)")
    parser.add_argument("--config", type=Path, metavar="PATH", default=argparse.SUPPRESS,
                        help="where to write (default: the platform's user config dir)")
    parser.add_argument("--ssh-config", type=Path, metavar="PATH", default=None,
                        help="read Host aliases from this file (default: ~/.ssh/config)")


def run(args: argparse.Namespace) -> int:
    from gpudash.config import ConfigError, default_config_path, parse_config
    from gpudash.ssh_config import default_ssh_config_path, read_ssh_hosts

    path = Path(os.path.expanduser(getattr(args, "config", None) or default_config_path()))
    force = bool(getattr(args, "force", False))
    ssh_path = getattr(args, "ssh_config", None)
    if path.exists() and not force:
        print(f"{path} exists; not overwriting it. Use --force to replace it (the old file is "
              "kept as a .bak-TIMESTAMP copy).", file=sys.stderr)
        return 1
    if ssh_path is not None and not Path(os.path.expanduser(ssh_path)).is_file():
        print(f"{ssh_path}: no such SSH config file", file=sys.stderr)
        return 1
    ssh_path = Path(os.path.expanduser(ssh_path)) if ssh_path else default_ssh_config_path()
    ssh_hosts, ssh_problems = read_ssh_hosts(ssh_path)
    for problem in ssh_problems:
        print(f"warning: {problem}", file=sys.stderr)

    hosts, skipped = starter_hosts(ssh_hosts)
    text = render(hosts, ssh_path)
    try:  # the file must pass the real loader: check before touching the disk
        parse_config(text, file=str(path))
    except ConfigError as exc:
        print(f"internal error: the starter config does not validate:\n{exc}", file=sys.stderr)
        return 1

    backup = _backup(path) if path.exists() else None
    _write_private(path, text)
    names = ", ".join(h["name"] for h in hosts)
    print(f"Wrote {path} with {len(hosts)} host{'s' if len(hosts) != 1 else ''}: {names}")
    if backup:
        print(f"The previous config is kept as {backup}")
    for alias, why in skipped:
        print(f"  skipped {alias!r}: {why}")
    print(f"Next: edit it (reference: {DOCS}), then run `gpudash config check`.")
    return 0


def starter_hosts(ssh_hosts) -> tuple[list[dict], list[tuple[str, str]]]:
    """``[[host]]`` tables for the usable aliases, and (alias, why) for the ones skipped.

    With no usable alias, the one host is this machine (local transport), like the embedded
    default, so the written file is still a working config.
    """
    from gpudash.config import parse_target
    from gpudash.config.schema import HOST_NAME_RE
    from gpudash.sanitize import clean_field

    hosts: list[dict] = []
    skipped: list[tuple[str, str]] = []
    used: set[str] = set()
    for h in ssh_hosts:
        alias = clean_field(h.alias, max_len=80)
        if h.is_forge:
            skipped.append((alias, "a code forge, not a GPU box"))
            continue
        try:
            parse_target(h.alias)
        except ValueError as exc:
            skipped.append((alias, f"cannot be used as a target: it {exc}"))
            continue
        name = _unique(_as_name(h.alias, HOST_NAME_RE), used)
        used.add(name)
        hosts.append({"name": name, "target": h.alias, "mounts": ["/"]})
    if not hosts:
        hosts.append({"name": "localhost", "transport": "local", "mounts": ["/"]})
    return hosts, skipped


def _as_name(alias: str, pattern: str) -> str:
    if re.fullmatch(pattern, alias):
        return alias
    name = re.sub(r"[^A-Za-z0-9._@:+-]", "-", alias).lstrip("._@:+-")[:64]
    return name or "host"


def _unique(name: str, used: set[str]) -> str:
    out, n = name, 2
    while out in used:
        suffix = f"-{n}"
        out, n = name[: 64 - len(suffix)] + suffix, n + 1
    return out


def render(hosts: list[dict], ssh_path: Path) -> str:
    """The header (comments) + the TOML body written by tomli-w."""
    import tomli_w

    return header(ssh_path) + "\n" + tomli_w.dumps({"host": hosts})


def header(ssh_path: Path) -> str:
    from gpudash.config import Thresholds, Timing

    when = time.strftime("%Y-%m-%d %H:%M")
    lines = [
        f"# gpudash config, written by `gpudash init` on {when} from {ssh_path}.",
        f"# Every key is documented in {DOCS}. Check this file with `gpudash config check`.",
        "# It is yours now: gpudash never rewrites it (`gpudash init --force` keeps a .bak copy).",
        "#",
        "# Useful per-host keys (put them under a [[host]] below):",
        '#   log = "/workspace/runs/*/train.log"   # the run\'s own log; a glob: newest wins',
        '#   tmux_session = "train"                # or pgrep / slurm_user / slurm_job / ray_job',
        '#   mounts = ["/", "/workspace"]',
        '#   checkpoint_dir = "/workspace/ckpt"',
        '#   expected_duration = "6h"',
        "#   [host.teardown]",
        '#   artifacts_dir = "/workspace/out"',
        "#   expected_count = 3",
        '#   local_dir = "~/results/run1"',
        '#   preset = "runpod"                      # runpod vastai lambda autodl paperspace ssh slurm',
        "#",
        "# The defaults, for reference (uncomment to change; a host may override any of them):",
        "# [defaults]",
    ]
    lines += [f"# {f.name} = {_num(getattr(Timing(), f.name))}" for f in fields(Timing)]
    lines.append("# [defaults.thresholds]")
    lines += [f"# {f.name} = {_num(getattr(Thresholds(), f.name))}" for f in fields(Thresholds)]
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    shutil.copy2(path, backup)  # a copy: the original stays in place until the new one is whole
    return backup


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600, creating parent dirs 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
