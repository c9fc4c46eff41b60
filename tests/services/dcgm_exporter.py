"""A small dcgm-exporter stand-in: Prometheus text-format metrics replayed from the recorded H100
trace (tests/fixtures/h100/series-lms500-nounits.csv) for several synthetic hosts.

The values are the real ones a real H100 printed (util, memory, temperature, power, SM clock);
each synthetic GPU replays the trace from its own offset so that no two GPUs show the same row and
a mix-up between hosts or GPUs cannot pass a test. The label set is dcgm-exporter's own (`gpu`,
`UUID`, `pci_bus_id`, `device`, `modelName`, `Hostname`, `DCGM_FI_DRIVER_VERSION`); with
``instance_label`` every series also carries ``instance="HOST:9400"`` as the host's own
dcgm-exporter would get from Prometheus (scrape it with ``honor_labels: true``).

``node=True`` adds synthetic node_exporter series for the same hosts (``instance="HOST:9100"``):
the benchmark's 125 hosts cannot each run a real node_exporter.

Time is the caller's: the row shown is a pure function of ``tick`` (``advance_per_scrape`` moves it
one row per scrape, as a live exporter would). ``hidden`` hosts are left out of the output, as when
a host's exporter stops answering. Serves on 127.0.0.1:0 (http.server in a thread).

Run alone: ``python -m tests.services.dcgm_exporter --hosts 125 --gpus 8 --node`` prints its port.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TRACE = Path(__file__).resolve().parent.parent / "fixtures" / "h100" / "series-lms500-nounits.csv"
DRIVER = "580.159.04"
OFFSET = 11  # rows between two neighbouring GPUs' replay positions (68 rows: 6 GPUs all differ)

HELP = {
    "DCGM_FI_DEV_SM_CLOCK": "SM clock frequency (in MHz).",
    "DCGM_FI_DEV_GPU_TEMP": "GPU temperature (in C).",
    "DCGM_FI_DEV_POWER_USAGE": "Power draw (in W).",
    "DCGM_FI_DEV_GPU_UTIL": "GPU utilization (in %).",
    "DCGM_FI_DEV_MEM_COPY_UTIL": "Memory utilization (in %).",
    "DCGM_FI_DEV_FB_FREE": "Framebuffer memory free (in MiB).",
    "DCGM_FI_DEV_FB_USED": "Framebuffer memory used (in MiB).",
    "DCGM_FI_DEV_XID_ERRORS": "Value of the last XID error encountered.",
}


@dataclass(frozen=True)
class TraceRow:
    """One line of `nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,utilization.memory,
    memory.total,memory.used,temperature.gpu,power.draw,power.limit,clocks.sm,... -lms 500`."""

    name: str
    util: float
    mem_util: float
    mem_total: float
    mem_used: float
    temp: float
    power: float
    sm_clock: float


def load_trace(path: Path = TRACE) -> list[TraceRow]:
    rows = []
    for line in path.read_text().splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) < 11:
            continue
        rows.append(TraceRow(name=f[2], util=float(f[3]), mem_util=float(f[4]),
                             mem_total=float(f[5]), mem_used=float(f[6]), temp=float(f[7]),
                             power=float(f[8]), sm_clock=float(f[10])))
    return rows


def gpu_uuid(host: str, gpu: int) -> str:
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{host}/{gpu}"))


@dataclass(frozen=True)
class Expected:
    """What a GPU's series say at one tick, in dcgm-exporter's units."""

    host: str
    gpu: int
    uuid: str
    name: str
    util: float
    fb_used: float
    fb_free: float
    temp: float
    power: float
    sm_clock: float
    xid: int


class DcgmExporter:
    def __init__(self, hosts, gpus_per_host: int = 2, *, trace: list[TraceRow] | None = None,
                 instance_label: bool = True, node: bool = False,
                 advance_per_scrape: bool = False) -> None:
        self.hosts = list(hosts)
        self.gpus_per_host = gpus_per_host
        self.trace = trace or load_trace()
        self.instance_label = instance_label
        self.node = node
        self.advance_per_scrape = advance_per_scrape
        self.tick = 0
        self.hidden: set[str] = set()
        self.xid: dict[tuple[str, int], int] = {}
        self.scrapes = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ values

    def row(self, host: str, gpu: int, tick: int | None = None) -> TraceRow:
        h = self.hosts.index(host)
        t = self.tick if tick is None else tick
        return self.trace[(t + OFFSET * (h * self.gpus_per_host + gpu)) % len(self.trace)]

    def expected(self, host: str, gpu: int, tick: int | None = None) -> Expected:
        r = self.row(host, gpu, tick)
        return Expected(host=host, gpu=gpu, uuid=gpu_uuid(host, gpu), name=r.name, util=r.util,
                        fb_used=r.mem_used, fb_free=r.mem_total - r.mem_used, temp=r.temp,
                        power=r.power, sm_clock=r.sm_clock, xid=self.xid.get((host, gpu), 0))

    @staticmethod
    def node_values(host_index: int) -> dict[str, dict[str, float]]:
        """Synthetic node_exporter numbers for host ``host_index`` (bench only)."""
        gib = 1024**3
        return {
            "/": {"size": 500 * gib, "avail": (200 + host_index) * gib,
                  "free": (225 + host_index) * gib, "files": 32_000_000,
                  "files_free": 30_000_000 - host_index},
            "/data": {"size": 8000 * gib, "avail": (7000 - host_index) * gib,
                      "free": (7000 - host_index) * gib, "files": 500_000_000,
                      "files_free": 400_000_000},
        }

    # ------------------------------------------------------------------ text format

    def render(self) -> str:
        with self._lock:
            if self.advance_per_scrape:
                self.tick += 1
            hosts = [h for h in self.hosts if h not in self.hidden]
            exp = {(h, g): self.expected(h, g) for h in hosts for g in range(self.gpus_per_host)}
        out: list[str] = []
        fields = (
            ("DCGM_FI_DEV_SM_CLOCK", lambda e: e.sm_clock),
            ("DCGM_FI_DEV_GPU_TEMP", lambda e: e.temp),
            ("DCGM_FI_DEV_POWER_USAGE", lambda e: e.power),
            ("DCGM_FI_DEV_GPU_UTIL", lambda e: e.util),
            ("DCGM_FI_DEV_FB_FREE", lambda e: e.fb_free),
            ("DCGM_FI_DEV_FB_USED", lambda e: e.fb_used),
            ("DCGM_FI_DEV_XID_ERRORS", lambda e: e.xid),
        )
        for metric, get in fields:
            out.append(f"# HELP {metric} {HELP[metric]}")
            out.append(f"# TYPE {metric} gauge")
            for (h, g), e in exp.items():
                labels = (f'gpu="{g}",UUID="{e.uuid}",pci_bus_id="00000000:{0x18 + g:02X}:00.0",'
                          f'device="nvidia{g}",modelName="{e.name}",Hostname="{h}",'
                          f'DCGM_FI_DRIVER_VERSION="{DRIVER}"')
                if self.instance_label:
                    labels += f',instance="{h}:9400"'
                out.append(f"{metric}{{{labels}}} {_num(get(e))}")
        if self.node:
            out.extend(self._render_node(hosts))
        return "\n".join(out) + "\n"

    def _render_node(self, hosts) -> list[str]:
        out = []
        names = {"size": "node_filesystem_size_bytes", "avail": "node_filesystem_avail_bytes",
                 "free": "node_filesystem_free_bytes", "files": "node_filesystem_files",
                 "files_free": "node_filesystem_files_free"}
        for key, metric in names.items():
            out.append(f"# TYPE {metric} gauge")
            for h in hosts:
                for mount, v in self.node_values(self.hosts.index(h)).items():
                    dev = "/dev/nvme0n1p1" if mount == "/" else "/dev/md0"
                    out.append(f'{metric}{{device="{dev}",fstype="ext4",mountpoint="{mount}",'
                               f'instance="{h}:9100"}} {_num(v[key])}')
                out.append(f'{metric}{{device="tmpfs",fstype="tmpfs",mountpoint="/run",'
                           f'instance="{h}:9100"}} {_num(1e9)}')
        for metric, value in (("node_memory_MemTotal_bytes", 2 * 1024**4),
                              ("node_memory_MemAvailable_bytes", 1024**4),
                              ("node_vmstat_oom_kill", 0)):
            out.append(f"# TYPE {metric} gauge")
            for h in hosts:
                out.append(f'{metric}{{instance="{h}:9100"}} {_num(value)}')
        return out

    # ------------------------------------------------------------------ server

    def start(self) -> "DcgmExporter":
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with exporter._cond:
                    exporter.scrapes += 1
                    exporter._cond.notify_all()

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="dcgm-exporter",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, *, tick: int | None = None, hidden=None, xid=None) -> int:
        """Change what is served; returns the scrape count at the change."""
        with self._lock:
            if tick is not None:
                self.tick = tick
            if hidden is not None:
                self.hidden = set(hidden)
            if xid is not None:
                self.xid = dict(xid)
            return self.scrapes

    def wait_scrapes(self, after: int, count: int = 2, timeout: float = 20.0) -> bool:
        """Block until ``count`` scrapes began after scrape number ``after``: then at least one
        scrape that saw the change has been ingested completely."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.scrapes < after + count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _num(v: float) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--gpus", type=int, default=2)
    p.add_argument("--prefix", default="gpu-node-")
    p.add_argument("--node", action="store_true", help="also serve synthetic node_exporter series")
    p.add_argument("--advance", action="store_true", help="one trace row per scrape")
    args = p.parse_args(argv)
    width = len(str(args.hosts))
    hosts = [f"{args.prefix}{i:0{width}d}" for i in range(1, args.hosts + 1)]
    exp = DcgmExporter(hosts, args.gpus, node=args.node, advance_per_scrape=args.advance).start()
    print(exp.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        exp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
