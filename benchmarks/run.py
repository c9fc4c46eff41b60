"""gpudash benchmarks: ONE command, a table, and JSON.

    python -m benchmarks.run [--quick] [--scale-full] [--only a,b,c,d,e]
    python benchmarks/run.py …                                   (the same)

Sections (issue 7): (a) one host's steady tick vs ssh-per-poll, gpustat-web style and the floor,
against a real OpenSSH sshd on loopback whose box user has a slow ~/.bashrc; (b) scale against
the load generator (a separate process); (c) log tail under a 50,000 lines/s writer; (d) start-up;
(e) key press → screen with 50 live hosts. Results: ``benchmarks/results/<date>-<host>.json``
and ``benchmarks/results/latest.json``. Never part of the test suite or ``.ci/run``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import RESULTS, machine, run_worker, speed  # noqa: E402
from benchmarks.report import render  # noqa: E402

# gpudash prefers AES-GCM (ssh.py); the experiment is the cipher it preferred before: asyncssh's default
CHACHA = "chacha20-poly1305@openssh.com"


def section_a(quick: bool, sshd) -> dict:
    from gpudash.demo import traces

    box = sshd.box
    log = box / "train.log"
    log.write_text(traces.read("hf-trainer.log"))
    os.chmod(log, 0o644)
    info = {
        "target": sshd.target, "known_hosts": str(sshd.known_hosts), "identity": str(sshd.identity),
        "ssh_config": str(sshd.config), "alias": sshd.alias, "sshd_pid": sshd.pid,
        "bin": str(sshd.bin), "log": str(log),
    }
    box_json = sshd.root / "box.json"
    box_json.write_text(json.dumps(info))
    n_fast = 30 if quick else 100
    n_slow = 10 if quick else 30
    chacha = ["--ciphers", CHACHA]
    plan = [  # (result key, variant, ticks, extra args)
        ("rtt", "rtt", n_fast, []), ("floor_true", "floor_true", n_fast, []), ("own", "own", n_slow, []),
        ("gpudash", "gpudash", n_fast, []), ("transport", "transport", n_fast, []),
        ("gpustat_web", "gpustat_web", n_slow, []),
        ("ssh_per_poll", "ssh_per_poll", n_slow, []),
        # The same with asyncssh's default cipher, chacha20-poly1305 (two cipher contexts per
        # packet), which gpudash used before it preferred AES-GCM: what that choice is worth.
        ("gpudash_chacha", "gpudash", n_fast, chacha), ("rtt_chacha", "rtt", n_fast, chacha),
        ("steps", "steps", 10 if quick else 30, []),
        ("framing", "framing", 30 if quick else 100, []),
    ]
    out: dict = {"sshd": sshd.describe()}
    for key, variant, n, extra in plan:
        print(f"  (a) {key} × {n}", flush=True)
        out[key] = run_worker("tick", ["--variant", variant, "--box", str(box_json), "--n", str(n), *extra])
    for key, extra in (("gpu_stream", []), ("gpu_stream_chacha", chacha)):
        print(f"  (a) {key}", flush=True)
        out[key] = run_worker("tick", ["--variant", "gpu_stream", "--box", str(box_json),
                                       "--n", "10" if quick else "30", "--interval-ms", "500", *extra])
    # 60 s: a whole number of every cadence (GPU 2, log ≤5, disk 10, jobs 15, files 30, /proc 60 s),
    # so the window does not over- or under-count a slow group (30 s caught 0 or 1 /proc scans)
    secs = 30 if quick else 60
    print(f"  (a) cadence {secs}s", flush=True)
    out["cadence"] = run_worker("tick", ["--variant", "cadence", "--box", str(box_json),
                                         "--seconds", str(secs)])
    print(f"  (a) cadence, the job in tmux, {secs}s", flush=True)
    out["cadence_tmux"] = run_worker("tick", ["--variant", "cadence_tmux", "--box", str(box_json),
                                              "--seconds", str(secs)])
    print(f"  (a) cadence, log growing, {secs}s", flush=True)
    out["cadence_growing"] = run_worker("tick", ["--variant", "cadence_growing", "--box",
                                                 str(box_json), "--seconds", str(secs)])
    # the same two without the log follower (a box without python3): what the follower is worth
    for key in ("cadence_polled", "cadence_growing_polled"):
        print(f"  (a) {key}, {secs}s", flush=True)
        out[key] = run_worker("tick", ["--variant", key, "--box", str(box_json), "--seconds", str(secs)])
    return out


def save(results: dict, a, started, *, partial: bool) -> Path:
    """Write the results (also after every section, marked partial: a long run keeps what it did)."""
    results["partial"] = partial
    results["table"] = render(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{stamp}-{results['machine']['host']}{'-quick' if a.quick else ''}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    if not partial:
        shutil.copyfile(path, RESULTS / "latest.json")
    if a.json:
        Path(a.json).write_text(text)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer ticks, shorter runs (~3 min)")
    ap.add_argument("--scale-full", action="store_true",
                    help="also 500 hosts at 2 s and 1,000 at 1 s (by hand: minutes, both cores)")
    ap.add_argument("--only", default="a,b,c,d,e", help="sections to run, e.g. a,d")
    ap.add_argument("--scale-runs", help='only these scale runs: HOSTS:INTERVAL[:chacha][:noui][:gpusN][:floor][:asyncio],… e.g. "500:2:noui,100:2:gpus8,500:2:floor,500:2:noui:asyncio"')
    ap.add_argument("--rc-ms", type=float, default=100.0, help="CPU the box user's ~/.bashrc burns")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    started = dt.datetime.now()
    results: dict = {"started": started.isoformat(timespec="seconds"), "quick": a.quick,
                     "scale_full": a.scale_full, "machine": machine(), "sections": {}}
    sshd = None
    try:
        if only & {"a", "c"}:
            from benchmarks.sshd import BenchSshd

            print("starting sshd …", flush=True)
            sshd = BenchSshd(rc_ms=a.rc_ms).start()
        if "a" in only:
            print("(a) steady tick, one host", flush=True)
            results["sections"]["a"] = section_a(a.quick, sshd)
            save(results, a, started, partial=True)
        if "b" in only:
            from benchmarks.scale import section_b

            print("(b) scale", flush=True)

            def partial(out: dict) -> None:
                results["sections"]["b"] = out
                save(results, a, started, partial=True)

            results["sections"]["b"] = section_b(a.quick, a.scale_full, only=a.scale_runs, on_result=partial)
        if "c" in only:
            from benchmarks.logtail import section_c

            print("(c) log tail flood", flush=True)
            results["sections"]["c"] = section_c(a.quick, sshd)
            save(results, a, started, partial=True)
        if "d" in only:
            from benchmarks.startup import section_d

            print("(d) start-up", flush=True)
            results["sections"]["d"] = section_d(a.quick)
            save(results, a, started, partial=True)
        if "e" in only:
            from benchmarks.ui import section_e

            print("(e) key → screen, 50 hosts", flush=True)
            results["sections"]["e"] = section_e(a.quick)
            save(results, a, started, partial=True)
    finally:
        if sshd is not None:
            sshd.stop()
    results["seconds"] = round(time.time() - started.timestamp(), 1)
    results["loadavg_at_end"] = os.getloadavg()
    results["speed_at_end"] = speed()
    table = render(results)
    print()
    print(table)
    path = save(results, a, started, partial=False)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
