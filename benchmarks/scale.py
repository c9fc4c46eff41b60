"""(b) Scale: the real Fleet of N hosts against the load generator (a separate process).

    python -m benchmarks.scale --hosts N --interval S --seconds T --gen-dir DIR --gen-pid PID [--ui]

gpudash runs as it does for a user: one :class:`gpudash.watch.fleet.Fleet`, one HostWatcher and
one SshTransport per host (one connection each), every probe group on its cadence — GPU and log
every ``interval`` seconds, disk 10 s, jobs 15 s, files 30 s — and with ``--ui`` the Textual app
(headless, 160×50) rendering the overview from the fleet's views. After every host is connected
(the warm-up), the window of ``--seconds`` is measured: this process's CPU (all of gpudash, UI
included), RSS, the generator's CPU (read from /proc), and per host every GPU sample's arrival.

"On time": a GPU sample arriving at most 1.5 × interval after the host's previous one. A longer
gap counts as one late sample plus ``round(gap / interval) - 1`` missing ones; the share is
on-time / (on-time + late + missing), over every host.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from pathlib import Path

from benchmarks.common import median, pct, write_out
from benchmarks.procstat import proc_cpu, rss_mb
from gpudash import loop as gl


def build_fleet(n: int, interval: float, gen_dir: Path, ciphers: str | None = None):
    from gpudash.demo.scenarios import build
    from gpudash.transport.ssh import SshTransport
    from gpudash.watch.fleet import Fleet
    from gpudash.watch.spec import Cadence, WatchSpec

    port = int((gen_dir / "port").read_text())
    scenarios = build(7)
    cadence = Cadence(gpu=interval, log=interval)
    specs, transports = [], {}
    for i in range(n):
        import zlib

        name = f"h{i}"
        sc = scenarios[zlib.crc32(name.encode()) % len(scenarios)]  # the generator's choice
        specs.append(WatchSpec(
            name=name, target=f"{name}@127.0.0.1:{port}", transport="ssh", log=sc.log_path,
            tmux_session=sc.tmux_session, pgrep="train|eval|accelerate",
            mounts=tuple(m[1] for m in sc.mounts), cadence=cadence,
        ))
        t = transports[name] = SshTransport(specs[-1].target, known_hosts=str(gen_dir / "known_hosts"),
                                            client_keys=[str(gen_dir / "client_key")], config=[])
        if ciphers:
            t._connect_kwargs = (lambda orig: lambda: {**orig(), "encryption_algs": ciphers.split(",")})(
                t._connect_kwargs)
    return Fleet(specs, transports=transports), transports


def _log_settled(w) -> bool:
    """The host's log was read once and, when it holds lines, triaged. (Not "or an error": in a
    thousand hosts' first seconds a read may time out, and the real first read comes later.)"""
    an = w.analysis
    return w.log_started and (not an.raw_tail or an.triage_runs > 0)


async def loop_lag(out: list[float], every: float = 0.05) -> None:
    """Append how much later than asked the loop woke each ``every``-second sleep."""
    while True:
        t = time.monotonic()
        await asyncio.sleep(every)
        out.append(max(0.0, time.monotonic() - t - every))


