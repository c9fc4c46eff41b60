"""The six teardown checks of product.md as pure functions over probe results.

Each function takes parsed probe results (typed values or :class:`ProbeError`, ``None`` when the
probe was not run) and returns a :class:`Check`: green, red or unknown, the evidence lines, and
what is missing. Nothing here does I/O — :mod:`gpudash.teardown.runner` runs the probes and calls
these — so every rule is tested on hand-built results.

The rules that matter (domain.md): "looks done" is not done (a completion marker or the run's own
completion line is required); an empty GPU process list while memory is held is a container
hiding PIDs, not "no process" (unknown unless the job's own process is confirmed gone);
completeness is a file COUNT with plausible sizes, never `test -d`; a full disk (bytes OR inodes)
makes "synced" a lie.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gpudash.format import human_bytes
from gpudash.model import (
    ComputeApp,
    DirListing,
    DiskUsage,
    FileInfo,
    GpuSample,
    ProbeError,
    ProcessInfo,
    RayJob,
    Reason,
    SlurmJob,
    TmuxSession,
)
from gpudash.teardown.types import GREEN, RED, UNKNOWN, Check, StopPlan, TeardownSettings

TITLES = {
    "job": "job ended with its completion marker",
    "gpu": "no GPU compute process left",
    "artifacts": "durable artifacts complete, disk not full",
    "local": "local copy matches the remote",
    "verify": "verify command passed locally",
    "stop": "meter-stop",
}
FULL_PCT = 97.0  # product.md's CRIT threshold for bytes and inodes: "full" for teardown
PLAUSIBLE_FRACTION = 0.5  # an artifact under half the median of its like-named siblings
MAX_LISTED = 8


def _check(check_id: str, state: str, evidence, missing: str = "") -> Check:
    return Check(id=check_id, title=TITLES[check_id], state=state, evidence=tuple(evidence),
                 missing="" if state == GREEN else missing)


def _verdict(check_id: str, evidence: list[str], reds: list[str], unknowns: list[str]) -> Check:
    if reds:
        return _check(check_id, RED, evidence, "; ".join(reds))
    if unknowns:
        return _check(check_id, UNKNOWN, evidence, "; ".join(unknowns))
    return _check(check_id, GREEN, evidence)


def _names(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


# ----------------------------------------------------------------------------- 1. the job


@dataclass(frozen=True)
class JobFacts:
    """What the probes said about the job (each: parsed value, ProbeError, or None = not asked)."""

    processes: tuple[ProcessInfo, ...] | ProbeError | None = None
    tmux: tuple[TmuxSession, ...] | ProbeError | None = None
    slurm: SlurmJob | ProbeError | None = None
    ray: RayJob | ProbeError | None = None
    discovery: object | None = None  # gpudash.probes.discovery.Discovery | ProbeError
    markers: tuple[FileInfo, ...] | ProbeError | None = None
    completion: tuple[int, str] | None = None  # (line no in the tail read, text)
    log_read: bool = False  # the log's tail was read (so "no completion line" means something)
    log_error: str | None = None
    link_error: str | None = None  # the box could not be reached: nothing above is known


@dataclass(frozen=True)
class Liveness:
    alive: bool | None  # None: nobody can tell
    confirmed_gone: bool  # the job's OWN process (configured identity) is known to be gone
    failed: str | None  # ended, but not well ("Slurm job 42 ended TIMEOUT")
    lines: tuple[str, ...]


def _tmux_liveness(name: str, tmux) -> tuple[bool | None, bool, str | None, str]:
    from gpudash.health.jobs_summary import COMPLETED, FAILED, RUNNING, tmux_category

    if isinstance(tmux, ProbeError) or tmux is None:
        msg = tmux.message if isinstance(tmux, ProbeError) else "not probed"
        return None, False, None, f"tmux: cannot tell ({msg})"
    session = next((t for t in tmux if t.name == name), None)
    if session is None:
        return False, True, None, f"tmux session {name!r} is gone"
    cat = tmux_category(session)
    if cat == RUNNING:
        return True, False, None, f"tmux session {name!r} still runs `{session.pane_command}`"
    if cat == FAILED:
        st = session.pane_dead_status
        return False, True, f"tmux session {name!r} exited with status {st}", \
            f"tmux session {name!r}: the command exited with status {st}"
    if cat == COMPLETED:
        return False, True, None, f"tmux session {name!r}: the command exited with status 0"
    return False, True, None, f"tmux session {name!r}: the command finished (an idle shell remains)"


def job_liveness(s: TeardownSettings, f: JobFacts) -> Liveness:
    """Is the job still running, and is its own process confirmed gone? Every configured identity
    is consulted; one that still runs wins, one that cannot be read makes the answer unknown."""
    from gpudash.health.jobs_summary import CANCELLED, COMPLETED, FAILED, job_category

    if f.link_error:
        return Liveness(None, False, None, (f.link_error,))
    lines: list[str] = []
    alive: list[bool | None] = []
    failed: str | None = None
    if s.pgrep:
        p = f.processes
        if isinstance(p, ProbeError) or p is None:
            alive.append(None)
            lines.append(f"process scan failed: {p.message if p else 'not probed'}")
        elif p:
            alive.append(True)
            for proc in p[:3]:
                lines.append(f"still running: pid {proc.pid} `{proc.command[:120]}`")
        else:
            alive.append(False)
            lines.append(f"no process matches pgrep {s.pgrep!r}")
    if s.tmux_session:
        a, _, fail, line = _tmux_liveness(s.tmux_session, f.tmux)
        alive.append(a)
        lines.append(line)
        failed = failed or fail
    if s.slurm_job:
        j = f.slurm
        if isinstance(j, ProbeError) or j is None:
            alive.append(None)
            lines.append(f"Slurm job {s.slurm_job}: cannot tell "
                         f"({j.message if isinstance(j, ProbeError) else 'no source answered'})")
        elif j.source == "aged_out":
            alive.append(False)
            lines.append(f"Slurm job {s.slurm_job} ended and aged out of scontrol (no slurmdbd: "
                         "its final state is unknown)")
        else:
            cat = job_category(j.state, "slurm")
            lines.append(f"Slurm job {j.job_id}: {j.state} (from {j.source})")
            if cat == COMPLETED:
                alive.append(False)
            elif cat in (FAILED, CANCELLED):
                alive.append(False)
                failed = failed or f"Slurm job {j.job_id} ended {j.state}, not COMPLETED"
            else:
                alive.append(True)
    if s.ray_job:
        r = f.ray
        if isinstance(r, ProbeError) or r is None:
            alive.append(None)
            lines.append(f"Ray job {s.ray_job}: cannot tell "
                         f"({r.message if isinstance(r, ProbeError) else 'not probed'})")
        else:
            cat = job_category(r.status, "ray")
            lines.append(f"Ray job {r.job_id}: {r.status}")
            alive.append(cat not in (COMPLETED, FAILED, CANCELLED))
            if cat in (FAILED, CANCELLED):
                failed = failed or f"Ray job {r.job_id} ended {r.status}, not SUCCEEDED"
    confirmed = bool(alive) and all(a is False for a in alive)
    if not s.has_job_identity:
        a, line = _discovered(f.discovery)
        alive.append(a)
        lines.append(line)
    if any(a is True for a in alive):
        state = True
    elif any(a is None for a in alive) or not alive:
        state = None
    else:
        state = False
    return Liveness(state, confirmed, failed, tuple(lines))


def _discovered(d) -> tuple[bool | None, str]:
    """Zero config: training-like processes, GPU holders, running Slurm jobs of the user."""
    from gpudash.health.jobs_summary import PENDING, RUNNING, job_category
    from gpudash.probes.discovery import is_training_command

    if d is None or isinstance(d, ProbeError):
        msg = d.message if isinstance(d, ProbeError) else "not probed"
        return None, f"could not look for the run ({msg})"
    running = []
    for c in getattr(d, "candidates", ()):
        if c.source in ("gpu", "cmdline") and c.pid is not None:
            running.append(f"pid {c.pid} `{c.command[:100]}`")
        elif c.source == "tmux" and is_training_command(c.command or ""):
            running.append(f"tmux {c.tmux_session}: `{c.command[:100]}`")
    for j in getattr(d, "slurm_jobs", ()):
        if job_category(j.state, "slurm") in (RUNNING, PENDING):
            running.append(f"Slurm job {j.job_id} {j.state}")
    if running:
        return True, "still running (discovered): " + _names(running, 3)
    return False, ("no training-like process, GPU holder or running Slurm job found (zero-config "
                   "discovery; set pgrep or tmux_session for a firmer answer)")


def check_job(s: TeardownSettings, f: JobFacts) -> tuple[Check, Liveness]:
    """Check 1: the job is over AND its completion is recorded (marker or completion line)."""
    live = job_liveness(s, f)
    evidence = list(live.lines)
    if f.link_error:
        return _check("job", UNKNOWN, evidence, "the box could not be reached"), live
    done: list[str] = []
    completion_known = False
    if isinstance(f.markers, ProbeError):
        evidence.append(f"markers: {f.markers.message}")
    elif f.markers is not None:
        completion_known = True
        for m in f.markers:
            if m.exists and m.size is not None:  # a regular file (dirs have size None)
                done.append(f"marker {m.path} ({human_bytes(m.size)})")
        if not done:
            evidence.append("no completion marker: " + _names([m.path for m in f.markers], 4))
    if f.completion is not None:
        done.append(f"completion line in the log: {f.completion[1][:160]!r}")
    elif f.log_read:
        completion_known = True
        evidence.append("no completion line in the log's tail")
    elif f.log_error:
        evidence.append(f"log: {f.log_error}")
    evidence.extend(done)
    if live.alive is True:
        return _check("job", RED, evidence, "the job still runs — wait for it "
                      "(`gpudash wait HOST`)"), live
    if live.failed:
        return _check("job", RED, evidence, live.failed), live
    if live.alive is None:
        return _check("job", UNKNOWN, evidence, "could not tell whether the job still runs"), live
    if done:
        return _check("job", GREEN, evidence), live
    if not completion_known:
        return _check("job", UNKNOWN, evidence, "no completion evidence configured: set markers "
                      "(--marker PATH) or the run's log"), live
    return _check("job", RED, evidence, "no completion marker or completion line — the job "
                  "ended, but 'looks done' is not done"), live


# ----------------------------------------------------------------------------- 2. the GPU


def check_gpu(gpus: Sequence[GpuSample] | ProbeError | None,
              apps: Sequence[ComputeApp] | ProbeError | None,
              live: Liveness, *, link_error: str | None = None) -> Check:
    """Check 2: no compute process on any GPU. An empty list while memory is held is a container
    hiding PIDs: unknown, unless the job's own process is confirmed gone."""
    from gpudash.probes.gpu import apps_visibility

    if link_error:
        return _check("gpu", UNKNOWN, [link_error], "the box could not be reached")
    gone = [ln for ln in live.lines] if live.confirmed_gone else []
    if isinstance(gpus, ProbeError) and gpus.reason is Reason.NO_GPU:
        if "found no" in gpus.message:
            return _check("gpu", GREEN, [f"{gpus.message}: nothing can hold a GPU"])
        if live.confirmed_gone:
            return _check("gpu", GREEN, [gpus.message, "the job's own process is confirmed "
                                         "gone: " + "; ".join(gone)])
        return _check("gpu", UNKNOWN, [gpus.message], "cannot list GPU processes (no "
                      "nvidia-smi): confirm the job is gone (set pgrep or tmux_session)")
    vis = apps_visibility(gpus, apps)
    if vis == "visible":
        listed = [f"pid {a.pid} {a.process_name} "
                  f"{'n/a' if a.used_mib is None else f'{a.used_mib:.0f} MiB'}" for a in apps]
        return _check("gpu", RED, [f"compute process: {x}" for x in listed[:MAX_LISTED]],
                      f"{len(listed)} compute process(es) still on the GPU: " + _names(listed, 3))
    used = sum(g.mem_used_mib or 0 for g in gpus) if isinstance(gpus, (tuple, list)) else None
    n = len(gpus) if isinstance(gpus, (tuple, list)) else 0
    if vis == "none":
        return _check("gpu", GREEN, [f"no compute process on {n} GPU(s); {used:.0f} MiB in use"])
    if vis == "not_visible":
        lines = [f"no compute process listed, but {used:.0f} MiB held on {n} GPU(s): a container "
                 "hides the processes"]
        if live.confirmed_gone:
            return _check("gpu", GREEN, lines + ["the job's own process is confirmed gone: "
                                                 + "; ".join(gone)])
        return _check("gpu", UNKNOWN, lines, "GPU memory is held and the process list is empty "
                      "(container): confirm the job's own process is gone (set pgrep or "
                      "tmux_session)")
    why = next((x.message for x in (gpus, apps) if isinstance(x, ProbeError)), "no answer")
    return _check("gpu", UNKNOWN, [f"nvidia-smi: {why}"], "could not list GPU processes")


