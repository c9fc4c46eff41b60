"""What nvidia-smi itself costs on a REAL GPU box (run by hand there; needs no SSH, no textual).

    python -m benchmarks.nvsmi_cost [--seconds 12] [--json PATH]

Why: the loopback benchmarks use a stand-in `nvidia-smi` (a tiny sh script), so they cannot show
the real tool's price — one-shot queries initialise NVML every time (~20 ms of CPU on an H100),
a long-running `-lms` stream pays that once. This measures, with the exact fields gpudash asks:
- one-shot core / health / compute-apps queries: CPU and wall per call;
- one `--query-gpu … -lms N` stream: CPU per sample;
- gpudash's own GPU group through the local transport (a warm `/bin/sh -s` session, the same
  framed batch the SSH transport sends): CPU of the session's process tree per tick;
- the NVML sampler (gpudash/probes/nvml_stream.py) against `nvidia-smi -lms` at the same interval,
  in the same run: CPU per sample, and its line against nvidia-smi's, field by field;
- the whole watch at the default cadences through the local transport, NVML sampler on and off:
  the CPU gpudash costs this box, in % of a core (sshd's own share is measured on loopback by
  benchmarks/tick.py, which has no GPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.procstat import tree  # noqa: E402


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_shot(args: list[str], n: int) -> dict:
    walls = []
    c0 = children_cpu()
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    cpu = (children_cpu() - c0) / n
    return {"cpu_ms": cpu * 1e3, "wall_ms_median": statistics.median(walls) * 1e3, "n": n}


def stream(args: list[str], seconds: float) -> dict:
    """CPU per sample in the steady state: the stream's own CPU between its first and last line
    (read from /proc), so NVML's start-up is not spread over the samples."""
    from benchmarks.procstat import read_stat

    c0 = children_cpu()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = 0
    end = time.monotonic() + seconds
    at_first = at_last = None
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines += 1
        st = read_stat(p.pid)
        if st is not None:
            if at_first is None:
                at_first = st.own + st.children
            at_last = st.own + st.children
    p.terminate()
    p.wait()
    cpu = children_cpu() - c0
    steady = (at_last - at_first) / max(1, lines - 1) if at_first is not None else None
    return {"cpu_ms_total": cpu * 1e3, "samples": lines, "seconds": seconds,
            "startup_cpu_ms": at_first * 1e3 if at_first is not None else None,
            "cpu_ms_per_sample_steady": steady * 1e3 if steady is not None else None}


async def gpudash_steps(n: int) -> dict:
    """Every probe step gpudash runs, each alone n times in a warm local session: box CPU."""
    from gpudash.probes import disk, gpu, logtail, memory, processes, tmux
    from gpudash.transport.base import Step
    from gpudash.transport.local import LocalTransport

    log = "/tmp/gdbench-nvsmi.log"
    with open(log, "w") as f:
        f.write("step 1 loss 0.5\n" * 200)
    steps = [Step("true", "true"), gpu.gpu_step(), gpu.gpu_health_step(), gpu.gpu_apps_step(),
             disk.df_bytes_step(["/"]), disk.df_inodes_step(["/"]), memory.memory_step(None),
             tmux.tmux_step(), processes.processes_step("train"),
             logtail.log_step(log, os.path.getsize(log), None)]
    t = LocalTransport()
    await t.run([steps[0]], deadline=10)
    me = os.getpid()

    def box() -> float:
        return sum(s.own + s.children for s in tree(me) if s.pid != me) + children_cpu()

    out = {}
    for step in steps:
        b0 = box()
        for _ in range(n):
            await t.run([step], deadline=20)
        out[step.key] = (box() - b0) / n * 1e3
    await t.close()
    return out


def nvml_vs_nvsmi(q: list[str]) -> dict:
    """One nvidia-smi line and the sampler's first line, parsed; the fields that differ (the
    readings that move between two looks, such as power, may)."""
    from gpudash.probes.gpu import parse_gpu_line
    from gpudash.probes.nvml_stream import nvml_stream_step

    a = subprocess.run(q, capture_output=True, timeout=30).stdout.splitlines()[0]
    p = subprocess.Popen(["/bin/sh", "-c", nvml_stream_step(200).script], stdout=subprocess.PIPE)
    b = p.stdout.readline().rstrip(b"\n")
    p.kill()
    p.wait()
    sa, sb = parse_gpu_line(a), parse_gpu_line(b)
    differ = {f: [getattr(sa, f), getattr(sb, f)] for f in sa.__dataclass_fields__
              if sb is None or getattr(sa, f) != getattr(sb, f)} if sa else {"unparsed": True}
    return {"nvidia_smi": a.decode(), "nvml": b.decode(), "fields_that_differ": differ}


