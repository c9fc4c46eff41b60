"""1,000 synthetic GPUs (125 hosts × 8) in a REAL Prometheus: what gpudash's Prometheus source costs.

Starts a private Prometheus (tests/services/prometheus.py) scraping the dcgm-exporter-format test
exporter in a subprocess (tests/services/dcgm_exporter.py: the recorded H100 trace, plus synthetic
node_exporter filesystem/memory series per host), waits for all 1,000 GPUs, then measures in THIS
process (wall time and client CPU time, threads included):

- baseline: one raw ``/api/v1/query`` of one metric (urllib + json.loads), and the same raw
  queries gpudash sends, without any of gpudash's processing;
- time to first full overview: from nothing to a HostView (health judged) for every host —
  the scrape-interval lookup, the first refresh and the fleet with 125 watchers;
- refresh cost per cycle: ``PrometheusSource.refresh()`` alone and a whole fleet cycle
  (refresh + overlays + 125 health evaluations).

Prints a table and writes benchmarks/results/prometheus.json. Needs prometheus installed.
Run: ``python benchmarks/bench_prometheus.py [--hosts 125 --gpus 8 --cycles 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpudash.sources.prometheus import METRICS, PrometheusSource  # noqa: E402
from gpudash.sources.promql import down_query, instant_query  # noqa: E402
from gpudash.watch.prom_fleet import discover, fleet_with_prometheus  # noqa: E402
from tests.services.prometheus import PrometheusServer, ScrapeJob, prometheus_binary  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "prometheus.json"


def measure(fn, repeat: int) -> dict:
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_ms": round(1000 * statistics.median(walls), 1),
            "cpu_ms": round(1000 * statistics.median(cpus), 1),
            "wall_ms_max": round(1000 * max(walls), 1), "runs": repeat}


def raw_query(url: str, expr: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    qs = urllib.parse.urlencode({"query": expr})
    with opener.open(f"{url}/api/v1/query?{qs}", timeout=30) as resp:
        body = resp.read()
    return len(json.loads(body)["data"]["result"])


def start_exporter(hosts: int, gpus: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.services.dcgm_exporter", "--hosts", str(hosts),
         "--gpus", str(gpus), "--node", "--advance"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True)
    port = int(proc.stdout.readline())
    return proc, port


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=125)
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--scrape", default="2s", help="Prometheus scrape interval")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    binary = prometheus_binary()
    if binary is None:
        print("prometheus is not installed (see .ci/setup-prometheus.sh)", file=sys.stderr)
        return 2
    n_gpus = args.hosts * args.gpus
    workdir = Path(tempfile.mkdtemp(prefix="gpudash-bench-prom-"))
    exporter, port = start_exporter(args.hosts, args.gpus)
    prom = PrometheusServer(workdir, binary, [ScrapeJob("dcgm", [(f"127.0.0.1:{port}", {})],
                                                        honor_labels=True)],
                            scrape_interval=args.scrape)
    try:
        prom.start()
        t0 = time.monotonic()
        prom.wait_for("DCGM_FI_DEV_GPU_UTIL", n_gpus, timeout=120)
        prom.wait_for("node_memory_MemAvailable_bytes", args.hosts, timeout=60)
        prom.wait_for("node_filesystem_size_bytes", 2 * args.hosts, timeout=60)
        time.sleep(3)  # a couple more scrapes: every series has a predecessor
        ingest_s = time.monotonic() - t0
        result = asyncio.run(run(prom.url, args, n_gpus))
    finally:
        prom.stop()
        exporter.terminate()
        exporter.wait(timeout=10)
    result["setup"]["first_scrape_to_all_series_s"] = round(ingest_s, 1)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


async def run(url: str, args, n_gpus: int) -> dict:
    repeat = args.cycles
    out: dict = {"setup": {
        "hosts": args.hosts, "gpus_per_host": args.gpus, "gpus": n_gpus,
        "scrape_interval": args.scrape, "cycles": repeat,
        "prometheus": subprocess.run([prometheus_binary(), "--version"], capture_output=True,
                                     text=True).stdout.splitlines()[0],
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }}
    assert raw_query(url, "DCGM_FI_DEV_GPU_UTIL") == n_gpus
    out["baseline_one_raw_query"] = measure(lambda: raw_query(url, "DCGM_FI_DEV_GPU_UTIL"), repeat)
    exprs = [instant_query(m, "Hostname") for m in METRICS] + [down_query()]
    out["baseline_raw_queries_gpudash_sends"] = measure(
        lambda: [raw_query(url, e) for e in exprs], repeat)
    out["baseline_raw_queries_gpudash_sends"]["queries"] = len(exprs)

    # time to first full overview, from nothing (a fresh source each time)
    firsts = []
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        src = PrometheusSource(url, timeout=30)
        interval, initial = await discover(src)
        fleet = fleet_with_prometheus([], src, interval=interval, initial=initial,
                                      seed_history=False)
        views = [fleet.view(h) for h in fleet.host_names()]
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        assert len(views) == args.hosts and all(v is not None and len(v.snapshot.gpus) == args.gpus
                                                for v in views), "overview incomplete"
        assert all(v.snapshot.disks and v.snapshot.memory for v in views)
        firsts.append((wall, cpu))
        await fleet.close()
    out["first_full_overview"] = {
        "wall_ms": round(1000 * statistics.median(w for w, _ in firsts), 1),
        "cpu_ms": round(1000 * statistics.median(c for _, c in firsts), 1),
        "runs": len(firsts), "hosts_with_views": args.hosts}

    src = PrometheusSource(url, timeout=30)
    sent = {"bytes": 0, "requests": 0}
    real_get = src.client.get

    def counting_get(path, params):
        status, body = real_get(path, params)
        sent["bytes"] += len(body)
        sent["requests"] += 1
        return status, body

    src.client.get = counting_get
    interval, initial = await discover(src)
    fleet = fleet_with_prometheus([], src, interval=interval, initial=initial, seed_history=False)

    async def timed(coro_fn) -> dict:
        walls, cpus = [], []
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            await coro_fn()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        return {"wall_ms": round(1000 * statistics.median(walls), 1),
                "cpu_ms": round(1000 * statistics.median(cpus), 1),
                "wall_ms_max": round(1000 * max(walls), 1), "runs": repeat}

    sent.update(bytes=0, requests=0)
    out["refresh_source_only"] = await timed(src.refresh)
    out["refresh_source_only"]["requests_per_refresh"] = sent["requests"] / repeat
    out["refresh_source_only"]["answer_kib_per_refresh"] = round(sent["bytes"] / repeat / 1024, 1)
    out["refresh_fleet_cycle"] = await timed(fleet.poll_once)
    assert all(len(fleet.view(h).snapshot.gpus) == args.gpus for h in fleet.host_names())
    cpu = out["refresh_fleet_cycle"]["cpu_ms"] / 1000
    out["refresh_fleet_cycle"]["core_pct_at_15s"] = round(100 * cpu / 15, 2)
    out["refresh_fleet_cycle"]["core_pct_at_2s"] = round(100 * cpu / 2, 2)
    hist_w0, hist_c0 = time.perf_counter(), time.process_time()
    hist = await src.history_all(300, step=15)
    out["history_all_300s"] = {"wall_ms": round(1000 * (time.perf_counter() - hist_w0), 1),
                               "cpu_ms": round(1000 * (time.process_time() - hist_c0), 1),
                               "hosts": len(hist)}
    out["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    await fleet.close()
    return out


def print_table(r: dict) -> None:
    s = r["setup"]
    print(f"\n{s['gpus']} GPUs ({s['hosts']} hosts × {s['gpus_per_host']}) in {s['prometheus']}, "
          f"scrape {s['scrape_interval']}; {s['cpus']} CPUs, Python {s['python']}\n")
    rows = [
        ("baseline: 1 raw query, 1 metric (urllib+json)", r["baseline_one_raw_query"]),
        (f"baseline: the {r['baseline_raw_queries_gpudash_sends']['queries']} raw queries gpudash sends",
         r["baseline_raw_queries_gpudash_sends"]),
        ("first full overview (discover + refresh + 125 views)", r["first_full_overview"]),
        ("refresh: PrometheusSource.refresh()", r["refresh_source_only"]),
        ("refresh: whole fleet cycle (+ overlays + health)", r["refresh_fleet_cycle"]),
        ("history_all: util/mem, 300 s at 15 s steps", r["history_all_300s"]),
    ]
    print(f"{'measure':58} {'wall ms':>9} {'client CPU ms':>14}")
    print("-" * 83)
    for name, m in rows:
        print(f"{name:58} {m['wall_ms']:>9.1f} {m['cpu_ms']:>14.1f}")
    rs = r["refresh_source_only"]
    fc = r["refresh_fleet_cycle"]
    print(f"\nrequests per refresh: {rs['requests_per_refresh']:g} (one per metric, not per host); "
          f"answers {rs['answer_kib_per_refresh']} KiB per refresh")
    print(f"fleet cycle CPU = {fc['core_pct_at_15s']}% of a core at a 15 s refresh "
          f"({fc['core_pct_at_2s']}% at 2 s); max RSS {r['max_rss_mib']} MiB")


if __name__ == "__main__":
    raise SystemExit(main())
