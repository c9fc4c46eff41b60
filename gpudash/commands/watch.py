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
    return run_tui(fleet, config=config, history=True, teardown=teardown_for(fleet, config))


def teardown_for(fleet, config):
    """The TUI's `t`: the same checklist engine as `gpudash teardown`, over the host's own
    transport, with the host's `[host.teardown]` settings."""

    async def checklist(host: str):
        from gpudash.teardown.runner import run_checks
        from gpudash.teardown.settings import settings_from

        watcher = fleet.watchers[host]
        host_config = None
        if config is not None and hasattr(config, "host"):
            try:
                host_config = config.host(host)
            except (KeyError, LookupError):
                host_config = None
        return await run_checks(watcher.transport, settings_from(host, host_config))

    return checklist
