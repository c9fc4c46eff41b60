"""Runs the teardown probes in bounded batches and turns the results into a :class:`Checklist`.

Two batches go to the box at once (each one round trip in the host's shell session, each under
its own deadline): the job and GPU probes, and the artifacts listing with ``df`` of its
filesystem. sha256 runs only on request, as a third batch after the listing (it reads every byte:
minutes on big checkpoints). The local side (listing, hashes, the verify command) runs here.
A dropped link makes the remote checks UNKNOWN with the reason — never green, never "job dead".
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from pathlib import Path

from gpudash.model import ProbeError, Reason
from gpudash.teardown.checks import (
    JobFacts,
    check_artifacts,
    check_gpu,
    check_job,
    check_local,
    check_stop,
    check_verify,
)
from gpudash.teardown.presets import stop_plan
from gpudash.teardown.types import RED, Checklist, TeardownSettings
from gpudash.transport.base import Step, StepResult, Transport, TransportError

LOG_TAIL_BYTES = 256 * 1024
_SLACK = 5.0


def marker_paths(s: TeardownSettings) -> list[str]:
    """Markers as paths on the box: a bare file-name pattern (no ``/``) is looked for next to the
    log, in the checkpoint dir and in the artifacts dir (docs/config.md); others as given."""
    bases = []
    if s.log and "/" in s.log:
        bases.append(posixpath.dirname(s.log))
    for d in (s.checkpoint_dir, s.artifacts_dir):
        if d and d not in bases:
            bases.append(d)
    out: list[str] = []
    for m in s.markers:
        if "/" in m or not bases:
            out.append(m)
        else:
            out.extend(posixpath.join(b, m) for b in bases)
    return list(dict.fromkeys(out))


def _df_step(key: str, opts: str, path: str, timeout: float) -> Step:
    # The artifacts dir may start with ~/ : literal_word expands $HOME, which df's own step
    # builder (shlex.quote) would not.
    from gpudash.probes.files import literal_word

    return Step(key=key, script=f"df {opts} -- {literal_word(path)}", timeout=timeout,
                params={"mounts": (path,)})


def job_steps(s: TeardownSettings) -> list[Step]:
    from gpudash.probes import files, gpu, logtail, processes, slurm, tmux

    t = s.probe_timeout
    steps = [gpu.gpu_step(timeout=t), gpu.gpu_apps_step(timeout=t)]
    if s.pgrep:
        steps.append(processes.processes_step(s.pgrep, timeout=t))
    if s.tmux_session:
        steps.append(tmux.tmux_step(timeout=t))
    if s.slurm_job:
        steps += [slurm.squeue_step(job_id=s.slurm_job), slurm.sacct_step(s.slurm_job),
                  slurm.scontrol_step(s.slurm_job)]
    if s.ray_job:
        from gpudash.probes import ray

        steps.append(ray.ray_step(s.ray_job, s.ray_address))
    if not s.has_job_identity:
        from gpudash.probes import discovery

        steps.append(discovery.discover_step(s.slurm_user))
    markers = marker_paths(s)
    if markers:
        steps.append(files.files_step(markers, key="markers", timeout=t))
    if s.log:
        steps.append(logtail.log_step(s.log, 0, None, LOG_TAIL_BYTES, key="log", timeout=t))
    return steps


def artifact_steps(s: TeardownSettings) -> list[Step]:
    from gpudash.probes import files

    if not s.artifacts_dir:
        return []
    t = max(s.probe_timeout, 10.0)
    return [files.dir_step(s.artifacts_dir, key="artifacts", pattern=s.artifacts_glob, timeout=t),
            _df_step("df_bytes", "-P -B1", s.artifacts_dir, s.probe_timeout),
            _df_step("df_inodes", "-Pi", s.artifacts_dir, s.probe_timeout)]


async def run_batch(transport: Transport, steps: list[Step]) -> dict[str, StepResult] | str:
    """One bounded round trip; a link failure comes back as its message (a string)."""
    if not steps:
        return {}
    deadline = sum(st.timeout for st in steps) + _SLACK
    try:
        return await transport.run(steps, deadline=deadline)
    except TransportError as exc:
        return f"cannot reach the box: {exc.reason.value} — {exc.message}"


def _get(results: dict, key: str, parse, **kw):
    res = results.get(key)
    if res is None:
        return None
    return parse(res.stdout, res.stderr, res.exit_code, **kw)


def job_facts(s: TeardownSettings, results: dict[str, StepResult] | str
              ) -> tuple[JobFacts, object, object]:
    """Parse the job batch → (JobFacts, gpus, apps)."""
    from gpudash.probes import files, gpu, logtail, processes, slurm, tmux
    from gpudash.training.progress import completion_line

    if isinstance(results, str):
        return JobFacts(link_error=results), None, None
    facts: dict = {}
    facts["processes"] = _get(results, "procs", processes.parse_processes)
    facts["tmux"] = _get(results, "tmux", tmux.parse_tmux)
    if s.slurm_job:
        sq = _get(results, "squeue", slurm.parse_squeue)
        sa = _get(results, "sacct", slurm.parse_sacct)
        sc = _get(results, "scontrol", slurm.parse_scontrol, job_id=s.slurm_job)
        job = slurm.slurm_job_state(sq, sa, sc, s.slurm_job)
        if job is None:
            err = next((x for x in (sq, sa, sc) if isinstance(x, ProbeError)), None)
            job = err or ProbeError(Reason.NOT_FOUND, "no Slurm source knows the job")
        facts["slurm"] = job
    if s.ray_job:
        from gpudash.probes import ray

        facts["ray"] = _get(results, "ray", ray.parse_ray)
    if "discover" in results:
        from gpudash.probes import discovery

        facts["discovery"] = _get(results, "discover", discovery.parse_discovery)
    facts["markers"] = _get(results, "markers", files.parse_files)
    if "log" in results:
        chunk = _get(results, "log", logtail.parse_log, prev_offset=0, prev_inode=None)
        if isinstance(chunk, ProbeError):
            facts["log_error"] = chunk.message
        elif chunk.missing:
            facts["log_error"] = f"{chunk.path}: no such file"
        else:
            facts["log_read"] = True
            facts["completion"] = completion_line(chunk.data, extra=s.completion_lines)
    gpus = _get(results, "gpu", gpu.parse_gpu)
    apps = _get(results, "gpu_apps", gpu.parse_gpu_apps)
    return JobFacts(**facts), gpus, apps


def _disk(results: dict[str, StepResult]):
    from gpudash.probes.disk import merge_disks, missing_mounts, parse_df_bytes, parse_df_inodes

    b = _get(results, "df_bytes", parse_df_bytes)
    i = _get(results, "df_inodes", parse_df_inodes)
    rows = merge_disks(b, i)
    if rows:
        return rows[0]
    gone = missing_mounts(results["df_bytes"].stderr) if "df_bytes" in results else ()
    if gone:
        return ProbeError(Reason.NOT_FOUND, f"df: {gone[0][0]}: {gone[0][1]}")
    return b if isinstance(b, ProbeError) else ProbeError(Reason.PROBE_ERROR, "df said nothing")


async def run_checks(transport: Transport, settings: TeardownSettings, *, sha256: bool = False,
                     local_root: Path | str | None = None, clock=time.time) -> Checklist:
    """Probe the box and this machine, and judge the six checks.

    ``local_root`` overrides ``settings.local_dir`` (the TUI may point at another pull dir).
    Nothing here changes anything anywhere: the stop only runs through
    :func:`gpudash.teardown.stop.execute_stop`.
    """
    from gpudash.probes.files import parse_dir, parse_sha256, sha256_step
    from gpudash.teardown import local as local_side

    s = settings
    if local_root is not None:
        import dataclasses

        s = dataclasses.replace(s, local_dir=Path(local_root))
    job_res, art_res = await asyncio.gather(run_batch(transport, job_steps(s)),
                                            run_batch(transport, artifact_steps(s)))
    facts, gpus, apps = job_facts(s, job_res)
    job_check, live = check_job(s, facts)
    gpu_check = check_gpu(gpus, apps, live, link_error=facts.link_error)

    link = art_res if isinstance(art_res, str) else None
    listing = disk = None
    if not link and s.artifacts_dir:
        listing = _get(art_res, "artifacts", parse_dir, path=s.artifacts_dir)
        disk = _disk(art_res)
    art_check = check_artifacts(s, listing, disk, link_error=link)

    local = None
    if s.local_dir is not None:
        local = await asyncio.to_thread(local_side.list_local, s.local_dir, s.artifacts_glob)
    remote_hashes = local_hashes = None
    if sha256 and listing is not None and not isinstance(listing, ProbeError) and listing.exists:
        res = await run_batch(transport, [sha256_step(s.artifacts_dir, timeout=s.sha256_timeout)])
        remote_hashes = (ProbeError(Reason.UNREACHABLE, res) if isinstance(res, str)
                         else _get(res, "sha256", parse_sha256))
        if s.local_dir is not None:
            local_hashes = await asyncio.to_thread(local_side.hash_local, s.local_dir)
    local_check = check_local(s, listing, local, remote_hashes=remote_hashes,
                              local_hashes=local_hashes, sha256=sha256, link_error=link)

    verify = None
    skipped = ""
    if s.verify_command:
        if local_check.state == RED:
            skipped = "not run: the local copy is incomplete — fix check 4 first"
        else:
            verify = await local_side.run_verify(
                s.verify_command, cwd=s.local_dir, timeout=s.verify_timeout,
                env=_verify_env(s))
    verify_check = check_verify(s, verify, skipped=skipped)
    prior = (job_check, gpu_check, art_check, local_check, verify_check)
    plan = stop_plan(s)
    return Checklist(host=s.host, checks=prior + (check_stop(plan, prior),), stop=plan,
                     taken_at=clock())


def _verify_env(s: TeardownSettings) -> dict[str, str]:
    """The verify command sees where the copy is and how many artifacts to expect."""
    import os

    env = dict(os.environ)
    if s.local_dir is not None:
        env["GPUDASH_LOCAL_DIR"] = str(Path(s.local_dir).expanduser())
    if s.expected_count is not None:
        env["GPUDASH_EXPECTED_COUNT"] = str(s.expected_count)
    env["GPUDASH_HOST"] = s.host
    return env




def transport_for(spec):
    """The transport a WatchSpec asks for (the fleet's own factory: same SSH options as the TUI)."""
    from gpudash.watch.fleet import make_transport

    return make_transport(spec)
