"""A private, real Prometheus server and a real node_exporter for tests and the benchmark.

Both run on free loopback ports from their own files in a temp dir (config, TSDB storage); no
system service is touched. Prometheus scrapes every second so a test sees data within seconds.
Skipped when the binaries are absent — except under CI=true, where that fails
(tests/services/require.py; `.ci/setup-prometheus.sh` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# node_exporter's default exclusions minus `overlay`: a container's root filesystem is an overlay
# and is exactly the disk a training run fills.
NODE_FS_TYPES_EXCLUDE = (
    "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    "iso9660|mqueue|nsfs|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|"
    "tracefs)$"
)


def find_binary(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name) or next(
            (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.path.exists(p)), None)
        if path:
            return path
    return None


def prometheus_binary() -> str | None:
    return find_binary("prometheus")


def node_exporter_binary() -> str | None:
    return find_binary("prometheus-node-exporter", "node_exporter")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ScrapeJob:
    """One scrape job: ``targets`` is a list of (address, extra labels)."""

    name: str
    targets: list[tuple[str, dict[str, str]]]
    honor_labels: bool = False
    interval: str | None = None

    def yaml(self) -> str:
        lines = [f"  - job_name: {json.dumps(self.name)}"]
        if self.honor_labels:
            lines.append("    honor_labels: true")
        if self.interval:
            lines.append(f"    scrape_interval: {self.interval}")
            lines.append(f"    scrape_timeout: {self.interval}")
        lines.append("    static_configs:")
        for addr, labels in self.targets:
            lines.append(f"      - targets: [{json.dumps(addr)}]")
            if labels:
                lines.append("        labels:")
                lines.extend(f"          {k}: {json.dumps(v)}" for k, v in labels.items())
        return "\n".join(lines)


@dataclass
class Process:
    """A child process we started, stopped by its own pid only."""

    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if hasattr(self, "_fh"):
            self._fh.close()

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return 0, b""


@dataclass
class NodeExporter:
    """The real prometheus-node-exporter, only the collectors gpudash reads (fast to scrape)."""

    workdir: Path
    binary: str
    port: int = 0
    process: Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "NodeExporter":
        for _ in range(3):
            self.port = free_port()
            self.process = Process([
                self.binary, f"--web.listen-address=127.0.0.1:{self.port}",
                "--collector.disable-defaults", "--collector.filesystem", "--collector.meminfo",
                "--collector.vmstat",
                f"--collector.filesystem.fs-types-exclude={NODE_FS_TYPES_EXCLUDE}",
            ], self.workdir / f"node-exporter-{self.port}.log")
            self.process.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.alive():
                status, _ = _get(f"http://{self.address}/metrics")
                if status == 200:
                    return self
                time.sleep(0.1)
            self.process.stop()
        raise RuntimeError(f"node_exporter did not start: {self.process.tail()}")

    def metrics(self) -> str:
        return _get(f"http://{self.address}/metrics")[1].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class PrometheusServer:
    """A real Prometheus with its own config and TSDB in ``workdir``."""

    workdir: Path
    binary: str
    jobs: list[ScrapeJob] = field(default_factory=list)
    scrape_interval: str = "1s"
    port: int = 0
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        body = "\n".join([
            "global:",
            f"  scrape_interval: {self.scrape_interval}",
            f"  scrape_timeout: {self.scrape_interval}",
            f"  evaluation_interval: {self.scrape_interval}",
            "scrape_configs:",
            *(j.yaml() for j in self.jobs),
        ]) + "\n"
        path = self.workdir / "prometheus.yml"
        path.write_text(body)
        return path

    def start(self, timeout: float = 30.0) -> "PrometheusServer":
        config = self.write_config()
        for _ in range(3):
            self.port = free_port()
            storage = self.workdir / f"tsdb-{self.port}"
            self.process = Process([
                self.binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                "--storage.tsdb.retention.time=1h",
            ], self.workdir / f"prometheus-{self.port}.log")
            self.process.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.alive():
                status, _ = _get(f"{self.url}/-/ready")
                if status == 200:
                    return self
                time.sleep(0.1)
            self.process.stop()
        raise RuntimeError(f"prometheus did not start: {self.process.tail()}")

    def query(self, expr: str) -> list[dict]:
        """A raw instant query (test helper: the code under test has its own client)."""
        qs = urllib.parse.urlencode({"query": expr})
        status, body = _get(f"{self.url}/api/v1/query?{qs}", timeout=5)
        if status != 200:
            return []
        return json.loads(body)["data"]["result"]

    def wait_for(self, expr: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        """Poll (bounded) until ``expr`` returns at least ``count`` series."""
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if len(result) >= count:
                return result
            time.sleep(0.2)
        raise TimeoutError(f"{expr!r}: {len(result)} of {count} series after {timeout:.0f} s; "
                           f"prometheus log: {self.process.tail() if self.process else ''}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
