"""Safe restart: never a blind retry (product.md "Rules"; domain.md "Never blind-restart").

A restart goes through four gates, each of which can refuse and says why:

1. :func:`decide` (pure): a resume command is configured; not flapping (N restarts within M
   minutes); the same triage class did not come back after the previous retry (retrying the
   identical config again will not help); an AUTOMATIC restart only when the host enabled
   auto-resume, only for the probabilistic classes (preempted, time_limit, network — never
   cancelled), and only up to its maximum.
2. :func:`preflight` (probes): the job is really gone — its process, its tmux session, its Slurm
   job (which must not be queued again: Slurm may requeue a preempted job by itself) — and its
   completion marker is absent. Without a way to identify the job, nothing can be confirmed: refuse.
3. :func:`launch`: the resume command runs DETACHED so it lets go of the channel
   (``setsid nohup CMD </dev/null >>LOG 2>&1 &``, ``tmux new -d``, or ``sbatch``). Without the
   redirects the exec channel would stay open until the job ends, look like a timeout, and invite
   a second launch.
4. :func:`check_after`: after ~60 s the job is alive and its log moved; after ~2 min it is still
   alive (an immediate failure shows by then).

The clock and the waits are injected (``clock``, ``sleep``) so tests run the real launch
without waiting minutes. Restarts are counted in a :class:`RestartLedger` the caller keeps.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from gpudash.model import ProbeError, Reason
from gpudash.transport.base import Step, Transport, TransportError

PROBABILISTIC = frozenset({"preempted", "time_limit", "network"})
# External events that recur by nature (the market preempts a spot box again, a time limit hits
# every long job): their coming back is not "the same failure after a retry"; the automatic
# maximum and the flapping rule bound them instead.
RECURRING_OK = frozenset({"preempted", "time_limit"})
METHODS = ("nohup", "tmux", "sbatch")
DEFAULT_LOG = "~/gpudash-resume.log"


@dataclass(frozen=True)
class RestartPolicy:
    resume_command: str | None
    method: str | None = None  # nohup | tmux | sbatch; None: sbatch if the command is one,
    # tmux if a session is configured, else nohup
    log_path: str | None = None  # where the resumed run writes (nohup/tmux); its growth is checked
    tmux_session: str | None = None
    pgrep: str | None = None
    slurm_job: str | None = None
    markers: tuple[str, ...] = ()
    max_restarts: int = 3  # flapping: this many restarts ...
    flap_window_s: float = 1800.0  # ... within this window
    auto_resume: bool = False
    auto_resume_max: int = 2
    first_check_s: float = 60.0
    second_check_s: float = 120.0
    probe_timeout: float = 8.0
    launch_timeout: float = 15.0

    @property
    def resolved_method(self) -> str:
        if self.method in METHODS:
            return self.method
        if self.resume_command and self.resume_command.lstrip().startswith("sbatch "):
            return "sbatch"
        return "tmux" if self.tmux_session else "nohup"

    @classmethod
    def from_host_config(cls, hc, **overrides) -> "RestartPolicy":
        g = lambda k, d=None: getattr(hc, k, d)  # noqa: E731
        log = g("log")
        values = dict(
            resume_command=g("resume_command"), tmux_session=g("tmux_session"),
            pgrep=g("pgrep"), slurm_job=str(g("slurm_job")) if g("slurm_job") else None,
            markers=tuple(m for m in (g("markers") or ()) if "/" in m),
            log_path=log if log and not any(c in log for c in "*?[") else None,
            auto_resume=bool(g("auto_resume", False)),
            auto_resume_max=int(g("auto_resume_max", 2) or 0),
        )
        values.update(overrides)
        return cls(**values)


# ----------------------------------------------------------------------------- 1. decide


@dataclass(frozen=True)
class RestartEntry:
    at: float
    cls: str | None  # the triage class that prompted it
    automatic: bool
    method: str
    ident: str = ""  # "pid 123", "tmux train", "slurm 456"


@dataclass
class RestartLedger:
    """The restarts of one job (the SQLite job registry persists it through to_json/from_json)."""

    entries: list[RestartEntry] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.entries)

    def count_since(self, t: float) -> int:
        return sum(1 for e in self.entries if e.at >= t)

    def automatic_count(self) -> int:
        return sum(1 for e in self.entries if e.automatic)

    def last(self) -> RestartEntry | None:
        return self.entries[-1] if self.entries else None

    def record(self, entry: RestartEntry) -> None:
        self.entries.append(entry)

    def to_json(self) -> list[dict]:
        return [asdict(e) for e in self.entries]

    @classmethod
    def from_json(cls, data) -> "RestartLedger":
        out = cls()
        for d in data or ():
            try:
                out.entries.append(RestartEntry(float(d["at"]), d.get("cls"),
                                                bool(d.get("automatic")), str(d.get("method", "")),
                                                str(d.get("ident", ""))))
            except (KeyError, TypeError, ValueError):
                continue
        return out


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(policy: RestartPolicy, ledger: RestartLedger, triage_cls: str | None, now: float,
           *, automatic: bool) -> Decision:
    """May this restart happen at all? Pure; the reasons are shown to the user as they are."""
    if not policy.resume_command:
        return Decision(False, "no resume_command is configured for this host")
    if triage_cls == "completed":
        return Decision(False, "the run completed: there is nothing to resume")
    if automatic:
        if not policy.auto_resume:
            return Decision(False, "auto-resume is off for this host (auto_resume = true enables "
                            "it for preempted, time_limit and network failures)")
        if triage_cls == "cancelled":
            return Decision(False, "cancelled by a person: never resumed automatically")
        if triage_cls not in PROBABILISTIC:
            return Decision(False, f"{triage_cls or 'an unclassified failure'} is not a "
                            "probabilistic failure: auto-resume covers only preempted, "
                            "time_limit and network")
        if ledger.automatic_count() >= policy.auto_resume_max:
            return Decision(False, f"auto-resume maximum reached ({policy.auto_resume_max} "
                            "automatic restarts): resume by hand if it is still right")
    recent = ledger.count_since(now - policy.flap_window_s)
    if recent >= policy.max_restarts:
        return Decision(False, f"flapping: {recent} restarts in the last "
                        f"{policy.flap_window_s / 60:.0f} min — stop and investigate")
    last = ledger.last()
    if last is not None and triage_cls and last.cls == triage_cls \
            and triage_cls not in RECURRING_OK:
        when = time.strftime("%H:%M", time.localtime(last.at))
        return Decision(False, f"the same failure ({triage_cls}) came back after the retry at "
                        f"{when}: retrying the identical config again will not help")
    how = "automatic" if automatic else "confirmed by you"
    return Decision(True, f"restart #{ledger.count + 1} ({how}) via {policy.resolved_method}")


# ----------------------------------------------------------------------------- 2. preflight


@dataclass(frozen=True)
class Preflight:
    ok: bool
    reason: str
    evidence: tuple[str, ...] = ()


async def preflight(transport: Transport, policy: RestartPolicy) -> Preflight:
    """Probe that the job is really gone and its completion marker is absent."""
    from gpudash.health.jobs_summary import PENDING, RUNNING, job_category, tmux_category
    from gpudash.probes import files, processes, slurm, tmux

    if not (policy.pgrep or policy.tmux_session or policy.slurm_job):
        return Preflight(False, "cannot confirm the job is gone: configure pgrep, tmux_session "
                         "or slurm_job for this host")
    t = policy.probe_timeout
    steps: list[Step] = []
    if policy.pgrep:
        steps.append(processes.processes_step(policy.pgrep, timeout=t))
    if policy.tmux_session:
        steps.append(tmux.tmux_step(timeout=t))
    if policy.slurm_job:
        steps += [slurm.squeue_step(job_id=policy.slurm_job), slurm.sacct_step(policy.slurm_job),
                  slurm.scontrol_step(policy.slurm_job)]
    if policy.markers:
        steps.append(files.files_step(list(policy.markers), key="markers", timeout=t))
    try:
        res = await transport.run(steps, deadline=sum(s.timeout for s in steps) + 5)
    except TransportError as exc:
        return Preflight(False, f"cannot reach the box ({exc.reason.value}): nothing is "
                         "restarted on a guess")
    ev: list[str] = []

    def parsed(key, fn, **kw):
        r = res.get(key)
        if r is None:
            return ProbeError(Reason.PROBE_ERROR, "no answer")
        return fn(r.stdout, r.stderr, r.exit_code, **kw)

    if policy.pgrep:
        p = parsed("procs", processes.parse_processes)
        if isinstance(p, ProbeError):
            return Preflight(False, f"the process scan failed ({p.message}): cannot confirm "
                             "the job is gone")
        if p:
            return Preflight(False, f"the job still runs (pid {p[0].pid}): a restart would "
                             "double-launch it", (f"pid {p[0].pid} `{p[0].command[:100]}`",))
        ev.append(f"no process matches {policy.pgrep!r}")
    if policy.tmux_session:
        tm = parsed("tmux", tmux.parse_tmux)
        if isinstance(tm, ProbeError):
            return Preflight(False, f"tmux did not answer ({tm.message})")
        sess = next((s for s in tm if s.name == policy.tmux_session), None)
        if sess is not None and tmux_category(sess) == RUNNING:
            return Preflight(False, f"tmux session {sess.name!r} still runs "
                             f"`{sess.pane_command}`")
        ev.append(f"tmux session {policy.tmux_session!r}: "
                  + ("gone" if sess is None else "nothing running in it"))
    if policy.slurm_job:
        job = slurm.slurm_job_state(parsed("squeue", slurm.parse_squeue),
                                    parsed("sacct", slurm.parse_sacct),
                                    parsed("scontrol", slurm.parse_scontrol,
                                           job_id=policy.slurm_job), policy.slurm_job)
        if job is None:
            return Preflight(False, f"no Slurm source knows job {policy.slurm_job}")
        cat = job_category(job.state, "slurm")
        if cat in (RUNNING, PENDING) or job.state.startswith("REQUEUE"):
            return Preflight(False, f"Slurm job {job.job_id} is {job.state}: Slurm requeued or "
                             "still runs it — do not submit it again")
        ev.append(f"Slurm job {job.job_id}: {job.state or 'aged out'}")
    if policy.markers:
        m = parsed("markers", files.parse_files)
        if isinstance(m, ProbeError):
            return Preflight(False, f"the marker check failed ({m.message})")
        done = [x.path for x in m if x.exists]
        if done:
            return Preflight(False, f"the completion marker {done[0]} exists: the run finished")
        ev.append("no completion marker")
    return Preflight(True, "the job is gone and did not complete", tuple(ev))


# ----------------------------------------------------------------------------- 3. launch


@dataclass(frozen=True)
class Launch:
    ok: bool
    method: str
    reason: str
    pid: int | None = None
    job_id: str | None = None
    log_path: str | None = None
    log_size: int | None = None  # the log's size just before the launch (to see it move)
    at: float = 0.0


def launch_script(policy: RestartPolicy) -> str:
    """The POSIX-sh snippet that starts the resume command detached and reports what it started.
    Every configured value is quoted; the resume command itself is the user's own shell text and
    runs as one ``/bin/sh -c`` argument."""
    from gpudash.probes.files import literal_word

    cmd = policy.resume_command or ""
    method = policy.resolved_method
    if method == "sbatch":
        return f"{cmd} </dev/null 2>&1\n"
    log = policy.log_path or DEFAULT_LOG
    lw = literal_word(log)
    head = f"gd_sz=$(wc -c 2>/dev/null <{lw}) || gd_sz=0; echo \"GDLOGSIZE $gd_sz\"\n"
    if method == "tmux":
        name = policy.tmux_session or "gpudash-resume"
        # the whole command's output to the log; stdin stays on the pane (tmux closes a pane
        # whose process holds no fd of its terminal)
        inner = f"exec >>{lw} 2>&1\n{cmd}"
        target = shlex.quote("=" + name + ":")  # exact session name, its current window
        return (head
                + f"tmux new-session -d -s {shlex.quote(name)} /bin/sh -c {shlex.quote(inner)} "
                "</dev/null >/dev/null 2>&1 || { echo 'GDERR tmux could not start the session "
                "(one with that name already exists?)'; exit 3; }\n"
                + f"tmux set-option -w -t {target} remain-on-exit on >/dev/null 2>&1\n"
                + f"echo \"GDPID $(tmux display-message -p -t {target} '#{{pane_pid}}')\"\n")
    run = f"nohup /bin/sh -c {shlex.quote(cmd)} </dev/null >>{lw} 2>&1 &"
    py_setsid = "python3 -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])'"
    return (head
            + f"if command -v setsid >/dev/null 2>&1; then setsid {run}\n"
            + f"elif command -v python3 >/dev/null 2>&1; then {py_setsid} {run}\n"
            + f"else {run} fi\n"
            + _WAIT_DETACHED)


# The transport kills each step's process group when the step ends (no orphans): the launch must
# not end before the background job has left that group (setsid). Wait for it, bounded; a job that
# is already gone needs no waiting.
_WAIT_DETACHED = r"""gd_bg=$!
gd_me=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
gd_i=0
while [ "$gd_i" -lt 100 ]; do
  gd_pg=$(ps -o pgid= -p "$gd_bg" 2>/dev/null | tr -d ' ')
  [ -z "$gd_pg" ] && break
  [ "$gd_pg" != "$gd_me" ] && break
  sleep 0.05 2>/dev/null || sleep 1
  gd_i=$((gd_i + 1))
