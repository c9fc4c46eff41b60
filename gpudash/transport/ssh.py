"""The SSH transport: one reused asyncssh connection per host, sessions pooled on it.

What it promises the layers above (and what the tests hold it to):
- every call returns or raises within its deadline, connection and channel open included;
- a link failure is a :class:`TransportError` whose ``reason`` says which failure it was
  (unreachable, host key unknown/changed, auth, exec refused, timeout) — never a verdict on the
  job, which may be running fine behind a dead link;
- host keys are checked against ``~/.ssh/known_hosts`` unless the user opted out for this host;
- a failing host is retried with exponential backoff and jitter, not hammered;
- connection attempts across all hosts are capped (sshd drops unauthenticated connections past
  ``MaxStartups``, 10 by default), and channels per host too (``MaxSessions``, 10).

asyncssh is imported on first use: ``import asyncssh`` alone costs ~0.3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from gpudash.model import LinkStatus, Reason
from gpudash.sanitize import clean_field
from gpudash.transport.base import Step, StepResult, Transport, TransportError
from gpudash.transport.session import (
    DEFAULT_CHANNELS,
    DEFAULT_LIFETIME,
    OpenTimeout,
    SessionEnded,
    SessionPool,
    stream_lines,
)

DEFAULT_CONNECT_LIMIT = 8  # below sshd's MaxStartups (10)
DEFAULT_STREAMS = 5  # + DEFAULT_CHANNELS sessions = 8 channels, below MaxSessions (10)

_connect_limit = DEFAULT_CONNECT_LIMIT
_connect_sems: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def set_connect_limit(limit: int) -> None:
    """Cap concurrent SSH connection attempts, process-wide. Set it before connecting."""
    global _connect_limit
    _connect_limit = max(1, int(limit))
    _connect_sems.clear()


def connect_semaphore() -> asyncio.Semaphore:
    """The process-wide connect cap, one semaphore per event loop (a loop owns its waiters)."""
    loop = asyncio.get_running_loop()
    sem = _connect_sems.get(loop)
    if sem is None:
        sem = _connect_sems[loop] = asyncio.Semaphore(_connect_limit)
    return sem


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class SshTarget:
    """``host`` may be an alias from ~/.ssh/config; ``user``/``port`` None defer to it."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and self.port else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{host}{port}"


_HOST_RE = re.compile(r"[A-Za-z0-9_.:%-]+")


def parse_target(target: str) -> SshTarget:
    """Parse ``alias``, ``host``, ``user@host``, ``host:port``, ``user@host:port``,
    ``[v6addr]:port`` or ``ssh://user@host:port``. Raises ValueError on anything else."""
    t = target.strip()
    if t.startswith("ssh://"):
        t = t[len("ssh://") :].rstrip("/")
    user = None
    if "@" in t:
        user, t = t.rsplit("@", 1)
        if not user or any(c.isspace() for c in user):
            raise ValueError(f"bad user in SSH target {target!r}")
    port = None
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad SSH target {target!r}")
            port = _port(rest[1:], target)
    elif t.count(":") == 1:
        host, p = t.split(":")
        port = _port(p, target)
    else:
        host = t  # an alias, a host name, or a bare IPv6 address
    if not host or host.startswith("-") or not _HOST_RE.fullmatch(host):
        raise ValueError(f"bad host in SSH target {target!r}")
    return SshTarget(host=host, user=user, port=port)


