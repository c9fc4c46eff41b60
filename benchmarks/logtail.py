"""(c) The log tail under a flood, over the real sshd on loopback.

    python -m benchmarks.logtail --box BOX.json --rate 50000 --seconds 30 --out OUT.json
    python -m benchmarks.logtail --writer PATH --rate R --seconds S     (the writer process)

A writer PROCESS appends numbered, fixed-length, checksummed lines (``L<seq> <payload> <crc>``)
to a log on the box: first a calm phase (1,000 lines/s) to show that only the appended bytes
travel, then the flood (``--rate`` lines/s). gpudash's HostWatcher tails it at its default log
cadence (1 s) through the SSH transport, exactly as in the product. Measured per tick: bytes
moved (the log step's output; and the SSH bytes in) against bytes appended; RSS and the
watcher's buffers (memory bound); the exact byte accounting (every byte up to the final offset
was either read or reported skipped); every line shown checked for tearing (format and checksum)
and duplication (sequence numbers strictly increasing), and every gap in the sequence matched
to a reported skip.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import zlib

from benchmarks.common import SshCounter, median, write_out
from benchmarks.procstat import rss_mb

PAYLOAD = 64
LINE_RE = re.compile(r"^L(\d{10}) ([0-9a-z]{%d}) ([0-9a-f]{8})$" % PAYLOAD)


def make_line(seq: int) -> bytes:
    payload = (f"{seq:x}" * 16)[:PAYLOAD].rjust(PAYLOAD, "z")
    crc = zlib.crc32(f"{seq}{payload}".encode())
    return f"L{seq:010d} {payload} {crc:08x}\n".encode()


LINE_LEN = len(make_line(0))


def check_line(text: str) -> int | None:
    """The line's sequence number if it is whole and intact, else None (torn / corrupt)."""
    m = LINE_RE.match(text)
    if not m or zlib.crc32(f"{int(m.group(1))}{m.group(2)}".encode()) != int(m.group(3), 16):
        return None
    return int(m.group(1))