# ----------------------------------------------------------------------------- 3. artifacts


def _shape(name: str) -> str:
    """Like-named siblings share a shape: ckpt-10.pt and ckpt-20.pt → ckpt-#.pt."""
    return re.sub(r"[0-9]+", "#", name)


def implausible(files: Sequence[FileInfo], fraction: float = PLAUSIBLE_FRACTION) -> list[str]:
    """Files under ``fraction`` of the median size of their like-named siblings (a truncated
    copy, a save cut short by a full disk). Files with no sibling are not judged."""
    groups: dict[str, list[FileInfo]] = {}
    for f in files:
        if f.size is not None:
            groups.setdefault(_shape(f.path), []).append(f)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        median = statistics.median(m.size for m in members)
        for m in members:
            if median > 0 and m.size < fraction * median:
                out.append(f"{m.path} is {human_bytes(m.size)}, under {fraction:.0%} of its "
                           f"siblings' median {human_bytes(median)} (truncated?)")
    return out


def check_artifacts(s: TeardownSettings, listing: DirListing | ProbeError | None,
                    disk: DiskUsage | ProbeError | None, *, link_error: str | None = None
                    ) -> Check:
    """Check 3: the expected file count, each non-empty and plausible, on a filesystem not full."""
    if not s.artifacts_dir:
        return _check("artifacts", UNKNOWN, [], "set artifacts_dir (or --artifacts REMOTE_DIR)")
    if link_error:
        return _check("artifacts", UNKNOWN, [link_error], "the box could not be reached")
    evidence: list[str] = []
    reds: list[str] = []
    unknowns: list[str] = []
    if isinstance(listing, ProbeError) or listing is None:
        msg = listing.message if listing is not None else "not listed"
        unknowns.append(f"cannot list {s.artifacts_dir}: {msg}")
    elif not listing.exists:
        reds.append(f"{s.artifacts_dir} does not exist")
    else:
        files = listing.files
        evidence.append(f"{s.artifacts_dir}: {len(files)} entries matching {s.artifacts_glob!r}, "
                        f"{human_bytes(listing.total_bytes)}")
        evidence.extend(f"  {f.path} {human_bytes(f.size)}" for f in files[:MAX_LISTED])
        if len(files) > MAX_LISTED:
            evidence.append(f"  (+{len(files) - MAX_LISTED} more)")
        if s.expected_count is None:
            unknowns.append("set expected_count (or --expect N): completeness is a count, "
                            "never `test -d`")
        elif len(files) != s.expected_count:
            reds.append(f"{len(files)} artifacts, expected {s.expected_count}")
        small = [f.path for f in files if (f.size or 0) < max(1, s.min_artifact_bytes)]
        if small:
            what = "empty" if s.min_artifact_bytes <= 1 else \
                f"under {human_bytes(s.min_artifact_bytes)}"
            reds.append(f"{what}: {_names(small, 4)}")
        odd = implausible([f for f in files if f.path not in small])
        reds.extend(odd)
    if isinstance(disk, ProbeError) or disk is None:
        unknowns.append("filesystem fill unknown: " + (disk.message if disk else "no df answer"))
    else:
        bp, ip = disk.bytes_pct, disk.inodes_pct
        evidence.append(f"filesystem {disk.mount}: bytes {_pct(bp)} used "
                        f"({human_bytes(disk.avail_bytes)} free), inodes {_pct(ip)} used")
        if (bp is not None and bp >= FULL_PCT) or disk.avail_bytes == 0:
            reds.append(f"filesystem {disk.mount} is full ({_pct(bp)} of bytes): a copy onto it "
                        "may have failed silently")
        if (ip is not None and ip >= FULL_PCT) or disk.inodes_free == 0:
            reds.append(f"filesystem {disk.mount} is out of inodes ({_pct(ip)}): bytes look fine "
                        "but no new file can be created")
        if bp is None:
            unknowns.append(f"bytes used on {disk.mount} unknown")
    return _verdict("artifacts", evidence, reds, unknowns)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}%"