def _port(text: str, target: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in SSH target {target!r}")
    return int(text)


# ----------------------------------------------------------------------------- link state


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


# ----------------------------------------------------------------------------- transport


class SshTransport(Transport):
    """Runs probe steps on one box over SSH."""

    kind = "ssh"
    runs_shell = True

    def __init__(
        self,
        target: str,
        *,
        connect_timeout: float = 10.0,
        login_timeout: float = 10.0,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 3,
        channels: int = DEFAULT_CHANNELS,
        max_streams: int = DEFAULT_STREAMS,
        lifetime: float = DEFAULT_LIFETIME,
        insecure_known_hosts: bool = False,
        known_hosts: str | None = None,
        client_keys: Sequence[str] | None = None,
        config: Sequence[str] | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        name: str | None = None,
        key_file: str | None = None,
    ) -> None:
        # ``name``: how the user calls the host (config), when it differs from the target;
        # ``key_file``: shorthand for ``client_keys=[key_file]``.
        super().__init__(name or target)
        self.target_text = target.strip()
        self.target = parse_target(target)
        if key_file and client_keys is None:
            client_keys = [str(key_file)]
        self.connect_timeout = connect_timeout
        self.login_timeout = login_timeout
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.max_streams = max(1, max_streams)
        self.insecure_known_hosts = insecure_known_hosts
        self._known_hosts = known_hosts
        self._client_keys = list(client_keys) if client_keys is not None else None
        self._config = list(config) if config is not None else None
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._pool = SessionPool(
            self._open_process, close_ssh_process, size=channels, lifetime=lifetime,
            on_silent_timeout=self._on_silent_timeout,
        )
        self._conn: Any = None
        self._connect_task: asyncio.Task | None = None
        self._failures = 0
        self._retry_at = 0.0  # loop time before which no new attempt is made
        self._last_error: TransportError | None = None
        self._exec_ok = False  # an exec channel ever worked on this host
        self._streams: asyncio.Semaphore | None = None
        self._connect_phase = ""
        self._link = LinkStatus()
        #: connection attempts actually made (for tests and the UI's diagnostics)
        self.connect_attempts = 0

    # ------------------------------------------------------------------ link state

    @property
    def link(self) -> LinkStatus:
        return self._link

    def _link_ok(self) -> None:
        now = time.time()
        since = self._link.since if self._link.ok and self._link.since else now
        self._link = LinkStatus(ok=True, since=since, last_ok=now)

    def _link_failed(self, reason: Reason, message: str) -> TransportError:
        message = clean_field(message, max_len=1000)  # it may quote the server (remote text)
        now = time.time()
        same = self._link.ok is False and self._link.reason is reason
        since = self._link.since if same and self._link.since else now
        if reason is Reason.UNREACHABLE:
            message = f"unreachable since {_clock(since)}: {message}"
        self._link = LinkStatus(
            ok=False, reason=reason, message=message, since=since, last_ok=self._link.last_ok
        )
        return TransportError(reason, message)

    # ------------------------------------------------------------------ connecting

    async def _connection(self, deadline_at: float) -> Any:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        loop = asyncio.get_running_loop()
        if self._connect_task is None:
            if loop.time() < self._retry_at and self._last_error is not None:
                wait = self._retry_at - loop.time()
                raise TransportError(
                    self._last_error.reason,
                    f"{self._last_error.message} (next try in {wait:.0f}s)",
                )
            task = loop.create_task(self._connect())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._connect_task = task
        try:
            async with asyncio.timeout_at(deadline_at):
                # shield: a caller's deadline must not cancel an attempt others share
                return await asyncio.shield(self._connect_task)
        except TimeoutError:
            if self._connect_phase == "queued":
                # Not this host's fault: other hosts hold every connection slot.
                raise TransportError(
                    Reason.TIMEOUT,
                    f"still waiting for one of {_connect_limit} connection slots",
                ) from None
            raise self._link_failed(
                Reason.UNREACHABLE, f"no SSH session with {self.target} before the deadline"
            ) from None

    def _connect_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = dict(
            connect_timeout=self.connect_timeout,
            login_timeout=self.login_timeout,
            keepalive_interval=self.keepalive_interval,
            keepalive_count_max=self.keepalive_count_max,
            # AES-GCM first (the rest of asyncssh's defaults stay after it): with AES-NI it costs
            # ~23% less client CPU per tick than asyncssh's default chacha20 (benchmarks/).
            encryption_algs="^aes128-gcm@openssh.com,aes256-gcm@openssh.com",
        )
        if self.target.port is not None:
            kw["port"] = self.target.port
        if self.target.user is not None:
            kw["username"] = self.target.user
        if self.insecure_known_hosts:
            kw["known_hosts"] = None  # the user opted out for this host, explicitly
        elif self._known_hosts is not None:
            kw["known_hosts"] = self._known_hosts
        if self._client_keys is not None:
            kw["client_keys"] = self._client_keys
        if self._config is not None:
            kw["config"] = self._config
        return kw

    async def _connect(self) -> Any:
        import asyncssh

        loop = asyncio.get_running_loop()
        self._connect_phase = "queued"
        try:
            async with connect_semaphore():
                self._connect_phase = "connecting"
                self.connect_attempts += 1
                # asyncssh's connect_timeout covers TCP + handshake + auth; this outer bound
                # also covers a ProxyJump hop and config/key loading.
                async with asyncio.timeout(self.connect_timeout + self.login_timeout + 5):
                    conn = await asyncssh.connect(
                        self.target.host,
                        client_factory=_client_factory(self),
                        **self._connect_kwargs(),
                    )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a reason
            err = await self._classify(exc)
            self._failures += 1
            delay = min(self.backoff_max, self.backoff_initial * 2 ** (self._failures - 1))
            self._retry_at = loop.time() + delay * random.uniform(0.75, 1.25)
            self._last_error = err
            raise err from None
        finally:
            self._connect_task = None
        lazy_keepalive(conn)
        skip_ignore_padding(conn)
        self._conn = conn
        self._failures = 0
        self._last_error = None
        self._link_ok()
        return conn

    async def _classify(self, exc: BaseException) -> TransportError:
        import asyncssh

        where = str(self.target)
        if isinstance(exc, asyncssh.HostKeyNotVerifiable) or (
            isinstance(exc, asyncssh.KeyExchangeFailed) and "host key" in str(exc).lower()
        ):
            if await self._host_in_known_hosts():
                return self._link_failed(
                    Reason.HOST_KEY_CHANGED,
                    f"the host key of {where} does not match known_hosts — the box may have "
                    "been re-created, or it is not the box you think; run "
                    f"`ssh {self.target_text}` once to check it",
                )
            return self._link_failed(
                Reason.HOST_KEY_UNKNOWN,
                f"the host key of {where} is not in known_hosts — run "
                f"`ssh {self.target_text}` once to check and accept it",
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            return self._link_failed(
                Reason.AUTH_FAILED,
                f"authentication to {where} failed — check the key (ssh-add -l) and the user",
            )
        if isinstance(exc, TimeoutError):
            return self._link_failed(
                Reason.UNREACHABLE, f"no SSH answer from {where} within {self.connect_timeout:g}s"
            )
        text = str(exc) or type(exc).__name__
        return self._link_failed(Reason.UNREACHABLE, f"{where}: {text}")

    async def _host_in_known_hosts(self) -> bool:
        """Whether known_hosts has ANY key for this host: then a mismatch means it changed."""
        import asyncssh

        host, port, alias, files = self.target.host, self.target.port or 22, None, None
        try:
            kw = self._connect_kwargs()
            kw["client_keys"] = None  # resolving names only: do not load (or prompt for) keys
            kw.setdefault("config", ())  # () = ~/.ssh/config, as connect() does
            opts = await asyncssh.SSHClientConnectionOptions.construct(host=self.target.host, **kw)
            host, port, alias, files = opts.host, opts.port, opts.host_key_alias, opts.known_hosts
        except Exception:  # noqa: BLE001 - fall back to the target as written
            pass
        if not files:
            files = os.path.expanduser(os.path.join("~", ".ssh", "known_hosts"))
        name = alias or host
        try:
            found = asyncssh.match_known_hosts(files, name, name, port if port != 22 else None)
        except Exception:  # noqa: BLE001 - an unreadable known_hosts holds no key
            return False
        return bool(found[0] or found[1])

    def _on_connection_lost(self, conn: Any, exc: BaseException | None) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._pool.abort_all()
        self._link_failed(Reason.UNREACHABLE, f"connection lost: {exc or 'closed by the box'}")

    def _on_silent_timeout(self) -> None:
        # Not one byte of the batch came back before the deadline: the shell did not even
        # print its begin marker. Keepalives would notice a dead link only after
        # interval x count; drop the connection now, the next call reconnects.
        self._abort_connection(f"{self.target} sent nothing back before the deadline")

    def _abort_connection(self, why: str) -> None:
        conn, self._conn = self._conn, None
        self._pool.abort_all()
        if conn is not None:
            conn.abort()
        self._link_failed(Reason.UNREACHABLE, why)

    # ------------------------------------------------------------------ channels

    async def _open_process(self, command: str) -> Any:
        import asyncssh

        conn = self._conn
        if conn is None or conn.is_closed():
            raise TransportError(Reason.UNREACHABLE, self._link.message or "not connected")
        try:
            proc = await conn.create_process(command, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            if conn.is_closed():
                raise TransportError(Reason.UNREACHABLE, f"connection lost: {exc.reason}") from None
            if self._exec_ok:
                # It ran commands before: this is a full channel table, not a gateway.
                raise TransportError(
                    Reason.UNREACHABLE, f"{self.target} refused a new channel: {exc.reason}"
                ) from None
            raise self._link_failed(
                Reason.EXEC_UNSUPPORTED,
                f"{self.target} accepts the login but refuses to run commands ({exc.reason}): "
                "a proxied 'basic SSH' gateway offers only an interactive shell — use the box's "
                "direct TCP SSH port",
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise TransportError(Reason.UNREACHABLE, f"{self.target}: {exc}") from None
        except (AttributeError, AssertionError):
            # asyncssh (2.24) when the connection closes between the box confirming the channel
            # and the channel starting: its session is gone (None.session_started), or its
            # connection is (`assert self._conn is not None` in get_connection). Both seen at
            # 500 hosts (benchmarks/), on connections dropped and re-made during the warm-up.
            if conn.is_closed():
                raise TransportError(
                    Reason.UNREACHABLE, f"connection to {self.target} lost while a channel opened"
                ) from None
            raise
        self._exec_ok = True
        return proc

    async def run(self, steps: Sequence[Step], *, deadline: float) -> dict[str, StepResult]:
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + deadline
        conn = await self._connection(deadline_at)
        try:
            results = await self._pool.run(steps, max(0.0, deadline_at - loop.time()))
        except OpenTimeout as exc:
            # The connection is up but cannot even open a channel: wedged. Drop it.
            self._abort_connection(f"no channel opened on {self.target}: {exc.message}")
            raise
        except SessionEnded as ended:
            if conn.is_closed():
                raise self._link_failed(
                    Reason.UNREACHABLE, f"connection to {self.target} lost mid-batch"
                ) from None
            return ended.partial
        if self._conn is conn and not conn.is_closed():  # not dropped as silent meanwhile
            self._link_ok()
        return results

    async def stream(
        self, step: Step, *, sample_timeout: float, lifetime: float
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + sample_timeout
        conn = await self._connection(deadline_at)
        if self._streams is None:
            self._streams = asyncio.Semaphore(self.max_streams)
        try:
            async with asyncio.timeout_at(deadline_at):
                await self._streams.acquire()
        except TimeoutError:
            raise TransportError(
                Reason.TIMEOUT, f"all {self.max_streams} stream channels to {self.target} busy"
            ) from None
        try:
            async for line in stream_lines(
                self._open_process, close_ssh_process, step,
                sample_timeout=sample_timeout, lifetime=lifetime,
            ):
                yield line
            if conn.is_closed():
                raise self._link_failed(
                    Reason.UNREACHABLE, f"connection to {self.target} lost mid-stream"
                )
        finally:
            self._streams.release()

    async def close(self) -> None:
        task, self._connect_task = self._connect_task, None
        if task is not None:
            task.cancel()
        await self._pool.aclose()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)


async def close_ssh_process(proc: Any) -> None:
    """Close the channel. The remote command ends by EOF/SIGPIPE or by its own `timeout`."""
    with contextlib.suppress(Exception):
        proc.close()
        await asyncio.wait_for(proc.wait_closed(), 3)


_client_class: Any = None


def _client_factory(transport: SshTransport):
    """An asyncssh client that tells the transport when its connection is lost."""
    global _client_class
    if _client_class is None:
        import asyncssh

        class _Client(asyncssh.SSHClient):
            def __init__(self, owner: weakref.ref) -> None:
                self._owner = owner
                self._conn = None

            def connection_made(self, conn) -> None:
                self._conn = conn

            def connection_lost(self, exc) -> None:
                owner = self._owner()
                if owner is not None:
                    owner._on_connection_lost(self._conn, exc)

        _client_class = _Client
    ref = weakref.ref(transport)
    return lambda: _client_class(ref)


def lazy_keepalive(conn: Any) -> bool:
    """asyncssh re-arms its keepalive timer whenever data arrives: one cancelled timer and one
    new in the event loop's heap per read (~4% of the client's CPU at 500 hosts, plus a heap of
    dead timers every other timer pays for). The same rule, lazily: data arriving only notes the
    time; when the timer fires after data came, it re-arms for the rest of the interval, and only
    after ``keepalive_interval`` of silence does asyncssh's own check run (a keepalive request;
    the connection closed after ``keepalive_count_max`` unanswered). Leaves a connection whose
    asyncssh lacks these internals as it is; returns whether it took over."""
    loop = getattr(conn, "_loop", None)
    interval = getattr(conn, "_keepalive_interval", None)
    check = getattr(type(conn), "_keepalive_timer_callback", None)
    if (loop is None or not interval or check is None
            or not all(hasattr(conn, n) for n in ("_reset_keepalive_timer", "_set_keepalive_timer",
                                                  "_cancel_keepalive_timer", "_keepalive_timer"))):
        return False
    last = [loop.time()]

    def heard() -> None:
        last[0] = loop.time()

    def due() -> None:
        left = last[0] + interval - loop.time()
        if left > 0:
            conn._keepalive_timer = loop.call_later(left, due)
        else:
            check(conn)  # re-arms through _set_keepalive_timer, which now calls due

    conn._reset_keepalive_timer = heard
    conn._keepalive_timer_callback = due
    conn._cancel_keepalive_timer()  # the timer asyncssh armed at login: ours from now on
    conn._set_keepalive_timer()
    return True


# Ciphers for which RFC 4251 §9.3.1's countermeasure has nothing to protect: it is for CBC's
# predictable IV. AEAD (GCM, chacha20-poly1305) and counter mode have none.
_NO_PADDING_NEEDED = ("-gcm@openssh.com", "chacha20-poly1305@openssh.com", "-ctr")
_EMPTY_STRING = b"\0\0\0\0"  # asyncssh's String(b""): the ignore packet's only field


def skip_ignore_padding(conn: Any) -> bool:
    """asyncssh sends an empty SSH_MSG_IGNORE before every packet once the link is encrypted
    (RFC 4251 §9.3.1, against CBC's chosen-plaintext attack): two packets for the client to build
    and encrypt, and for the box's sshd to decrypt, for every one that carries something.
    OpenSSH's sshd and ssh send none (measured against the benchmark's sshd, 20 ticks of every
    probe: none among the ~840 packets sshd sent; asyncssh sent 130 ignores beside 118 data
    packets). With a cipher that has no
    CBC IV to protect, this connection skips them; with a CBC cipher (only if the user's ssh
    config asks for one) it keeps them. The cipher is read at each ignore, so a re-key that
    changed it is followed. Returns whether it took over (False if asyncssh lacks the hook)."""
    send = getattr(type(conn), "send_packet", None)
    info = getattr(conn, "get_extra_info", None)
    if send is None or info is None:
        return False
    from asyncssh.constants import MSG_IGNORE

    def send_packet(pkttype: int, *args: bytes, handler: Any = None) -> None:
        if (pkttype == MSG_IGNORE and args == (_EMPTY_STRING,)
                and str(info("send_cipher", "")).endswith(_NO_PADDING_NEEDED)):
            return
        send(conn, pkttype, *args, handler=handler)

    conn.send_packet = send_packet
    return True
