"""`gpudash teardown HOST`: the teardown checklist without the TUI.

One line per check (green/red/unknown) with its evidence; exit 0 only when every check is green,
else 1 with what is missing (a missing file's name, an unset setting). Flags override the
config's ``[host.teardown]`` one by one, for ad-hoc use and scripts. ``--stop`` runs the
platform's meter-stop only after an all-green checklist AND the host name typed on stdin; the
outcome is recorded. Nothing is ever stopped or deleted otherwise.
"""

from __future__ import annotations

import argparse
import sys

PRESET_NAMES = ("runpod", "vastai", "lambda", "autodl", "paperspace", "ssh", "slurm")
MARK = {"green": "[ ok ]", "red": "[FAIL]", "unknown": "[ ?? ]"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("host", metavar="HOST", help="a configured host, an ssh alias, "
                   "user@host:port, or `local`")
    p.add_argument("--json", action="store_true", help="the checklist as JSON")
    p.add_argument("--artifacts", metavar="REMOTE_DIR", help="the durable artifacts dir on the box")
    p.add_argument("--glob", metavar="PATTERN", help="which files in it count (default *)")
    p.add_argument("--expect", type=int, metavar="N", help="how many artifacts must be there")
    p.add_argument("--local", metavar="LOCAL_DIR", help="the local pull dir to compare")
    p.add_argument("--verify", metavar="CMD", help="a local command that loads each artifact "
                   "(prints OK N/N); runs in LOCAL_DIR")
    p.add_argument("--verify-timeout", type=float, metavar="S", help="bound for --verify "
                   "(default 600)")
    p.add_argument("--marker", action="append", metavar="PATH", help="a completion marker file "
                   "on the box (repeatable; replaces the config's markers)")
    p.add_argument("--preset", choices=PRESET_NAMES, help="the platform (its stop command, "
                   "what survives it, its warnings)")
    p.add_argument("--instance-id", metavar="ID", help="the platform's instance/pod id")
    p.add_argument("--job-id", metavar="ID", help="the Slurm job id (for --preset slurm)")
    p.add_argument("--sha256", action="store_true", help="also compare sha256 of every file "
                   "(reads every byte on both sides)")
    p.add_argument("--stop", action="store_true", help="when every check is green, run the "
                   "stop command after you type the host name")


def run(args) -> int:
    import asyncio

    from gpudash.commands.hosts import load_config_or_exit, spec_for_target

    config = load_config_or_exit(args)
    if isinstance(config, int):
        return config
    host_config = None
    if config is not None:
        host_config = next((h for h in config.hosts if h.name == args.host), None)
    if host_config is not None:
        from gpudash.watch.spec import spec_from_host_config

        spec = spec_from_host_config(host_config)
    else:
        spec = spec_for_target(args.host)
    from gpudash.teardown.settings import settings_from

    settings = settings_from(spec.name, host_config, {
        "artifacts": args.artifacts, "glob": args.glob, "expect": args.expect,
        "local": args.local, "verify": args.verify, "verify_timeout": args.verify_timeout,
        "marker": args.marker, "preset": args.preset, "instance_id": args.instance_id,
        "job_id": args.job_id,
    })
    return asyncio.run(_main(args, spec, settings))


async def _main(args, spec, settings) -> int:
    from gpudash.teardown.runner import run_checks, transport_for

    transport = transport_for(spec)
    try:
        checklist = await run_checks(transport, settings, sha256=args.sha256)
        if args.json and not args.stop:
            import json

            print(json.dumps(checklist.to_json(), indent=2, ensure_ascii=False))
            return 0 if checklist.all_green else 1
        print_checklist(checklist)
        if not args.stop:
            return 0 if checklist.all_green else 1
        return await _stop(checklist, transport, as_json=args.json)
    finally:
        await transport.close()


def print_checklist(cl, out=None) -> None:
    out = out or sys.stdout
    bad = [c for c in cl.checks if not c.green]
    head = "READY" if not bad else f"NOT READY ({len(bad)} of {len(cl.checks)} checks not green)"
    print(f"teardown {cl.host}: {head}", file=out)
    for i, c in enumerate(cl.checks, 1):
        tail = f" — {c.missing}" if c.missing else ""
        print(f" {i} {MARK.get(c.state, c.state)} {c.title}{tail}", file=out)
        for line in c.evidence:
            print(f"       {line}", file=out)
    if bad:
        print("missing:", file=out)
        for line in cl.missing():
            print(f"  {line}", file=out)
    elif cl.stop.runnable:
        print(f"every check is green. To stop the meter: gpudash teardown {cl.host} --stop "
              f"(runs `{cl.stop.command}` {cl.stop.where_text} after you type the host name)",
              file=out)
    else:
        print(f"every check is green: {cl.stop.verb} {cl.stop.where_text}", file=out)
    out.flush()


async def _stop(checklist, transport, *, as_json: bool) -> int:
    import asyncio

    from gpudash.teardown.stop import REFUSED, execute_stop, refusal

    why = refusal(checklist, checklist.host)  # everything but the typed name
    if why is not None:
        print(f"not stopping: {why}", file=sys.stderr)
        return 1
    plan = checklist.stop
    print(f"\nThis runs `{plan.command}` {plan.where_text}.", file=sys.stderr)
    print(f"What survives: {plan.survives}. Reversible: {'yes' if plan.reversible else 'NO'}.",
          file=sys.stderr)
    print(f"Type the host name ({checklist.host}) to confirm: ", end="", file=sys.stderr)
    sys.stderr.flush()
    typed = await asyncio.to_thread(sys.stdin.readline)
    _record_in_store()
    outcome = await execute_stop(checklist, typed.rstrip("\n"), transport=transport)
    if as_json:
        import json

        print(json.dumps({"checklist": checklist.to_json(), "stop": outcome.to_json()},
                         indent=2, ensure_ascii=False))
    else:
        print(f"stop: {outcome.status}: {outcome.message}")
        for line in outcome.output:
            print(f"  {line}")
    if outcome.status == REFUSED:
        return 1
    return 0 if outcome.status == "done" else 1


def _record_in_store() -> None:
    """Teardown outcomes go into the history store beside the alerts (the JSON-lines journal
    stays the fallback when the store cannot be opened)."""
    from gpudash.teardown.stop import set_recorder

    try:
        from gpudash.store.store import Store

        store = Store.open()
    except Exception as exc:  # a broken store must not block a confirmed stop
        print(f"gpudash: history store unavailable ({exc}); recording to the journal file",
              file=sys.stderr)
        return
    set_recorder(lambda r: store.record_teardown(r["host"], r, r["at"]))
