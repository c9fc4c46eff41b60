"""The per-host supervisor: runs probe groups at their own cadences, keeps the latest samples and
bounded histories, and turns them into a :class:`HostView` after every round.

Each probe group is one batch (one round-trip in the host's long-lived shell session) on its own
loop, so groups never overlap themselves and a slow group (a hung `nvidia-smi`) never delays the
others. A transport failure marks the link UNKNOWN with its reason — it never declares the job dead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable

from gpudash.model import (
    HostSnapshot,
    LinkStatus,
    ProbeError,
    Reason,
)
from gpudash.restart import RestartCount
from gpudash.transport.base import Step, StepResult, Transport, TransportError
from gpudash.watch.analysis import HostAnalysis
from gpudash.watch.spec import WatchSpec
from gpudash.watch.view import HostView

HISTORY = 300  # samples per GPU: 10 minutes at 2 s, enough for the 5-minute util window
LOG_LINES = 1000  # display lines kept per host
SNAPSHOT_LOG_LINES = 200  # the newest of them in each snapshot (the views, `status`)
LOG_BYTES_PER_TICK = 256 * 1024
GPU_STREAM_LIFETIME = 3600.0  # a stream is replaced hourly; its remote `timeout` bounds it too
MAX_STREAM_ROWS = 4096  # an apps or health block claiming more rows is not read
NVML_RETRY = 600.0  # after the NVML sampler gave nothing: nvidia-smi streams this long, then NVML
LOG_FOLLOW_LIFETIME = 3600.0  # the log follower likewise
# A follower that ended sooner than this counts as a failure: the next one waits longer
# (doubling from the log cadence up to LOG_FOLLOW_RETRY_MAX), polled reads filling the gap.
LOG_FOLLOW_HEALTHY = 60.0
LOG_FOLLOW_RETRY_MAX = 600.0
# The loops rebuild the view (health + triage: ~0.7 ms of client CPU) at most once per this many
# seconds: a GPU sample and a round landing together cost one refresh, not two. The first view
# after a quiet spell is immediate; a later one waits at most this long (well under a frame of
# a person's attention, an eighth of the 2 s GPU cadence), and so do its alerts.
REFRESH_WINDOW = 0.25
# A big fleet is read as one line per host that a person scans, not as one box's log: past
# BIG_FLEET hosts a host's view is rebuilt at most once per GPU interval, its log follower
# looks once per GPU interval too (a record per second would only wait for the next view), and
# its log is re-classified (triage of up to 4,000 lines) at most every 5 GPU intervals. Per
# host, the health + triage pass and each received SSH packet (~0.5 ms) are most of the
# client's CPU; a log growing every second would otherwise cost a pass per line burst, a
# packet a second and a triage every 3 s.
BIG_FLEET = 32


def fleet_pacing(hosts: int, gpu_interval: float) -> dict[str, float]:
    """How a fleet of ``hosts`` paces each watcher: ``refresh_window`` (views),
    ``follow_interval`` (the log follower's look; 0 = the log cadence), ``triage_gap``, and
    ``gpu_leads`` (GPU samples time the views: HostWatcher._refresh_soon)."""
    from gpudash.watch.analysis import TRIAGE_MIN_GAP_S

    if hosts <= BIG_FLEET:
        return {"refresh_window": REFRESH_WINDOW, "follow_interval": 0.0,
                "triage_gap": TRIAGE_MIN_GAP_S, "gpu_leads": False}
    return {"refresh_window": max(REFRESH_WINDOW, gpu_interval), "follow_interval": gpu_interval,
            "triage_gap": max(TRIAGE_MIN_GAP_S, 5 * gpu_interval), "gpu_leads": True}


def round_batches(steps: list[Step]) -> list[list[Step]]:
    """The batches a round sends its steps in, side by side: the /proc scan in one of its own.

    Why: the scan is the slowest step (`pgrep` reads every process: ~10 ms); in a batch of its
    own, beside the others', a jobs round lasts as long as the scan rather than the sum. Each
    step's own `timeout` is unchanged; no step costs the box more."""
    scan = [st for st in steps if st.key == "procs"]
    if not scan or len(steps) == 1:
        return [steps]
    return [scan, [st for st in steps if st.key != "procs"]]


def _elapsed(ran_at: float | None, every: float) -> bool:
    """A slow step is due: it never ran, or ran ``every`` seconds ago (time.monotonic()). A
    little slack: a 60 s cadence on 15 s rounds is every 4th round, not every 5th."""
    return ran_at is None or time.monotonic() - ran_at >= every - 1.0


class HostWatcher:
    def __init__(
        self,
        spec: WatchSpec,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.time,
        overlay=None,
    ) -> None:
        from gpudash.probes.lines import LineAssembler

        self.spec = spec
        self.transport = transport
        self.clock = clock
        #: another source's samples laid over the snapshot (gpudash.watch.overlay.MetricsOverlay):
        #: the probe groups it names are not run here, and its fields replace theirs
        self.overlay = overlay
        self.paused = False
        self._wake: dict[str, asyncio.Event] = {}
        self._listeners: list[Callable[[HostView], None]] = []
        self._refreshed_at = float("-inf")  # time.monotonic() of the last refresh
        self.refresh_window = REFRESH_WINDOW  # the Fleet widens it for big fleets
        self.follow_interval = 0.0  # the log follower's look (0: the log cadence); ditto
        self.gpu_leads = False  # GPU samples time the views (big fleets; _refresh_soon); ditto
        self._gpu_led_at = float("-inf")  # time.monotonic() of the last GPU sample that led
        self._refresh_handle: asyncio.TimerHandle | None = None  # a coalesced refresh, pending
        self._view: HostView | None = None
        # --- latest samples
        self.link = LinkStatus()
        self.gpus: tuple = ()
        self.gpu_health: tuple = ()
        self.gpu_error: ProbeError | None = None
        self.gpu_at: float | None = None
        self.apps: tuple | None = None
        self.util_hist: dict[int, deque] = {}
        self.mem_hist: dict[int, deque] = {}
        # Guarded until one of our nvidia-smi runs finished: a previous gpudash (a cron line's
        # `gpudash status`) may have left one stuck in D state, and a fresh watcher must not
        # stack another on it. The guard costs one pgrep; it is dropped after the first answer.
        self.nvsmi_stuck = True
        self.disks: tuple = ()
        self.disk_errors: tuple = ()
        self.disk_at: float | None = None
        self._df_bytes = None
        self.memory = None
        self.memory_at: float | None = None
        self.processes: tuple = ()
        self.tmux: tuple = ()
        self.slurm: tuple = ()
        self.ray: tuple = ()
        self.jobs_at: float | None = None
        self._procs_ran_at: float | None = None  # time.monotonic() of the last good /proc scan
        # The last /proc scan found the run, and every jobs round since saw its main pid alive
        # (a `read` of /proc/PID/stat, no scan): it vouches for the job as tmux or Slurm do.
        self._run_alive = False
        self._apps_ran_at: float | None = None  # … of the last GPU-apps query that answered
        self._gpu_health_at: float | None = None  # time.monotonic() of the last good health query
        self.markers: tuple = ()
        self.checkpoints = None
        self.files_at: float | None = None
        # --- log
        self.log_path: str | None = spec.log
        self.log_offset = 0
        self.log_inode: int | None = None
        self.log_started = False
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self._log_tail: tuple[str, ...] | None = None  # the snapshot's newest lines, until new ones
        self.log_error: str | None = None
        self.log_grew_at: float | None = None
        self.log_at: float | None = None
        self.log_skipped = 0
        #: seconds until the next log read: `cadence.log` while bytes arrive, doubling up to
        #: `cadence.log_slowest` while nothing does (a quiet log is read ~5× less often)
        self.log_wait = spec.cadence.log
        self._log_active = False  # something happened to the log since the last read
        # The follower (probes/logfollow.py) replaces polled reads while it runs; polled reads
        # come back whenever it cannot (no python3 on the box, a failed start, a refused record).
        self.log_following = False
        self._follow_unavailable = False  # the box has no python3: poll for good
        # GPU samples stream from NVML in one python3 on the box (probes/nvml_stream.py) when it
        # can, else from `nvidia-smi -lms` (no python3 or libnvidia-ml, an NVML call failing).
        self.gpu_source: str | None = None  # "nvml" / "nvidia-smi": the stream running now
        self._nvml_retry_at = 0.0  # time.monotonic() before which the NVML sampler is not tried
        # The NVML sampler lists the compute apps and the health readings too, and sends them
        # whenever they change: while it runs (and said it can), what it last sent is current,
        # and no jobs or disk round asks nvidia-smi for them.
        self._stream_apps = False
        self._stream_health = False
        self._follow_failures = 0
        self._follow_retry_at = 0.0  # time.monotonic() before which no follower starts
        self._log_gen = 0  # bumped when the log changes under a running follower (_reset_log)
        self.assembler = LineAssembler()
        self.analysis = HostAnalysis(spec)
        self.restart_count = RestartCount(spec.name)  # `gpudash restart`'s ledger for this host
        self.discovered = None
        self.history_note = ""
        self.internal_errors: deque[str] = deque(maxlen=20)  # "not watched 23:10–07:42; meanwhile: …" (set from the store)

    # ------------------------------------------------------------------ public

    def subscribe(self, listener: Callable[[HostView], None]) -> None:
        self._listeners.append(listener)

    @property
    def view(self) -> HostView | None:
        return self._view

    def probe_now(self) -> None:
        for ev in self._wake.values():
            ev.set()

    async def run(self) -> None:
        """Run every probe group on its own cadence until cancelled."""
        groups = self.groups()
        tasks = [asyncio.create_task(self._loop(name, interval), name=f"{self.spec.name}:{name}")
                 for name, interval in groups.items()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._refresh_handle is not None:
                self._refresh_handle.cancel()
                self._refresh_handle = None

    async def round(self, group: str) -> None:
        """One bounded probe round of one group (used by `status` and the loops)."""
        if self.overlay is not None and group in self.overlay.groups:
            return
        steps = self.steps_for(group)
        if not steps:
            return
        keys = {st.key for st in steps}
        if group == "jobs" and not keys & {"procs", "alive"}:
            # The run's pid vouches only in a round that looked at it: if tmux or Slurm stop
            # vouching in this one, the scan below runs rather than trusting an old answer.
            self._run_alive = False
        batches = round_batches(steps)
        if len(batches) == 1:
            await self._run_steps(steps)  # the usual round: no task for gather to wrap it in
        else:
            await asyncio.gather(*(self._run_steps(batch) for batch in batches))
        if group == "jobs" and not self._job_identified():
            # A slow step was skipped because tmux, Slurm or the run's pid vouched for the job,
            # and now none does (the pane died, the job left the queue, the process ended): run
            # it now, not a round later.
            from gpudash.probes import gpu, processes

            again = []
            if "gpu_apps" not in keys and not self._stream_apps:
                again.append(gpu.gpu_apps_step(srun_jobid=self._srun_jobid(), guard_hung=self.nvsmi_stuck))
            if self.spec.pgrep and "procs" not in keys:
                again.append(processes.processes_step(self.spec.pgrep))
            if again:
                await self._run_steps(again)

    async def _run_steps(self, steps: list[Step]) -> None:
        # probe_timeout bounds both ends: each command on the box (its `timeout` wrapper, whose
        # process group is killed when the step ends) and the client's wait for the whole batch.
        limit = self.spec.cadence.probe_timeout
        steps = [st if st.timeout <= limit else dataclasses.replace(st, timeout=limit) for st in steps]
        deadline = limit + 2.0
        try:
            results = await self.transport.run(steps, deadline=deadline)
        except TransportError as exc:
            self._link_down(exc.reason, exc.message)
            return
        now = self.clock()
        link = getattr(self.transport, "link", None)
        if all(r.exit_code is None for r in results.values()) and results and (
                link is None or not link.ok):
            # Nothing finished inside the deadline and the transport cannot vouch for the link:
            # the link (or the box) is wedged. When the transport heard the box answer the batch
            # (its link is ok), the steps themselves hung — a stuck nvidia-smi is driver_hung on
            # its own check, not a link that is down.
            if link is not None and link.reason is not None:
                self._link_down(link.reason, link.message)
            else:
                self._link_down(Reason.TIMEOUT, "no probe answered before its deadline")
        else:
            self._link_up(now)
        by_key = {s.key: s for s in steps}
        for key, res in results.items():
            self._apply(by_key[key], res, now)

    async def full_round(self) -> HostView:
        """Every group once, in order (for `gpudash status` and `wait`)."""
        # Jobs first: discovery may find the log and the job's pid that the others need.
        await self.round("jobs")
        rest = [g for g in self.groups() if g not in ("jobs", "log")]
        await asyncio.gather(*(self.round(g) for g in rest))
        await self.round("log")
        return self.refresh()

    def refresh(self) -> HostView:
        """Rebuild the view from the latest samples (health, triage) and notify listeners."""
        if self._refresh_handle is not None:  # this one covers the pending coalesced one
            self._refresh_handle.cancel()
            self._refresh_handle = None
        self._refreshed_at = time.monotonic()
        snap = self.snapshot()
        self._view = self.analysis.view(snap, paused=self.paused, now=self.clock(),
                                        history_note=self.history_note,
                                        restarts=self.restart_count.read())
        for listener in list(self._listeners):
            listener(self._view)
        return self._view

    def _refresh_soon(self, gpu: bool = False) -> None:
        """What the loops call after new data (``gpu``: a GPU sample): a refresh now if none
        ran in the last ``refresh_window``, else one at the window's end (unless one is already
        pending).

        With ``gpu_leads`` (a big fleet, whose window is the GPU interval) the GPU samples time
        the views. Otherwise a log line landing just before a sample takes the window's one
        refresh, and the sample waits a whole interval: at 1,000 hosts × 1 s, ~1% of samples
        reached their view an interval late. So a sample refreshes at once unless a refresh
        ran in the last half window, and other data, while samples flow, wait for the next
        sample, with a refresh at 1.5 windows in case it does not come. One view per host per
        sample, as before, and no datum waits longer than 1.5 windows."""
        now = time.monotonic()
        window = self.refresh_window
        if self.gpu_leads:
            if gpu:
                self._gpu_led_at = now
                if now - self._refreshed_at >= window / 2:
                    self.refresh()  # absorbs a pending one
                    return
            elif now - self._gpu_led_at < 2 * window:
                window *= 1.5
        if self._refresh_handle is not None:
            return  # the pending refresh will see this data too
        wait = self._refreshed_at + window - now
        if wait <= 0:
            self.refresh()
        else:
            self._refresh_handle = asyncio.get_running_loop().call_later(wait, self._refresh_due)

    def _refresh_due(self) -> None:
        self._refresh_handle = None
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - a bug must not end the host's watch
            self._internal_error("refresh", exc)

    # ------------------------------------------------------------------ groups

    def groups(self) -> dict[str, float]:
        c = self.spec.cadence
        g = {"gpu": c.gpu, "log": c.log, "disk": c.disk, "jobs": c.jobs, "files": c.files}
        if self.spec.ray_job:
            g["ray"] = c.ray
        if self.overlay is not None:
            g = {k: v for k, v in g.items() if k not in self.overlay.groups}
        return g

    def steps_for(self, group: str) -> list[Step]:
        from gpudash.probes import disk, files, gpu, logtail, memory, processes, slurm, tmux

        s = self.spec
        # At most one nvidia-smi per batch, and after one timed out every later one first checks
        # that none is stuck in the driver (guard_hung): never stack a second on a hung one.
        stuck = self.nvsmi_stuck
        if group == "gpu":
            return [gpu.gpu_step(srun_jobid=self._srun_jobid(), guard_hung=stuck)]
        if group == "log":
            if self.log_path is None:
                return []
            # From offset 0 on the first read: the script skips to the newest bytes and says
            # how many it skipped, so a 50 GB log costs one bounded read.
            return [logtail.log_step(self.log_path, self.log_offset, self.log_inode, LOG_BYTES_PER_TICK)]
        if group == "disk":
            steps = [disk.df_bytes_step(s.mounts), disk.df_inodes_step(s.mounts),
                     memory.memory_step(self._job_pid())]
            if not self._stream_health and self._gpu_health_due():
                steps.append(gpu.gpu_health_step(srun_jobid=self._srun_jobid(), guard_hung=stuck))
            return steps
        if group == "jobs":
            steps = []
            if not self._stream_apps and self._slow_due(self._apps_ran_at):
                steps.append(gpu.gpu_apps_step(srun_jobid=self._srun_jobid(), guard_hung=stuck))
            steps.append(tmux.tmux_step())
            if s.pgrep and self._slow_due(self._procs_ran_at):
                steps.append(processes.processes_step(s.pgrep))
            elif s.pgrep and self.processes and not self._vouched_by_scheduler():
                # Only the run's main process: one /proc/PID/stat read (~0.3 ms). Every match's
                # (dozens of DataLoader workers) would cost more than the scan it replaces.
                from gpudash.health.jobs_summary import oldest

                steps.append(processes.proc_alive_step([oldest(self.processes, self.clock()).pid]))
            if s.discover:
                from gpudash.probes import discovery

                steps.append(discovery.discover_step(s.slurm_user))
            if s.slurm_job:
                steps += [slurm.squeue_step(job_id=s.slurm_job), slurm.sacct_step(s.slurm_job),
                          slurm.scontrol_step(s.slurm_job)]
            elif s.slurm_user:
                steps.append(slurm.squeue_step(user=s.slurm_user))
            return steps
        if group == "files":
            steps = []
            if s.markers:
                steps.append(files.files_step(s.markers))
            if s.checkpoint_dir:
                steps.append(files.dir_step(s.checkpoint_dir, key="ckpt"))
            if s.script:
                steps.append(dataclasses.replace(files.files_step([s.script]), key="script"))
            return steps
        if group == "ray" and s.ray_job:
            from gpudash.probes import ray

            return [ray.ray_step(s.ray_job, s.ray_address)]
        return []

    def _job_identified(self) -> bool:
        """tmux or Slurm says the job is running, or the run the last /proc scan found still
        lives: the scan is then only a cross-check."""
        return self._vouched_by_scheduler() or (bool(self.spec.pgrep) and self._run_alive)

    def _vouched_by_scheduler(self) -> bool:
        """tmux shows the job running in its session, or Slurm lists it running."""
        from gpudash.health.jobs_summary import RUNNING, job_category, tmux_category

        if self.spec.tmux_session and any(
                t.name == self.spec.tmux_session and tmux_category(t) == RUNNING for t in self.tmux):
            return True
        return bool(self.spec.slurm_job or self.spec.slurm_user) and any(
            job_category(j.state, "slurm") == RUNNING for j in self.slurm)

    def _slow_due(self, ran_at: float | None) -> bool:
        """The jobs round's costly cross-checks — `procs` (pgrep + ps: ~13 ms of box CPU, it
        reads all of /proc) and `gpu_apps` (a one-shot nvidia-smi: ~22 ms on an H100) — run with
        every jobs round while nothing identifies the job, else every `cadence.procs` (60 s):
        while tmux, Slurm or the run's own live pid vouch for it, they only confirm what is
        known. A round that finds the job no longer vouched for runs them at once (round())."""
        return not self._job_identified() or _elapsed(ran_at, self.spec.cadence.procs)

    def _gpu_health_due(self) -> bool:
        """The health query (ECC, throttle) every `cadence.gpu_health` (60 s), not every disk
        round; at once while it has never answered."""
        return _elapsed(self._gpu_health_at, self.spec.cadence.gpu_health)

    def _srun_jobid(self) -> str | None:
        # On Slurm the GPUs are on the compute node: reach them through the job (never the
        # login node's GPUs). Only while the job runs.
        if not self.spec.slurm_job:
            return None
        job = next((j for j in self.slurm if j.job_id == self.spec.slurm_job), None)
        return self.spec.slurm_job if job is not None and job.state == "RUNNING" else None

    def _job_pid(self) -> int | None:
        if self.processes:
            return self.processes[0].pid
        live = [t.pane_pid for t in self.tmux if t.name == self.spec.tmux_session and not t.pane_dead]
        if live and live[0]:
            return live[0]
        if self.discovered is not None:
            pid = next((c.pid for c in getattr(self.discovered, "candidates", ())), None)
            return pid
        return None

    # ------------------------------------------------------------------ applying results

    def _apply(self, step: Step, res: StepResult, now: float) -> None:
        handler = getattr(self, f"_on_{step.key}", None)
        if handler is not None:
            handler(step, res, now)

    def _on_gpu(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.gpu import parse_gpu

        parsed = parse_gpu(res.stdout, res.stderr, res.exit_code)
        if isinstance(parsed, ProbeError):
            self.gpu_error = parsed
            self.nvsmi_stuck = parsed.reason is Reason.DRIVER_HUNG
            if parsed.reason is not Reason.DRIVER_HUNG:
                self.gpus = ()
            return
        self.nvsmi_stuck = False
        self.gpu_error = None
        self._apply_gpus(parsed, now)

    def _apply_gpus(self, parsed: tuple, now: float) -> None:
        self.gpus = parsed
        self.gpu_at = now
        for g in parsed:
            self.util_hist.setdefault(g.index, deque(maxlen=HISTORY)).append(g.util_pct)
            mem_pct = (100.0 * g.mem_used_mib / g.mem_total_mib
                       if g.mem_used_mib is not None and g.mem_total_mib else None)
            self.mem_hist.setdefault(g.index, deque(maxlen=HISTORY)).append(mem_pct)

    def _on_gpu_health(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.gpu import parse_gpu_health

        parsed = parse_gpu_health(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self.gpu_health = parsed
            self._gpu_health_at = time.monotonic()

    def _on_gpu_apps(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.gpu import parse_gpu_apps

        parsed = parse_gpu_apps(res.stdout, res.stderr, res.exit_code)
        self.apps = None if isinstance(parsed, ProbeError) else parsed
        if res.exit_code is not None:  # it answered (a box without GPUs answers with an error)
            self._apps_ran_at = time.monotonic()

    def _on_df_bytes(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.disk import missing_mounts, parse_df_bytes

        parsed = parse_df_bytes(res.stdout, res.stderr, res.exit_code)
        self._df_bytes = None if isinstance(parsed, ProbeError) else parsed
        errs = list(missing_mounts(res.stderr))
        if isinstance(parsed, ProbeError):
            errs.append(("*", parsed.message or parsed.reason.value))
        self.disk_errors = tuple(errs)

    def _on_df_inodes(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.disk import merge_disks, parse_df_inodes

        parsed = parse_df_inodes(res.stdout, res.stderr, res.exit_code)
        if self._df_bytes is None:
            return
        self.disks = merge_disks(self._df_bytes, () if isinstance(parsed, ProbeError) else parsed)
        self.disk_at = now

    def _on_memory(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.memory import parse_memory

        parsed = parse_memory(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self.memory = parsed
            self.memory_at = now

    def _on_procs(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.processes import parse_processes

        parsed = parse_processes(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self._procs_ran_at = time.monotonic()
            self.processes = parsed
            self._run_alive = bool(parsed)
            self.jobs_at = now

    def _on_alive(self, step: Step, res: StepResult, now: float) -> None:
        """Between scans: the run's main process (the oldest match) still lives, so the job is
        vouched for, and the rest of the list waits for the next scan, as under tmux. When the
        main process is gone (or the check failed) the scan runs this same round."""
        from gpudash.probes.processes import parse_alive

        live = parse_alive(res.stdout, res.stderr, res.exit_code)
        asked = step.params.get("pids", ())  # the main process steps_for picked
        self._run_alive = not isinstance(live, ProbeError) and bool(asked) and set(asked) <= live

    def _on_tmux(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.tmux import parse_tmux

        parsed = parse_tmux(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self.tmux = parsed
            self.jobs_at = now

    def _on_discover(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.discovery import best_log, parse_discovery

        found = parse_discovery(res.stdout, res.stderr, res.exit_code)
        if isinstance(found, ProbeError):
            return
        self.discovered = found
        cands = getattr(found, "candidates", ())
        self.processes = tuple(getattr(c, "process", c) for c in cands if hasattr(getattr(c, "process", c), "pid"))
        if self.spec.log is None:
            best = best_log(found)
            if best is not None and best[0] != self.log_path:
                self.log_path = best[0]
                self._reset_log()
        slurm_jobs = getattr(found, "slurm_jobs", ())
        if slurm_jobs:
            self.slurm = tuple(slurm_jobs)
        self.jobs_at = now

    def _on_squeue(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.slurm import parse_squeue

        parsed = parse_squeue(res.stdout, res.stderr, res.exit_code)
        self._squeue = None if isinstance(parsed, ProbeError) else parsed
        if self.spec.slurm_job is None and self._squeue is not None:
            self.slurm = self._squeue
            self.jobs_at = now

    def _on_sacct(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.slurm import parse_sacct

        parsed = parse_sacct(res.stdout, res.stderr, res.exit_code)
        self._sacct = None if isinstance(parsed, ProbeError) else parsed

    def _on_scontrol(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.slurm import parse_scontrol, slurm_job_state

        parsed = parse_scontrol(res.stdout, res.stderr, res.exit_code)
        scontrol = None if isinstance(parsed, ProbeError) else parsed
        job = slurm_job_state(getattr(self, "_squeue", None), getattr(self, "_sacct", None), scontrol)
        if job is not None:
            self.slurm = (job,)
            self.jobs_at = now
            if self.spec.log is None and job.stdout_path and self.log_path != job.stdout_path:
                self.log_path = job.stdout_path
                self._reset_log()

    def _on_ray(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.ray import parse_ray

        parsed = parse_ray(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self.ray = (parsed,)

    def _on_files(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.files import parse_files

        parsed = parse_files(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self.markers = parsed
            self.files_at = now

    def _on_ckpt(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.files import parse_dir

        parsed = parse_dir(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError):
            self.checkpoints = parsed
            self.files_at = now

    def _on_script(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.files import parse_files

        parsed = parse_files(res.stdout, res.stderr, res.exit_code)
        if not isinstance(parsed, ProbeError) and parsed:
            self.analysis.script_mtime = parsed[0].mtime

    def _on_log(self, step: Step, res: StepResult, now: float) -> None:
        from gpudash.probes.logtail import parse_log

        chunk = parse_log(res.stdout, res.stderr, res.exit_code,
                          prev_offset=self.log_offset, prev_inode=self.log_inode)
        if isinstance(chunk, ProbeError):
            self.log_error = chunk.message or chunk.reason.value
            return
        self._apply_log_chunk(chunk, now)

    def _apply_log_chunk(self, chunk, now: float) -> None:
        """A read that parse_log accepted (polled or followed): move the offset, feed the lines."""
        self.log_at = now
        if chunk.missing:
            self.log_error = f"log missing: {chunk.path}"
            # Whatever appears under the name next is a new file, even when the filesystem
            # hands it the old inode number (ext4 reuses a freed inode at once): without this,
            # a re-created log of the same inode would be read from the old offset and its
            # first bytes lost. No file has inode 0, so the box's script reads the next one
            # from its start and says "reset".
            self.log_offset, self.log_inode = 0, 0
            return
        self.log_error = None
        self.log_started = True
        self.log_offset = chunk.end
        self.log_inode = chunk.inode
        self.log_skipped += chunk.skipped
        if chunk.data or chunk.reset:
            self._log_active = True
            if chunk.data:
                self.log_grew_at = now
            lines = self.assembler.feed(chunk)
            for line in lines:
                self.log_lines.append(getattr(line, "display", line))
            if lines:
                self._log_tail = None
            self.analysis.feed_log(lines, chunk, now)

    def _reset_log(self) -> None:
        self._log_gen += 1  # a running follower's records are for the old file now
        self.log_offset = 0
        self.log_inode = None
        self.log_started = False
        self.log_lines.clear()
        self._log_tail = None
        self.analysis.reset_log()
        self._log_active = True  # a new file: read it at the base cadence

    # ------------------------------------------------------------------ link

    def _link_down(self, reason: Reason, message: str) -> None:
        now = self.clock()
        since = self.link.since if not self.link.ok and self.link.since else now
        self.link = LinkStatus(ok=False, reason=reason, message=message, since=since,
                               last_ok=self.link.last_ok)

    def _link_up(self, now: float) -> None:
        if not self.link.ok or self.link.last_ok is None:
            self.link = LinkStatus(ok=True, since=now, last_ok=now)
        else:
            self.link = LinkStatus(ok=True, since=self.link.since, last_ok=now)

    # ------------------------------------------------------------------ snapshot

    def snapshot(self) -> HostSnapshot:
        snap = self._own_snapshot()
        return snap if self.overlay is None else self.overlay.apply(snap)

    def _own_snapshot(self) -> HostSnapshot:
        idx = sorted(self.util_hist)
        return HostSnapshot(
            name=self.spec.name,
            transport=self.transport.kind,
            taken_at=self.clock(),
            link=self.link,
            gpus=self.gpus,
            gpu_health=self.gpu_health,
            gpu_error=self.gpu_error,
            gpu_at=self.gpu_at,
            apps=self.apps,
            util_history=tuple(tuple(self.util_hist[i]) for i in idx),
            mem_history=tuple(tuple(self.mem_hist[i]) for i in idx),
            disks=self.disks,
            disk_errors=self.disk_errors,
            disk_at=self.disk_at,
            memory=self.memory,
            memory_at=self.memory_at,
            processes=self.processes,
            tmux=self.tmux,
            slurm=self.slurm,
            ray=self.ray,
            jobs_at=self.jobs_at,
            log_path=self.log_path,
            log_lines=self._snapshot_log_lines(),
            log_error=self.log_error,
            log_grew_at=self.log_grew_at,
            log_at=self.log_at,
            log_skipped=self.log_skipped,
            metrics=self.analysis.metrics_view(),
            progress=self.analysis.progress,
            markers=self.markers,
            checkpoints=self.checkpoints,
            files_at=self.files_at,
        )

    def _snapshot_log_lines(self) -> tuple[str, ...]:
        # built once per change, not on every refresh (a copy of up to 1,000 lines each time)
        if self._log_tail is None:
            n = len(self.log_lines)
            self._log_tail = tuple(itertools.islice(self.log_lines, max(0, n - SNAPSHOT_LOG_LINES), n))
        return self._log_tail

    # ------------------------------------------------------------------ loops

    def _internal_error(self, group: str, exc: BaseException) -> None:
        """Our own bug while handling a round: keep watching, and keep it visible (bounded)."""
        import traceback

        self.internal_errors.append(f"{group}: {type(exc).__name__}: {exc}"[:500])
        logging.getLogger("gpudash").error("internal error in %s round of %s:\n%s", group,
                                           self.spec.name, "".join(traceback.format_exception(exc)))

    async def _gpu_stream_loop(self, interval: float) -> None:
        """GPU samples from ONE long-lived stream per host instead of a process per tick: NVML
        in one python3 on the box (~1 ms of CPU per sample on an H100), else `nvidia-smi -lms`
        (~5 ms), against ~30 ms for a one-shot query. A one-shot round comes first (it
        classifies errors: no GPU, driver hung, …) and is the fallback whenever the stream fails;
        the stream is retried with backoff, and never while an nvidia-smi is stuck."""
        backoff = interval
        while True:
            if self.paused:
                await asyncio.sleep(interval)
                continue
            await self.round("gpu")
            self._refresh_soon(gpu=True)
            if self.gpus and not self.nvsmi_stuck and self.link.ok:
                got = await self._consume_gpu_stream(interval)
                backoff = interval if got else min(backoff * 2, 300.0)
            await asyncio.sleep(backoff)

    async def _consume_gpu_stream(self, interval: float) -> int:
        """One stream until it ends: the NVML sampler first, `nvidia-smi -lms` when the sampler
        gives nothing (it says why and exits at once: no python3, no NVML, a failed call), and
        for NVML_RETRY after that. Both print the same lines (checked on an H100)."""
        from gpudash.probes.gpu import gpu_stream_step
        from gpudash.probes.nvml_stream import nvml_stream_step

        ms = int(interval * 1000)
        srun = self._srun_jobid()
        if self._nvml_ready(srun):
            sets = await self._stream_samples(nvml_stream_step(ms), interval, "nvml")
            if sets or self.nvsmi_stuck or not self.link.ok or self.paused:
                return sets
            self._nvml_retry_at = time.monotonic() + NVML_RETRY
        return await self._stream_samples(gpu_stream_step(ms, srun_jobid=srun), interval,
                                          "nvidia-smi")

    def _nvml_ready(self, srun_jobid: str | None) -> bool:
        # Not under srun: the sampler would need the job's node, and the nvidia-smi stream
        # already gets it there.
        return (self.spec.gpu_nvml and self.transport.runs_shell and srun_jobid is None
                and time.monotonic() >= self._nvml_retry_at)

    async def _stream_samples(self, step: Step, interval: float, source: str) -> int:
        from gpudash.probes.gpu import parse_gpu_line

        batch: dict[int, object] = {}
        sets = 0
        sample_timeout = max(3 * interval, interval + 5.0)
        last_good = self.clock()
        self.gpu_source = source
        nvml = source == "nvml"  # only the sampler sends apps and health blocks
        block: list[bytes] | None = None  # an apps or health block being read
        kind, want = b"", 0
        try:
            async for line in self.transport.stream(
                step, sample_timeout=sample_timeout, lifetime=GPU_STREAM_LIFETIME
            ):
                if nvml and line[:1] in (b"A", b"H"):  # no sample: those start with an index
                    if line[1:2] == b" " and block is not None and line[:1] == kind:
                        block.append(line[2:])
                    else:  # "APPS <n>" / "HEALTH <n>" (a row of no open block is dropped)
                        kind = line[:1]
                        want, block = self._block_header(line)
                    if block is not None and len(block) == want:
                        self._apply_block(kind, block)
                        block = None
                    continue
                sample = parse_gpu_line(line)
                if sample is None:
                    # Lines that are no samples (an error mid-stream) do not keep a stream alive:
                    # back to one-shot rounds, which classify the error.
                    if self.clock() - last_good > sample_timeout:
                        break
                    continue
                last_good = self.clock()
                if sample.index in batch:  # a new tick began: the previous set is complete
                    self._apply_gpus(tuple(batch.values()), self.clock())
                    self._refresh_soon(gpu=True)
                    sets += 1
                    batch = {}
                batch[sample.index] = sample
                if len(batch) == len(self.gpus):  # every GPU of this tick arrived
                    self._apply_gpus(tuple(batch.values()), self.clock())
                    self._refresh_soon(gpu=True)
                    sets += 1
                    batch = {}
                if self.paused:
                    break
        except TransportError as exc:
            if exc.reason is Reason.TIMEOUT:
                # Silent past its sample deadline: maybe the driver. The next one-shot checks
                # with the hung guard before any new nvidia-smi starts.
                self.nvsmi_stuck = True
        finally:
            self.gpu_source = None
            # current until now; the jobs and disk rounds take over from here
            if self._stream_apps:
                self._apps_ran_at = time.monotonic()
                self._stream_apps = False
            if self._stream_health:
                self._gpu_health_at = time.monotonic()
                self._stream_health = False
        return sets

    def _block_header(self, line: bytes) -> tuple[int, list[bytes] | None]:
        """``APPS <n>`` / ``HEALTH <n>``: n lines follow. ``APPS -`` (or anything unreadable):
        the sampler cannot list them, and the rounds ask nvidia-smi as before."""
        name, _, count = line.partition(b" ")
        count = count.strip()
        if name in (b"APPS", b"HEALTH") and count.isdigit() and int(count) <= MAX_STREAM_ROWS:
            return int(count), []
        if name == b"APPS":
            self._stream_apps = False
        elif name == b"HEALTH":
            self._stream_health = False
        return 0, None

    def _apply_block(self, kind: bytes, rows: list[bytes]) -> None:
        from gpudash.probes.gpu import parse_gpu_apps, parse_gpu_health

        if kind == b"A":
            parsed = parse_gpu_apps(b"\n".join(rows))
            self.apps = None if isinstance(parsed, ProbeError) else parsed
            self._apps_ran_at = time.monotonic()
            self._stream_apps = True
        else:
            parsed = parse_gpu_health(b"\n".join(rows))
            if isinstance(parsed, ProbeError):  # unreadable: the disk rounds ask nvidia-smi
                self._stream_health = False
                return
            self.gpu_health = parsed
            self._gpu_health_at = time.monotonic()
            self._stream_health = True
        self._refresh_soon()

    async def _loop(self, group: str, interval: float) -> None:
        if group == "gpu" and self.spec.gpu_stream:
            while True:
                try:
                    return await self._gpu_stream_loop(interval)
                except Exception as exc:  # noqa: BLE001 - a bug must not end the host's watch
                    self._internal_error(group, exc)
                    await asyncio.sleep(interval)
        wake = self._wake.setdefault(group, asyncio.Event())
        wait = interval
        while True:
            # Cleared before the round: a probe_now that lands while it runs gets a fresh one.
            wake.clear()
            if group == "log" and self._follow_ready():
                try:
                    await self._follow_log(max(interval, self.follow_interval))
                except Exception as exc:  # noqa: BLE001 - a bug must not end the host's watch
                    self._internal_error(group, exc)
                # It ended (lifetime, silence, a new log, pause, a refused record): one polled
                # read now, which also tells a lost link from a failed follower.
                self._log_active = True
            if not self.paused:
                try:
                    await self.round(group)
                    if group == "log":
                        wait = self._next_log_wait(interval)
                    self._refresh_soon(gpu=group == "gpu")
                except Exception as exc:  # noqa: BLE001 - a bug must not end the host's watch
                    self._internal_error(group, exc)
            try:
                await asyncio.wait_for(wake.wait(), timeout=wait)
                if group == "log":  # probe_now: read at once, and back to the base cadence
                    self._log_active = True
            except TimeoutError:
                pass

    def _follow_ready(self) -> bool:
        return (self.spec.log_follow and self.transport.runs_shell and not self.paused
                and not self._follow_unavailable and self.log_path is not None
                and self.link.ok and self.log_error is None
                and time.monotonic() >= self._follow_retry_at)

    async def _follow_log(self, interval: float) -> None:
        """Follow the log with one long-lived sampler on the box (probes/logfollow.py) until it
        ends. Every record is checked against this watcher's own offset by parse_log, exactly
        like a polled read; one that does not follow from it ends the follower (the polled read
        that comes next re-synchronises), so a byte is never lost, torn or shown twice."""
        from gpudash.probes import logfollow
        from gpudash.probes.logtail import parse_log
        from gpudash.sanitize import clean_field, decode

        heartbeat = self.spec.cadence.log_slowest
        gen, path = self._log_gen, self.log_path
        step = logfollow.follow_step(path, self.log_offset, self.log_inode, LOG_BYTES_PER_TICK,
                                     interval=interval, heartbeat=heartbeat)
        began = time.monotonic()
        self.log_following = True
        try:
            async for line in self.transport.stream(
                step, sample_timeout=3 * heartbeat + interval, lifetime=LOG_FOLLOW_LIFETIME
            ):
                if self._log_gen != gen or self.paused:
                    break
                msg = logfollow.parse_follow_line(line)
                now = self.clock()
                if msg.kind == "log":
                    chunk = parse_log(msg.payload, prev_offset=self.log_offset, prev_inode=self.log_inode)
                    if isinstance(chunk, ProbeError):
                        break
                    self._apply_log_chunk(chunk, now)
                    self._refresh_soon()
                    if chunk.missing:
                        break  # polled reads watch for the file to come back
                elif msg.kind == "heartbeat":
                    self.log_at = now
                elif msg.kind == "error":
                    self.log_error = "log: " + clean_field(decode(msg.payload), max_len=300)
                    self._refresh_soon()
                    break
                elif msg.kind == "nopython":
                    self._follow_unavailable = True
                    break
                else:
                    break  # not the follower talking (or a line cut at its bound): poll instead
        except TransportError:
            pass  # the polled read that comes next tells a lost link from a failed follower
        finally:
            self.log_following = False
            if time.monotonic() - began >= LOG_FOLLOW_HEALTHY or self._log_gen != gen or self.paused:
                self._follow_failures = 0
                self._follow_retry_at = 0.0
            else:
                self._follow_failures += 1
                self._follow_retry_at = time.monotonic() + min(
                    interval * 2 ** self._follow_failures, LOG_FOLLOW_RETRY_MAX)

    def _next_log_wait(self, base: float) -> float:
        """Back off while the log is quiet: the base cadence after a read that brought bytes
        (or a reset, a new file, a `probe_now`), else double the last wait up to the cap."""
        if self._log_active:
            self.log_wait = base
        else:
            cap = max(base, min(8 * base, self.spec.cadence.log_quiet_max))
            self.log_wait = min(self.log_wait * 2, cap)
        self._log_active = False
        return self.log_wait