# ----------------------------------------------------------------------------- 4. local copy


def check_local(s: TeardownSettings, remote: DirListing | ProbeError | None,
                local: DirListing | str | None, *,
                remote_hashes: dict[str, str] | ProbeError | None = None,
                local_hashes: dict[str, str] | None = None, sha256: bool = False,
                link_error: str | None = None) -> Check:
    """Check 4: every remote artifact is in the local pull dir with the same size (and sha256 on
    request). ``local`` is a listing, or an error string."""
    if s.local_dir is None:
        return _check("local", UNKNOWN, [], "set local_dir (or --local LOCAL_DIR)")
    evidence: list[str] = []
    reds: list[str] = []
    unknowns: list[str] = []
    if isinstance(local, str) or local is None:
        return _check("local", UNKNOWN, [local or "not listed"], f"cannot list {s.local_dir}")
    if not local.exists:
        return _check("local", RED, [], f"local dir {s.local_dir} does not exist")
    evidence.append(f"local {s.local_dir}: {local.count} entries, {human_bytes(local.total_bytes)}")
    if link_error or isinstance(remote, ProbeError) or remote is None or not remote.exists:
        why = link_error or (remote.message if isinstance(remote, ProbeError) else
                             "no remote listing")
        return _check("local", UNKNOWN, evidence + [why], "nothing to compare with: the remote "
                      "listing failed (see check 3)")
    evidence.insert(0, f"remote {s.artifacts_dir}: {remote.count} entries, "
                    f"{human_bytes(remote.total_bytes)}")
    mine = {f.path: f for f in local.files}
    missing = [f.path for f in remote.files if f.path not in mine]
    if missing:
        reds.append("missing locally: " + _names(missing))
    for f in remote.files:
        got = mine.get(f.path)
        if got is not None and f.size is not None and got.size != f.size:
            reds.append(f"{f.path}: {human_bytes(got.size)} locally, {human_bytes(f.size)} on "
                        "the box (partial copy?)")
    extra = [p for p in mine if p not in {f.path for f in remote.files}]
    if extra:
        evidence.append("only local (ignored): " + _names(extra, 4))
    if sha256:
        _compare_hashes(remote, remote_hashes, local_hashes or {}, evidence, reds, unknowns)
    else:
        evidence.append("contents not hashed (--sha256 compares sha256 on both sides)")
    return _verdict("local", evidence, reds, unknowns)


