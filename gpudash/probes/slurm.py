"""Slurm jobs from the text outputs of squeue, sacct and scontrol (never their JSON).

The JSON schemas change between releases (from 23.02 ``job_state`` is a list); ``-o`` formats
and ``scontrol -o`` lines do not. Which source to believe (domain.md):

- ``sacct`` is authoritative for the END of a job: ``squeue`` lags in COMPLETING. Without
  slurmdbd it only says ``Slurm accounting storage is disabled`` → fall back to scontrol.
- ``scontrol show job -o ID`` knows running and finished jobs, but forgets a job ``MinJobAge``
  (300 s by default) after it ends: ``Invalid job id specified`` then means "aged out", which
  is NOT a failure.
- ``squeue`` for what is queued or running now.

A job NAME is free text and may contain ``|``: rows are split from both ends around it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex

from gpudash.model import SLURM_TERMINAL, ProbeError, Reason, SlurmJob
from gpudash.probes.processes import block, error_message, new_nonce, script_head, split_blocks
from gpudash.sanitize import clean_field
from gpudash.transport.base import Step

SQUEUE_FORMAT = "%i|%j|%u|%T|%M|%l|%D|%R"
SACCT_FORMAT = "JobID,JobName,State,ExitCode,Elapsed"

_NO_DBD = "accounting storage is disabled"
_INVALID_JOB = "invalid job id"


def _script(nonce: str, tool: str, command: str, job_id: str | None = None) -> str:
    head = script_head(nonce)
    if job_id is not None:
        head += block(nonce, "job", shlex.quote(job_id)) + "\n"
    return (
        head
        + f"command -v {tool} >/dev/null 2>&1 || {{ {block(nonce, 'no_' + tool)}; exit 127; }}\n"
        + block(nonce, tool)
        + "\n"
        + command
        + "\n"
    )


def squeue_step(user: str | None = None, job_id: str | None = None, *, timeout: float = 10.0) -> Step:
    cmd = f"squeue -h -o {shlex.quote(SQUEUE_FORMAT)}"
    if user:
        cmd += f" -u {shlex.quote(user)}"
    if job_id:
        cmd += f" -j {shlex.quote(str(job_id))}"
    nonce = new_nonce()
    return Step("squeue", _script(nonce, "squeue", cmd), timeout=timeout, params={"user": user, "job_id": job_id})


def sacct_step(job_id: str, *, timeout: float = 10.0) -> Step:
    jid = shlex.quote(str(job_id))
    cmd = f"sacct -j {jid} -X --format={SACCT_FORMAT} --noheader -P"
    nonce = new_nonce()
    return Step("sacct", _script(nonce, "sacct", cmd, str(job_id)), timeout=timeout, params={"job_id": job_id})


def scontrol_step(job_id: str, *, timeout: float = 10.0) -> Step:
    cmd = f"scontrol show job -o {shlex.quote(str(job_id))}"
    nonce = new_nonce()
    return Step(
        "scontrol", _script(nonce, "scontrol", cmd, str(job_id)), timeout=timeout, params={"job_id": job_id}
    )


# ----------------------------------------------------------------------------- parsing helpers


def _body(stdout, tool: str) -> tuple[str, str, bool]:
    """(body of the tool's block, the job id the script asked about, tool missing?)."""
    body, job_id, missing, found = "", "", False, False
    for header, text in split_blocks(stdout):
        if header[:1] == ["job"] and len(header) > 1:
            job_id = " ".join(header[1:])
        elif header[:1] == [tool]:
            body, found = text, True
        elif header[:1] == [f"no_{tool}"]:
            missing = True
        elif not header and not found:
            body = text  # raw tool output (a fixture) without our headers
    return body, job_id, missing


def _guard(fn):
    def wrapper(stdout, stderr=b"", exit_code=0, *args, **kwargs):
        try:
            return fn(stdout, stderr, exit_code, *args, **kwargs)
        except Exception as exc:  # a parser never raises
            return ProbeError(Reason.PROBE_ERROR, clean_field(f"{fn.__name__}: {exc!r}"))

    return functools.wraps(fn)(wrapper)


def _common_error(tool: str, stdout, stderr, exit_code, missing: bool) -> ProbeError | None:
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, f"{tool} did not answer", exit_code)
    if missing or exit_code == 127:
        return ProbeError(Reason.NOT_FOUND, f"{tool} is not installed (no Slurm here)", exit_code)
    return None


