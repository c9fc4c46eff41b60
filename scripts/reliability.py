#!/usr/bin/env python3
"""Run the whole reliability suite (faults, hostile input, security, and the full soak) and print
its figures.

    python scripts/reliability.py [--soak-ticks N] [--quick]

- runs ``pytest tests/reliability`` with the slow tests included (``--quick``: the default
  subset only, as CI runs it), hypothesis at 400 examples per parser, the soak at N ticks
  (default 10,000);
- prints a table: faults survived, inputs tried, deadline overruns, leaked channels / processes /
  fds / tasks, raw ESC/C1/bidi characters that reached a screen, crashes, and the soak's RSS /
  FD / task / channel counts at its start and end;
- writes the same as JSON to ``benchmarks/results/reliability.json``.

The exit code is pytest's: 0 only when every test passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_GRACE_S = 6.0  # tests/reliability/figures.py: interpreter start of a status subprocess
OUT = ROOT / "benchmarks" / "results" / "reliability.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--soak-ticks", type=int, default=10_000, metavar="N",
                    help="probe rounds of the full soak (default 10000)")
    ap.add_argument("--quick", action="store_true",
                    help="only the default (CI) subset: short soak, 25 examples per parser")
    ap.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT})")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from tests.reliability.figures import Figures

    base = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"]
    if args.quick:
        runs = [("suite", [*base, "-m", "not slow", *args.pytest_args])]
    else:
        # The full soak runs in a process of its own, so its RSS is not hidden in a heap the
        # other tests already grew.
        runs = [("suite", [*base, "-m", "slow or not slow", "-k", "not test_full_soak",
                           *args.pytest_args]),
                ("soak", [*base, "-m", "slow", "-k", "test_full_soak", *args.pytest_args])]
    rc, figs = 0, None
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in runs:
            figures_json = Path(tmp) / f"{name}.json"
            env = dict(os.environ, GD_RELIABILITY_JSON=str(figures_json),
                       GD_SOAK_TICKS=str(args.soak_ticks), PYTHONPATH=str(ROOT))
            if not args.quick:
                env["GD_RELIABILITY_FULL"] = "1"
            print("$", " ".join(cmd), flush=True)
            rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode or rc
            if not figures_json.exists():
                print(f"no figures were written by the {name} run (did pytest start?)",
                      file=sys.stderr)
                return rc or 1
            part = Figures.from_json(json.loads(figures_json.read_text()))
            figs = part if figs is None else figs.merged(part)
    wall = time.monotonic() - t0
    fig = figs.as_json()

    fig["run"] = {"command": " ".join(["python", "scripts/reliability.py",
                                       *(["--soak-ticks", str(args.soak_ticks)]),
                                       *(["--quick"] if args.quick else [])]),
                  "pytest_exit_code": rc, "wall_s": round(wall, 1),
                  "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                  "python": platform.python_version(), "machine": platform.machine(),
                  "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fig, indent=2, default=str) + "\n")
    print()
    print(render(fig))
    print(f"\nJSON: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return rc


# ----------------------------------------------------------------------------- the table


def render(fig: dict) -> str:
    rows: list[tuple[str, str]] = []
    faults = fig["faults"]
    rows.append(("faults survived", f"{fig['faults_survived']} / {fig['faults_total']}"
                 f" ({len({f['name'] for f in faults})} kinds)"))
    by_where: dict[str, list] = {}
    for f in faults:
        by_where.setdefault(f["where"], []).append(f)
    for where, fs in sorted(by_where.items()):
        ok = sum(1 for f in fs if f["survived"])
        rows.append((f"  … via {where}", f"{ok} / {len(fs)}"))
    rows.append(("inputs tried", f"{fig['inputs_total']:,}"))
    for kind, n in sorted(fig["inputs"].items(), key=lambda kv: -kv[1]):
        rows.append((f"  … {kind}", f"{n:,}"))
    notes = fig.get("notes", {})
    if "parsers_total" in notes:
        rows.append(("  … parsers under hypothesis",
                     f"{notes['parsers_total']} (had a property test before: "
                     f"{notes['parsers_with_prior_hypothesis']})"))
    rows.append(("deadline overruns", f"{fig['deadline_overruns']} of {fig['deadline_checks']:,} "
                 "timed calls (soak rounds: see below)"))
    worst = fig.get("worst_deadline_use")
    if worst:
        rows.append(("  … closest call", f"{worst['elapsed_s']:.2f}s of {worst['deadline_s']:g}s "
                     f"({worst['what']})"))
    worst = fig.get("worst_status_deadline_use")
    if worst:
        rows.append(("  … closest `gpudash status`", f"{worst['elapsed_s']:.2f}s of --timeout "
                     f"{worst['deadline_s']:g}s + {STARTUP_GRACE_S:g}s start-up "
                     f"({worst['what']})"))
    leaks = fig["leaks"]
    rows.append(("leaked channels / processes / fds / tasks",
                 " / ".join(str(leaks[k]) for k in ("channels", "processes", "fds", "tasks"))
                 + f"  ({sum(fig['leak_checks'].values())} checks)"))
    rows.append(("raw ESC/C1/bidi chars on screen",
                 f"{fig['esc_bytes_on_screen']} over {fig['screens_checked']} screens"))
    rows.append(("crashes", str(fig["crashes"])))
    for label in ("full", "short"):
        soak = fig.get("soak", {}).get(label)
        if not soak:
            continue
        s, e, a = soak["start"], soak["end"], soak["after_close"]
        rows.append((f"soak ({label})", f"{soak['ticks']:,} ticks over {soak['hosts']} hosts, "
                     f"{soak['faults_injected']} faults injected ({len(soak['fault_kinds'])} kinds)"))
        rows.append(("  … deadline overruns", f"{soak['deadline_overruns']} (closest: "
                     f"{soak['worst_deadline_use'] * 100:.0f}% of the deadline)"))
        rows.append(("  … RSS start → end", f"{s['rss_mb']} → {e['rss_mb']} MB "
                     f"({e['rss_mb'] - s['rss_mb']:+.1f}, limit +{soak['rss_tolerance_mb']:g})"))
        rows.append(("  … open fds start → end", f"{s['fds']} → {e['fds']}"))
        rows.append(("  … asyncio tasks start → end", f"{s['tasks']} → {e['tasks']}"))
        if "objects" in s:
            rows.append(("  … Python objects start → end", f"{s['objects']:,} → {e['objects']:,} "
                         "(gc-tracked; bounded buffers may still be filling)"))
        rows.append(("  … SSH channels start → end", f"{s['channels']} → {e['channels']} "
                     f"(after close: {a['channels']} channels, {a['connections']} connections, "
                     f"{a['box_processes']} box processes)"))
    t = fig.get("tests", {})
    rows.append(("tests", ", ".join(f"{n} {k}" for k, n in sorted(t.items()))))
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'figure'.ljust(width)} | value", f"|{'-' * (width + 2)}|{'-' * 40}"]
    lines += [f"| {k.ljust(width)} | {v}" for k, v in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
