"""`gpudash status [HOST...] [--json]`: one probe round per host, one line per host even when
nothing changed; the exit code is the worst host's (Nagios: 2 CRIT, 1 WARN, 3 UNKNOWN/STALE, 0 OK).
Made for tmux status bars, cron and scripts."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hosts", nargs="*", metavar="HOST",
                   help="ssh alias, user@host:port, or `local`; default: the config's hosts")
    p.add_argument("--json", action="store_true", help="full parsed data as JSON")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="overall deadline in seconds (default 30)")
    p.add_argument("--no-history", action="store_true",
                   help="do not read or write the history store (and send no alerts)")


def run(args) -> int:
    import asyncio

    from gpudash.commands.history import attach_history, close_history
    from gpudash.commands.hosts import build_fleet

    built = build_fleet(args)
    if isinstance(built, int):
        return built
    config, fleet = built

    async def one_round():
        # A cron `status` shares the store with a TUI: alerts are claimed there, never sent twice.
        store, notifier = attach_history(fleet, config, use_store=not args.no_history)
        try:
            return await fleet.one_round(deadline=args.timeout)
        finally:
            await close_history(store, notifier)

    views = asyncio.run(one_round())
    if args.json:
        import json

        print(json.dumps([view_to_json(v) for v in views], indent=2))
    else:
        for v in views:
            print(status_line(v))
    from gpudash.model import exit_code_for

    sys.stdout.flush()
    return exit_code_for(v.state for v in views)


def status_line(view) -> str:
    """`host STATE gpu … | disk … | job … | log … | age` — plain text, sanitised fields only."""
    from gpudash import format as f

    s = view.snapshot
    now = s.taken_at
    parts = [f"{view.name} {view.state.value}"]
    if view.reason is not None:
        since = s.link.since if not s.link.ok else None
        reason = view.reason.value + (f" since {f.clock(since)}" if since else "")
        parts[0] += f" ({reason})"
    if s.gpus:
        gpus = " ".join(
            f"{g.index}:{f.pct(g.util_pct)} {f.gib_from_mib(g.mem_used_mib)}/{f.gib_from_mib(g.mem_total_mib)}G"
            for g in s.gpus[:8]
        )
        parts.append(f"gpu {gpus}" + (f" +{len(s.gpus) - 8}" if len(s.gpus) > 8 else ""))
    elif s.gpu_error is not None:
        parts.append(f"gpu {s.gpu_error.reason.value}")
    if s.disks:
        worst_b = max(s.disks, key=lambda d: d.bytes_pct or 0)
        worst_i = max(s.disks, key=lambda d: d.inodes_pct or 0)
        parts.append(f"disk {worst_b.mount} {f.pct(worst_b.bytes_pct)} inodes {worst_i.mount} {f.pct(worst_i.inodes_pct)}")
    if view.job_summary:
        parts.append(f"job {view.job_summary}")
    if s.progress is not None:
        parts.append(s.progress.label())
    problems = [c for c in view.problems if c.key != "link"][:2]
    if problems:
        parts.append("; ".join(c.summary for c in problems))
    if view.triage is not None and getattr(view.triage, "cls", "none") not in ("none",):
        parts.append(f"triage {view.triage.cls}")
    if s.log_lines:
        parts.append(f"log: {s.log_lines[-1][:80]}")
    seen = s.link.last_ok
    parts.append(f"seen {f.age(now - seen)} ago" if seen else "never seen")
    return " | ".join(parts)


def view_to_json(view) -> dict:
    from gpudash.format import to_jsonable

    s = view.snapshot
    out = {
        "host": view.name,
        "state": view.state.value,
        "reason": view.reason.value if view.reason else None,
        "reason_text": view.reason.advice if view.reason else None,
        "link": to_jsonable(s.link),
        "gpus": to_jsonable(s.gpus),
        "gpu_health": to_jsonable(s.gpu_health),
        "gpu_error": to_jsonable(s.gpu_error),
        "compute_apps": to_jsonable(s.apps),
        "disks": to_jsonable(s.disks),
        "disk_errors": to_jsonable(s.disk_errors),
        "memory": to_jsonable(s.memory),
        "jobs": {
            "summary": view.job_summary,
            "processes": to_jsonable(s.processes),
            "tmux": to_jsonable(s.tmux),
            "slurm": to_jsonable(s.slurm),
            "ray": to_jsonable(s.ray),
        },
        "progress": to_jsonable(s.progress),
        "log": {"path": s.log_path, "tail": list(s.log_lines[-20:]), "error": s.log_error,
                "skipped_bytes": s.log_skipped},
        "checks": to_jsonable(view.checks),
        "triage": to_jsonable(view.triage) if view.triage is not None else None,
        "taken_at": s.taken_at,
    }
    return out
