"""The load generator: ONE separate process serving N virtual boxes over real SSH on loopback.

    python -m benchmarks.loadgen --dir DIR [--port 0] [--seed 7] [--gpus 1]

It is an asyncssh server on one 127.0.0.1 port; the login name picks the box (``h0``, ``h1``, …,
any name works), so a thousand hosts need one port and no sshd. Each box is a
:class:`gpudash.demo.box.SimBox` replaying the real H100 traces of one of the demo's scenarios
(``hash(name)`` picks which; start times staggered), so gpudash's parsers, health and triage
see real formats and real dynamics. ``--gpus N`` gives every box N GPUs (the recorded GPU's lines
once per index, each with its own uuid), as on an 8-GPU node: N lines per GPU sample.

What it answers is what gpudash sends: the exec request is the session command (``/bin/sh -c
'… /bin/sh -s'``), then framed batches on stdin (see :mod:`gpudash.transport.framing`). The
generator parses each complete batch — the step keys from their start markers, the log step's
offset and byte bound from its script — and writes the framed answer (begin marker, a section
and an exit code per step, end marker; the same markers on stderr) in one write per stream.
A stream request (``render_stream``, e.g. ``nvidia-smi … -lms N``) gets one sample line every N ms;
the log follower's (gpudash.probes.logfollow) gets a record whenever the box's log grew and a
heartbeat line otherwise; both until the channel closes. Nothing is executed: the generator's CPU is SSH + framing + answers.

It writes into DIR: ``client_key`` (the key gpudash logs in with), ``known_hosts`` (for
``[127.0.0.1]:PORT``), and ``port`` when it is ready (the parent waits for that file).
It runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import binascii
import asyncio
import os
import re
import shlex
import signal
import time
import zlib
from pathlib import Path

_BATCH_END = re.compile(rb"printf '\\n@@GD:([0-9a-f]+):Z:(\d+)\\n' >&2\n")
# a step's start marker on stderr ends its printf (the first shares it with the begin marker)
_STEP = re.compile(rb"@@GD:[0-9a-f]+:S:([A-Za-z0-9_.-]+)\\n' >&2(?:; |\n)")
_STREAM = re.compile(rb"printf '\\n@@GD:([0-9a-f]+):B:0\\n'\n")
_LOG = re.compile(rb"off=(\d+); pino=([^;\n]*); max=(\d+)")
_LMS = re.compile(rb"-lms'? '?(\d+)")
_NVML_IV = re.compile(rb" (\d+(?:\.\d*)?)' </dev/null\n")


class Boxes:
    """One SimBox per login name, made on first use."""

    def __init__(self, seed: int, gpus: int = 1, history: int = 0) -> None:
        from gpudash.demo.scenarios import build

        self.scenarios = build(seed)
        if history:
            self.scenarios = [with_history(sc, history) for sc in self.scenarios]
        self.start = time.time()
        self.gpus = max(1, gpus)
        self._boxes: dict = {}

    def get(self, name: str):
        box = self._boxes.get(name)
        if box is None:
            from gpudash.demo.box import SimBox

            h = zlib.crc32(name.encode())
            sc = self.scenarios[h % len(self.scenarios)]
            box = SimBox(sc, start=self.start - (h % 300), speed=1.0)
            if self.gpus > 1:
                box = MultiGpuBox(box, self.gpus)
            self._boxes[name] = box
        return box


def with_history(sc, lines: int):
    """``sc`` with ``lines`` lines already in its log before the run starts, as a box watched
    for a day has: its first lines again, each made unique (``[earlier N]``), so the watch's
    first read fills its tail (up to 256 KiB, RAW_TAIL_LINES lines) and every re-triage
    classifies a full tail, not the ~100 lines of a fresh 70 s run."""
    import dataclasses

    from gpudash.demo.scenarios import LogScript

    first = [x for x in bytes(sc.log.data[:sc.log.size_at(60.0)]).decode(errors="replace").splitlines() if x.strip()]
    first = first or ["step 1 loss 1.0"]
    log = LogScript()
    log.add(-1.0, "".join(f"[earlier {i}] {first[i % len(first)]}\n" for i in range(lines)))
    prev = 0
    for t, end in zip(sc.log.times, sc.log.ends):
        log.add(t, bytes(sc.log.data[prev:end]).decode(errors="replace"))
        prev = end
    return dataclasses.replace(sc, log=log)


class MultiGpuBox:
    """A SimBox with ``n`` GPUs: its GPU lines (the stream's sample, the one-shot and health
    queries) once per index, each GPU with its own uuid; everything else as the box answers."""

    _PER_GPU = ("gpu", "gpu_health")

    def __init__(self, box, n: int) -> None:
        self.box, self.n = box, n
        self.sc = box.sc  # the log follower reads the box's log through it

    def answer(self, step, now: float):
        import dataclasses

        res = self.box.answer(step, now)
        if step.key not in self._PER_GPU or not res.stdout:
            return res
        lines = [ln for ln in res.stdout.split(b"\n") if ln]
        out = []
        for i in range(self.n):
            for ln in lines:
                f = ln.split(b", ")
                f[0] = str(i).encode()
                if step.key == "gpu":  # index, uuid, …: the uuid's last byte is the index
                    f[1] = f[1][:-2] + b"%02x" % i
                out.append(b", ".join(f))
        return dataclasses.replace(res, stdout=b"\n".join(out) + b"\n")


def answer_batch(box, nonce: bytes, bid: bytes, batch: bytes) -> tuple[bytes, bytes]:
    """The framed stdout/stderr of one batch, from the box's recorded traces."""
    from gpudash.transport.base import Step

    now = time.time()
    out = [b"\n@@GD:" + nonce + b":B:" + bid + b"\n"]
    err = [out[0]]
    for key in dict.fromkeys(m.group(1) for m in _STEP.finditer(batch)):
        k = key.decode()
        params: dict = {}
        if k == "log":
            m = _LOG.search(batch)
            if m:
                params = {"offset": int(m.group(1)), "max_bytes": int(m.group(3))}
        res = box.answer(Step(k, "", params=params), now)
        start = b"\n@@GD:" + nonce + b":S:" + key + b"\n"
        out += [start, res.stdout, b"\n@@GD:" + nonce + b":E:" + key + b":" + str(res.exit_code or 0).encode() + b"\n"]
        err += [start, res.stderr]
    end = b"\n@@GD:" + nonce + b":Z:" + bid + b"\n"
    out.append(end)
    err.append(end)
    return b"".join(out), b"".join(err)