def normalize_state(state: str) -> str:
    """``CANCELLED by 1000`` → ``CANCELLED``; ``JobStatus``-like noise trimmed."""
    word = state.strip().split(" ", 1)[0] if state.strip() else ""
    return clean_field(word.rstrip("+"), max_len=40)


# ----------------------------------------------------------------------------- squeue


@_guard
def parse_squeue(stdout, stderr=b"", exit_code=0):
    """→ ``tuple[SlurmJob, ...]`` (empty: nothing queued / job not in the queue) or ProbeError."""
    body, _, missing = _body(stdout, "squeue")
    err = _common_error("squeue", stdout, stderr, exit_code, missing)
    if err:
        return err
    if exit_code != 0:
        msg = error_message("", stderr) or error_message(body, "")
        if _INVALID_JOB in msg.lower():
            return ()  # `squeue -j ID` for a job that left the queue
        return ProbeError(Reason.PROBE_ERROR, msg or "squeue failed", exit_code)
    out = []
    for line in body.split("\n"):
        job = parse_squeue_line(line)
        if job is not None:
            out.append(job)
    msg = error_message("", stderr)
    if not out and "error:" in msg:
        # `squeue -u nosuchuser` exits 0 with `squeue: error: Invalid user: …`: not "no jobs".
        return ProbeError(Reason.PROBE_ERROR, msg, exit_code)
    return tuple(out)



def parse_squeue_line(line: str) -> SlurmJob | None:
    """``%i|%j|%u|%T|%M|%l|%D|%R``: the name (field 2) may hold ``|``."""
    line = line.rstrip("\r")
    if "|" not in line:
        return None
    job_id, rest = line.split("|", 1)
    parts = rest.rsplit("|", 6)
    if len(parts) != 7 or not job_id.strip():
        return None
    name, user, state, elapsed, limit, nodes, reason = parts
    if not re.fullmatch(r"[A-Z_]+", state.strip()):
        return None
    return SlurmJob(
        job_id=clean_field(job_id.strip(), max_len=64),
        name=clean_field(name),
        user=clean_field(user),
        state=normalize_state(state),
        elapsed=clean_field(elapsed, max_len=32),
        time_limit=clean_field(limit, max_len=32),
        nodes=clean_field(nodes, max_len=32),
        reason=clean_field(reason),
        source="squeue",
    )


# ----------------------------------------------------------------------------- sacct


@_guard
def parse_sacct(stdout, stderr=b"", exit_code=0):
    """→ ``tuple[SlurmJob, ...]`` or ProbeError; no slurmdbd → ``ProbeError(NOT_FOUND, "no slurmdbd")``."""
    body, _, missing = _body(stdout, "sacct")
    err = _common_error("sacct", stdout, stderr, exit_code, missing)
    if err:
        return err
    both = (error_message("", stderr, limit=2000) + " " + body).lower()
    if _NO_DBD in both:
        return ProbeError(Reason.NOT_FOUND, "no slurmdbd", exit_code)
    if exit_code != 0:
        return ProbeError(Reason.PROBE_ERROR, error_message(body, stderr) or "sacct failed", exit_code)
    out = []
    for line in body.split("\n"):
        if "|" not in line:
            continue
        job_id, rest = line.split("|", 1)
        parts = rest.rsplit("|", 3)
        if len(parts) != 4 or not job_id.strip():
            continue
        name, state, exit_c, elapsed = parts
        state = normalize_state(state)
        if not re.fullmatch(r"[A-Z_]+", state):
            continue
        out.append(
            SlurmJob(
                job_id=clean_field(job_id.strip(), max_len=64),
                name=clean_field(name),
                state=state,
                exit_code=clean_field(exit_c, max_len=16),
                elapsed=clean_field(elapsed, max_len=32),
                source="sacct",
            )
        )
    return tuple(out)



# ----------------------------------------------------------------------------- scontrol

# A field starts at a space followed by `Key=`; keys hold letters, digits, `_`, `:` and `/`
# (`AllocNode:Sid=`, `CPUs/Task=`). Values may contain spaces (a job name, a command line).
_FIELD_SPLIT = re.compile(r" (?=[A-Za-z][A-Za-z0-9_:/]*=)")


