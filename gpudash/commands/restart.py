"""`gpudash restart HOST`: the safe restart of a run, never a blind retry.

It probes first (is the job really gone? its marker absent? not requeued by Slurm?), asks the
user to type the host name, launches the configured `resume_command` detached, counts the
restart, and checks the relaunched job after ~60 s and ~2 min. It refuses — and says why — when
the host is flapping or the same failure class came back after the previous retry.

Exit: 0 healthy after the checks, 1 refused/suspect/died/launch failed, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("host", metavar="HOST", help="a host of the config with a resume_command")
    p.add_argument("--confirm", metavar="HOST",
                   help="the host name, typed ahead (for scripts); without it you are asked")


def run(args) -> int:
    import asyncio

    from gpudash.commands.hosts import load_config_or_exit

    config = load_config_or_exit(args)
    if isinstance(config, int):
        return config
    try:
        hc = config.host(args.host)
    except KeyError:
        print(f"gpudash restart: {args.host} is not in the config (a restart needs its "
              "resume_command)", file=sys.stderr)
        return 2
    if not getattr(hc, "resume_command", None):
        print(f"gpudash restart: {args.host} has no resume_command in the config", file=sys.stderr)
        return 2
    return asyncio.run(_restart(args, config, hc))


async def _restart(args, config, hc) -> int:
    import asyncio

    from gpudash.restart import Restarter, RestartPolicy
    from gpudash.watch.fleet import Fleet
    from gpudash.watch.spec import spec_from_host_config

    fleet = Fleet([spec_from_host_config(hc)])
    watcher = fleet.watchers[hc.name]
    try:
        view = await watcher.full_round()
        cls = getattr(view.triage, "cls", None)
        print(f"{hc.name}: {view.state.value}; last failure class: {cls or 'unknown'}")
        typed = args.confirm
        if typed is None:
            print(f"This runs `{hc.resume_command}` on {hc.name}, detached. "
                  f"Type the host name ({hc.name}) to confirm: ", end="", file=sys.stderr)
            sys.stderr.flush()
            typed = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if typed != hc.name:
            print("not restarting: the typed name does not match", file=sys.stderr)
            return 1
        from gpudash.restart import load_ledger, save_ledger

        ledger = load_ledger(hc.name)
        restarter = Restarter(watcher.transport, RestartPolicy.from_host_config(hc), ledger)
        report = await restarter.restart(cls, confirmed=True)
        save_ledger(hc.name, restarter.ledger)
    finally:
        await fleet.close()
    print(f"{report.status}: {report.reason}")
    for line in report.evidence:
        print(f"  {line}")
    print(f"restarts of this job so far: {restarter.ledger.count}")
    return 0 if report.status == "healthy" else 1