def nvml_interval(stream_cmd: bytes) -> float | None:
    """The interval when a stream request starts the NVML sampler (probes/nvml_stream.py): the
    box answers it as it answers `nvidia-smi -lms` (the two print the same lines)."""
    if b"NONVML" not in stream_cmd:
        return None
    # the sampler's argument ends render_stream's quoted command: `… ' 2.0' </dev/null`. Not
    # shlex: splitting the ~22 KB request took ~45 ms per stream started, 78% of the
    # generator's CPU while 500 hosts connected (py-spy), and made it the warm-up's bottleneck.
    m = _NVML_IV.search(stream_cmd)
    return float(m.group(1)) if m else None


def follow_args(stream_cmd: bytes) -> tuple[float, float, int, int] | None:
    """(interval, heartbeat, max_bytes, offset) when a stream request starts the log follower."""
    if b"python3 -I -S -c" not in stream_cmd or b"NONVML" in stream_cmd:
        return None
    try:
        words = shlex.split(stream_cmd.decode())  # `… exec timeout -k 2 T /bin/sh -c SCRIPT …`
        script = words[words.index("-c") + 1]
        iv, hb, mx, off = shlex.split(script)[-8:-4]  # `exec python3 -I -S -c AGENT ARGS…`
        return float(iv), float(hb), int(mx), int(off)
    except (ValueError, IndexError):
        return None


