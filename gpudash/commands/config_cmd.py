"""``gpudash config [check|path]``: validate the config (the default), or say where it lives.

``check`` prints every problem as ``file:line: key: what is wrong`` (one per line, the format
editors and CI annotate) and exits 1, or prints ``OK: N hosts`` and exits 0. Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_action", metavar="ACTION")
    sub.required = False  # plain `gpudash config` means `check`
    check = sub.add_parser("check", help="validate the config; print every problem as "
                           "file:line: key: what is wrong")
    _add_config_option(check)
    path = sub.add_parser("path", help="print where the config file is read from")
    _add_config_option(path)


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a global `gpudash --config X config check` must not be reset to None here.
    parser.add_argument("--config", type=Path, metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: the platform's user config dir)")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "config_action", None) or "check"
    config_path = getattr(args, "config", None)
    if action == "path":
        return _path(config_path)
    return check(config_path)


def check(config_path: Path | None, out=None) -> int:
    """Validate; print the result; 0 when valid, 1 when not."""
    from gpudash.config import ConfigError, default_config_path, load_config

    out = out or sys.stdout
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        n = len(exc.problems)
        print(f"{n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        return 1
    n = len(config.hosts)
    if config.path is None:
        print(f"OK: {n} host{'s' if n != 1 else ''} (no config file at {default_config_path()}: "
              "the embedded default, this machine)", file=out)
    else:
        print(f"OK: {n} host{'s' if n != 1 else ''} in {config.path}", file=out)
    return 0


def _path(config_path: Path | None) -> int:
    from gpudash.config import default_config_path

    path = Path(os.path.expanduser(config_path)) if config_path else default_config_path()
    state = "exists" if path.exists() else "does not exist; `gpudash init` writes a starter"
    print(f"{path} ({state})")
    return 0