def _compare_hashes(remote: DirListing, remote_hashes, local_hashes: dict[str, str],
                    evidence: list[str], reds: list[str], unknowns: list[str]) -> None:
    files = [f.path for f in remote.files if not f.path.endswith("/")]
    folders = [f.path for f in remote.files if f.path.endswith("/")]
    if isinstance(remote_hashes, ProbeError) or remote_hashes is None:
        msg = remote_hashes.message if isinstance(remote_hashes, ProbeError) else "not run"
        unknowns.append(f"remote sha256 failed: {msg}")
        return
    same, differ, unread = 0, [], []
    for name in files:
        r, mine = remote_hashes.get(name), local_hashes.get(name)
        if mine is None:
            continue  # missing locally: already red
        if r is None:
            unread.append(name)
        elif r == mine:
            same += 1
        else:
            differ.append(name)
    evidence.append(f"sha256: {same} of {len(files)} files match")
    if folders:
        evidence.append("folders compared by bytes only: " + _names(folders, 4))
    if differ:
        reds.append("sha256 differs: " + _names(differ))
    if unread:
        unknowns.append("no remote sha256 for: " + _names(unread))


# ----------------------------------------------------------------------------- 5. verify


@dataclass(frozen=True)
class VerifyResult:
    command: str
    exit_code: int | None  # None: killed at its timeout
    output: tuple[str, ...]  # the last lines, sanitised
    timeout: float = 0.0
    error: str = ""  # could not start it