def writer(path: str, phases: list[tuple[float, float]]) -> None:
    """Append lines at ``rate`` per second for ``seconds``, per phase, in 100 writes a second."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seq = 0
    for rate, seconds in phases:
        start, base = time.monotonic(), seq
        while True:
            el = min(time.monotonic() - start, seconds)
            upto = base + int(rate * el)
            if upto > seq:
                os.write(fd, b"".join(make_line(i) for i in range(seq, upto)))
                seq = upto
            if el >= seconds:
                break
            time.sleep(0.01)
    os.close(fd)


async def tail(box, phases, log_path: str) -> dict:
    from benchmarks.tick import transport, watch_spec
    from gpudash.watch.host import HostWatcher

    counter = SshCounter().install()
    spec = watch_spec(box)
    import dataclasses

    spec = dataclasses.replace(spec, log=log_path)
    w = HostWatcher(spec, transport(box))
    ticks: list[dict] = []
    # Every shown line is checked as it comes and only counted: keeping them (90,000 lines in a
    # 30-s flood) would put the benchmark's own memory into gpudash's RSS figure.
    seen = {"last": None, "count": 0, "torn": 0, "markers": 0, "dupes": 0, "gaps": 0}
    orig_feed = w.assembler.feed

    def feed(chunk):
        lines = orig_feed(chunk)
        for line in lines:
            if getattr(line, "marker", False):
                seen["markers"] += 1
                continue
            s = check_line(getattr(line, "raw", str(line)))
            if s is None:
                seen["torn"] += 1
                continue
            last = seen["last"]
            if last is not None:
                seen["dupes"] += s <= last
                seen["gaps"] += s > last + 1
            seen["last"], seen["count"] = s, seen["count"] + 1
        return lines

    w.assembler.feed = feed
    # A tick is one read the watcher accepted: a polled read's answer, or one record of the log
    # follower (probes/logfollow.py, the default where the box has python3). "moved" is the
    # read's output (header + path + data), as the polled step prints it and the follower sends
    # it (base64-encoded on the wire: the SSH column shows that).
    moved = {"last": 0, "ssh_at": counter.bytes_in}
    import gpudash.probes.logfollow as logfollow

    orig_line = logfollow.parse_follow_line

    def parse_line(line):
        msg = orig_line(line)
        if msg.kind == "log":
            moved["last"] = len(msg.payload)
        return msg

    logfollow.parse_follow_line = parse_line
    orig_run = w.transport.run

    async def run(steps, *, deadline):
        res = await orig_run(steps, deadline=deadline)
        if "log" in res:
            moved["last"] = len(res["log"].stdout)
        return res

    w.transport.run = run
    orig_apply = w._apply_log_chunk

    def apply(chunk, now):
        if not chunk.missing:
            k = counter.bytes_in
            ticks.append({"at": time.monotonic(), "cpu": time.process_time(), "moved": moved["last"],
                          "ssh_in": k - moved["ssh_at"], "size": os.path.getsize(log_path),
                          "data": len(chunk.data), "skipped": chunk.skipped, "reset": chunk.reset})
            moved["ssh_at"] = k
        orig_apply(chunk, now)

    w._apply_log_chunk = apply
    open(log_path, "wb").close()
    os.chmod(log_path, 0o644)
    await w.round("log")  # connect; the log is empty
    ticks.clear()
    moved["ssh_at"] = counter.bytes_in
    rss0 = rss_mb()[0]
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.logtail", "--writer", log_path,
                             "--phases", ",".join(f"{r}:{s}" for r, s in phases)])
    task = asyncio.create_task(w._loop("log", w.spec.cadence.log))
    rss_samples = []
    buffers = []
    following: list[bool] = []
    while proc.poll() is None:
        await asyncio.sleep(0.5)
        rss_samples.append(rss_mb()[0])
        buffers.append((len(w.log_lines), len(w.assembler._partial)))
        following.append(w.log_following)
    await asyncio.sleep(3 * w.spec.cadence.log)  # drain: the last appended bytes come in
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    final_size = os.path.getsize(log_path)
    await w.transport.close()

    # -- accounting
    data = sum(t["data"] for t in ticks)
    skipped = sum(t["skipped"] for t in ticks)
    exact = (w.log_offset == data + skipped == final_size) and w.log_skipped == skipped
    # -- lines: whole, never twice, every gap explained by a skip
    torn, markers, dupes, gaps = seen["torn"], seen["markers"], seen["dupes"], seen["gaps"]
    skip_events = sum(1 for t in ticks if t["skipped"])
    total_lines = final_size // LINE_LEN
    # -- per phase: bytes moved vs appended
    out_phases = []
    edges = []
    t_start = ticks[0]["at"] if ticks else time.monotonic()
    acc = 0.0
    for rate, secs in phases:
        edges.append((acc, acc + secs, rate))
        acc += secs
    prev_size = 0
    per_tick = []
    for t in ticks:
        appended = t["size"] - prev_size
        prev_size = t["size"]
        per_tick.append((t["at"] - t_start, appended, t["moved"], t["ssh_in"], t["skipped"], t["at"], t["cpu"]))
    for lo, hi, rate in edges:
        sel = [p for p in per_tick if lo + 1 <= p[0] < hi]  # skip the ticks straddling a phase edge
        if not sel:
            continue
        app = sum(p[1] for p in sel)
        mov = sum(p[2] for p in sel)
        out_phases.append({
            "rate_lines_s": rate, "ticks": len(sel),
            "appended_bytes_per_tick": app / len(sel), "moved_bytes_per_tick": mov / len(sel),
            "ssh_bytes_in_per_tick": sum(p[3] for p in sel) / len(sel),
            "moved_over_appended": mov / app if app else None,
            "skipped_bytes_per_tick": sum(p[4] for p in sel) / len(sel),
            "tick_gap_s_median": median([b[5] - a[5] for a, b in zip(sel, sel[1:])]) if len(sel) > 1 else None,
            "client_cpu_pct": ((sel[-1][6] - sel[0][6]) / (sel[-1][5] - sel[0][5]) * 100
                               if len(sel) > 1 and sel[-1][5] > sel[0][5] else None),
        })
    return {
        "followed": any(following),  # the follower carried the log (else polled reads)
        "phases": out_phases,
        "line_bytes": LINE_LEN,
        "final_size": final_size, "final_offset": w.log_offset,
        "bytes_read": data, "bytes_skipped_reported": skipped, "skip_events": skip_events,
        "accounting_exact": exact,
        "lines_written": total_lines, "lines_shown": seen["count"], "marker_lines": markers,
        "torn_lines": torn, "duplicate_or_reordered": dupes, "sequence_gaps": gaps,
        "gaps_all_explained_by_skips": gaps <= skip_events,
        "last_line_shown": seen["last"],
        "rss_mb_before": rss0, "rss_mb_max": max(rss_samples or [rss0]),
        "rss_mb_growth": max(rss_samples or [rss0]) - rss0,
        "display_lines_max": max((b[0] for b in buffers), default=0),
        "partial_line_bytes_max": max((b[1] for b in buffers), default=0),
        "tick_moved_max": max((t["moved"] for t in ticks), default=0),
        "ticks": len(ticks), "median_tick_gap_s": median(
            [b["at"] - a["at"] for a, b in zip(ticks, ticks[1:])]) if len(ticks) > 1 else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer")
    ap.add_argument("--phases", default="1000:5,50000:30", help="RATE:SECONDS,…")
    ap.add_argument("--box")
    ap.add_argument("--log")
    ap.add_argument("--out")
    ap.add_argument("--profile")
    a = ap.parse_args(argv)
    phases = [(float(r), float(s)) for r, s in (p.split(":") for p in a.phases.split(","))]
    if a.writer:
        writer(a.writer, phases)
        return 0
    from benchmarks.tick import Box

    box = Box(a.box)
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    res = asyncio.run(tail(box, phases, a.log))
    if a.profile:
        prof.disable()
        prof.dump_stats(a.profile)
    write_out(a.out, res)
    return 0


def section_c(quick: bool, sshd) -> dict:
    import json

    from benchmarks.common import run_worker

    log = sshd.box / "flood.log"
    info = json.loads((sshd.root / "box.json").read_text()) if (sshd.root / "box.json").exists() else None
    if info is None:
        info = {"target": sshd.target, "known_hosts": str(sshd.known_hosts), "identity": str(sshd.identity),
                "ssh_config": str(sshd.config), "alias": sshd.alias, "sshd_pid": sshd.pid,
                "bin": str(sshd.bin), "log": str(log)}
        (sshd.root / "box.json").write_text(json.dumps(info))
    phases = "1000:5,50000:8" if quick else "1000:8,50000:30"
    print(f"  (c) phases {phases}", flush=True)
    return run_worker("logtail", ["--box", str(sshd.root / "box.json"), "--log", str(log),
                                  "--phases", phases], timeout=300)


if __name__ == "__main__":
    raise SystemExit(main())
