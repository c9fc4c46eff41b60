"""`gpudash demo`: the TUI on a simulated fleet replaying real recorded traces through the same
transport → probe → parser → health → triage pipeline. Offline: no GPU, no SSH."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speed", type=float, default=1.0,
                   help="time compression on top of the demo's own (default 1.0)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the simulation")
    p.add_argument("--hosts", type=int, default=None, metavar="N",
                   help="instead: a Prometheus-like fleet of N synthetic hosts x 8 GPUs")


def run(args) -> int:
    from gpudash.commands.watch import teardown_for
    from gpudash.demo.fleet import demo_fleet
    from gpudash.ui.run import run_tui

    if args.hosts:
        from gpudash.demo.cluster import cluster_fleet

        return run_tui(cluster_fleet(max(1, args.hosts), seed=args.seed), config=None)
    fleet = demo_fleet(speed=args.speed, seed=args.seed)
    # No history for the demo: its simulated boxes must not enter the user's store.
    return run_tui(fleet, config=None, teardown=teardown_for(fleet, None))
