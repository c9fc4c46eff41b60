"""(a) One host's steady-state tick (GPU + disk + jobs + log tail), one variant per process.

    python -m benchmarks.tick --variant V --box BOX.json --n N --out OUT.json

Variants (all against the same real sshd on loopback, the same box user with the slow rc):
- ``gpudash``      the HostWatcher over SshTransport, warm: one tick = the gpu, disk, jobs and log
                   groups' rounds at once (each group one framed batch in a long-lived
                   ``/bin/sh -s`` session), then ``refresh()`` (health, triage) — every probe on;
- ``ssh_per_poll`` OpenSSH's ``ssh`` client, a new connection per tick, running the same probe
                   steps joined into one command (``/bin/sh -c STEP; …``), as people script it;
- ``gpustat_web``  asyncssh, one connection, a NEW exec channel per poll, GPU query only;
- ``floor_true``   a bare ``true`` step on gpudash's warm session (framing + one fork: the floor);
- ``rtt``          ``echo`` on a raw warm ``/bin/sh -s`` channel (no fork: the round trip alone);
- ``own``          the same combined command run by ``/bin/sh`` right on the box, no SSH: the
                   remote commands' own time and CPU;
- ``framing``      the every-probe tick's batches, framed as gpudash frames them, run by
                   ``/bin/sh -s`` right on the box (no SSH), against the same batches with every
                   step under its own ``/bin/sh -c`` and with no remote ``timeout``: what the
                   framing itself costs the box;
- ``transport``    the every-probe tick's batches on gpudash's transport, as the rounds send them
                   (concurrently), their answers split into steps and nothing more: no parsing, no
                   health, no triage. The transport's share of the ``gpudash`` tick;
- ``gpu_stream``   gpudash's ``nvidia-smi … -lms`` stream step on the warm connection: per sample;
- ``cadence``      the watcher's own loops at the default cadences for ``--seconds``: what a day
                   in a tmux pane costs, per second.

Measured per tick: wall latency; client CPU (``time.process_time`` of this process plus
``RUSAGE_CHILDREN`` for the ``ssh`` client); box CPU (sshd's process tree, see
:mod:`benchmarks.procstat`), read before and after the measured ticks and divided.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import subprocess
import sys
import time

from benchmarks.common import SshCounter, children_cpu, median, pct, write_out
from benchmarks.procstat import reaped_tree_cpu, rss_mb
from gpudash import loop as gl

GROUPS = ("gpu", "disk", "jobs", "log")
COUNTER = SshCounter()


class Box:
    def __init__(self, path: str) -> None:
        with open(path) as f:
            d = json.load(f)
        self.__dict__.update(d)

    def cpu(self) -> float:
        return reaped_tree_cpu(self.sshd_pid)

    def idle(self, within: float = 5.0) -> None:
        """Wait until sshd reaped every per-connection process (their CPU is then counted)."""
        from benchmarks.procstat import tree

        end = time.monotonic() + within
        while time.monotonic() < end and len(tree(self.sshd_pid)) > 2:
            time.sleep(0.02)


def _cipher_kw() -> dict:
    import os

    algs = os.environ.get("GDBENCH_CIPHERS")
    return {"encryption_algs": algs.split(",")} if algs else {}


def transport(box: Box):
    import os

    from gpudash.transport.ssh import SshTransport

    t = SshTransport(box.target, known_hosts=box.known_hosts, client_keys=[box.identity], config=[])
    algs = os.environ.get("GDBENCH_CIPHERS")
    if algs:  # an experiment: which cipher the client prefers (see README, "where the time goes")
        orig = t._connect_kwargs
        t._connect_kwargs = lambda: {**orig(), "encryption_algs": algs.split(",")}
    return t


def watch_spec(box: Box, name: str = "box", *, every_probe: bool = True, follow: bool = True):
    from gpudash.watch.spec import Cadence, WatchSpec

    # "Every probe in one tick" includes the /proc scan every tick (procs=0); the default
    # cadences run it every 60 s while tmux shows the job (here no tmux session exists, so the
    # watcher scans every jobs round: the worst case for the box).
    cadence = Cadence(procs=0.0) if every_probe else Cadence()
    return WatchSpec(name=name, target=box.target, transport="ssh", log=box.log, pgrep="train",
                     tmux_session="train", mounts=("/",), cadence=cadence, log_follow=follow)


def combined_command(steps) -> str:
    """The probe steps as one shell command line, the way an ssh-per-poll script runs them."""
    return "; ".join(f"/bin/sh -c {shlex.quote(s.script)} </dev/null" for s in steps)


async def _watcher(box: Box, *, every_probe: bool = True, follow: bool = True):
    from gpudash.watch.host import HostWatcher

    w = HostWatcher(watch_spec(box, every_probe=every_probe, follow=follow), transport(box))
    for _ in range(3):  # connect, open the sessions, read the log up to its end
        await _tick(w)
    if not w.link.ok:
        raise RuntimeError(f"gpudash could not reach the box: {w.link}")
    return w


async def _tick(w) -> None:
    await asyncio.gather(*(w.round(g) for g in GROUPS))
    w.refresh()


def _summary(walls, cpu_client, cpu_box, n, **extra) -> dict:
    return {
        "n": n,
        "latency_ms_median": median(walls) * 1e3 if walls else None,
        "latency_ms_p95": pct(walls, 95) * 1e3 if walls else None,
        "client_cpu_ms_per_tick": cpu_client / n * 1e3,
        "box_cpu_ms_per_tick": None if cpu_box is None else cpu_box / n * 1e3,
        **extra,
    }


async def v_gpudash(box: Box, n: int, pause: float) -> dict:
    w = await _watcher(box)
    steps = [s for g in GROUPS for s in w.steps_for(g)]
    walls = []
    k0 = COUNTER.snapshot()
    b0, c0 = box.cpu(), time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        await _tick(w)
        walls.append(time.perf_counter() - t)
        await asyncio.sleep(pause)
    c1, b1 = time.process_time(), box.cpu()
    ok = w.link.ok and w.gpus and w.disks and w.log_started
    view = w.view
    await w.transport.close()
    return _summary(walls, c1 - c0, b1 - b0, n, **COUNTER.per(k0, n), steps=[s.key for s in steps],
                    ok=bool(ok), state=str(view.state) if view else None, rss_mb=rss_mb()[0])


def v_ssh_per_poll(box: Box, n: int, pause: float, steps_cmd: str) -> dict:
    walls = []
    box.idle()
    b0, c0, k0 = box.cpu(), time.process_time(), children_cpu()
    bad = 0
    for _ in range(n):
        t = time.perf_counter()
        r = subprocess.run(["ssh", "-F", box.ssh_config, box.alias, steps_cmd],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        walls.append(time.perf_counter() - t)
        bad += r.returncode not in (0, 1) or b"NVIDIA H100" not in r.stdout
        time.sleep(pause)
    c1, k1 = time.process_time(), children_cpu()
    box.idle()
    b1 = box.cpu()
    return _summary(walls, (c1 - c0) + (k1 - k0), b1 - b0, n, failed=bad,
                    ssh_client_cpu_ms_per_tick=(k1 - k0) / n * 1e3, command_bytes=len(steps_cmd))


async def v_gpustat_web(box: Box, n: int, pause: float) -> dict:
    import asyncssh

    from gpudash.probes.gpu import CORE_FIELDS

    cmd = f"nvidia-smi --query-gpu={','.join(CORE_FIELDS)} --format=csv,noheader,nounits"
    user, _, hp = box.target.partition("@")
    host, _, port = hp.rpartition(":")
    async with asyncssh.connect(host, port=int(port), username=user, known_hosts=box.known_hosts,
                                client_keys=[box.identity], config=[], **_cipher_kw()) as conn:
        for _ in range(2):
            await conn.run(cmd, encoding=None)
        walls, bad = [], 0
        k0 = COUNTER.snapshot()
        b0, c0 = box.cpu(), time.process_time()
        for _ in range(n):
            t = time.perf_counter()
            r = await conn.run(cmd, encoding=None)
            walls.append(time.perf_counter() - t)
            bad += b"H100" not in (r.stdout or b"")
            await asyncio.sleep(pause)
        c1 = time.process_time()
        await asyncio.sleep(0.05)  # the channel's bash is reaped by sshd right after exit
        b1 = box.cpu()
    return _summary(walls, c1 - c0, b1 - b0, n, **COUNTER.per(k0, n), failed=bad, command=cmd)


async def v_floor_true(box: Box, n: int, pause: float) -> dict:
    from gpudash.transport.base import Step

    t = transport(box)
    step = Step("true", "true")
    for _ in range(3):
        await t.run([step], deadline=10)
    walls = []
    k0 = COUNTER.snapshot()
    b0, c0 = box.cpu(), time.process_time()
    for _ in range(n):
        s = time.perf_counter()
        r = await t.run([step], deadline=10)
        walls.append(time.perf_counter() - s)
        assert r["true"].exit_code == 0, r
        await asyncio.sleep(pause)
    c1, b1 = time.process_time(), box.cpu()
    await t.close()
    return _summary(walls, c1 - c0, b1 - b0, n, **COUNTER.per(k0, n))


async def v_rtt(box: Box, n: int, pause: float) -> dict:
    import asyncssh

    user, _, hp = box.target.partition("@")
    host, _, port = hp.rpartition(":")
    async with asyncssh.connect(host, port=int(port), username=user, known_hosts=box.known_hosts,
                                client_keys=[box.identity], config=[], **_cipher_kw()) as conn:
        proc = await conn.create_process("exec /bin/sh -s", encoding=None)

        async def ping(i: int) -> None:
            want = f"pong{i}\n".encode()
            proc.stdin.write(f"echo pong{i}\n".encode())
            buf = b""
            while not buf.endswith(want):
                buf += await proc.stdout.read(4096)

        for i in range(5):
            await ping(i)
        walls = []
        k0 = COUNTER.snapshot()
        b0, c0 = box.cpu(), time.process_time()
        for i in range(n):
            s = time.perf_counter()
            await ping(i)
            walls.append(time.perf_counter() - s)
            await asyncio.sleep(pause)
        c1, b1 = time.process_time(), box.cpu()
        proc.stdin.write_eof()
        proc.close()
    return _summary(walls, c1 - c0, b1 - b0, n, **COUNTER.per(k0, n))


def v_own(box: Box, n: int, pause: float, steps_cmd: str) -> dict:
    import os

    env = {**os.environ, "PATH": f"{box.bin}:/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}
    walls = []
    k0 = children_cpu()
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", steps_cmd], capture_output=True, stdin=subprocess.DEVNULL,
                       env=env, timeout=60)
        walls.append(time.perf_counter() - t)
        time.sleep(pause)
    k1 = children_cpu()
    return _summary(walls, 0.0, k1 - k0, n, note="box CPU here = the commands' own CPU, no sshd, no shell rc")


def v_framing(box: Box, n: int, groups: list) -> dict:
    """Box CPU per every-probe tick of the framed batches, three ways, alternated tick by tick so
    drift hits each alike: ``shipped`` (a plain command runs under `timeout` alone, the rest under
    a marked ``/bin/sh -c``), ``sh_per_step`` (every step under its own ``/bin/sh -c``: the
    framing before 2026-11-24) and ``no_timeout`` (shipped, less the per-step remote deadline:
    what that bound costs); plus ``sh_alone``, the session shell reading an empty script."""
    import os
    import re

    from gpudash.transport import framing
    from gpudash.transport.base import marked

    env = {**os.environ, "PATH": f"{box.bin}:/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}
    shipped_command = framing._command

    def render(command) -> bytes:
        framing._command = command
        try:
            return framing.PRELUDE.encode() + b"".join(
                framing.render_batch(steps, "0123456789abcdef", i) for i, steps in enumerate(groups))
        finally:
            framing._command = shipped_command

    shipped = render(shipped_command)
    scripts = {
        "shipped": shipped,
        "sh_per_step": render(lambda script: f"/bin/sh -c {shlex.quote(marked(script))}"),
        "no_timeout": re.sub(rb"timeout -k 1 [0-9]+ ", b"", shipped),
        "sh_alone": framing.PRELUDE.encode(),
    }
    cpu = dict.fromkeys(scripts, 0.0)
    for i in range(n):
        keys = list(scripts) if i % 2 else list(reversed(scripts))
        for k in keys:
            c0 = children_cpu()
            subprocess.run(["/bin/sh", "-s"], input=scripts[k], capture_output=True, env=env, timeout=60)
            cpu[k] += children_cpu() - c0
    out = {f"{k}_ms": v / n * 1e3 for k, v in cpu.items()}
    out.update(n=n, steps=[st.key for steps in groups for st in steps],
               plain_steps=[st.key for steps in groups for st in steps
                            if not framing._command(st.script).startswith("/bin/sh -c ")])
    return out


async def _steps_by_group(box: Box) -> list:
    """Each group's steps as its round sends them: the /proc scan in a batch of its own."""
    from gpudash.watch.host import round_batches

    w = await _watcher(box)
    batches = [b for g in GROUPS if (steps := w.steps_for(g)) for b in round_batches(steps)]
    await w.transport.close()
    return batches


