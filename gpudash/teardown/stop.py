"""Running the meter-stop: only on an all-green checklist, only after the user typed the host name,
and always recorded. Nothing in gpudash calls this on its own: the CLI (`gpudash teardown HOST
--stop`) and the TUI call it after the person typed the name.

Where it runs follows the plan: ``local`` (the provider's CLI on this machine, ``/bin/sh -c``, in
its own session, bounded) or ``box`` (one step over the host's transport, bounded on both sides).
A dropped link after a box command is "unconfirmed", not "failed": a shutdown takes the link down.

The outcome is recorded through :data:`record_teardown`, a replaceable hook. The default appends a
JSON line to ``teardown.jsonl`` in the platform's user state dir (mode 0600); the SQLite store
replaces it with :func:`set_recorder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpudash.sanitize import clean_line, decode
from gpudash.teardown.types import Checklist

DONE, FAILED, UNCONFIRMED, REFUSED = "done", "failed", "unconfirmed", "refused"
STOP_TIMEOUT = 120.0
OUTPUT_LINES = 20


@dataclass(frozen=True)
class StopOutcome:
    host: str
    command: str | None
    where: str
    status: str  # done | failed | unconfirmed | refused
    message: str
    exit_code: int | None = None
    output: tuple[str, ...] = ()
    at: float = 0.0

    def to_json(self) -> dict:
        return {"host": self.host, "command": self.command, "where": self.where,
                "status": self.status, "message": self.message, "exit_code": self.exit_code,
                "output": list(self.output), "at": self.at}


# ----------------------------------------------------------------------------- the journal


def journal_path() -> Path:
    """``teardown.jsonl`` in the user state dir (``$GPUDASH_STATE_DIR`` overrides it)."""
    override = os.environ.get("GPUDASH_STATE_DIR")
    if override:
        return Path(override) / "teardown.jsonl"
    import platformdirs

    return Path(platformdirs.user_state_dir("gpudash", appauthor=False)) / "teardown.jsonl"


def append_journal(record: dict, path: Path | None = None) -> Path:
    """Append one JSON line; the file is created 0600 (it names hosts and commands)."""
    path = path or journal_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)
    return path


def read_journal(path: Path | None = None, limit: int = 100) -> list[dict]:
    path = path or journal_path()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-limit:]:
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def _default_recorder(record: dict) -> None:
    append_journal(record)


#: The hook every outcome goes through: ``record_teardown(record: dict) -> None``.
record_teardown: Callable[[dict], None] = _default_recorder


def set_recorder(fn: Callable[[dict], None] | None) -> None:
    """Replace the recorder (the SQLite store); ``None`` restores the JSON-lines journal."""
    global record_teardown
    record_teardown = fn or _default_recorder


def _record(checklist: Checklist, outcome: StopOutcome) -> None:
    record = {"kind": "teardown_stop", **outcome.to_json(), "preset": checklist.stop.preset,
              "checks": [{"id": c.id, "state": c.state} for c in checklist.checks],
              "checked_at": checklist.taken_at}
    try:
        record_teardown(record)
    except OSError:
        pass  # a full or read-only state dir must not hide the stop's own outcome


# ----------------------------------------------------------------------------- running it


def refusal(checklist: Checklist, typed: str | None) -> str | None:
    """Why the stop must not run now, or None. Pure: the TUI greys its button with it."""
    plan = checklist.stop
    if not checklist.all_green:
        return "not every check is green: " + "; ".join(checklist.missing())
    if plan.where == "console":
        return "this platform has no CLI for it: use the provider's console"
    if not plan.runnable:
        return "the stop command is incomplete: " + ", ".join(plan.unknown or ("command",))
    if typed is None or typed.strip() != checklist.host:
        return f"confirmation failed: type the host name exactly ({checklist.host})"
    return None


async def execute_stop(checklist: Checklist, typed: str | None, *, transport=None,
                       timeout: float = STOP_TIMEOUT, clock=time.time) -> StopOutcome:
    """Run the checklist's stop command once, after ``typed`` matched the host name exactly.

    Refuses (status "refused", nothing run, nothing recorded) unless every check is green, the
    plan is runnable and the name matches. ``transport`` is needed for a command on the box.
    """
    plan = checklist.stop
    why = refusal(checklist, typed)
    if why is None and plan.where == "box" and transport is None:
        why = "no connection to the box was given"
    if why is not None:
        return StopOutcome(checklist.host, plan.command, plan.where, REFUSED, why, at=clock())
    if plan.where == "local":
        outcome = await _run_local(checklist.host, plan.command, timeout, clock)
    else:
        outcome = await _run_on_box(checklist.host, plan.command, transport, timeout, clock)
    _record(checklist, outcome)
    return outcome


def _lines(data: bytes) -> tuple[str, ...]:
    lines = [clean_line(x, max_len=300) for x in decode(data).splitlines() if x.strip()]
    return tuple(lines[-OUTPUT_LINES:])


async def _run_local(host: str, command: str, timeout: float, clock) -> StopOutcome:
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
    except OSError as exc:
        return StopOutcome(host, command, "local", FAILED, f"could not start: {exc}", at=clock())
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        return StopOutcome(host, command, "local", UNCONFIRMED,
                           f"no answer within {timeout:.0f} s: check the provider's console",
                           at=clock())
    code = proc.returncode
    status = DONE if code == 0 else FAILED
    msg = "the stop command succeeded" if code == 0 else f"the stop command failed (exit {code})"
    return StopOutcome(host, command, "local", status, msg, code, _lines(out or b""), clock())


async def _run_on_box(host: str, command: str, transport, timeout: float, clock) -> StopOutcome:
    from gpudash.transport.base import Step, TransportError

    step = Step(key="stop", script=command, timeout=timeout)
    try:
        res = (await transport.run([step], deadline=timeout + 10.0)).get("stop")
    except TransportError as exc:
        return StopOutcome(host, command, "box", UNCONFIRMED,
                           f"the link dropped ({exc.reason.value}) — expected for a shutdown; "
                           "confirm in the provider's console", at=clock())
    if res is None or res.exit_code is None:
        return StopOutcome(host, command, "box", UNCONFIRMED,
                           "the command did not report back (a shutdown takes the link down): "
                           "confirm in the provider's console", at=clock())
    out = _lines((res.stdout or b"") + (res.stderr or b""))
    if res.exit_code == 0:
        return StopOutcome(host, command, "box", DONE, "the stop command succeeded", 0, out,
                           clock())
    return StopOutcome(host, command, "box", FAILED,
                       f"the stop command failed (exit {res.exit_code})", res.exit_code, out,
                       clock())