_OK = re.compile(r"\bOK\s+(\d+)\s*/\s*(\d+)\b")


def check_verify(s: TeardownSettings, result: VerifyResult | None, *, skipped: str = "") -> Check:
    """Check 5: the configured command (load each artifact) ran LOCALLY and passed."""
    if not s.verify_command:
        return _check("verify", UNKNOWN, [], "set verify_command (or --verify CMD): a command "
                      "that loads each artifact and prints OK N/N")
    if skipped or result is None:
        return _check("verify", UNKNOWN, [f"$ {s.verify_command}"], skipped or "not run")
    evidence = [f"$ {result.command}"] + [f"  {line}" for line in result.output]
    if result.error:
        return _check("verify", RED, evidence + [result.error], "the verify command could not run")
    if result.exit_code is None:
        return _check("verify", RED, evidence, f"the verify command did not finish within "
                      f"{result.timeout:.0f} s")
    evidence.append(f"exit status {result.exit_code}")
    if result.exit_code != 0:
        return _check("verify", RED, evidence, f"the verify command failed (exit "
                      f"{result.exit_code})")
    oks = [m for line in result.output for m in _OK.finditer(line)]
    if oks:
        good, total = int(oks[-1][1]), int(oks[-1][2])
        if good != total:
            return _check("verify", RED, evidence, f"OK {good}/{total}: not every artifact loaded")
        if s.expected_count is not None and total != s.expected_count:
            return _check("verify", RED, evidence, f"verify loaded {total}, expected "
                          f"{s.expected_count}")
    else:
        evidence.append("(no `OK N/N` line printed: passed by its exit status)")
    return _check("verify", GREEN, evidence)


