"""(d) Start-up: `gpudash --help`, and the time to the TUI's first frame.

- ``--help``: wall time of a subprocess, median of 10, interleaved with the baseline
  ``python -c pass`` (same interpreter) so a load spike hits both. Both the console script
  (next to the interpreter) and ``python -m gpudash`` are timed, and which heavy modules
  ``--help`` imported is recorded (asyncssh and textual must not be).
- First frame: ``gpudash demo`` in a real tmux pane (a real terminal, Textual's real driver):
  from launching the pane to the moment ``tmux capture-pane`` shows gpudash's header. The
  baseline is ``python -c "print('ready')"`` in the same kind of pane, detected the same way,
  so tmux's own start and the polling are in both. Median of 5. Without tmux: the headless
  app's first compositor update, from process start (noted as such).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT


def _wall(argv: list[str], cpu: list | None = None) -> float:
    from benchmarks.common import children_cpu

    c = children_cpu()
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False)
    wall = time.perf_counter() - t
    if cpu is not None:
        cpu.append(children_cpu() - c)
    return wall


def help_times(n: int) -> dict:
    script = Path(sys.executable).parent / "gpudash"
    variants = {"python -c pass": [sys.executable, "-c", "pass"],
                "python -m gpudash --help": [sys.executable, "-m", "gpudash", "--help"]}
    if script.exists():
        variants["gpudash --help"] = [str(script), "--help"]
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    for k, argv in variants.items():
        # warms the page cache, and checks the command works: a broken entry point (a stale
        # script left by an old install) fails as fast as `python -c pass` and must not pass
        # for a fast start-up
        r = subprocess.run(argv, capture_output=True, cwd=ROOT, timeout=60)
        if r.returncode != 0 or (argv[-1] == "--help" and b"usage:" not in r.stdout):
            raise RuntimeError(f"{k!r} failed (exit {r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
    for _ in range(n):
        for k, argv in variants.items():
            times[k].append(_wall(argv, cpus[k]))
    imported = subprocess.run(
        [sys.executable, "-c",
         "import sys, contextlib, io\nsys.argv=['gpudash','--help']\nfrom gpudash.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try: main()\n    except SystemExit: pass\n"
         "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & "
         "{'asyncssh','textual','plotext','rich','cryptography','sqlite3'})))"],
        capture_output=True, text=True, cwd=ROOT).stdout.strip()
    out = {k: {"median_s": statistics.median(v), "min_s": min(v), "n": n,
               "cpu_s_median": statistics.median(cpus[k])} for k, v in times.items()}
    base = out["python -c pass"]["median_s"]
    for k in out:
        out[k]["over_python_s"] = out[k]["median_s"] - base
    out["heavy_modules_imported_by_help"] = imported.split()
    return out


def _tmux_first(cmd: str, needle: str, sock: str, timeout: float = 30.0) -> float | None:
    tm = ["tmux", "-L", sock]
    subprocess.run(tm + ["kill-server"], capture_output=True)
    t0 = time.perf_counter()
    subprocess.run(tm + ["new-session", "-d", "-s", "ff", "-x", "120", "-y", "40", f"{cmd}; sleep 60"],
                   check=True, cwd=ROOT, env={**os.environ, "TERM": "xterm-256color"})
    try:
        while time.perf_counter() - t0 < timeout:
            out = subprocess.run(tm + ["capture-pane", "-p", "-t", "ff"], capture_output=True, text=True).stdout
            if needle in out:
                return time.perf_counter() - t0
            time.sleep(0.005)
        return None
    finally:
        subprocess.run(tm + ["kill-server"], capture_output=True)


def first_frame(n: int) -> dict:
    if shutil.which("tmux") is None:
        return headless_first_frame(n)
    sock = f"gdbench{os.getpid()}"
    py = sys.executable
    base, app = [], []
    for _ in range(n):
        base.append(_tmux_first(f"{py} -c \"print('rea'+'dy')\"", "ready", sock))
        app.append(_tmux_first(f"{py} -m gpudash demo", " gpudash ", sock))
    ok_b = [x for x in base if x is not None]
    ok_a = [x for x in app if x is not None]
    res = {"method": "tmux pane, capture-pane polled every 5 ms", "n": n,
           "baseline_print_s": statistics.median(ok_b) if ok_b else None,
           "gpudash_demo_s": statistics.median(ok_a) if ok_a else None,
           "failed": (n - len(ok_a)) + (n - len(ok_b))}
    if ok_a and ok_b:
        res["over_baseline_s"] = res["gpudash_demo_s"] - res["baseline_print_s"]
    res["headless"] = headless_first_frame(max(3, n // 2))
    return res


_HEADLESS = r"""
import os, sys, time
t0 = float(os.environ["GDBENCH_T0"])
from gpudash.demo.fleet import demo_fleet
from gpudash.ui.app import GpudashApp
app = GpudashApp(demo_fleet())
orig = app._display
def display(screen, renderable):
    if renderable is not None and type(screen).__name__ != "Screen":
        # os.write, not print: print() inside a running Textual app goes through App._flush
        os.write(1, f"{time.time() - t0}\n".encode())
        os._exit(0)
    return orig(screen, renderable)
app._display = display
app.run(headless=True, size=(120, 40))
"""


def headless_first_frame(n: int) -> dict:
    """The app's first compositor update of its own screen, headless, from the process start."""
    vals = []
    for _ in range(n):
        env = {**os.environ, "GDBENCH_T0": repr(time.time())}
        p = subprocess.run([sys.executable, "-c", _HEADLESS], capture_output=True, text=True,
                           cwd=ROOT, env=env, timeout=60)
        try:
            vals.append(float(p.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            pass
    return {"method": "headless app, first compositor update of the overview, from spawn",
            "median_s": statistics.median(vals) if vals else None, "n": len(vals)}


def import_costs() -> dict:
    """Where the TUI's import time goes (``-X importtime``, cumulative ms, one cold-ish run)."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c",
                        "import gpudash.demo.fleet, gpudash.ui.app"],
                       capture_output=True, text=True, cwd=ROOT)
    cum: dict[str, float] = {}
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            cum[name] = max(cum.get(name, 0.0), int(parts[1]) / 1000)
    keep = ["gpudash.ui.app", "textual", "textual.app", "rich", "gpudash.triage", "gpudash.triage.signatures",
            "gpudash.demo.fleet", "gpudash.health", "gpudash.watch.fleet", "asyncssh", "plotext", "sqlite3"]
    return {k: cum[k] for k in keep if k in cum}


def section_d(quick: bool) -> dict:
    return {"help": help_times(5 if quick else 10), "first_frame": first_frame(3 if quick else 5),
            "import_ms": import_costs()}


if __name__ == "__main__":
    import json

    print(json.dumps(section_d("--quick" in sys.argv), indent=2))