def make_session_class():
    import asyncssh

    class BoxSession(asyncssh.SSHServerSession):
        boxes: Boxes

        def __init__(self) -> None:
            self._buf = bytearray()
            self._chan = None
            self._box = None
            self._stream: asyncio.Task | None = None

        def connection_made(self, chan) -> None:
            self._chan = chan

        def exec_requested(self, command: str) -> bool:
            return True

        def shell_requested(self) -> bool:
            return False  # like a real box: gpudash only ever sends exec requests

        def session_started(self) -> None:
            self._box = self.boxes.get(self._chan.get_extra_info("username") or "h0")

        def data_received(self, data: bytes, datatype) -> None:
            self._buf += data
            while True:
                m = _BATCH_END.search(self._buf)
                if m is None:
                    break
                # groups first: a match on a bytearray reads the buffer as it is NOW
                nonce, bid, batch = m.group(1), m.group(2), bytes(self._buf[: m.end()])
                del self._buf[: m.end()]
                out, err = answer_batch(self._box, nonce, bid, batch)
                self._chan.write(out)
                self._chan.write_stderr(err)
            if self._stream is None:
                s = _STREAM.search(self._buf)
                # the whole request: render_stream's two `exec … </dev/null` lines
                if s is not None and self._buf[s.end():].count(b" </dev/null\n") >= 2:
                    self._chan.write(b"\n@@GD:" + s.group(1) + b":B:0\n")
                    follow = follow_args(bytes(self._buf[s.end():]))
                    nvml = nvml_interval(bytes(self._buf[s.end():]))
                    if follow is not None:
                        coro = self._follow(*follow)
                    elif nvml is not None:
                        coro = self._samples(nvml)
                    else:
                        lms = _LMS.search(self._buf)
                        coro = self._samples(int(lms.group(1)) / 1000 if lms else 1.0)
                    self._stream = asyncio.get_running_loop().create_task(coro)
                    self._buf.clear()
            if len(self._buf) > 1 << 20:  # never grow without bound
                del self._buf[: -(1 << 16)]

        async def _samples(self, interval: float) -> None:
            from gpudash.transport.base import Step

            step = Step("gpu", "")
            try:
                while True:
                    self._chan.write(self._box.answer(step, time.time()).stdout)
                    await asyncio.sleep(interval)
            except Exception:  # noqa: BLE001 - the channel closed: the stream ends
                pass

        async def _follow(self, interval: float, heartbeat: float, max_bytes: int, offset: int) -> None:
            """The log follower (gpudash.probes.logfollow): a record when the log changed, else
            a heartbeat every `heartbeat` seconds."""
            from gpudash.transport.base import Step

            quiet = time.time()
            first = True
            try:
                while True:
                    now = time.time()
                    size = self._box.sc.log.size_at(now)
                    if first or size != offset:
                        rec = self._box.answer(Step("log", "", params={"offset": offset,
                                                                       "max_bytes": max_bytes}), now).stdout
                        head = rec.split(b"\n", 1)[0].split(b"\t")
                        offset = int(head[4]) + int(head[5])
                        self._chan.write(b"L " + binascii.b2a_base64(rec).rstrip(b"\n") + b"\n")
                        quiet, first = now, False
                    elif now - quiet >= heartbeat:
                        self._chan.write(b"H\n")
                        quiet = now
                    await asyncio.sleep(interval)
            except Exception:  # noqa: BLE001 - the channel closed: the follower ends
                pass

        def eof_received(self) -> bool:
            if self._stream is None:
                self._chan.exit(0)
            return True

        def connection_lost(self, exc) -> None:
            if self._stream is not None:
                self._stream.cancel()

    return BoxSession


async def serve(d: Path, port: int, seed: int, gpus: int = 1, *, ignore_padding: bool = False,
                history: int = 0) -> None:
    import asyncssh

    from gpudash.transport.ssh import skip_ignore_padding

    d.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(d / "client_key"))
    os.chmod(d / "client_key", 0o600)
    session_cls = make_session_class()
    session_cls.boxes = Boxes(seed, gpus, history)

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn) -> None:
            # Like OpenSSH's sshd, which sends no SSH_MSG_IGNORE (measured: none in a watch),
            # not like asyncssh, which puts one before every packet: that doubled the packets
            # the client decrypts (results before 2026-11-23 16:00; --ignore-padding).
            if not ignore_padding:
                skip_ignore_padding(conn)

        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def session_requested(self):
            return session_cls()

    server = await asyncssh.create_server(
        Server, "127.0.0.1", port, server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(
            client_key.export_public_key().decode()),
        encoding=None, keepalive_interval=0, login_timeout=60,
    )
    real_port = server.sockets[0].getsockname()[1]
    pub = host_key.export_public_key().decode().strip()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{real_port} {pub}\n")
    (d / "port.tmp").write_text(str(real_port))
    os.replace(d / "port.tmp", d / "port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="gpudash load generator (asyncssh, N virtual boxes)")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per box (8: an 8-GPU node)")
    ap.add_argument("--ignore-padding", action="store_true",
                    help="an SSH_MSG_IGNORE before every packet, as asyncssh sends and sshd does not "
                         "(how the generator served before 2026-11-23 16:00)")
    ap.add_argument("--history", type=int, default=0,
                    help="lines already in every box's log (a day's watch: full tails to re-triage)")
    a = ap.parse_args(argv)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(Path(a.dir), a.port, a.seed, a.gpus, ignore_padding=a.ignore_padding,
                      history=a.history))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
