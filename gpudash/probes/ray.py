"""Ray job status from ``ray job status ID`` (the CLI; it costs seconds of CPU to start).

The CLI prints different sentences per state (ray/dashboard/modules/job/cli.py,
``_log_job_status``), after a ``Job submission server address: …`` line:

- SUCCEEDED: ``Job 'ID' succeeded`` between two ``-----`` lines
- STOPPED:   ``Job 'ID' was stopped``
- FAILED:    ``Job 'ID' failed`` (between ``-----`` lines), then ``Status message: …``
- otherwise: ``Status for job 'ID': RUNNING`` (PENDING, …), then ``Status message: …``

Older releases print the ``Status for job`` form for every state. Without a terminal, Ray's
logger may use its "record" style (``2024-01-01 10:00:00,000<TAB>INFO cli.py:123 -- …``), so the
sentences are searched anywhere in a line, never anchored. A missing job is a 404:
``Request failed with status code 404: Job ID does not exist.``
"""

from __future__ import annotations

import re
import shlex

from gpudash.model import ProbeError, Reason, RayJob
from gpudash.probes.processes import block, new_nonce, script_head, split_blocks
from gpudash.sanitize import clean_field, clean_line, decode
from gpudash.transport.base import Step

RAY_TIMEOUT_S = 30.0  # the CLI imports half of Ray before it asks anything: seconds of CPU

_STATUS_FOR = re.compile(r"Status for job '([^']*)': (?:JobStatus\.)?([A-Z_]+)")
_SUCCEEDED = re.compile(r"Job '([^']*)' succeeded")
_STOPPED = re.compile(r"Job '([^']*)' was stopped")
_FAILED = re.compile(r"Job '([^']*)' failed")
_MESSAGE = "Status message: "
_STATES = frozenset({"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"})
_MAX_MESSAGE = 4000


def ray_step(job_id: str, address: str | None = None, *, timeout: float = RAY_TIMEOUT_S) -> Step:
    """``ray job status [--address A] -- ID``. Remote bound ≥ 20 s (the CLI is slow to start)."""
    nonce = new_nonce()
    addr = f" --address {shlex.quote(address)}" if address else ""
    script = (
        script_head(nonce)
        + block(nonce, "job", shlex.quote(job_id))
        + "\n"
        + f"command -v ray >/dev/null 2>&1 || {{ {block(nonce, 'no_ray')}; exit 127; }}\n"
        + block(nonce, "ray")
        + "\n"
        + f"ray job status{addr} -- {shlex.quote(job_id)}\n"
    )
    return Step("ray", script, timeout=max(20.0, timeout), params={"job_id": job_id, "address": address})


def parse_ray(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0):
    """→ :class:`RayJob` or :class:`ProbeError`. Never raises."""
    try:
        return _parse_ray(stdout, stderr, exit_code)
    except Exception as exc:
        return ProbeError(Reason.PROBE_ERROR, clean_field(f"ray: {exc!r}"))


def _parse_ray(stdout, stderr, exit_code):
    asked, body, missing = "", None, False
    for header, text in split_blocks(stdout):
        if header[:1] == ["job"] and len(header) > 1:
            asked = " ".join(header[1:])
        elif header[:1] == ["no_ray"]:
            missing = True
        elif header[:1] == ["ray"] or not header:
            body = text
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, "ray job status did not answer", exit_code)
    if missing or exit_code == 127:
        return ProbeError(Reason.NOT_FOUND, "the ray CLI is not installed", exit_code)
    err_text = decode(stderr) if isinstance(stderr, (bytes, bytearray)) else str(stderr or "")
    out_lines = [clean_line(x) for x in (body or "").split("\n")]
    err_lines = [clean_line(x) for x in err_text.split("\n")]
    found = _scan(out_lines) or _scan(err_lines)
    if found is None:
        lines = out_lines + err_lines
        joined = " ".join(lines).lower()
        if "does not exist" in joined or "status code 404" in joined:
            return ProbeError(Reason.NOT_FOUND, _last_error(lines) or "no such Ray job", exit_code)
        return ProbeError(Reason.PROBE_ERROR, _last_error(lines) or "ray job status said nothing", exit_code)
    job_id, status, message = found
    return RayJob(job_id=clean_field(job_id or asked, max_len=128), status=status, message=message)


def _scan(lines: list[str]) -> tuple[str, str, str] | None:
    """(job id, status, message) from one stream's lines, or None when no status sentence."""
    job_id, status, message_at = "", None, None
    for i, line in enumerate(lines):
        m = _STATUS_FOR.search(line)
        if m and m[2] in _STATES:
            job_id, status = m[1], m[2]
            continue
        for rx, state in ((_SUCCEEDED, "SUCCEEDED"), (_STOPPED, "STOPPED"), (_FAILED, "FAILED")):
            m = rx.search(line)
            if m:
                job_id, status = m[1], state
                break
        if _MESSAGE in line and message_at is None:
            message_at = i
    if status is None:
        return None
    message = ""
    if message_at is not None:
        first = lines[message_at].split(_MESSAGE, 1)[1]
        # A FAILED job's message carries the last logs on the lines that follow: keep them.
        rest = [x for x in lines[message_at + 1 :] if x.strip()]
        message = "\n".join([first, *rest]).strip()[:_MAX_MESSAGE]
    return job_id, status, message


def _last_error(lines: list[str]) -> str:
    """The exception line at the end of a traceback, or the last non-empty line."""
    useful = [x.strip() for x in lines if x.strip()]
    for x in reversed(useful):
        if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", x):
            return clean_field(x, max_len=300)
    return clean_field(useful[-1], max_len=300) if useful else ""