async def gpudash_watch(seconds: float, nvml: bool) -> dict:
    """HostWatcher at the default cadences over the local transport: the box CPU of everything
    it starts (this process's children and theirs), in % of one core, after a warm-up."""
    from gpudash.transport.local import LocalTransport
    from gpudash.watch.host import HostWatcher
    from gpudash.watch.spec import Cadence, WatchSpec

    log = "/tmp/gdbench-watch.log"
    with open(log, "w") as f:
        f.write("step 1 loss 0.5\n" * 200)
    spec = WatchSpec(name="box", transport="local", log=log, pgrep="train", tmux_session="train",
                     mounts=("/",), cadence=Cadence(), gpu_nvml=nvml)
    t = LocalTransport()
    w = HostWatcher(spec, t)
    me = os.getpid()

    def box() -> float:
        return sum(s.own + s.children for s in tree(me) if s.pid != me) + children_cpu()

    task = asyncio.create_task(w.run())
    await asyncio.sleep(15)  # every loop started, the streams and the log follower up
    b0, t0 = box(), time.perf_counter()
    await asyncio.sleep(seconds)
    b1, t1 = box(), time.perf_counter()
    source, following = w.gpu_source, w.log_following
    identified, stream_apps = w._job_identified(), w._stream_apps
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await t.close()
    return {"box_cpu_pct": (b1 - b0) / (t1 - t0) * 100, "seconds": t1 - t0, "gpu_source": source,
            "log_followed": following, "gpus": len(w.gpus),
            "job_identified": identified, "apps_from_sampler": stream_apps,
            "apps": len(w.apps or ())}


async def gpudash_group(ticks: int, interval: float) -> dict:
    from gpudash.probes import gpu
    from gpudash.transport.local import LocalTransport

    t = LocalTransport()
    steps = [gpu.gpu_step(), gpu.gpu_health_step()]
    await t.run(steps, deadline=10)  # warm the session
    me = os.getpid()

    def box() -> float:  # the session's processes (not this Python): children of this pid
        sts = tree(me)
        return sum(s.own + s.children for s in sts if s.pid != me)

    b0, c0 = box(), children_cpu()
    walls = []
    for _ in range(ticks):
        s = time.perf_counter()
        res = await t.run(steps, deadline=10)
        walls.append(time.perf_counter() - s)
        assert all(r.exit_code == 0 for r in res.values()), res
        await asyncio.sleep(interval)
    b1, c1 = box(), children_cpu()
    await t.close()
    return {"box_cpu_ms_per_tick": ((b1 - b0) + (c1 - c0)) * 1e3 / ticks,
            "wall_ms_median": statistics.median(walls) * 1e3, "ticks": ticks}


def nvml_streams(nvsmi: list[str], seconds: float) -> dict:
    """The sampler and `nvidia-smi -lms` side by side, at 2 s (as gpudash runs them) and at
    100 ms (200 samples: /proc counts CPU in 10 ms ticks, so many samples give the fine figure)."""
    import threading

    from gpudash.probes.nvml_stream import nvml_stream_step

    out: dict = {}

    def run(key: str, args: list[str], secs: float) -> None:
        out[key] = stream(args, secs)

    for ms, secs in ((2000, seconds * 5), (100, seconds * 2)):
        pair = [threading.Thread(target=run, args=(f"stream_lms{ms}_same_run", nvsmi + ["-lms", str(ms)], secs)),
                threading.Thread(target=run, args=(f"stream_nvml{ms}", ["/bin/sh", "-c", nvml_stream_step(ms).script], secs))]
        for th in pair:
            th.start()
        for th in pair:
            th.join()
    return out


JOB_TAG = "gdbench-train-job"


def start_job() -> None:
    """A run holding GPU memory, its command line matching the watch's `pgrep` ("train"), as a
    daemon: not a child of this process, so its CPU (a torch import) is not counted as gpudash's."""
    code = "import torch, time; x = torch.empty(2**28, device='cuda'); time.sleep(900)"
    subprocess.run(["/bin/sh", "-c", f"nohup python3 -c {code!r} {JOB_TAG} >/dev/null 2>&1 &"],
                   check=True)
    for _ in range(120):  # until it holds its 1 GiB tensor (not only its CUDA context)
        r = subprocess.run(["nvidia-smi", "--query-compute-apps=used_memory",
                            "--format=csv,noheader,nounits"], capture_output=True, text=True)
        if any(w.isdigit() and int(w) >= 1024 for w in r.stdout.split()):
            time.sleep(1)
            return
        time.sleep(0.5)
    raise RuntimeError("the GPU job did not start")


def stop_job() -> None:
    subprocess.run(["pkill", "-f", JOB_TAG])