class Arrivals:
    """Per host: when each new GPU sample arrived (``gpu_at`` changed)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.times: dict[str, list[float]] = {}

    def on_view(self, view) -> None:
        at = view.snapshot.gpu_at
        if at is not None and self.last.get(view.name) != at:
            self.last[view.name] = at
            self.times.setdefault(view.name, []).append(time.monotonic())


def on_time(times: dict[str, list[float]], hosts: list[str], t0: float, t1: float, interval: float) -> dict:
    ok = late = missing = 0
    gaps = []
    for h in hosts:
        prev = t0
        for t in [x for x in times.get(h, []) if t0 <= x <= t1] + [t1]:
            gap = t - prev
            if t != t1:
                gaps.append(gap)
            if gap <= 1.5 * interval:
                ok += t != t1
            else:
                late += t != t1
                missing += max(0, round(gap / interval) - 1)
            prev = t
    total = ok + late + missing
    return {"on_time": ok, "late": late, "missing": missing,
            "share_on_time": ok / total if total else 0.0,
            "gap_ms_median": (median(gaps) or 0) * 1e3, "gap_ms_p99": (pct(gaps, 99) or 0) * 1e3}


async def measure(a) -> dict:
    gen_dir = Path(a.gen_dir)
    fleet, transports = build_fleet(a.hosts, a.interval, gen_dir, a.ciphers)
    arrivals = Arrivals()
    latencies: list[float] = []
    window = {"on": False}
    for t in transports.values():  # time every GPU round-trip (cheap wrapper, kept during warm-up too)
        orig = t.run

        async def timed(steps, *, deadline, _orig=orig):
            s = time.perf_counter()
            try:
                return await _orig(steps, deadline=deadline)
            finally:
                # every probe round (disk, jobs, files; a polled log read while no follower
                # runs): GPU samples and the log arrive on streams, with no round to time
                if window["on"]:
                    latencies.append(time.perf_counter() - s)

        t.run = timed
    fleet.subscribe(arrivals.on_view, lambda ev: None)
    hosts = fleet.host_names()
    res: dict = {"hosts": a.hosts, "interval_s": a.interval, "ui": a.ui and not a.floor, "floor": a.floor,
                 "gpus_per_host": a.gpus,
                 "ciphers": a.ciphers or "asyncssh default",
                 "loop": gl.loop_name(asyncio.get_running_loop()),
                 "gc_threshold": list(gc.get_threshold())}

    async def body() -> None:
        c_start, t_start = time.process_time(), time.monotonic()
        while time.monotonic() - t_start < a.warmup_max:
            if len(arrivals.last) >= len(hosts):
                break
            await asyncio.sleep(0.2)
        res["warmup_s"] = time.monotonic() - t_start
        res["warmup_cpu_s"] = time.process_time() - c_start
        res["connected_at_window"] = len(arrivals.last)
        if not a.floor:
            # Then every host's first log read and its first triage: with day-old logs each is a
            # 256 KiB read and a classification of a full tail (tens of ms), a start-up cost the
            # window must not count as steady state (until 2026-11-24 the last hosts' first
            # reads fell into it). Bounded by the same warm-up limit.
            t_logs = time.monotonic()
            while time.monotonic() - t_start < a.warmup_max:
                if sum(1 for h in hosts if _log_settled(fleet.watchers[h])) >= len(hosts):
                    break
                await asyncio.sleep(0.2)
            res["log_warmup_s"] = time.monotonic() - t_logs
            res["logs_settled_at_window"] = sum(1 for h in hosts if _log_settled(fleet.watchers[h]))
            res["warmup_cpu_s"] = time.process_time() - c_start
        await asyncio.sleep(min(3.0, a.interval * 2))  # steady state: every loop has cycled
        if a.settle:  # e.g. day-old logs: the last hosts' first reads may still be in flight
            await asyncio.sleep(a.settle)
        res["settle_s"] = a.settle
        window["on"] = True
        prof = None
        if a.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        triage0 = 0 if a.floor else sum(fleet.watchers[h].analysis.triage_runs for h in hosts)
        lags: list[float] = []
        lag_task = asyncio.create_task(loop_lag(lags))
        g0, c0, t0 = proc_cpu(a.gen_pid), time.process_time(), time.monotonic()
        await asyncio.sleep(a.seconds)
        lag_task.cancel()
        g1, c1, t1 = proc_cpu(a.gen_pid), time.process_time(), time.monotonic()
        window["on"] = False
        if prof is not None:
            prof.disable()
            prof.dump_stats(a.profile)
        el = t1 - t0
        rss, hwm = rss_mb()
        res.update({
            "window_s": el,
            "client_cpu_pct": (c1 - c0) / el * 100,
            "generator_cpu_pct": (g1 - g0) / el * 100,
            "rss_mb": rss, "rss_peak_mb": hwm,
            "round_ms_median": (median(latencies) or 0) * 1e3 if latencies else None,
            "round_ms_p99": (pct(latencies, 99) or 0) * 1e3 if latencies else None,
            # how late the loop woke a 50 ms sleeper: a long stall delays every host's samples
            "loop_lag_ms_p99": (pct(lags, 99) or 0) * 1e3 if lags else None,
            "loop_lag_ms_max": max(lags) * 1e3 if lags else None,
            **on_time(arrivals.times, hosts, t0, t1, a.interval),
        })
        links = [fleet.watchers[h].link for h in hosts]
        res["links_down_at_end"] = sum(1 for ln in links if not ln.ok)
        res["reconnects"] = sum(t.connect_attempts - 1 for t in transports.values())
        if not a.floor:  # the floor follows the logs with streams of its own, not the watchers'
            res["logs_followed_at_end"] = sum(1 for h in hosts if fleet.watchers[h].log_following)
            # how much log each host's triage had to read: a short run's tails are short, a
            # day's are full (RAW_TAIL_LINES); see costs.py for triage at each size
            tails = [len(fleet.watchers[h].analysis.raw_tail) for h in hosts]
            res["log_tail_lines_mean"] = sum(tails) / len(tails)
            res["triage_runs_per_s"] = (sum(fleet.watchers[h].analysis.triage_runs for h in hosts)
                                        - triage0) / el

    if a.floor:
        tasks = await start_floor(fleet, a.interval, arrivals)
        try:
            await body()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    elif a.ui:
        from gpudash.ui.app import GpudashApp

        app = GpudashApp(fleet)
        # The app opens a triage by itself when the selected host shows a new failure (one of
        # the generator's scenarios fails). A modal on top stops the overview's ticks, and the
        # run would measure a still screen: count those openings and keep the overview on top,
        # as a user watching the fleet would (until 2026-11-23 22:00 every --ui run had the
        # triage of h0 open; see benchmarks/README.md).
        opened: list[str] = []
        app.show_triage = opened.append
        toasts: list[float] = []  # "new failure" notices for other hosts: each mounts a toast
        notify = app.notify

        def counted_notify(*args, **kw):
            if window["on"]:
                toasts.append(time.monotonic())
            return notify(*args, **kw)

        app.notify = counted_notify
        async with app.run_test(size=(160, 50)) as pilot:
            await body()
            res["ui_screen"] = type(app.screen).__name__
            res["ui_triage_opens_suppressed"] = len(opened)
            res["ui_notifications_in_window"] = len(toasts)
            await pilot.press("q")
    else:
        task = asyncio.create_task(fleet.run())
        try:
            await body()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    await fleet.close()
    return res


async def start_floor(fleet, interval: float, arrivals: Arrivals) -> list:
    """The transport floor of this design: per host the same connection, the same two streams
    (the NVML sampler's GPU lines, the log follower's records) and the same framed rounds (disk,
    jobs, files) on their cadences as the watcher sends, with every answer read and dropped: no
    parsing, no health, no triage, no UI. What SSH, asyncio and framing alone cost gpudash."""
    from gpudash.probes import logfollow
    from gpudash.probes.nvml_stream import nvml_stream_step
    from gpudash.watch import host as wh

    watchers = [fleet.watchers[h] for h in fleet.host_names()]
    # one real round each: the watcher learns its GPUs, the log and the job, so the step
    # builders below send exactly what it would
    await asyncio.gather(*(w.full_round() for w in watchers), return_exceptions=True)
    arrivals.last.clear()  # the warm-up waits for every host's first streamed sample
    arrivals.times.clear()
    ms = int(interval * 1000)

    async def gpu(w) -> None:
        times = arrivals.times.setdefault(w.spec.name, [])
        while True:
            try:
                async for line in w.transport.stream(nvml_stream_step(ms), sample_timeout=3 * interval + 5,
                                                     lifetime=wh.GPU_STREAM_LIFETIME):
                    if line[:1].isdigit():  # a sample (one GPU per box), not an apps/health block
                        now = time.monotonic()
                        times.append(now)
                        arrivals.last[w.spec.name] = now
            except Exception:  # noqa: BLE001 - the measurement shows what was lost
                await asyncio.sleep(interval)

    async def follow(w) -> None:
        while True:
            step = logfollow.follow_step(w.log_path, w.log_offset, w.log_inode, wh.LOG_BYTES_PER_TICK,
                                         interval=interval, heartbeat=w.spec.cadence.log_slowest)
            try:
                async for _line in w.transport.stream(step, sample_timeout=3 * w.spec.cadence.log_slowest + interval,
                                                      lifetime=wh.LOG_FOLLOW_LIFETIME):
                    pass
            except Exception:  # noqa: BLE001
                await asyncio.sleep(interval)

    async def rounds(w, group: str, every: float) -> None:
        w._stream_apps = w._stream_health = True  # the sampler sends them, as for the watcher
        while True:
            await asyncio.sleep(every)
            steps = w.steps_for(group)
            if steps:
                try:
                    await w.transport.run(steps, deadline=w.spec.cadence.probe_timeout)
                except Exception:  # noqa: BLE001
                    pass

    tasks = []
    for w in watchers:
        c = w.spec.cadence
        tasks.append(asyncio.create_task(gpu(w)))
        if w.log_path is not None:
            tasks.append(asyncio.create_task(follow(w)))
        for group, every in (("disk", c.disk), ("jobs", c.jobs), ("files", c.files)):
            tasks.append(asyncio.create_task(rounds(w, group, every)))
    return tasks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup-max", type=float, default=180.0)
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after the warm-up before the measured window")
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--gen-pid", type=int, required=True)
    ap.add_argument("--ui", action="store_true")
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per box the load generator serves (recorded)")
    ap.add_argument("--ciphers", help="the client's cipher preference (an experiment)")
    ap.add_argument("--floor", action="store_true",
                    help="the transport floor: the same connections, streams and rounds, answers dropped")
    ap.add_argument("--profile", help="write cProfile stats of the measured window (not the warm-up) here")
    ap.add_argument("--loop", choices=("gpudash", "asyncio"), default="gpudash",
                    help="gpudash: the TUI's loop (uvloop where installed); asyncio: the standard one (A/B)")
    ap.add_argument("--gc", choices=("gpudash", "default"), default="gpudash",
                    help="gpudash: the watch's collector thresholds (gpudash/loop.py); default: CPython's (A/B)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.loop == "asyncio":
        os.environ[gl.ENV] = "asyncio"
    if a.gc == "default":
        os.environ[gl.GC_ENV] = "default"
    res = gl.run(measure(a))
    write_out(a.out, res)
    return 0


# ----------------------------------------------------------------------------- the section


def section_b(quick: bool, full: bool, *, only: str | None = None, on_result=None) -> dict:
    """``only``: "HOSTS:INTERVAL[:chacha][:noui][:gpusN][:floor][:asyncio][:cpythongc][:padded]
    [:historyN],…" picks the runs (``asyncio``: on the standard loop instead of the TUI's,
    ``cpythongc``: with CPython's collector thresholds, ``padded``: the generator sends
    asyncssh's ignore packets, as before 2026-11-23 16:00 — each one side of an A/B;
    ``historyN``: N lines already in every box's log, so tails are full as after a day); ``on_result(out)`` after every run
    (the caller saves partial results: a 1,000-host run takes minutes)."""
    import subprocess
    import sys
    import tempfile

    from benchmarks.common import ROOT, run_worker

    # gpudash prefers AES-GCM itself; the experiment is asyncssh's default cipher
    chacha = "chacha20-poly1305@openssh.com"
    # (hosts, interval, cipher, UI, GPUs per box); the last: 8-GPU nodes, 8 lines per sample
    # ``floor``: the same SSH traffic with every answer dropped (see start_floor)
    runs = [(10, 2.0, None, True, 1, False), (100, 2.0, None, True, 1, False), (100, 2.0, None, False, 1, False),
            (100, 2.0, chacha, False, 1, False), (100, 2.0, None, False, 8, False)]
    if full:
        runs += [(500, 2.0, None, True, 1, False), (500, 2.0, None, False, 1, False), (500, 2.0, None, False, 1, True),
                 (1000, 1.0, None, True, 1, False), (1000, 1.0, None, False, 1, False)]
    runs = [r + (False, False, False, 0) for r in runs]  # … standard loop, CPython's GC, padded, history
    if only:
        runs = []
        for item in only.split(","):
            f = item.split(":")
            gpus = next((int(x[4:]) for x in f[2:] if x.startswith("gpus")), 1)
            history = next((int(x[7:]) for x in f[2:] if x.startswith("history")), 0)
            runs.append((int(f[0]), float(f[1]), chacha if "chacha" in f[2:] else None,
                         "noui" not in f[2:] and "floor" not in f[2:], gpus, "floor" in f[2:],
                         "asyncio" in f[2:], "cpythongc" in f[2:], "padded" in f[2:], history))
    seconds = 10 if quick else 20
    out: dict = {}
    print("  (b) per-operation costs (no network)", flush=True)
    out["costs"] = run_worker("costs", ["--n", "100" if quick else "300"])
    for hosts, interval, ciphers, ui, gpus, floor, std_loop, std_gc, padded, history in runs:
        d = Path(tempfile.mkdtemp(prefix="gdbench-gen-"))
        gen = subprocess.Popen([sys.executable, "-m", "benchmarks.loadgen", "--dir", str(d),
                                "--gpus", str(gpus), *(["--ignore-padding"] if padded else []),
                                "--history", str(history)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(d / "gen.log", "wb"))
        try:
            end = time.monotonic() + 30
            while not (d / "port").exists():
                if gen.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"load generator did not start: {(d / 'gen.log').read_text()[-2000:]}")
                time.sleep(0.05)
            key = (f"{hosts}@{interval:g}s" + (f" ×{gpus} GPUs" if gpus > 1 else "")
                   + (" chacha20" if ciphers else "")
                   + (" floor: SSH only, answers dropped" if floor else "" if ui else " no UI")
                   + (" asyncio loop" if std_loop else "") + (" CPython GC" if std_gc else "")
                   + (" generator pads" if padded else "") + (f", logs of {history:,} lines" if history else ""))
            print(f"  (b) {key}", flush=True)
            out[key] = run_worker("scale", [
                "--hosts", str(hosts), "--interval", str(interval), "--seconds", str(seconds),
                "--gen-dir", str(d), "--gen-pid", str(gen.pid), "--gpus", str(gpus), *(["--ui"] if ui else []),
                *(["--ciphers", ciphers] if ciphers else []), *(["--floor"] if floor else []),
                *(["--loop", "asyncio"] if std_loop else []), *(["--gc", "default"] if std_gc else []),
            ], timeout=900)
            if on_result is not None:
                on_result(out)
        finally:
            gen.terminate()
            try:
                gen.wait(10)
            except subprocess.TimeoutExpired:
                gen.kill()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