def scontrol_fields(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for token in _FIELD_SPLIT.split(line.strip()):
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def expand_stdout(path: str, f: dict[str, str]) -> str:
    """Older Slurm prints ``StdOut=`` with sbatch's ``%j``-style patterns unexpanded."""
    if "%" not in path:
        return path
    user = f.get("UserId", "").split("(", 1)[0]
    subs = {
        "j": f.get("JobId", ""),
        "J": f.get("JobId", ""),
        "A": f.get("ArrayJobId", f.get("JobId", "")),
        "a": f.get("ArrayTaskId", ""),
        "x": f.get("JobName", ""),
        "u": user,
        "N": f.get("BatchHost", ""),
    }

    def sub(m: re.Match) -> str:
        if m[2] == "%":
            return "%"
        value = subs.get(m[2])
        if value is None:
            return m[0]
        return value.zfill(int(m[1])) if m[1] and value.isdigit() else value

    return re.sub(r"%(\d?)([%jJAaxuN])", sub, path)


def scontrol_job(line: str) -> SlurmJob | None:
    """One ``scontrol show job -o`` line → SlurmJob (source "scontrol")."""
    f = scontrol_fields(line)
    if "JobId" not in f or "JobState" not in f:
        return None
    reason = f.get("Reason", "")
    nodes = f.get("NodeList", "")
    shown_reason = f"({reason})" if reason and reason not in ("None", "(null)") else nodes
    stdout = f.get("StdOut", "")
    return SlurmJob(
        job_id=clean_field(f["JobId"], max_len=64),
        name=clean_field(f.get("JobName", "")),
        user=clean_field(f.get("UserId", "").split("(", 1)[0]),
        state=normalize_state(f["JobState"]),
        elapsed=clean_field(f.get("RunTime", ""), max_len=32),
        time_limit=clean_field(f.get("TimeLimit", ""), max_len=32),
        nodes=clean_field(f.get("NumNodes", ""), max_len=32),
        reason=clean_field(shown_reason),
        stdout_path=clean_field(expand_stdout(stdout, f), max_len=4096) if stdout not in ("", "(null)") else "",
        exit_code=clean_field(f.get("ExitCode", ""), max_len=16),
        source="scontrol",
    )


@_guard
def parse_scontrol(stdout, stderr=b"", exit_code=0, job_id: str = ""):
    """→ ``tuple[SlurmJob, ...]`` or ProbeError. ``Invalid job id specified`` → one SlurmJob with
    state "" and source "aged_out" (the job id comes from the script's own header, or ``job_id``)."""
    body, asked, missing = _body(stdout, "scontrol")
    err = _common_error("scontrol", stdout, stderr, exit_code, missing)
    if err:
        return err
    if exit_code != 0 or not body.strip():
        msg = error_message("", stderr) or error_message(body, "")
        if _INVALID_JOB in msg.lower():
            return (SlurmJob(job_id=clean_field(asked or job_id, max_len=64), state="", source="aged_out"),)
        if exit_code != 0:
            return ProbeError(Reason.PROBE_ERROR, msg or "scontrol failed", exit_code)
    out = []
    for line in body.split("\n"):
        job = scontrol_job(line)
        if job is not None:
            out.append(job)
    return tuple(out)



# ----------------------------------------------------------------------------- combining


def _pick(part, job_id: str | None) -> SlurmJob | None:
    if not isinstance(part, tuple) or not part:
        return None
    jobs = [j for j in part if isinstance(j, SlurmJob)]
    if job_id is not None:
        exact = [j for j in jobs if j.job_id == job_id]
        if exact:
            return exact[0]
    return jobs[0] if jobs else None


_FILL = ("name", "user", "elapsed", "time_limit", "nodes", "reason", "stdout_path", "exit_code")


def slurm_job_state(squeue_part, sacct_part, scontrol_part, job_id: str | None = None) -> SlurmJob | None:
    """One job's state from whatever the three sources said (each a parsed tuple, a ProbeError,
    or None when not asked). sacct wins for terminal states (squeue lags in COMPLETING), else
    scontrol, else squeue; "aged_out" when scontrol forgot it and nothing else knows it; None
    when no source could answer. Empty fields are filled from the other sources."""
    sq = _pick(squeue_part, job_id)
    sa = _pick(sacct_part, job_id)
    sc = _pick(scontrol_part, job_id)
    aged = sc if sc is not None and sc.source == "aged_out" else None
    sc = None if aged is not None else sc
    if sa is not None and sa.state in SLURM_TERMINAL:
        best = sa
    elif sc is not None and sc.state:
        best = sc
    elif sq is not None:
        best = sq
    elif sa is not None:
        best = sa
    elif aged is not None:
        return aged if aged.job_id or not job_id else dataclasses.replace(aged, job_id=job_id)
    else:
        return None
    fill = {}
    for name in _FILL:
        if not getattr(best, name):
            for other in (sc, sq, sa):
                if other is not None and getattr(other, name):
                    fill[name] = getattr(other, name)
                    break
    return dataclasses.replace(best, **fill) if fill else best
