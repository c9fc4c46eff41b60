"""Benchmark: `gpudash triage` on a 50 MB log.

Two generated logs of healthy step lines (HF-dict, plain and tqdm lines mixed, ~120 bytes each):
  * fail-at-end: a CUDA OOM traceback at the very end;
  * fail-in-middle: the same traceback half-way, then a healthy restart that keeps progressing
    (the right answer is `none`: the failure is history and lies outside the tail that is read).
Each is timed through `classify_file` (exact line numbers: the head is newline-counted; and
tail-relative numbers), against baselines measured in the same run on the same file:
  * `python-readlines`: a full line-by-line read in Python (what a naive `for line in f` triage
    would at least cost, before any regex);
  * `grep-c`: `grep -c Traceback FILE` (one keyword, in C) when grep exists.
Prints a table with ratios and writes benchmarks/results/triage.json. Median of N runs; the page
cache is warm for all contenders alike.

    python benchmarks/bench_triage.py [--mb 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpudash.triage import classify_file  # noqa: E402

OOM = ("Traceback (most recent call last):\n"
       '  File "train.py", line 80, in <module>\n'
       "    loss.backward()\n"
       "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
       "of 79.18 GiB of which 1.02 GiB is free.\n")


def healthy_lines(rng: random.Random, start_step: int):
    step = start_step
    while True:
        step += 1
        k = step % 3
        if k == 0:
            yield (f"{{'loss': '{rng.uniform(0.5, 3):.4f}', 'grad_norm': '{rng.uniform(0.5, 2):.4f}', "
                   f"'learning_rate': '{rng.uniform(1e-5, 5e-5):.3e}', 'epoch': '{step / 5000:.4f}'}}\n")
        elif k == 1:
            yield (f"2026-11-22 10:{(step // 60) % 60:02d}:{step % 60:02d} INFO epoch {step // 5000} step {step} "
                   f"loss {rng.uniform(0.5, 3):.5f} lr 1.00e-04 grad_norm {rng.uniform(0.5, 2):.3f} tokens/s 51234\n")
        else:
            pct = step * 100 // 1_000_000
            yield f" {pct:2d}%|████      | {step}/1000000 [01:23:45<02:00:00, 41.97it/s]\n"


def write_log(path: Path, size: int, failure_at: float) -> int:
    """Write ~size bytes; the OOM at fraction `failure_at` of the file (1.0 = the end). Returns lines."""
    rng = random.Random(42)
    n = written = 0
    fail_done = False
    with open(path, "w", encoding="utf-8") as f:
        gen = healthy_lines(rng, 0)
        while written < size:
            if not fail_done and written >= size * failure_at:
                f.write(OOM)
                written += len(OOM)
                n += OOM.count("\n")
                fail_done = True
                f.write("***** Running training *****\n")  # the relaunch after the crash
                gen = healthy_lines(rng, 0)
                continue
            line = next(gen)
            f.write(line)
            written += len(line.encode())
            n += 1
        if not fail_done:
            f.write(OOM)
            n += OOM.count("\n")
    return n


def median_time(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def python_readlines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for _ in f:
            n += 1
    return n


def grep_c(path: Path) -> int:
    p = subprocess.run(["grep", "-c", "Traceback", str(path)], capture_output=True, text=True, check=False)
    return int(p.stdout.strip() or 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "triage.json"))
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    results = {"size_bytes": size, "runs": args.runs, "python": platform.python_version(),
               "machine": platform.machine(), "cpus": os.cpu_count(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for case, at in (("fail-at-end", 1.0), ("fail-in-middle", 0.5)):
            path = Path(tmp) / f"{case}.log"
            lines = write_log(path, size, at)
            python_readlines(path)  # warm the page cache for everyone
            row = {"lines": lines, "file_bytes": path.stat().st_size}
            t_exact, r = median_time(lambda: classify_file(path), args.runs)
            t_tail, r2 = median_time(lambda: classify_file(path, exact_line_numbers=False), args.runs)
            t_read, _ = median_time(lambda: python_readlines(path), args.runs)
            row.update({
                "class": r.cls, "key_line": r.evidence[0].line_no if r.evidence else None,
                "class_tail_numbers": r2.cls,
                "classify_file_s": round(t_exact, 4),
                "classify_file_tail_numbers_s": round(t_tail, 4),
                "python_readlines_s": round(t_read, 4),
                "speedup_vs_python_readlines": round(t_read / t_exact, 2),
            })
            if shutil.which("grep"):
                t_grep, _ = median_time(lambda: grep_c(path), args.runs)
                row["grep_c_s"] = round(t_grep, 4)
                row["ratio_to_grep_c"] = round(t_exact / t_grep, 2)
            results["cases"][case] = row
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"triage on a {args.mb:g} MB log (median of {args.runs} runs)")
    print(f"{'case':16} {'class':10} {'classify_file':>13} {'tail-numbers':>12} {'py-readlines':>12} "
          f"{'grep -c':>8} {'vs readlines':>12} {'vs grep':>8}")
    for case, row in results["cases"].items():
        print(f"{case:16} {row['class']:10} {row['classify_file_s']:>12.3f}s {row['classify_file_tail_numbers_s']:>11.3f}s "
              f"{row['python_readlines_s']:>11.3f}s {row.get('grep_c_s', float('nan')):>7.3f}s "
              f"{row['speedup_vs_python_readlines']:>11.1f}x {row.get('ratio_to_grep_c', float('nan')):>7.2f}x")
    print(f"wrote {out}")
    expected = {"fail-at-end": "cuda_oom", "fail-in-middle": "none"}
    ok = all(results["cases"][c]["class"] == cls for c, cls in expected.items())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
