"""The webhook sink against a real local HTTP server: a critical alert arrives as the JSON Slack
and Discord accept; failures are retried, bounded, and never print the URL (it holds a token)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpudash.config import AlertsConfig
from gpudash.model import Event, State
from gpudash.notify import Notifier
from gpudash.notify.webhook import send

TOKEN = "T0KEN-8f3a9c1d"
PATH = f"/services/T000/B000/{TOKEN}"


class Hook:
    """A webhook endpoint: answers the statuses in ``script`` (then 200) and records bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.script: list[int] = []
        self.hang = threading.Event()  # set: requests block until released
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                hook.paths.append(self.path)
                hook.bodies.append(json.loads(raw))
                if hook.hang.is_set():
                    hook.release.wait(10)
                status = hook.script.pop(0) if hook.script else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"

    def __enter__(self) -> "Hook":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    with Hook() as h:
        yield h


def crit(host="gpu-a", key="disk.bytes:/data") -> Event:
    return Event(1_700_000_000.0, host, key, State.WARN, State.CRIT,
                 f"{key}: WARN → CRIT: 97.5% used, 1.2 GB free", "disk_full")


def notifier(tmp_path, url: str, **kw) -> Notifier:
    url_file = tmp_path / "hook.url"
    url_file.write_text(url + "\n")
    cfg = AlertsConfig(webhook_url_file=url_file, log_file=tmp_path / "alerts.log")
    kw.setdefault("webhook_backoff_s", 0.01)
    return Notifier(cfg, writer=lambda s: None, env={}, **kw)


async def test_critical_alert_is_posted_as_slack_and_discord_json(hook, tmp_path):
    n = notifier(tmp_path, hook.url)
    d = await n.notify([crit()])
    assert [r.ok for r in d.webhook] == [True]
    assert hook.paths == [PATH]
    body = hook.bodies[0]
    assert set(body) == {"text", "content"} and body["text"] == body["content"]
    assert body["text"].startswith("gpudash CRIT gpu-a: disk.bytes:/data: WARN → CRIT")
    assert "[disk_full]" in body["text"]


async def test_warning_is_not_posted(hook, tmp_path):
    n = notifier(tmp_path, hook.url)
    await n.notify([Event(1.0, "gpu-a", "gpu.temp:0", State.OK, State.WARN, "hot")])
    assert hook.bodies == []


async def test_many_criticals_are_one_post(hook, tmp_path):
    n = notifier(tmp_path, hook.url)
    await n.notify([crit(host=f"gpu-{i % 3}", key=f"disk.bytes:/d{i}") for i in range(7)])
    assert len(hook.bodies) == 1
    assert hook.bodies[0]["text"].startswith("gpudash: 7 alerts on 3 hosts: 7 CRIT — ")


async def test_server_errors_are_retried(hook):
    hook.script = [500, 503, 429]
    res = await send(hook.url, "x", retries=3, backoff=0.01)
    assert res.ok and res.attempts == 4 and len(hook.bodies) == 4


async def test_client_error_is_not_retried(hook):
    hook.script = [404]
    res = await send(hook.url, "x", retries=3, backoff=0.01)
    assert not res.ok and res.attempts == 1 and res.status == 404


async def test_failures_never_show_the_url(hook, tmp_path, caplog):
    hook.script = [500] * 10
    n = notifier(tmp_path, hook.url, webhook_retries=2)
    with caplog.at_level(logging.DEBUG):
        d = await n.notify([crit()])
    res = d.webhook[0]
    assert not res.ok and res.attempts == 3 and res.error == "HTTP 500"
    assert res.target == "http://127.0.0.1"
    log_text = (tmp_path / "alerts.log").read_text()
    assert "webhook to http://127.0.0.1 failed after 3 attempt(s): HTTP 500" in log_text
    for text in (log_text, caplog.text, repr(res)):
        assert TOKEN not in text and "/services/" not in text


async def test_unreachable_endpoint_is_bounded_and_redacted(tmp_path, caplog):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}{PATH}?token={TOKEN}"
    with caplog.at_level(logging.DEBUG):
        res = await send(url, "x", retries=2, backoff=0.01)
    assert not res.ok and res.attempts == 3
    assert "refused" in res.error.lower()
    assert TOKEN not in res.error and TOKEN not in caplog.text


async def test_a_hanging_endpoint_is_cut_at_the_deadline(hook):
    hook.hang.set()
    res = await send(hook.url, "x", deadline=0.5, retries=5, backoff=0.01)
    assert not res.ok
    assert TOKEN not in res.error


async def test_the_url_never_reaches_the_history_or_the_alert_log(hook, tmp_path):
    from gpudash.store import Store

    st = Store.open(tmp_path / "history.sqlite3")
    hook.script = [500]
    n = notifier(tmp_path, hook.url, store=st)
    d = await n.notify([crit()])
    assert d.webhook[0].ok and d.webhook[0].attempts == 2
    st.close()
    for f in tmp_path.iterdir():
        if f.name != "hook.url":
            assert TOKEN.encode() not in f.read_bytes(), f.name
