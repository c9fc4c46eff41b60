"""Which hosts a command watches: the ones named on the command line, else the config's, else
this machine (the embedded default). Shared by `watch`, `status`, `wait`, `teardown`."""

from __future__ import annotations

import sys

from gpudash.watch.spec import WatchSpec

LOCAL_NAMES = ("local", "localhost")


def spec_for_target(target: str) -> WatchSpec:
    """A host straight from the command line: an ~/.ssh/config alias, user@host:port, or local."""
    if target in LOCAL_NAMES:
        return WatchSpec(name="localhost", target="localhost", transport="local", discover=True)
    return WatchSpec(name=target, target=target, transport="ssh", discover=True)


def load_specs(args, config=None) -> list[WatchSpec] | int:
    """Specs for the command, or an exit code (2) after printing config problems."""
    from gpudash.watch.spec import spec_from_host_config

    if config is None:
        config = load_config_or_exit(args)
    if isinstance(config, int):
        return config
    hosts = list(getattr(args, "hosts", None) or [])
    if config is None:
        return [spec_for_target(h) for h in hosts] or [spec_for_target("localhost")]
    if hosts:
        from gpudash.config import ConfigError

        try:
            selected = config.select(hosts)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        return [spec_from_host_config(h) for h in selected]
    return [spec_from_host_config(h) for h in config.hosts]


def load_config_or_exit(args):
    """The parsed config (None when there is none), or 2 after printing every problem."""
    from pathlib import Path

    try:
        from gpudash.config import ConfigError, load_config
    except ImportError:  # config module not present: no config support
        return None
    path = getattr(args, "config", None)
    try:
        return load_config(Path(path) if path else None)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2


def build_fleet(args):
    """(config, fleet) for `watch` and `status`: the named hosts, the config's, or this machine,
    plus the hosts Prometheus knows when `--prometheus`/`[prometheus]` is set; or an exit code
    (2) after printing what is wrong."""
    from gpudash.watch.fleet import Fleet
    from gpudash.watch.prom_fleet import prometheus_fleet_from_args

    config = load_config_or_exit(args)
    if isinstance(config, int):
        return config
    specs = load_specs(args, config)
    if isinstance(specs, int):
        return specs
    try:
        return config, prometheus_fleet_from_args(args, config, specs) or Fleet(specs)
    except ValueError as exc:
        print(f"gpudash: {exc}", file=sys.stderr)
        return 2
