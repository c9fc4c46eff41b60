"""The HTTP side of the Prometheus source, against real HTTP servers on loopback (http.server):
auth headers, refused redirects, gzip, size bounds, deadlines, backoff, credentials, and the
one-query-per-metric rule. The real Prometheus is in tests/integration/test_prometheus.py."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpudash.model import Reason
from gpudash.sources.prom_http import PromClient
from gpudash.sources.prometheus import METRICS, PrometheusSource, read_credentials
from gpudash.transport.base import TransportError

SECRET = "s3cr3t-t0ken-value"


class FakeApi:
    """A loopback HTTP server answering like the Prometheus API (or not, on purpose)."""

    def __init__(self, respond) -> None:
        self.respond = respond  # (path, params, headers) -> (status, headers, body)
        self.requests: list[tuple[str, dict, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(parts.query))
                headers = dict(self.headers.items())
                api.requests.append((parts.path, params, headers))
                status, extra, body = api.respond(parts.path, params, headers)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_factory():
    made: list[FakeApi] = []

    def make(respond) -> FakeApi:
        made.append(FakeApi(respond))
        return made[-1]

    yield make
    for a in made:
        a.close()


def vector(result: list) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def fleet_answer(n_hosts: int):
    """Every metric answered for ``n_hosts`` hosts with 8 GPUs each."""

    def respond(path, params, headers):
        q = params.get("query", "")
        name = next((m for m in METRICS if m in q), q)
        out = []
        for h in range(n_hosts):
            if name.startswith("DCGM"):
                out += [{"metric": {"__name__": name, "Hostname": f"n{h}", "gpu": str(g),
                                    "UUID": f"GPU-{h}-{g}"}, "value": [1.0, "50"]} for g in range(8)]
                out.append({"metric": {"Hostname": f"n{h}", "gpudash_age": "1"}, "value": [1.0, "1"]})
            elif name.startswith("node_filesystem"):
                out.append({"metric": {"__name__": name, "instance": f"n{h}:9100", "mountpoint": "/",
                                       "fstype": "ext4"}, "value": [1.0, "100"]})
        return 200, {"Content-Type": "application/json"}, vector(out)

    return respond


async def test_one_query_per_metric_whatever_the_fleet_size(api_factory):
    counts = []
    for n in (1, 40):
        api = api_factory(fleet_answer(n))
        src = PrometheusSource(api.url)
        data = await src.refresh()
        await src.close()
        assert len(data) == n and all(len(d.gpus) == 8 for d in data.values())
        counts.append(len(api.requests))
        assert {p for p, _, _ in api.requests} == {"/api/v1/query"}
    assert counts[0] == counts[1] == len(METRICS) + 1  # + `up == 0`


async def test_bearer_token_is_sent_and_never_shown(api_factory):
    api = api_factory(lambda p, q, h: (401, {}, b"Unauthorized"))
    src = PrometheusSource(api.url, token=SECRET)
    with pytest.raises(TransportError) as exc:
        await src.refresh()
    await src.close()
    assert api.requests[0][2]["Authorization"] == f"Bearer {SECRET}"
    assert exc.value.reason is Reason.AUTH_FAILED
    shown = " ".join([str(exc.value), exc.value.message, repr(src), repr(src.client),
                      src.link.message, json.dumps(src.errors)])
    assert SECRET not in shown
    assert not src.link.ok and src.link.reason is Reason.AUTH_FAILED


async def test_basic_auth_header(api_factory):
    api = api_factory(fleet_answer(1))
    src = PrometheusSource(api.url, basic_auth=("alice", "pw:with:colons"))
    await src.refresh()
    await src.close()
    assert api.requests[0][2]["Authorization"] == "Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM="


async def test_redirects_are_refused_so_the_token_never_travels(api_factory):
    elsewhere = api_factory(fleet_answer(1))
    api = api_factory(lambda p, q, h: (302, {"Location": f"{elsewhere.url}/api/v1/query"}, b""))
    src = PrometheusSource(api.url, token=SECRET)
    with pytest.raises(TransportError):
        await src.refresh()
    await src.close()
    assert elsewhere.requests == []


def test_gzip_answers_are_decoded_and_bounded(api_factory):
    body = vector([{"metric": {"__name__": "up", "instance": "a:1"}, "value": [1.0, "1"]}] * 50)
    api = api_factory(lambda p, q, h: (200, {"Content-Encoding": "gzip"}, gzip.compress(body)))
    assert PromClient(api.url).get("/api/v1/query", {"query": "up"}) == (200, body)
    # a gzip bomb cannot expand past the bound
    with pytest.raises(TransportError, match="MiB"):
        PromClient(api.url, max_bytes=1000).get("/api/v1/query", {"query": "up"})
    big = api_factory(lambda p, q, h: (200, {}, b"x" * 5000))
    with pytest.raises(TransportError, match="MiB"):
        PromClient(big.url, max_bytes=1000).get("/api/v1/query", {"query": "up"})


async def test_a_silent_server_is_a_timeout_and_a_closed_port_unreachable():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        src = PrometheusSource(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        with pytest.raises(TransportError) as exc:
            await src.refresh()
        assert exc.value.reason is Reason.TIMEOUT
        await src.close()
    finally:
        silent.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = PrometheusSource(f"http://127.0.0.1:{port}", timeout=1)
    with pytest.raises(TransportError) as exc:
        await src.refresh()
    assert exc.value.reason is Reason.UNREACHABLE and f"127.0.0.1:{port}" in exc.value.message
    await src.close()


async def test_consecutive_failures_back_off_exponentially_then_reset(api_factory):
    state = {"ok": False}
    api = api_factory(lambda p, q, h: fleet_answer(1)(p, q, h) if state["ok"] else (503, {}, b"busy"))
    src = PrometheusSource(api.url)
    delays = []
    for _ in range(3):
        with pytest.raises(TransportError):
            await src.refresh()
        delays.append(src.retry_delay(5.0))
    assert delays == [10.0, 20.0, 40.0]
    for _ in range(3):
        with pytest.raises(TransportError):
            await src.refresh()
    assert src.retry_delay(5.0) == 60.0  # capped
    state["ok"] = True
    await src.refresh()
    assert src.retry_delay(5.0) == 5.0 and src.link.ok
    await src.close()


async def test_one_failed_metric_leaves_only_its_family_unread(api_factory):
    ok = fleet_answer(2)

    def respond(path, params, headers):
        if "node_filesystem" in params["query"]:
            return 422, {}, b'{"status":"error","errorType":"execution","error":"too many samples"}'
        return ok(path, params, headers)

    api = api_factory(respond)
    src = PrometheusSource(api.url)
    data = await src.refresh()
    await src.close()
    assert src.answered == {"gpu", "memory"}
    assert all(d.gpus and not d.disks for d in data.values())
    assert "too many samples" in src.errors["node_filesystem_size_bytes"]


def test_urls_with_credentials_are_refused():
    with pytest.raises(ValueError, match="no credentials"):
        PrometheusSource("http://bob:pw@prom:9090")
    with pytest.raises(ValueError):
        PrometheusSource("ftp://prom")


def test_credentials_come_from_files_or_env_and_errors_never_show_them(tmp_path):
    tok = tmp_path / "token"
    tok.write_text(SECRET + "\n")
    assert read_credentials(token_file=tok) == (SECRET, None)
    assert read_credentials(token_env="PROM_T", environ={"PROM_T": SECRET}) == (SECRET, None)
    basic = tmp_path / "basic"
    basic.write_text("alice:pa:ss\n")
    assert read_credentials(basic_auth_file=basic) == (None, ("alice", "pa:ss"))
    bad = tmp_path / "bad"
    bad.write_text(SECRET)  # no `user:` part
    with pytest.raises(ValueError) as exc:
        read_credentials(basic_auth_file=bad)
    assert SECRET not in str(exc.value)
    with pytest.raises(ValueError, match="PROM_T"):
        read_credentials(token_env="PROM_T", environ={})
    with pytest.raises(ValueError, match="cannot read"):
        read_credentials(token_file=tmp_path / "missing")