async def v_transport(box: Box, n: int, pause: float) -> dict:
    batches = await _steps_by_group(box)
    t = transport(box)
    for _ in range(3):
        await asyncio.gather(*(t.run(b, deadline=10) for b in batches))
    walls = []
    k0 = COUNTER.snapshot()
    b0, c0 = box.cpu(), time.process_time()
    for _ in range(n):
        s = time.perf_counter()
        results = await asyncio.gather(*(t.run(b, deadline=10) for b in batches))
        walls.append(time.perf_counter() - s)
        await asyncio.sleep(pause)
    c1, b1 = time.process_time(), box.cpu()
    await t.close()
    ran = {k: r.exit_code for res in results for k, r in res.items()}
    if any(code is None for code in ran.values()):
        raise RuntimeError(f"a step did not finish: {ran}")
    return _summary(walls, c1 - c0, b1 - b0, n, **COUNTER.per(k0, n),
                    batches=[[st.key for st in b] for b in batches])


async def v_gpu_stream(box: Box, n: int, interval_ms: int) -> dict:
    from gpudash.probes.gpu import gpu_stream_step, parse_gpu_line

    t = transport(box)
    await t.run([__import__("gpudash.transport.base", fromlist=["Step"]).Step("true", "true")], deadline=10)
    step = gpu_stream_step(interval_ms)
    gaps, got = [], 0
    b0 = c0 = None
    last = None
    async for line in t.stream(step, sample_timeout=interval_ms / 1000 * 5 + 5, lifetime=3600):
        now = time.perf_counter()
        parse_gpu_line(line)
        got += 1
        if got == 3:  # the stream is up: start measuring
            b0, c0, k0 = box.cpu(), time.process_time(), COUNTER.snapshot()
        elif got > 3:
            gaps.append(now - last)
        last = now
        if got >= n + 3:
            break
    c1, b1 = time.process_time(), box.cpu()
    await t.close()
    k = got - 3
    return {"n": k, "interval_ms": interval_ms, "gap_ms_median": median(gaps) * 1e3 if gaps else None,
            "client_cpu_ms_per_sample": (c1 - c0) / k * 1e3, "box_cpu_ms_per_sample": (b1 - b0) / k * 1e3,
            **COUNTER.per(k0, k)}


