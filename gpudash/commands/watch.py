"""`gpudash [watch] [HOST...]`: the TUI on the named hosts, the config's, or this machine."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hosts", nargs="*", metavar="HOST",
                   help="ssh alias, user@host:port, or `local`; default: the config's hosts")


def run(args) -> int:
    from gpudash.commands.hosts import load_config_or_exit, load_specs

    config = load_config_or_exit(args)
    if isinstance(config, int):
        return config
    specs = load_specs(args)
    if isinstance(specs, int):
        return specs
    import sys

    from gpudash.ui.run import run_tui
    from gpudash.watch.fleet import Fleet
    from gpudash.watch.prom_fleet import prometheus_fleet_from_args

    try:
        fleet = prometheus_fleet_from_args(args, config, specs) or Fleet(specs)
    except ValueError as exc:
        print(f"gpudash: {exc}", file=sys.stderr)
        return 2
    return run_tui(fleet, config=config)
