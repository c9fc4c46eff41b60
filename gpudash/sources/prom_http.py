"""A minimal Prometheus HTTP API client on the standard library (urllib), run in worker threads.

No new dependency. Every request has a socket timeout and a size bound; redirects are refused
(urllib would replay the Authorization header to wherever a redirect points); proxies from the
environment are honoured except for loopback servers. The credentials live only in the request
headers: never in the URL, an exception, a log line or ``repr``.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
import zlib

from gpudash.model import Reason
from gpudash.sanitize import clean_field
from gpudash.transport.base import TransportError

MAX_BODY = 64 * 1024 * 1024  # one answer; 1,000 GPUs × one metric is well under 2 MiB


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        raise urllib.error.HTTPError(req.full_url, code,
                                     f"redirect refused (to {clean_field(newurl, max_len=200)})",
                                     headers, fp)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> urllib.parse.SplitResult:
    """The server's base URL, or ValueError. Credentials in the URL are refused: they would be
    printed with it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the Prometheus URL must be http://HOST[:PORT] or https://…")
    if parts.username is not None or parts.password is not None:
        raise ValueError("no credentials in the Prometheus URL: use a token file, a token "
                         "environment variable or a basic-auth file")
    return parts


class PromClient:
    def __init__(self, url: str, *, token: str | None = None,
                 basic_auth: tuple[str, str] | None = None, timeout: float = 5.0,
                 max_bytes: int = MAX_BODY) -> None:
        parts = check_url(url)
        self.base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self._headers = {"Accept": "application/json", "Accept-Encoding": "gzip",
                         "User-Agent": "gpudash"}
        if token:
            self._headers["Authorization"] = f"Bearer {token.strip()}"
        elif basic_auth:
            raw = f"{basic_auth[0]}:{basic_auth[1]}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        proxies = {} if _is_loopback(parts.hostname) else None
        self._opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler(proxies))

    def __repr__(self) -> str:  # never the headers
        return f"PromClient({self.base!r})"

    def get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        """(HTTP status, body) — an HTTP error status is an answer too (its body says why).
        Raises TransportError when there is no answer at all."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, headers=self._headers, method="GET")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, self._read(resp)
        except urllib.error.HTTPError as exc:
            try:
                body = self._read(exc)
            except (OSError, TransportError):
                body = b""
            if 300 <= exc.code < 400:
                raise TransportError(Reason.PROBE_ERROR, f"Prometheus at {self.where}: "
                                     f"{clean_field(str(exc.reason), max_len=300)}") from None
            return exc.code, body
        except (TimeoutError, socket.timeout):
            raise TransportError(Reason.TIMEOUT, f"Prometheus at {self.where} did not answer "
                                 f"within {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            why = exc.reason
            if isinstance(why, (TimeoutError, socket.timeout)):
                raise TransportError(Reason.TIMEOUT, f"Prometheus at {self.where} did not answer "
                                     f"within {self.timeout:g} s") from None
            text = why.strerror if isinstance(why, OSError) and why.strerror else str(why)
            if isinstance(why, ssl.SSLError):
                text = f"TLS: {why.reason or why}"
            raise TransportError(Reason.UNREACHABLE, f"cannot reach Prometheus at {self.where}: "
                                 f"{clean_field(str(text), max_len=200)}") from None
        except (OSError, ValueError) as exc:  # reset mid-body, bad status line, …
            raise TransportError(Reason.UNREACHABLE, f"Prometheus at {self.where}: "
                                 f"{clean_field(type(exc).__name__ + ': ' + str(exc), max_len=200)}") from None

    def _read(self, resp) -> bytes:
        data = resp.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise TransportError(Reason.PROBE_ERROR, f"Prometheus answer over "
                                 f"{self.max_bytes >> 20} MiB: not read")
        if (resp.headers.get("Content-Encoding") or "").lower() == "gzip":
            try:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = d.decompress(data, self.max_bytes + 1)
            except (zlib.error, gzip.BadGzipFile, EOFError):
                raise TransportError(Reason.PROBE_ERROR, "Prometheus answer: bad gzip") from None
            if len(data) > self.max_bytes:
                raise TransportError(Reason.PROBE_ERROR, f"Prometheus answer over "
                                     f"{self.max_bytes >> 20} MiB: not read")
        return data
