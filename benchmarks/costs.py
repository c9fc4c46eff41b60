"""Where a watched host's client CPU goes: the per-operation costs behind (b), in one process.

    python -m benchmarks.costs --out OUT.json

No network: a HostWatcher over the replay transport (a demo box replaying the H100 traces) is
brought to a steady state, then each operation is timed alone (``time.process_time``, many
repetitions): ``refresh()`` (snapshot + health + triage fusion → HostView) and its parts, one
GPU sample parsed and applied, a log tick of N lines through the assembler and the metric /
progress / completion parsers, building a round's steps, framing a batch and splitting its
answer. Multiplied by how often each happens per host per second at a cadence (streamed GPU,
log, disk, jobs — every GPU sample and every round ends in a ``refresh()``), that is the budget
per host that (b) measures end to end; the asyncssh costs per packet come from (a).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.common import write_out


def timed(fn, n: int) -> float:
    """CPU seconds per call."""
    fn()
    c = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - c) / n


async def measure(n: int) -> dict:
    from gpudash.demo.box import SimBox
    from gpudash.demo.fleet import spec_for
    from gpudash.demo.scenarios import build
    from gpudash.model import LogChunk
    from gpudash.probes.gpu import parse_gpu_line
    from gpudash.probes.lines import LineAssembler
    from gpudash.transport import framing
    from gpudash.transport.replay import ReplayTransport
    from gpudash.watch.host import HostWatcher

    sc = build(7)[0]  # a healthy Hugging Face run
    box = SimBox(sc, start=time.time() - 120)
    w = HostWatcher(spec_for(sc), ReplayTransport(sc.name, box, latency=0))
    for _ in range(3):
        await w.full_round()
    snap = w.snapshot()
    out: dict = {"scenario": sc.name, "gpus": len(w.gpus), "log_lines_kept": len(w.log_lines)}
    out["refresh_ms"] = timed(w.refresh, n) * 1e3
    out["snapshot_ms"] = timed(w.snapshot, n) * 1e3
    now = time.time()
    out["analysis_view_ms"] = timed(lambda: w.analysis.view(snap, paused=False, now=now), n) * 1e3
    from gpudash.health import engine as he

    a = w.analysis
    out["health_evaluate_ms"] = timed(
        lambda: he.evaluate(snap, a.engine.thresholds, a.engine.intervals, now, context=a.context), n) * 1e3
    raw = he.evaluate(snap, a.engine.thresholds, a.engine.intervals, now, context=a.context)
    out["health_debounce_ms"] = timed(lambda: a.engine.update(snap.name, raw, now), n) * 1e3
    if a.triage is not None:
        out["triage_fuse_ms"] = timed(lambda: a._fuse(a.triage, snap), n) * 1e3
    line = box.answer(__import__("gpudash.probes.gpu", fromlist=["gpu_step"]).gpu_step(), now).stdout.splitlines()[0]
    out["gpu_line_parse_ms"] = timed(lambda: parse_gpu_line(line), n) * 1e3
    if hasattr(w, "_apply_gpus"):
        sample = parse_gpu_line(line)
        out["gpu_sample_apply_ms"] = timed(lambda: w._apply_gpus((sample,), time.time()), n) * 1e3
    # a log tick of 100 typical lines (the run's own log, repeated)
    text = bytes(sc.log.data)
    lines_100 = b"\n".join((text.splitlines() * 100)[:100]) + b"\n"
    chunk = LogChunk(path=sc.log_path, start=0, end=len(lines_100), size=len(lines_100), inode=1, data=lines_100)

    def log_tick():
        asm = LineAssembler()
        got = asm.feed(chunk)
        a.feed_log(got, chunk, time.time())

    out["log_tick_100_lines_ms"] = timed(log_tick, max(10, n // 10)) * 1e3
    out["steps_for_ms"] = {g: timed(lambda g=g: w.steps_for(g), n) * 1e3 for g in ("gpu", "log", "disk", "jobs")}
    steps = w.steps_for("disk") + w.steps_for("jobs")
    out["render_batch_ms"] = timed(lambda: framing.render_batch(steps, "0123456789abcdef", 7), n) * 1e3
    answer_out = b"\n@@GD:0123456789abcdef:B:7\n" + b"".join(
        b"\n@@GD:0123456789abcdef:S:" + s.key.encode() + b"\n" + b"x" * 200 + b"\n@@GD:0123456789abcdef:E:"
        + s.key.encode() + b":0\n" for s in steps) + b"\n@@GD:0123456789abcdef:Z:7\n"
    out["split_batch_ms"] = timed(
        lambda: framing.split_batch(steps, answer_out, b"", "0123456789abcdef", 7), n) * 1e3
    from gpudash.demo import traces

    out["retriage_ms"] = {
        "healthy": retriage(text.decode(errors="replace").splitlines(), max(5, n // 30)),
        "failing": retriage(traces.read("fail-cuda-oom.log").splitlines(), max(3, n // 100)),
    }
    out["first_read"] = first_read(max(3, n // 100))
    out["loss_history"] = loss_history()
    return out


def retriage(lines: list[str], reps: int) -> dict:
    """A day-long watch's re-triage: the log's last RAW_TAIL_LINES lines classified again after
    5 new ones, afresh and with the watch's per-line memo (ms per triage). The log's lines are
    repeated to fill the tail, each made unique (`` #i``) as a real log's step numbers make them."""
    from gpudash.triage.classifier import ScanMemo, classify
    from gpudash.watch.analysis import RAW_TAIL_LINES

    full = [f"{lines[i % len(lines)]} #{i}" for i in range(RAW_TAIL_LINES + 5 * (reps + 1))]
    texts = ["\n".join(full[5 * i:5 * i + RAW_TAIL_LINES]) for i in range(reps + 1)]
    memo = ScanMemo()
    classify(texts[0], memo=memo)
    c = time.process_time()
    for t in texts[1:]:
        classify(t, memo=memo)
    with_memo = (time.process_time() - c) / reps
    c = time.process_time()
    for t in texts[1:]:
        classify(t)
    fresh = (time.process_time() - c) / reps
    return {"lines": RAW_TAIL_LINES, "fresh": fresh * 1e3, "memo": with_memo * 1e3}


def first_read(reps: int) -> dict:
    """A watch's first read of a day-old log (its newest 256 KiB: ~4,000 lines), per scenario:
    ms of CPU through the watcher as it runs (the line assembler, the metric and progress
    parsers, then a refresh, whose first triage classifies the whole tail), against the same
    bytes merely decoded and split into lines in the same run; and the log state it leaves
    (KB per host, by tracemalloc: raw tail, display lines, metric points, triage memo)."""
    import tracemalloc

    from benchmarks.loadgen import with_history
    from gpudash.demo.box import SimBox
    from gpudash.demo.fleet import spec_for
    from gpudash.demo.scenarios import build
    from gpudash.model import LogChunk
    from gpudash.transport.replay import ReplayTransport
    from gpudash.watch.host import LOG_BYTES_PER_TICK, HostWatcher

    out = {}
    for sc in build(7):
        if sc.name not in ("loader-bound", "oom-h100"):  # a metric on every line; a failing run
            continue
        day = with_history(sc, 4000)
        data = bytes(day.log.data[:day.log.size_at(200.0)])[-LOG_BYTES_PER_TICK:]
        chunk = LogChunk(path=sc.log_path, start=0, end=len(data), size=len(data), inode=1, data=data)

        def watcher():
            w = HostWatcher(spec_for(sc), ReplayTransport(sc.name, SimBox(sc, start=time.time()), latency=0))
            w.refresh()
            return w

        def read(w):
            w._apply_log_chunk(chunk, time.time())
            w.analysis._triage_at = 0.0  # classified at this refresh, as a first one is
            w.refresh()

        cpu = []
        for _ in range(reps):
            w = watcher()
            c = time.process_time()
            read(w)
            cpu.append(time.process_time() - c)
        split = timed(lambda: data.decode("utf-8", errors="replace").splitlines(), reps * 5)
        tracemalloc.start()
        try:
            w = watcher()
            before = tracemalloc.get_traced_memory()[0]
            read(w)
            state = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        ms = min(cpu) * 1e3
        out[sc.name] = {"bytes": len(data), "lines": len(w.analysis.raw_tail), "ms": ms,
                        "split_ms": split * 1e3, "x_split": ms / (split * 1e3),
                        "metric_points": len(w.analysis.metrics), "state_kb": state / 1e3}
    return out


def loss_history() -> dict:
    """What a day-long watch remembers of one host's loss: the health context's history over its
    horizon (2.5 patrol windows, 75 minutes by default), for a run logging one loss a second and
    one logging ten, fed through ``ingest_metrics`` as the watch feeds it: the columns' bytes
    (8 a value), against the deque of ``(time, loss)`` tuples it was until 2026-11-24, built
    from the same pairs in the same run and weighed by tracemalloc."""
    import tracemalloc
    from collections import deque

    from gpudash.health.context import LOSS_SAMPLES_MAX, RunContext
    from gpudash.health.thresholds import Thresholds
    from gpudash.health.training import ingest_metrics
    from gpudash.model import MetricPoint
    from gpudash.training.series import MetricLog

    th = Thresholds()
    horizon = (th.loss_flat_windows + 0.5) * th.patrol_window_s
    out = {"horizon_s": horizon}
    for rate in (1, 10):
        n = int(rate * horizon)
        t0 = 1.7e9
        log = MetricLog(2000)
        ctx = RunContext()
        for i in range(n):
            t = t0 + i / rate
            log.append(MetricPoint(step=i, loss=2.0 / (1 + i * 1e-4) + (i % 7) * 1e-3, at=t))
            if i % 100 == 99 or i == n - 1:  # a log read every few seconds
                ingest_metrics(_Snap(log.view()), ctx, th, t)
        tracemalloc.start()
        try:
            b0 = tracemalloc.get_traced_memory()[0]
            old = deque(((t, v + 0.0) for t, v in ctx.loss_samples), maxlen=LOSS_SAMPLES_MAX)
            old_kb = (tracemalloc.get_traced_memory()[0] - b0) / 1e3
        finally:
            tracemalloc.stop()
        kept = len(ctx.loss_samples)
        cols = (ctx.loss_samples._t.buffer_info()[1] + ctx.loss_samples._v.buffer_info()[1]) * 8
        out[f"{rate}_per_s"] = {"pairs": kept, "kb": cols / 1e3, "deque_of_tuples_kb": old_kb,
                                "ratio": old_kb / (cols / 1e3) if cols else None}
        del old
    return out


class _Snap:
    """The two fields of a snapshot ``ingest_metrics`` reads."""

    def __init__(self, metrics) -> None:
        self.metrics, self.progress = metrics, None


def budget(costs: dict, a: dict | None, interval: float = 2.0) -> dict:
    """ms of client CPU per host per second in a big fleet at a GPU cadence of ``interval``
    (streamed), the log followed on the box and growing (a record a second), disk 10 s,
    jobs 15 s: one view per GPU interval (gpudash.watch.host.fleet_pacing). Log lines' own
    parsing and triage are not in it (they depend on the log; (b) measures them end to end)."""
    refreshes = 1 / interval
    rounds = 1 / 10 + 1 / 15  # disk, jobs (files has no steps by default)
    records = 1.0  # the log follower's records of a growing log
    per_round_ssh = None
    per_sample_ssh = None
    if a:
        floor = a.get("floor_true", {})
        stream = a.get("gpu_stream", {})
        per_round_ssh = floor.get("client_cpu_ms_per_tick")
        per_sample_ssh = stream.get("client_cpu_ms_per_sample")
    parts = {
        "refresh (view: health + triage fusion)": refreshes * costs["refresh_ms"],
        "GPU sample parse": (1 / interval) * costs["gpu_line_parse_ms"],
    }
    if per_round_ssh is not None:
        parts["SSH + framing per round (floor `true` batch, from (a))"] = rounds * per_round_ssh
    if per_sample_ssh is not None:
        parts["SSH per streamed GPU sample (from (a), parse included)"] = (1 / interval) * per_sample_ssh
        parts["SSH per log follower record (as a streamed sample)"] = records * per_sample_ssh
    total = sum(parts.values())
    return {"interval_s": interval, "refreshes_per_s": refreshes, "rounds_per_s": rounds,
            "stream_lines_per_s": 1 / interval + records,
            "ms_per_host_per_s": parts, "total_ms_per_host_per_s": total,
            "hosts_per_core": 1000 / total if total else None,
            "hosts_at_25pct_core": 250 / total if total else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    write_out(a.out, asyncio.run(measure(a.n)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
