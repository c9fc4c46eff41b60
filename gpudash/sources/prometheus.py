"""A Prometheus server as a source of GPU, disk/inode and memory samples for a whole fleet.

:meth:`PrometheusSource.refresh` asks ONE PromQL query per metric for every host at once
(dcgm-exporter's DCGM_FI_DEV_* and node_exporter's filesystem/memory series, plus ``up == 0``),
and returns the same typed samples an SSH probe yields, per host. Requests run in a small thread
pool (urllib), concurrently, each with a socket timeout, the whole refresh under one deadline; the
JSON is parsed off the event loop so a TUI never stalls on a big fleet. Consecutive failures back
off exponentially (:meth:`retry_delay`).

Credentials are read by the caller (:func:`read_credentials`) from a file or an environment
variable, never inline; they are held only in the client's request headers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gpudash.model import LinkStatus, ProbeError, Reason
from gpudash.sources.prom_data import PromHistory, PromHostData, assemble, assemble_history
from gpudash.sources.prom_http import PromClient
from gpudash.sources.promql import (
    FAMILY, FS_METRICS, GPU_METRICS, MEM_METRICS, HostMapping, down_query, instant_query,
    parse_query, parse_range, parse_scrape_interval, promql_string, regex_literal,
)
from gpudash.transport.base import TransportError

__all__ = ["PromHistory", "PromHostData", "PrometheusSource", "read_credentials"]

METRICS = (*GPU_METRICS, *FS_METRICS, *MEM_METRICS)
# the metric whose answer decides whether a family was read this round
ANCHOR = {"gpu": "DCGM_FI_DEV_GPU_UTIL", "disk": "node_filesystem_size_bytes",
          "memory": "node_memory_MemTotal_bytes"}
HISTORY_POINTS = 300  # at most per GPU per history query (Prometheus itself caps at 11,000)
BACKOFF_MAX = 60.0


class PrometheusSource:
    kind = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        host_label: str = "Hostname",
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 5.0,
        label_map: Mapping[str, str] | None = None,
        include_fstypes: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        workers: int = 4,
    ) -> None:
        self.client = PromClient(url, token=token, basic_auth=basic_auth, timeout=timeout)
        self.url = self.client.base
        self.timeout = float(timeout)
        self.mapping = HostMapping(host_label, dict(label_map or {}))
        self.include_fstypes = tuple(include_fstypes)
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gpudash-prom")
        self._queries = {m: instant_query(m, host_label, self.include_fstypes) for m in METRICS}
        #: the server as a link: reachable or not, why, since when
        self.link = LinkStatus(ok=True)
        #: families ("gpu", "disk", "memory") whose anchor query was answered in the last refresh;
        #: a family that was not answered is "no news", not "absent"
        self.answered: frozenset[str] = frozenset()
        #: per metric: why its query failed in the last refresh
        self.errors: dict[str, str] = {}
        #: host → why Prometheus cannot scrape it (from ``up == 0``)
        self.down: dict[str, str] = {}
        self.failures = 0

    def __repr__(self) -> str:
        return f"PrometheusSource({self.url!r})"

    # ------------------------------------------------------------------ refresh

    async def refresh(self) -> dict[str, PromHostData]:
        """Every host's latest samples. Raises TransportError when the server gave no usable
        answer at all (the link is then marked down); a single failed metric only leaves its
        fields unread (``errors``, ``answered``)."""
        now = self.clock()
        names = [*METRICS, "up"]
        exprs = [*(self._queries[m] for m in METRICS), down_query()]
        try:
            async with asyncio.timeout(self.timeout + 2.0):
                got = await asyncio.gather(*(self._run(self._query_blocking, e) for e in exprs),
                                           return_exceptions=True)
        except TimeoutError:
            got = [TransportError(Reason.TIMEOUT, f"Prometheus at {self.client.where} did not "
                                  f"answer within {self.timeout + 2.0:g} s")] * len(exprs)
        answers, errors, first_error = {}, {}, None
        for name, res in zip(names, got):
            if isinstance(res, BaseException) and not isinstance(res, Exception):
                raise res  # cancellation
            if isinstance(res, TransportError):
                err = ProbeError(res.reason, res.message)
            elif isinstance(res, Exception):
                err = ProbeError(Reason.PROBE_ERROR, f"{type(res).__name__}")
            else:
                err = res if isinstance(res, ProbeError) else None
            if err is not None:
                errors[name] = err.message or err.reason.value
                first_error = first_error or err
            elif name != "up":
                answers[name] = res
        self.errors = errors
        if not answers:
            err = first_error or ProbeError(Reason.PROBE_ERROR, "no answer")
            self.answered = frozenset()
            self.down = {}
            self._down(err.reason, err.message)
            raise TransportError(err.reason, err.message)
        self._up(now)
        self.answered = frozenset(f for f, m in ANCHOR.items() if m in answers)
        up = got[-1]
        self.down = self._down_hosts(up[0]) if isinstance(up, tuple) else {}
        return await self._run(assemble, answers, self.mapping, now)

    def _query_blocking(self, expr: str):
        status, body = self.client.get("/api/v1/query", {"query": expr})
        return parse_query(body, status)

    def _down_hosts(self, series) -> dict[str, str]:
        out = {}
        for s in series:
            host = self.mapping.host_of(s.labels)
            if host is not None:
                inst = s.labels.get("instance", "?")
                job = s.labels.get("job", "?")
                out[host] = f"Prometheus cannot scrape {inst} (job {job})"
        return out

    # ------------------------------------------------------------------ history

    async def history(self, host: str, seconds: float, *, step: float | None = None) -> PromHistory | None:
        """Util and memory-used % per GPU of one host over the last ``seconds`` (sparklines on
        open). None when Prometheus has no GPU series for it."""
        value = self.mapping.label_value(host)
        matchers = (f"{self.mapping.host_label}={promql_string(value)}",
                    f"instance=~{promql_string(regex_literal(value) + '(:[0-9]+)?')}")
        for m in matchers:
            found = await self._history({"DCGM_FI_DEV_GPU_UTIL": m, "DCGM_FI_DEV_FB_USED": m,
                                         "DCGM_FI_DEV_FB_FREE": m}, seconds, step)
            if host in found:
                return found[host]
        return None

    async def history_all(self, seconds: float, *, step: float | None = None) -> dict[str, PromHistory]:
        """The same for every host: one range query per metric for the whole fleet."""
        return await self._history({"DCGM_FI_DEV_GPU_UTIL": "", "DCGM_FI_DEV_FB_USED": "",
                                    "DCGM_FI_DEV_FB_FREE": ""}, seconds, step)

    async def _history(self, metrics: dict[str, str], seconds: float, step: float | None):
        step = max(float(step or 0.0), seconds / HISTORY_POINTS, 1.0)
        points = max(1, int(seconds // step))
        end = self.clock()
        start = end - (points - 1) * step
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}

        def one(metric: str, matcher: str):
            expr = f"{metric}{{{matcher}}}" if matcher else metric
            status, body = self.client.get("/api/v1/query_range", {"query": expr, **params})
            return parse_range(body, status)

        async with asyncio.timeout(self.timeout + 2.0):
            got = await asyncio.gather(*(self._run(one, m, sel) for m, sel in metrics.items()))
        for g in got:
            if isinstance(g, ProbeError):
                raise TransportError(g.reason, g.message)
        util, used, free = got
        return await self._run(assemble_history, util, used, free, self.mapping, start, step, points)

    # ------------------------------------------------------------------ misc

    async def scrape_interval(self, jobs=None) -> float | None:
        """The longest scrape interval among Prometheus's active targets (of ``jobs`` when
        given), in seconds; None when it does not say."""
        def fetch():
            status, body = self.client.get("/api/v1/targets", {"state": "active"})
            return parse_scrape_interval(body, status, jobs)

        try:
            async with asyncio.timeout(self.timeout + 2.0):
                return await self._run(fetch)
        except (TransportError, TimeoutError):
            return None

    def retry_delay(self, interval: float) -> float:
        """Seconds to the next refresh: the interval, doubled per consecutive failure (max 60 s)."""
        if self.failures <= 0:
            return interval
        return min(BACKOFF_MAX, interval * 2 ** min(self.failures, 8))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _down(self, reason: Reason, message: str) -> None:
        self.failures += 1
        now = self.clock()
        since = self.link.since if not self.link.ok and self.link.since else now
        self.link = LinkStatus(ok=False, reason=reason, message=message, since=since,
                               last_ok=self.link.last_ok)

    def _up(self, now: float) -> None:
        self.failures = 0
        since = self.link.since if self.link.ok and self.link.since else now
        self.link = LinkStatus(ok=True, since=since, last_ok=now)


def read_credentials(token_file: str | os.PathLike | None = None, token_env: str | None = None,
                     basic_auth_file: str | os.PathLike | None = None,
                     environ: Mapping[str, str] | None = None) -> tuple[str | None, tuple[str, str] | None]:
    """(bearer token, (user, password)) from where the config says they live. Raises ValueError
    naming the file or variable — never its content."""
    env = os.environ if environ is None else environ
    token = None
    if token_file:
        token = _read_secret(Path(token_file)).strip()
        if not token:
            raise ValueError(f"the Prometheus token file {token_file} is empty")
    elif token_env:
        token = (env.get(token_env) or "").strip()
        if not token:
            raise ValueError(f"the environment variable {token_env} (Prometheus token) is not set")
    basic = None
    if basic_auth_file:
        text = _read_secret(Path(basic_auth_file)).strip("\r\n")
        user, sep, password = text.partition(":")
        if not sep or not user or "\n" in text:
            raise ValueError(f"{basic_auth_file} must hold one line `user:password`")
        basic = (user, password)
    return token, basic


def _read_secret(path: Path) -> str:
    path = path.expanduser()
    try:
        with open(path, "rb") as fh:
            data = fh.read(65537)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > 65536:
        raise ValueError(f"{path} is too large for a credential")
    return data.decode("utf-8", "replace")
