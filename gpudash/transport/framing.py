"""Render a batch of steps into one POSIX-sh script, and split its output back into steps.

Why framing: login rc files may print (a conda banner, `motd`), and a log's bytes may contain
anything. Output is read only between sentinel lines that carry a random per-session nonce, so
neither rc junk nor a hostile log line (which cannot guess the nonce) can forge a step boundary.

The script goes to ``/bin/sh -s`` on stdin, so the login shell (bash, zsh, fish, tcsh) only ever
parses ``timeout -k 2 N /bin/sh -s``. Every command inside gets ``</dev/null``: a command that read
stdin would otherwise eat the rest of the script.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Sequence

from gpudash.transport.base import Step, StepResult, marked

_PREFIX = b"@@GD:"


def new_nonce() -> str:
    return secrets.token_hex(8)


def session_command(lifetime: float) -> str:
    """What the login shell runs: a bounded POSIX sh reading the script from stdin.

    Normally ``timeout -k 2 LIFETIME /bin/sh -s``. Wrapped in one single-quoted ``/bin/sh -c``
    so that a box without coreutils' ``timeout`` (macOS, minimal images) still gets a session
    instead of ``command not found``; the quoting parses the same in bash, zsh, fish and tcsh.
    """
    t = max(1, int(lifetime))
    return (
        "/bin/sh -c 'command -v timeout >/dev/null 2>&1 && "
        f"exec timeout -k 2 {t} /bin/sh -s; exec /bin/sh -s'"
    )


# Defined once per session: a `timeout` stand-in for boxes without coreutils' (it then runs the
# command unbounded remotely; the client deadline still holds).
PRELUDE = (
    "command -v timeout >/dev/null 2>&1 || timeout() { shift 3; \"$@\"; }\n"
    "export LC_ALL=C\n"
)


def render_batch(steps: Sequence[Step], nonce: str, batch_id: int) -> bytes:
    """The script for one batch. Each step runs as `timeout -k 1 T CMD </dev/null` (CMD: the
    script itself when it is one plain command line, else `/bin/sh -c SCRIPT`, see
    :func:`_command`), and its process group is killed when it ends.

    Markers are written with as few `printf`s as the format allows, because every write the box
    makes between two steps can become its own SSH packet (and client CPU to decrypt it): one per
    stream before the first step ("begin" + its "start"), one per step boundary on stdout ("end of
    step n" + "start of step n+1"), one on stderr (its "start of step n+1": per-step stderr
    needs a boundary there too), and one per stream after the last step (its "end" + "batch end").
    """
    seen: set[str] = set()
    keys = []
    for step in steps:
        key = _safe_key(step.key)
        if key in seen:
            raise ValueError(f"duplicate step key in one batch: {key!r}")
        seen.add(key)
        keys.append(key)
    m = f"\\n@@GD:{nonce}:"
    begin = f"{m}B:{batch_id}\\n"
    end = f"{m}Z:{batch_id}\\n"
    if not keys:
        return f"printf '{begin}{end}'; printf '{begin}{end}' >&2\n".encode()
    out = [f"printf '{begin}{m}S:{keys[0]}\\n'; printf '{begin}{m}S:{keys[0]}\\n' >&2\n"]
    for n, (step, key) in enumerate(zip(steps, keys)):
        t = max(1, int(round(step.timeout)))
        if n + 1 < len(keys):
            nxt = keys[n + 1]
            after = (f"printf '{m}E:{key}:%s\\n{m}S:{nxt}\\n' \"$gd_rc\"; "
                     f"printf '{m}S:{nxt}\\n' >&2\n")
        else:
            after = f"printf '{m}E:{key}:%s\\n{end}' \"$gd_rc\"; printf '{end}' >&2\n"
        out.append(
            # `timeout` makes its own process group (pgid = its pid). It only SIGKILLs while its
            # direct child lives: a grandchild that ignores SIGTERM (a stuck nvidia-smi wrapper)
            # would outlive it. So the group is SIGKILLed after every step: nothing of a probe
            # outlives the probe.
            f"timeout -k 1 {t} {_command(step.script)} </dev/null & gd_p=$!; "
            f"wait $gd_p; gd_rc=$?; kill -9 -$gd_p 2>/dev/null; " + after
        )
    return "".join(out).encode()


def render_stream(step: Step, nonce: str, lifetime: float) -> bytes:
    """A long-lived step: a begin marker, then the command's lines until its lifetime ends.

    ``exec`` so no idle shell lingers between the channel and the command; without coreutils'
    ``timeout`` the command runs unbounded remotely (the client's lifetime guard still holds).
    """
    t = max(1, int(lifetime))
    cmd = f"/bin/sh -c {shlex.quote(marked(step.script))} </dev/null"
    return (
        f"printf '\\n@@GD:{nonce}:B:0\\n'\n"
        f"command -v timeout >/dev/null 2>&1 && exec timeout -k 2 {t} {cmd}\n"
        f"exec {cmd}\n"
    ).encode()


# A word the shell passes through unchanged: no quote, expansion, glob, redirection, separator,
# comment or tilde can start or hide in it.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./,:+@%=-]+")
# dash's builtins and the shell's reserved words: `timeout` would run the binary of that name
# (or none: `:`, `exit`, `cd`, `if`), not what the script meant, and some binaries differ from
# their builtins (`echo`'s escapes, `printf`, `kill`).
_BUILTINS = frozenset(
    ". : [ alias bg break cd chdir command continue echo eval exec exit export false fc fg getopts "
    "hash jobs kill local printf pwd read readonly return set shift test times trap true type "
    "ulimit umask unalias unset wait "
    "! { } case do done elif else esac fi for function if in select then until while".split()
)


def _command(script: str) -> str:
    """What `timeout` runs for a step: the command itself when the script is one plain command
    line (`df -P -B1 -- /`, `nvidia-smi --query-gpu=… --format=csv`), else
    `/bin/sh -c SCRIPT` led by the probe marker.

    Why: a `/bin/sh` per step is ~0.3 ms of the box's CPU (dash does not exec a `-c` script's
    last command): about a quarter of what a cheap probe like `df` costs with its framing
    (~1.1 ms on the benchmark VM).
    Exactly equivalent, because a plain line's words reach the command as the shell would pass
    them: the outer shell splits on the spaces and expands nothing. What the marker told the
    process scan is kept: under `sh -c` it named the shell and `timeout`, never the command the
    shell forked, whose command line is the same either way."""
    words = script.split(" ")
    plain = (
        all(w and _PLAIN_WORD.fullmatch(w) for w in words)
        and "=" not in words[0]  # `A=b cmd` is an assignment, not a command
        and not words[0].startswith("-")  # `timeout` would read it as its own option
        and words[0] not in _BUILTINS
    )
    return script if plain else f"/bin/sh -c {shlex.quote(marked(script))}"


def _safe_key(key: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
        raise ValueError(f"step key must be [A-Za-z0-9_.-]+: {key!r}")
    return key


def end_marker(nonce: str, batch_id: int) -> bytes:
    return b"\n" + _PREFIX + f"{nonce}:Z:{batch_id}\n".encode()


def begin_marker(nonce: str, batch_id: int) -> bytes:
    return b"\n" + _PREFIX + f"{nonce}:B:{batch_id}\n".encode()


def split_batch(
    steps: Sequence[Step], stdout: bytes, stderr: bytes, nonce: str, batch_id: int
) -> dict[str, StepResult]:
    """Cut one batch's stdout/stderr into per-step results.

    Bytes before the batch's begin marker (rc-file junk) are ignored. A step whose end marker is
    missing (the batch was cut short) gets ``exit_code=None``. Each step's output is capped at
    its ``max_bytes``.
    """
    out_sections = _sections(stdout, nonce, batch_id)
    err_sections = _sections(stderr, nonce, batch_id)
    results: dict[str, StepResult] = {}
    for step in steps:
        body, code = out_sections.get(step.key, (b"", None))
        err, _ = err_sections.get(step.key, (b"", None))
        truncated = len(body) > step.max_bytes
        if truncated:
            body = body[: step.max_bytes]
        results[step.key] = StepResult(
            key=step.key,
            stdout=body,
            stderr=err[:65536],
            exit_code=code,
            truncated=truncated,
        )
    return results


def _sections(data: bytes, nonce: str, batch_id: int) -> dict[str, tuple[bytes, int | None]]:
    begin = begin_marker(nonce, batch_id)
    i = data.find(begin)
    if i < 0:
        return {}
    data = data[i + len(begin) :]
    z = data.find(end_marker(nonce, batch_id))
    if z >= 0:
        # Cut before the end marker's own leading newline: it belongs to the marker, and
        # keeping it would append a stray b"\n" to the last section (stderr has no E marker).
        data = data[:z]
    start_tag = b"\n" + _PREFIX + nonce.encode() + b":S:"
    end_tag = b"\n" + _PREFIX + nonce.encode() + b":E:"
    sections: dict[str, tuple[bytes, int | None]] = {}
    pos = 0
    while True:
        s = data.find(start_tag, pos)
        if s < 0:
            break
        eol = data.find(b"\n", s + len(start_tag))
        if eol < 0:
            break
        key = data[s + len(start_tag) : eol].decode("ascii", "replace")
        body_start = eol + 1
        e = data.find(end_tag + key.encode() + b":", body_start)
        if e < 0:
            # No end marker: the step (and the batch) was cut short. Keep what arrived.
            nxt = data.find(start_tag, body_start)
            sections[key] = (data[body_start : nxt if nxt >= 0 else len(data)], None)
            if nxt < 0:
                break
            pos = nxt
            continue
        code_start = e + len(end_tag) + len(key) + 1
        code_end = data.find(b"\n", code_start)
        raw_code = data[code_start : code_end if code_end >= 0 else len(data)]
        try:
            code: int | None = int(raw_code)
        except ValueError:
            code = None
        sections[key] = (data[body_start:e], code)
        pos = code_end if code_end >= 0 else len(data)
    return sections
