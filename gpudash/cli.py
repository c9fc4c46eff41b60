"""gpudash's command line: subcommands dispatch lazily so `gpudash --help` stays instant.

Only argparse and the standard library are imported here; each subcommand's module (and with it
asyncssh or Textual) is imported when that subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module under gpudash.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "watch": ("watch", "the TUI on SSH aliases or user@host:port (no config needed)"),
    "demo": ("demo", "the TUI on a simulated fleet replaying real recorded traces (offline)"),
    "status": ("status", "one probe round per host, one line each; exit code = worst host"),
    "triage": ("triage", "classify a training log's failure and explain it"),
    "wait": ("wait", "wait for a run to finish (0 done, 2 failed, 124 timeout)"),
    "teardown": ("teardown", "the teardown checklist for a host, without the TUI"),
    "restart": ("restart", "safely restart a run: probe it is gone, confirm, relaunch detached, check"),
    "init": ("init", "write a starter config from the hosts in ~/.ssh/config"),
    "config": ("config_cmd", "validate the config: `gpudash config check`"),
}


def _add_common(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    # SUPPRESS on subcommands: `gpudash --config X status` must keep X.
    p.add_argument("--config", metavar="PATH", help="config file (default: the user config dir)",
                   **({} if top else {"default": argparse.SUPPRESS}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpudash",
        description="Watch GPU training boxes over SSH: jobs, GPUs, disks, logs, alerts, triage, "
        "and a safe teardown. With no arguments: the configured hosts, or this machine.",
    )
    from gpudash import __version__

    parser.add_argument("--version", action="version", version=f"gpudash {__version__}")
    _add_common(parser, top=True)
    parser.add_argument(
        "--prometheus", metavar="URL", help="also read hosts from this Prometheus server"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        # conflict_handler: a command module may define its own --config.
        p = sub.add_parser(name, help=help_text, description=help_text, conflict_handler="resolve")
        _add_common(p)
        p.set_defaults(_module=module)
        adder = _lazy_adder(module)
        if adder is not None:
            adder(p)
    return parser


def _lazy_adder(module: str):
    """Each command module exposes `add_arguments(parser)`; it must import nothing heavy at the top."""
    try:
        mod = importlib.import_module(f"gpudash.commands.{module}")
    except ImportError:
        return None
    return getattr(mod, "add_arguments", None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `gpudash HOST...` is `gpudash watch HOST...` when HOST is no subcommand name.
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS and _is_positional_start(argv, first):
        argv.insert(argv.index(first), "watch")
    parser = build_parser()
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None) or "watch"
    if module == "watch" and not hasattr(args, "hosts"):
        args.hosts = []
    mod = importlib.import_module(f"gpudash.commands.{module}")
    try:
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gpudash status --json | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _is_positional_start(argv: list[str], first: str) -> bool:
    # `--config PATH` takes a value: PATH is not a host.
    i = argv.index(first)
    return not (i > 0 and argv[i - 1] in ("--config", "--prometheus"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