done
echo "GDPID $gd_bg"
"""


async def launch(transport: Transport, policy: RestartPolicy, *, clock=time.time) -> Launch:
    method = policy.resolved_method
    step = Step(key="launch", script=launch_script(policy), timeout=policy.launch_timeout)
    try:
        res = (await transport.run([step], deadline=policy.launch_timeout + 5)).get("launch")
    except TransportError as exc:
        return Launch(False, method, f"cannot reach the box ({exc.reason.value}): not launched",
                      at=clock())
    if res is None or res.exit_code is None or res.exit_code in (124, 137):
        return Launch(False, method, "the launch did not let go of the channel before its "
                      "deadline (a command without </dev/null and output redirects?): check "
                      "the box before trying again", at=clock())
    text = res.stdout.decode("utf-8", "replace")
    err = re.search(r"^GDERR (.*)$", text, re.M)
    if err or res.exit_code != 0:
        from gpudash.sanitize import clean_field

        why = err[1] if err else clean_field(text + res.stderr.decode("utf-8", "replace"))
        return Launch(False, method, f"the launch failed (exit {res.exit_code}): {why}",
                      at=clock())
    size = re.search(r"^GDLOGSIZE (\d+)", text, re.M)
    pid = re.search(r"^GDPID (\d+)", text, re.M)
    job = None
    if method == "sbatch":
        m = re.search(r"Submitted batch job (\d+)", text) or re.search(r"^(\d+)(?:;\S+)?$", text,
                                                                       re.M)
        if m is None:
            return Launch(False, method, "sbatch printed no job id", at=clock())
        job = m[1]
    return Launch(True, method, "launched detached", pid=int(pid[1]) if pid else None, job_id=job,
                  log_path=None if method == "sbatch" else (policy.log_path or DEFAULT_LOG),
                  log_size=int(size[1]) if size else None, at=clock())


# ----------------------------------------------------------------------------- 4. check after


@dataclass(frozen=True)
class AfterCheck:
    after_s: float
    alive: bool | None
    log_moved: bool | None
    evidence: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.alive is True and self.log_moved is not False


async def check_after(transport: Transport, policy: RestartPolicy, started: Launch,
                      after_s: float) -> AfterCheck:
    """Is the relaunched job alive, and did its log grow since the launch?"""
    from gpudash.health.jobs_summary import PENDING, RUNNING, job_category
    from gpudash.probes import files, processes, slurm

    t = policy.probe_timeout
    steps: list[Step] = []
    if started.method == "sbatch" and started.job_id:
        steps += [slurm.squeue_step(job_id=started.job_id), slurm.sacct_step(started.job_id)]
    elif started.pid:
        steps.append(processes.proc_alive_step([started.pid], timeout=t))
    if started.log_path:
        steps.append(files.files_step([started.log_path], key="log", timeout=t))
    if not steps:
        return AfterCheck(after_s, None, None, ("nothing to probe: no pid, job id or log",))
    try:
        res = await transport.run(steps, deadline=sum(s.timeout for s in steps) + 5)
    except TransportError as exc:
        return AfterCheck(after_s, None, None, (f"cannot reach the box ({exc.reason.value})",))
    ev: list[str] = []
    alive: bool | None = None
    if "alive" in res:
        r = res["alive"]
        live = processes.parse_alive(r.stdout, r.stderr, r.exit_code)
        if not isinstance(live, ProbeError):
            alive = started.pid in live
            ev.append(f"pid {started.pid} " + ("alive" if alive else "is gone"))
    if "squeue" in res:
        sq = slurm.parse_squeue(res["squeue"].stdout, res["squeue"].stderr, res["squeue"].exit_code)
        sa = slurm.parse_sacct(res["sacct"].stdout, res["sacct"].stderr, res["sacct"].exit_code)
        job = slurm.slurm_job_state(sq, sa, None, started.job_id)
        if job is not None:
            alive = job_category(job.state, "slurm") in (RUNNING, PENDING)
            ev.append(f"Slurm job {job.job_id}: {job.state}")
    moved: bool | None = None
    if "log" in res:
        infos = files.parse_files(res["log"].stdout, res["log"].stderr, res["log"].exit_code)
        info = infos[0] if isinstance(infos, tuple) and infos else None
        if info is not None and info.exists and info.size is not None:
            before = started.log_size or 0
            moved = info.size > before
            ev.append(f"log {info.path}: {before} → {info.size} bytes"
                      + ("" if moved else " (silent: block-buffered stdout? `python -u`)"))
    return AfterCheck(after_s, alive, moved, tuple(ev))


# ----------------------------------------------------------------------------- orchestration


@dataclass(frozen=True)
class RestartReport:
    status: str  # refused | launch_failed | healthy | suspect | died
    reason: str
    evidence: tuple[str, ...] = ()
    launch: Launch | None = None
    checks: tuple[AfterCheck, ...] = ()


class Restarter:
    """decide → preflight → launch → count → check at ~60 s and ~2 min. Never runs on its own:
    the caller passes ``confirmed=True`` (the user's key + confirmation) or ``automatic=True``
    (the host's auto-resume, which :func:`decide` limits)."""

    def __init__(self, transport: Transport, policy: RestartPolicy,
                 ledger: RestartLedger | None = None, *, clock: Callable[[], float] = time.time,
                 sleep=asyncio.sleep, on_relaunch: Callable[[], None] | None = None) -> None:
        self.transport = transport
        self.policy = policy
        self.ledger = ledger if ledger is not None else RestartLedger()
        self.clock = clock
        self.sleep = sleep
        self.on_relaunch = on_relaunch

    async def restart(self, triage_cls: str | None, *, automatic: bool = False,
                      confirmed: bool = False) -> RestartReport:
        if not automatic and not confirmed:
            return RestartReport("refused", "a manual restart needs the user's confirmation")
        d = decide(self.policy, self.ledger, triage_cls, self.clock(), automatic=automatic)
        if not d.allowed:
            return RestartReport("refused", d.reason)
        pre = await preflight(self.transport, self.policy)
        if not pre.ok:
            return RestartReport("refused", pre.reason, pre.evidence)
        started = await launch(self.transport, self.policy, clock=self.clock)
        if not started.ok:
            return RestartReport("launch_failed", started.reason, pre.evidence, started)
        ident = (f"slurm {started.job_id}" if started.job_id else
                 f"pid {started.pid}" if started.pid else started.method)
        self.ledger.record(RestartEntry(started.at, triage_cls, automatic, started.method, ident))
        if self.on_relaunch is not None:
            self.on_relaunch()  # the watcher restarts its close-watch phase
        p = self.policy
        await self.sleep(p.first_check_s)
        first = await check_after(self.transport, p, started, p.first_check_s)
        if first.alive is False:
            return RestartReport("died", f"the relaunched job died within "
                                 f"{p.first_check_s:.0f} s: see the triage", first.evidence,
                                 started, (first,))
        await self.sleep(max(0.0, p.second_check_s - p.first_check_s))
        second = await check_after(self.transport, p, started, p.second_check_s)
        checks = (first, second)
        if second.alive is False:
            return RestartReport("died", f"the relaunched job died within "
                                 f"{p.second_check_s:.0f} s (an immediate failure): see the "
                                 "triage", second.evidence, started, checks)
        if first.ok and second.ok:
            return RestartReport("healthy", f"alive after {p.second_check_s:.0f} s and its log "
                                 "moves", second.evidence, started, checks)
        return RestartReport("suspect", "relaunched, but not confirmed healthy: "
                             + "; ".join(first.evidence + second.evidence), second.evidence,
                             started, checks)


def with_checks(policy: RestartPolicy, first_s: float, second_s: float) -> RestartPolicy:
    """The same policy with other check times (tests, a slow-starting job)."""
    return replace(policy, first_check_s=first_s, second_check_s=second_s)


# ----------------------------------------------------------------------------- the ledger on disk
# One small JSON file per host in the state dir, written by `gpudash restart` and read by the
# watchers (the TUI shows the count), so a restart made from another terminal is seen.


def ledger_path(host: str):
    from gpudash.store.paths import state_dir

    return state_dir() / f"restarts-{re.sub(r'[^A-Za-z0-9_.-]', '_', host)}.json"


def load_ledger(host: str) -> RestartLedger:
    return load_ledger_file(ledger_path(host))


def save_ledger(host: str, ledger: RestartLedger) -> None:
    """Atomically, 0600 (the state dir's rule)."""
    import json
    import os

    path = ledger_path(host)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(ledger.to_json(), fh)
    os.replace(tmp, path)


class RestartCount:
    """How many times `gpudash restart` restarted this host's job: the ledger file, re-read only
    when its mtime changes (a stat per view refresh). No file: 0 — gpudash restarted nothing."""

    def __init__(self, host: str) -> None:
        self.path = ledger_path(host)
        self._stamp: tuple | None = None
        self.count = 0

    def read(self) -> int:
        import os

        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self.count = None, 0
            return 0
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            self.count = load_ledger_file(self.path).count
        return self.count


def load_ledger_file(path) -> RestartLedger:
    import json

    try:
        return RestartLedger.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return RestartLedger()
