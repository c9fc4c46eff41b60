"""`gpudash [watch] [HOST...]`: the TUI on the named hosts, the config's, or this machine."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hosts", nargs="*", metavar="HOST",
                   help="ssh alias, user@host:port, or `local`; default: the config's hosts")


def run(args) -> int:
    from gpudash.commands.hosts import build_fleet
    from gpudash.ui.run import run_tui

    built = build_fleet(args)
    if isinstance(built, int):
        return built
    config, fleet = built
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