async def v_steps(box: Box, n: int) -> dict:
    """Where the box CPU of a tick goes: each step alone in the warm session, ``n`` times."""
    from gpudash.transport.base import Step

    w = await _watcher(box)
    steps = [Step("true", "true")] + [s for g in GROUPS for s in w.steps_for(g)]
    out = {}
    for step in steps:
        b0 = box.cpu()
        t0 = time.perf_counter()
        for _ in range(n):
            await w.transport.run([step], deadline=10)
        el = time.perf_counter() - t0
        out[step.key] = {"box_cpu_ms": (box.cpu() - b0) / n * 1e3, "wall_ms": el / n * 1e3}
    await w.transport.close()
    return {"n": n, "per_step": out}


async def v_cadence(box: Box, seconds: float, grow: bool = False, tmux_job: bool = False,
                    follow: bool = True) -> dict:
    """The watcher's own loops at the default cadences. ``grow``: a writer (a separate process,
    its CPU in neither count) appends a line to the log every 0.5 s, so the log is read at its
    base cadence; without it the log is quiet and its reads back off. ``tmux_job``: the run lives
    in a tmux session `train` of the box user (started before, outside the measured window), as
    gpudash's users run it: tmux vouches for the job, so the /proc scan drops to every 60 s."""
    import subprocess
    import sys

    from gpudash.transport.base import Step

    writer = None
    if grow:
        code = ("import sys, time\nf = open(sys.argv[1], 'a')\ni = 0\nwhile True:\n"
                "    i += 1; f.write(f'{{\"loss\": 1.0, \"step\": {i}}}\\n'); f.flush(); time.sleep(0.5)\n")
        writer = subprocess.Popen([sys.executable, "-c", code, box.log])
    w = await _watcher(box, every_probe=False, follow=follow)
    starts: list[float] = []
    follow_log = w._follow_log

    async def counted(interval):  # how often a follower (a python3 start on the box) began
        starts.append(time.perf_counter())
        return await follow_log(interval)

    w._follow_log = counted
    if tmux_job:
        await w.transport.run([Step("tmux_job", "tmux new-session -d -s train 'sleep 3600'",
                                    timeout=5)], deadline=10)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(3 if grow else 12)  # every loop started, first rounds done (quiet: backed off)
    # steady state: the log follower (when the box has python3) has started, its start-up
    # (~40 ms of box CPU, once an hour) is outside the window
    for _ in range(100):
        if w.log_following:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    b0, c0, t0 = box.cpu(), time.process_time(), time.perf_counter()
    k0 = COUNTER.snapshot()
    await asyncio.sleep(seconds)
    c1, b1, t1 = time.process_time(), box.cpu(), time.perf_counter()
    k1 = COUNTER.per(k0, 1)
    following = w.log_following  # the log came from the follower (probes/logfollow.py), not reads
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if tmux_job:
        await w.transport.run([Step("tmux_job", "tmux kill-session -t train", timeout=5)],
                              deadline=10)
    await w.transport.close()
    if writer is not None:
        writer.kill()
        writer.wait()
    el = t1 - t0
    c = w.spec.cadence
    return {"seconds": el, "cadence": {"gpu": c.gpu, "log": c.log, "disk": c.disk, "jobs": c.jobs,
                                       "files": c.files, "gpu_health": c.gpu_health, "procs": c.procs},
            "client_cpu_pct": (c1 - c0) / el * 100, "box_cpu_pct": (b1 - b0) / el * 100,
            "rss_mb": rss_mb()[0], "log_growing": grow, "log_wait_s": w.log_wait,
            "log_followed": following,
            "follower_starts_in_window": sum(1 for x in starts if t0 <= x <= t1),
            "tmux_job": tmux_job, "job_identified": w._job_identified(),
            "ssh_packets_in_per_s": (k1.get("ssh_packets_in") or 0) / el}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", required=True)
    ap.add_argument("--box", required=True)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--interval-ms", type=int, default=500)
    ap.add_argument("--profile", help="write cProfile stats of the whole run here (for finding hot spots)")
    ap.add_argument("--ciphers", help="the client's cipher preference, e.g. aes128-gcm@openssh.com (an experiment)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            return _main(a)
        finally:
            prof.disable()
            prof.dump_stats(a.profile)
    return _main(a)


def _main(a) -> int:
    import os

    if a.ciphers:
        os.environ["GDBENCH_CIPHERS"] = a.ciphers
    COUNTER.install()
    box = Box(a.box)
    v = a.variant
    # gpudash's variants run on the TUI's loop (gpudash/loop.py: uvloop where installed); the
    # baselines (gpustat-web's asyncssh, the raw round trip) on asyncio's, as they ship
    if v in ("ssh_per_poll", "own"):
        steps_cmd = asyncio.run(_steps_command(box))
        res = (v_ssh_per_poll if v == "ssh_per_poll" else v_own)(box, a.n, a.pause, steps_cmd)
    elif v == "framing":
        res = v_framing(box, a.n, asyncio.run(_steps_by_group(box)))
    elif v == "gpudash":
        res = gl.run(v_gpudash(box, a.n, a.pause))
    elif v == "transport":
        res = gl.run(v_transport(box, a.n, a.pause))
    elif v == "gpustat_web":
        res = asyncio.run(v_gpustat_web(box, a.n, a.pause))
    elif v == "floor_true":
        res = gl.run(v_floor_true(box, a.n, a.pause))
    elif v == "rtt":
        res = asyncio.run(v_rtt(box, a.n, a.pause))
    elif v == "gpu_stream":
        res = gl.run(v_gpu_stream(box, a.n, a.interval_ms))
    elif v == "steps":
        res = gl.run(v_steps(box, a.n))
    elif v == "cadence":
        res = gl.run(v_cadence(box, a.seconds))
    elif v == "cadence_growing":
        res = gl.run(v_cadence(box, a.seconds, grow=True))
    elif v == "cadence_polled":  # the log polled (no follower), as on a box without python3
        res = gl.run(v_cadence(box, a.seconds, follow=False))
    elif v == "cadence_growing_polled":
        res = gl.run(v_cadence(box, a.seconds, grow=True, follow=False))
    elif v == "cadence_tmux":
        res = gl.run(v_cadence(box, a.seconds, tmux_job=True))
    else:
        print(f"unknown variant {v}", file=sys.stderr)
        return 2
    res["variant"] = v
    write_out(a.out, res)
    return 0


async def _steps_command(box: Box) -> str:
    """The same steps gpudash runs in a steady tick (the log read from its current end)."""
    w = await _watcher(box)
    steps = [s for g in GROUPS for s in w.steps_for(g)]
    await w.transport.close()
    return combined_command(steps)


if __name__ == "__main__":
    raise SystemExit(main())