# ----------------------------------------------------------------------------- 6. the stop


def check_stop(plan: StopPlan, prior: Sequence[Check]) -> Check:
    """Check 6: the meter-stop, shown with where it runs and what survives; enabled (green) only
    when checks 1–5 are all green and the command is complete."""
    evidence = []
    if plan.command:
        evidence.append(f"command: {plan.command}")
    evidence.append(f"runs {plan.where_text}")
    evidence.append(f"survives: {plan.survives}")
    evidence.append("reversible: " + ("yes" if plan.reversible else "NO — it cannot be undone"))
    evidence.extend(f"warning: {w}" for w in plan.warnings)
    blocked = [str(i) for i, c in enumerate(prior, 1) if not c.green]
    if plan.command is None and plan.where != "console":
        return _check("stop", UNKNOWN, evidence, "no meter-stop configured: set preset or "
                      "stop_command (or --preset NAME)")
    if plan.unknown:
        return _check("stop", UNKNOWN, evidence, f"{', '.join(plan.unknown)} unknown: the stop "
                      "command is incomplete")
    if blocked:
        return _check("stop", RED, evidence, f"disabled until checks {', '.join(blocked)} are "
                      "green")
    return _check("stop", GREEN, evidence)


async def run_checks(transport, settings: TeardownSettings, *, sha256: bool = False,
                     local_root=None):
    """Probe and judge: see :func:`gpudash.teardown.runner.run_checks` (kept there so this
    module stays pure; re-exported here because callers look for it next to the checks)."""
    from gpudash.teardown.runner import run_checks as run

    return await run(transport, settings, sha256=sha256, local_root=local_root)
