"""Zero-config discovery: find the run on a box from nothing but its SSH alias.

ONE script (one round trip) gathers:

- the pids that hold a GPU (``nvidia-smi --query-compute-apps=pid``), when nvidia-smi exists;
- processes whose command line looks like training (``python … train``, torchrun, accelerate
  launch, deepspeed, lightning, torch.distributed.run …), minus the probe's own process tree;
- for each candidate: its ``ps`` row, parent pid, where its stdout/stderr go
  (``readlink /proc/PID/fd/1``, and whether that is a regular file) and its cwd;
- tmux sessions (the same rows as :mod:`gpudash.probes.tmux`);
- the user's Slurm jobs (``squeue -u``) and, for each, ``scontrol show job -o`` for ``StdOut=``.

Every value sits in its own block behind a nonce header, so a path or name holding a newline
cannot forge another candidate. The run's log is then, in order: the process's stdout (or
stderr) when it is a regular file, else Slurm's ``StdOut=``, else nothing — the caller falls back
to the tmux pane (``capture-pane``) via :func:`best_tmux_session`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from gpudash.model import ProbeError, ProcessInfo, Reason, SlurmJob, TmuxSession
from gpudash.probes.processes import (
    OWN_TREE_SH,
    PROBE_MARKER,
    PS_FIELDS,
    block,
    is_uint,
    new_nonce,
    parse_ps_line,
    script_head,
    split_blocks,
)
from gpudash.probes.slurm import scontrol_job
from gpudash.probes.tmux import PaneRow, parse_pane_rows, parse_session_rows, sessions_from_rows, tmux_script
from gpudash.sanitize import clean_field
from gpudash.transport.base import Step

#: ERE for `pgrep -f`: command lines that look like a training run.
TRAINING_PATTERN = (
    r"python[0-9.]* .*(train|finetun|fine_tun|sft)"
    r"|torchrun|torch[.]distributed[.](run|launch)"
    r"|accelerate(-launch| launch)|deepspeed|lightning (run|fit)"
    r"|llamafactory-cli|tune run|axolotl"
)

# Matches of the pattern that are not runs: tools that merely mention training in their args,
# and the terminal multiplexers whose server keeps the command line that started it
# (`tmux new -d -s t 'python train.py'`).
_NOT_A_RUN = re.compile(
    r"(^|[/ ])(tensorboard|jupyter[-a-z]*|ipykernel_launcher\.py|pip[0-9.]*|nvitop|gpustat|wandb)( |$)"
    r"|-m (pip|tensorboard|ipykernel(_launcher)?|jupyter|wandb)( |$)"
)
_WRAPPERS = frozenset({"tmux", "screen", "SCREEN", "tmux:"})
_SHELLS = frozenset({"bash", "sh", "zsh", "fish", "dash", "tcsh", "csh", "ksh", "-bash", "-zsh", "login"})
MAX_CANDIDATES = 64
MAX_SLURM_JOBS = 20


@dataclass(frozen=True)
class Candidate:
    """Something that may be the run. ``pid`` is None for a Slurm job seen only in the queue."""

    source: str  # "gpu" | "cmdline" | "slurm" | "tmux"
    pid: int | None
    command: str
    log_path: str | None = None  # stdout (else stderr) when it is a regular file
    cwd: str | None = None
    parent_pid: int | None = None
    tmux_session: str | None = None
    slurm_job_id: str | None = None
    process: ProcessInfo | None = None


@dataclass(frozen=True)
class Discovery:
    candidates: tuple[Candidate, ...] = ()
    tmux_sessions: tuple[TmuxSession, ...] = ()
    slurm_jobs: tuple[SlurmJob, ...] = ()  # with stdout_path from scontrol when it answered
    gpu_pids: tuple[int, ...] = ()
    hidden_gpu_pids: tuple[int, ...] = ()  # hold a GPU but `ps` cannot see them (a container)
    notes: tuple[str, ...] = ()


def discover_step(user: str | None = None, *, tmux_socket: str | None = None, timeout: float = 15.0) -> Step:
    nonce = new_nonce()
    b = lambda *a: block(nonce, *a)  # noqa: E731 - a short alias keeps the script readable
    u = shlex.quote(user) if user else '"${USER:-$(id -un)}"'
    script = (
        script_head(nonce)
        + OWN_TREE_SH
        + 'command -v timeout >/dev/null 2>&1 && gd_to="timeout -k 1 6" || gd_to=\n'
        # --- GPU compute apps
        + "gd_gpu=\n"
        # Never start an nvidia-smi beside one stuck in the driver (state D, unkillable): it
        # would hang there too, one more every jobs round (the same rule as gpu.py's guard:
        # still in D a second later, so a healthy one passing through D does not count).
        + "gd_stuck=\n"
        + "gd_d() { [ \"$(sed -n 's/^.*) \\([A-Z]\\).*$/\\1/p' \"/proc/$1/stat\" 2>/dev/null)\" = D ]; }\n"
        + 'for gd_x in $(pgrep -u "$(id -u)" -x nvidia-smi 2>/dev/null); do\n'
        + '  gd_d "$gd_x" && sleep 1 && gd_d "$gd_x" && gd_stuck=1\n'
        + "done\n"
        + "if [ -z \"$gd_stuck\" ] && command -v nvidia-smi >/dev/null 2>&1; then\n"
        # Only all-digit lines: nvidia-smi prints its errors on stdout too.
        + "  gd_gpu=$($gd_to nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null"
        + " | sed -n 's/^ *\\([0-9][0-9]*\\) *$/\\1/p')\n"
        + f"  {b('gpu')}\n"
        + '  echo "$gd_gpu"\n'
        + "fi\n"
        # --- training-like command lines
        + "gd_cmd=\n"
        + f"for gd_x in $(pgrep -f -- {shlex.quote(TRAINING_PATTERN)}); do\n"
        + '  gd_skip "$gd_x" || gd_cmd="$gd_cmd $gd_x"\n'
        + "done\n"
        + f"{b('cmdline')}\n"
        + 'echo "$gd_cmd"\n'
        # --- per candidate: ps row, parent, stdout/stderr targets, cwd
        + "gd_all=\n"
        + "gd_n=0\n"
        + "for gd_x in $gd_gpu $gd_cmd; do\n"
        + '  case " $gd_all " in *" $gd_x "*) continue ;; esac\n'
        + f'  gd_n=$((gd_n + 1)); [ "$gd_n" -le {MAX_CANDIDATES} ] || break\n'
        + '  gd_all="$gd_all $gd_x"\n'
        + "done\n"
        + 'if [ -n "$gd_all" ]; then\n'
        + f"  {b('ps')}\n"
        + f"  TZ=UTC0 ps -ww -o {PS_FIELDS} -p \"$(echo $gd_all | tr ' ' ,)\" 2>/dev/null\n"
        + "  for gd_x in $gd_all; do\n"
        + '    gd_ppid "$gd_x" && ' + b("ppid", '"$gd_x"', '"$gd_pp"') + "\n"
        + "    for gd_fd in 1 2; do\n"
        + '      gd_f=-; [ -f "/proc/$gd_x/fd/$gd_fd" ] && gd_f=f\n'
        + "      " + b("fd", '"$gd_x"', '"$gd_fd"', '"$gd_f"') + "\n"
        + '      readlink "/proc/$gd_x/fd/$gd_fd" 2>/dev/null\n'
        + "    done\n"
        + "    " + b("cwd", '"$gd_x"') + "\n"
        + '    readlink "/proc/$gd_x/cwd" 2>/dev/null\n'
        + "  done\n"
        + "fi\n"
        # --- tmux
        + tmux_script(nonce, tmux_socket)
        # --- Slurm: the user's jobs and their StdOut
        + "if command -v squeue >/dev/null 2>&1; then\n"
        + f"  gd_sq=$($gd_to squeue -h -u {u} -o '%i|%j|%T' 2>/dev/null)\n"
        + f"  {b('squeue')}\n"
        + "  printf '%s\\n' \"$gd_sq\"\n"
        + "  gd_n=0\n"
        + "  for gd_j in $(printf '%s\\n' \"$gd_sq\" | cut -d'|' -f1); do\n"
        + '    case "$gd_j" in *[!0-9_]*|"") continue ;; esac\n'
        + f'    gd_n=$((gd_n + 1)); [ "$gd_n" -le {MAX_SLURM_JOBS} ] || break\n'
        + "    " + b("scontrol", '"$gd_j"') + "\n"
        + '    $gd_to scontrol show job -o "$gd_j" 2>/dev/null\n'
        + "  done\n"
        + "fi\n"
        + "exit 0\n"
    )
    return Step("discover", script, timeout=timeout, params={"user": user, "tmux_socket": tmux_socket})


# ----------------------------------------------------------------------------- parsing


def _pids(text: str) -> list[int]:
    out = []
    for w in text.split():
        if is_uint(w) and len(w) < 12 and int(w) > 0 and int(w) not in out:
            out.append(int(w))
    return out


def _log_target(target: str | None, flag: str) -> str | None:
    """A readlink target that is a log file: a regular file, not a tty/pipe/socket/device."""
    if not target or flag != "f" or not target.startswith("/") or "\n" in target:
        return None
    if target.startswith("/dev/") or target.endswith(" (deleted)"):
        return None
    return clean_field(target, max_len=4096)


def parse_discovery(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0):
    """→ :class:`Discovery` (possibly empty) or ProbeError when the script did not finish."""
    try:
        return _parse_discovery(stdout, stderr, exit_code)
    except Exception as exc:  # never raise on remote input
        return ProbeError(Reason.PROBE_ERROR, clean_field(f"discovery: {exc!r}"))


def _parse_discovery(stdout, stderr, exit_code):
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, "discovery did not finish", exit_code)
    gpu: list[int] = []
    cmdline: list[int] = []
    procs: dict[int, ProcessInfo] = {}
    ppid: dict[int, int] = {}
    fds: dict[tuple[int, int], tuple[str, str]] = {}
    cwd: dict[int, str] = {}
    sessions_text = panes_text = squeue_text = ""
    scontrol: dict[str, SlurmJob] = {}
    notes: list[str] = []
    for header, body in split_blocks(stdout):
        kind, args = (header[0], header[1:]) if header else ("", [])
        value = body.strip("\n")
        if kind == "gpu":
            gpu = _pids(body)
        elif kind == "cmdline":
            cmdline = _pids(body)
        elif kind == "ps":
            for line in body.split("\n"):
                info = parse_ps_line(line)
                if info is not None:
                    procs.setdefault(info.pid, info)
        elif kind == "ppid" and len(args) == 2 and is_uint(args[0]) and is_uint(args[1]):
            ppid[int(args[0])] = int(args[1])
        elif kind == "fd" and len(args) == 3 and is_uint(args[0]) and args[1] in ("1", "2"):
            fds[(int(args[0]), int(args[1]))] = (value, args[2])
        elif kind == "cwd" and len(args) == 1 and is_uint(args[0]):
            if value.startswith("/") and "\n" not in value:
                cwd[int(args[0])] = clean_field(value, max_len=4096)
        elif kind == "sessions":
            sessions_text = body
        elif kind == "panes":
            panes_text = body
        elif kind == "no_tmux":
            notes.append("tmux is not installed")
        elif kind == "squeue":
            squeue_text = body
        elif kind == "scontrol" and args:
            for line in body.split("\n"):
                job = scontrol_job(line)
                if job is not None:
                    scontrol[job.job_id] = job

    panes = parse_pane_rows(panes_text)
    sessions = sessions_from_rows(parse_session_rows(sessions_text), panes)
    tty_session = _tty_sessions(parse_session_rows(sessions_text), panes)

    candidates: list[Candidate] = []
    hidden: list[int] = []
    seen: set[int] = set()
    for pid in gpu + cmdline:
        if pid in seen:
            continue
        seen.add(pid)
        info = procs.get(pid)
        if info is None:
            if pid in gpu:
                hidden.append(pid)
            continue
        if PROBE_MARKER in info.command or (pid not in gpu and not is_training_command(info.command)):
            continue
        out1, out2 = fds.get((pid, 1), ("", "")), fds.get((pid, 2), ("", ""))
        log = _log_target(*out1) or _log_target(*out2)
        tmux_name = tty_session.get(out1[0]) or tty_session.get(out2[0])
        candidates.append(
            Candidate(
                source="gpu" if pid in gpu else "cmdline",
                pid=pid,
                command=info.command,
                log_path=log,
                cwd=cwd.get(pid),
                parent_pid=ppid.get(pid),
                tmux_session=tmux_name,
                process=info,
            )
        )
    # A shell wrapping the run (`sh -c 'python train.py > log'`) matches too: keep its child only.
    parents = {c.parent_pid for c in candidates}
    candidates = [c for c in candidates if not (c.pid in parents and _argv0(c.command) in _SHELLS)]
    candidates.sort(key=lambda c: _rank(c, candidates))

    slurm_jobs = _slurm_jobs(squeue_text, scontrol)
    for job in slurm_jobs:
        candidates.append(
            Candidate(
                source="slurm",
                pid=None,
                command=job.name,
                log_path=job.stdout_path or None,
                slurm_job_id=job.job_id,
            )
        )
    claimed = {c.tmux_session for c in candidates if c.tmux_session}
    for s in sessions:
        if s.name in claimed:
            continue
        if s.pane_dead or (s.pane_command and s.pane_command not in _SHELLS):
            candidates.append(Candidate(source="tmux", pid=s.pane_pid, command=s.pane_command, tmux_session=s.name))
    return Discovery(
        candidates=tuple(candidates),
        tmux_sessions=sessions,
        slurm_jobs=slurm_jobs,
        gpu_pids=tuple(gpu),
        hidden_gpu_pids=tuple(hidden),
        notes=tuple(notes),
    )


def _rank(c: Candidate, all_c: list[Candidate]) -> tuple:
    """GPU holders first, then those whose output goes to a file, then a launcher before its
    children (torchrun workers), then by pid."""
    pids = {x.pid for x in all_c}
    return (c.source != "gpu", c.log_path is None, c.parent_pid in pids, c.pid or 0)


def _argv0(command: str) -> str:
    first = command.split(" ", 1)[0] if command else ""
    return first.rsplit("/", 1)[-1]


def _tty_sessions(session_rows: list[tuple[str, TmuxSession]], panes: list[PaneRow]) -> dict[str, str]:
    """Pane tty → session name: a process whose stdout is that tty runs in that session."""
    names = {key: s.name for key, s in session_rows}
    return {p.tty: names[p.session_id] for p in panes if p.tty and p.session_id in names}


def _slurm_jobs(squeue_text: str, scontrol: dict[str, SlurmJob]) -> tuple[SlurmJob, ...]:
    """``%i|%j|%T`` rows (name may hold ``|``), completed by scontrol's StdOut when known."""
    out = []
    for line in squeue_text.split("\n"):
        if "|" not in line:
            continue
        job_id, rest = line.split("|", 1)
        name, _, state = rest.rpartition("|")
        job_id = job_id.strip()
        if not job_id or not re.fullmatch(r"[A-Z_]+", state.strip()):
            continue
        sc = scontrol.get(job_id)
        out.append(
            SlurmJob(
                job_id=clean_field(job_id, max_len=64),
                name=clean_field(name),
                user=sc.user if sc else "",
                state=state.strip(),
                elapsed=sc.elapsed if sc else "",
                time_limit=sc.time_limit if sc else "",
                nodes=sc.nodes if sc else "",
                reason=sc.reason if sc else "",
                stdout_path=sc.stdout_path if sc else "",
                exit_code=sc.exit_code if sc else "",
                source="squeue",
            )
        )
    return tuple(out)


