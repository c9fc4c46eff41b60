"""Webhook sink: a JSON POST that Slack and Discord both accept, with a deadline and retries.

The URL is a secret (Slack/Discord put the token in the path). It is read from its file or env
var at send time, never stored, and never appears in a log line or an error: everything we print
names it as ``scheme://host`` only (``redact_url``), and error text is scrubbed of the URL too.
Stdlib urllib, run in a worker thread so the event loop never blocks on the network.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

DISCORD_MAX = 2000  # Discord rejects longer "content"


class WebhookError(Exception):
    """A failed POST; ``str()`` never holds the URL."""

    def __init__(self, message: str, *, retry: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class WebhookResult:
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""
    target: str = ""  # redacted: scheme://host


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret`` → ``https://hooks.slack.com``."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname or "?"
    except ValueError:
        return "<webhook>"
    scheme = parts.scheme or "?"
    return f"{scheme}://{host}"


def scrub(text: str, url: str) -> str:
    """Remove the URL (and its path/query, the token) from any text before it is shown."""
    red = redact_url(url)
    parts = urllib.parse.urlsplit(url.strip())
    for secret in (url.strip(), parts.path + ("?" + parts.query if parts.query else ""),
                   parts.path, parts.query):
        if secret and len(secret) > 1:
            text = text.replace(secret, "…")
    if parts.password:
        text = text.replace(parts.password, "…")
    return text.replace(url, red)


def read_url(alerts, env: Mapping[str, str] | None = None) -> str | None:
    """The webhook URL from ``alerts.webhook_url_file`` (first non-empty line) or
    ``alerts.webhook_url_env``; None when unset, unreadable or not http(s)."""
    env = os.environ if env is None else env
    url = None
    path = getattr(alerts, "webhook_url_file", None)
    name = getattr(alerts, "webhook_url_env", None)
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                url = next((ln.strip() for ln in f if ln.strip()), None)
        except (OSError, UnicodeDecodeError):
            return None
    elif name:
        url = (env.get(name) or "").strip() or None
    if url is None:
        return None
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    return url if scheme in ("http", "https") else None


def body_for(text: str) -> dict:
    """Slack reads "text", Discord reads "content": send both."""
    return {"text": text, "content": text[:DISCORD_MAX]}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would replay the POST elsewhere; a webhook endpoint never needs one.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: dict, timeout: float) -> int:
    """One POST (blocking). Returns the HTTP status; raises WebhookError (URL-free text)."""
    data = json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "gpudash"})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            resp.read(4096)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        retry_after = None
        try:
            retry_after = float(exc.headers.get("Retry-After", "")) if exc.headers else None
        except ValueError:
            retry_after = None
        raise WebhookError(f"HTTP {status}", retry=status == 429 or status >= 500,
                           status=status, retry_after=retry_after) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(scrub(f"{type(exc).__name__}: {reason}", url), retry=True) from None


async def send(url: str, text: str, *, deadline: float = 15.0, retries: int = 3,
               backoff: float = 0.5) -> WebhookResult:
    """POST ``text`` with up to ``retries`` retries (exponential backoff, Retry-After
    honoured) — all inside ``deadline`` seconds. Never raises."""
    target = redact_url(url)
    start = time.monotonic()
    attempts = 0
    last = "not sent"
    status = None
    for attempt in range(retries + 1):
        left = deadline - (time.monotonic() - start)
        if left <= 0.05:
            break
        attempts += 1
        try:
            status = await asyncio.to_thread(post_json, url, body_for(text), min(left, 10.0))
            if 200 <= status < 300:
                return WebhookResult(True, attempts, status, target=target)
            last = f"HTTP {status}"
            retry_after = None
        except WebhookError as exc:
            last, status = str(exc), exc.status
            if not exc.retry:
                break
            retry_after = exc.retry_after
        pause = retry_after if retry_after is not None else backoff * (2 ** attempt)
        left = deadline - (time.monotonic() - start)
        if attempt == retries or pause >= left:
            break
        await asyncio.sleep(pause)
    return WebhookResult(False, attempts, status, error=scrub(last, url), target=target)