def blocks_vs_nvsmi(q_apps: list[str], q_health: list[str]) -> dict:
    """`nvidia-smi --query-compute-apps` and the health query beside the sampler's apps and
    health blocks (nvidia-smi before and after it: a value that moved in between shows)."""
    from gpudash.probes.nvml_stream import nvml_stream_step

    def nvsmi(q):
        return subprocess.run(q, capture_output=True, timeout=30).stdout.decode().strip().splitlines()

    before = {"apps": nvsmi(q_apps), "health": nvsmi(q_health)}
    p = subprocess.Popen(["/bin/sh", "-c", nvml_stream_step(200).script], stdout=subprocess.PIPE)
    got: dict = {}
    for _ in range(60):
        line = p.stdout.readline()
        for head, key in ((b"APPS ", "apps"), (b"HEALTH ", "health")):
            if line.startswith(head):
                n = line[len(head):].strip()
                got[key] = [p.stdout.readline().decode().rstrip("\n")[2:]
                            for _ in range(int(n) if n.isdigit() else 0)]
        if len(got) == 2:
            break
    p.kill()
    p.wait()
    after = {"apps": nvsmi(q_apps), "health": nvsmi(q_health)}
    return {k: {"nvidia_smi": before[k], "nvml": got.get(k), "nvidia_smi_after": after[k],
                "equal": before[k] == got.get(k) == after[k]} for k in ("apps", "health")}


PARTS = ("nvsmi", "nvml", "apps", "watch")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--json", help="write the results here (keys already in the file that this "
                                   "run did not measure are kept)")
    ap.add_argument("--watch-seconds", type=float, default=60.0,
                    help="length of each whole-watch window (NVML sampler on, then off)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="what to measure: nvsmi (nvidia-smi itself and gpudash's steps), nvml "
                         "(the sampler against nvidia-smi), apps (its compute-apps list against "
                         "nvidia-smi's, a GPU job running), watch (the whole watch, no job and "
                         "with a GPU job running)")
    a = ap.parse_args(argv)
    parts = set(a.parts.split(","))
    if shutil.which("nvidia-smi") is None:
        print("no nvidia-smi here", file=sys.stderr)
        return 2
    from gpudash.probes.gpu import APPS_FIELDS, CORE_FIELDS, HEALTH_FIELDS

    def q(flag, fields):
        return ["nvidia-smi", f"{flag}={','.join(fields)}", "--format=csv,noheader,nounits"]

    out = {
        "machine": platform.node(),
        "gpu": subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip(),
        "cores": os.cpu_count(),
    }
    if "nvsmi" in parts:
        out |= {
            "one_shot_core": one_shot(q("--query-gpu", CORE_FIELDS), a.n),
            "one_shot_health": one_shot(q("--query-gpu", HEALTH_FIELDS), a.n),
            "one_shot_apps": one_shot(q("--query-compute-apps", APPS_FIELDS), a.n),
            "stream_lms500": stream(q("--query-gpu", CORE_FIELDS) + ["-lms", "500"], a.seconds),
            "stream_lms2000": stream(q("--query-gpu", CORE_FIELDS) + ["-lms", "2000"], a.seconds * 2),
            "gpudash_gpu_group_local": asyncio.run(gpudash_group(a.n, 0.2)),
            "gpudash_step_box_cpu_ms": asyncio.run(gpudash_steps(a.n)),
        }
    if "nvml" in parts or "apps" in parts:
        if "nvml" in parts:
            out["nvml_vs_nvidia_smi"] = nvml_vs_nvsmi(q("--query-gpu", CORE_FIELDS))
        start_job()  # one compute app, so the sampler's per-sample apps check has one to list
        try:
            blocks = blocks_vs_nvsmi(q("--query-compute-apps", APPS_FIELDS),
                                     q("--query-gpu", HEALTH_FIELDS))
            out["nvml_apps_vs_nvidia_smi"] = blocks["apps"]
            out["nvml_health_vs_nvidia_smi"] = blocks["health"]
            if "nvml" in parts:
                out |= nvml_streams(q("--query-gpu", CORE_FIELDS), a.seconds)
        finally:
            stop_job()
    if "watch" in parts:
        for job in (False, True):
            if job:
                start_job()
            try:
                for nvml in (True, False):
                    key = f"gpudash_watch_{'nvml' if nvml else 'nvidia_smi'}{'_job' if job else ''}"
                    out[key] = asyncio.run(gpudash_watch(a.watch_seconds, nvml))
            finally:
                if job:
                    stop_job()
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        try:
            with open(a.json) as f:
                out = json.load(f) | out
        except (OSError, ValueError):
            pass
        with open(a.json, "w") as f:
            f.write(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