# ----------------------------------------------------------------------------- choosing


def best_log(discovery) -> tuple[str, str] | None:
    """``(path, how)`` of the run's log: a process's stdout/stderr file (``how`` = "process:PID"),
    else a Slurm job's ``StdOut=`` (``how`` = "slurm:JOBID", running jobs first), else None —
    then the tmux pane is the only source (:func:`best_tmux_session`)."""
    if not isinstance(discovery, Discovery):
        return None
    for c in discovery.candidates:
        if c.source in ("gpu", "cmdline") and c.log_path:
            return c.log_path, f"process:{c.pid}"
    jobs = sorted(discovery.slurm_jobs, key=lambda j: (j.state != "RUNNING", j.state != "PENDING"))
    for j in jobs:
        if j.stdout_path:
            return j.stdout_path, f"slurm:{j.job_id}"
    return None


def best_tmux_session(discovery) -> str | None:
    """The tmux session to ``capture-pane`` when no log file was found."""
    if not isinstance(discovery, Discovery):
        return None
    for c in discovery.candidates:
        if c.tmux_session:
            return c.tmux_session
    live = [s.name for s in discovery.tmux_sessions if not s.pane_dead]
    return live[0] if len(live) == 1 else None


def is_training_command(command: str) -> bool:
    """Does a command line look like a run? :data:`TRAINING_PATTERN` minus known tools and
    multiplexer servers (the Python side of what the script's pgrep found)."""
    if _argv0(command) in _WRAPPERS:
        return False
    return bool(re.search(TRAINING_PATTERN, command)) and not _NOT_A_RUN.search(command)
