"""Platform presets: what "stop paying" means on each platform, as one documented row each.

On most platforms "stop" does not stop all billing, and the verb that does is irreversible
(domain.md, "Teardown: what each verb costs"). So each row says which command stops the GPU meter,
where it runs ("local": the provider's CLI on this machine; "box": a command over SSH;
"console": no CLI, the provider's web console), what survives it, whether it can be undone, and
the warnings to show next to it. Values a template needs (``{instance_id}``, ``{job_id}``) come
from the config or the command line; when one is unknown the plan says so and is not runnable.

Sources (checked when this table was written; platforms change — the warnings say "check"):
- RunPod: ``runpodctl stop pod <podId>`` (docs.runpod.io runpodctl reference); storage table
  (docs.runpod.io/pods/storage): the container disk is lost on stop, the volume disk is kept
  until the pod is terminated and bills while stopped ($0.20/GB/month stopped vs $0.10 running);
  ``runpodctl remove pod`` terminates.
- vast.ai: ``vastai stop instance ID`` / ``vastai destroy instance ID``; a stopped instance keeps
  billing its disk, destroy is the only full meter-stop and deletes the disk; after a stop the
  GPU may be rented to someone else.
- Lambda Cloud: no stop verb for on-demand instances; terminate through the Cloud API
  (``POST /api/v1/instance-operations/terminate`` with ``{"instance_ids": [...]}``, basic auth
  with the API key); only a persistent filesystem survives.
- AutoDL: no official CLI — power off (关机) in the console; the disk is kept while off, and an
  instance left off for long is released with its data (15 days at the time of writing).
- Paperspace: ``pspace machine stop ID`` (the current CLI; older: ``paperspace machines stop
  --machineId ID``); a stopped machine still bills its storage; deleting it deletes disk and
  snapshots.
- Slurm: ``scancel JOBID`` on the login node; the job's allocation ends, files stay.
- Generic SSH: ``sudo -n shutdown -h now`` on the box (``-n``: fail at once instead of waiting
  for a password on a channel that has no terminal). Whether a powered-off VM still bills is up
  to the provider: many bill it in full until it is deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpudash.teardown.types import StopPlan, TeardownSettings

DEFAULT_PLAN = (
    "default plan: stop the GPU instance first (the big saving, low risk); keep durable storage "
    "until the results are safe (weeks); cancel storage last, after the local copy is verified "
    "and you agreed"
)

# Ids and job ids are substituted into shell commands: only these characters are accepted, so a
# value can never carry quotes, spaces, `;` or `$(...)`.
SAFE_VALUE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_PLACEHOLDER = re.compile(r"\{(instance_id|job_id|host)\}")


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    verb: str
    command: str | None  # template; None: no CLI (the console)
    where: str  # local | box | console
    survives: str
    reversible: bool
    warnings: tuple[str, ...]
    id_hint: str = ""  # where to find the value the template needs


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="runpod", title="RunPod", verb="stop",
            command="runpodctl stop pod {instance_id}", where="local",
            survives="the volume disk (/workspace) and any network volume; the container disk is "
            "wiped",
            reversible=True,
            warnings=(
                "a stopped pod still bills its volume disk (RunPod lists $0.20/GB/month while "
                "stopped, $0.10 running) until it is terminated",
                "`runpodctl remove pod {instance_id}` TERMINATES: the volume disk is deleted, "
                "irreversibly; only a network volume survives",
                "a stopped pod may not get its GPU back on restart (the machine's GPUs can be "
                "rented out meanwhile)",
            ),
            id_hint="the pod id: `runpodctl get pod`, or $RUNPOD_POD_ID on the box",
        ),
        Preset(
            name="vastai", title="vast.ai", verb="stop",
            command="vastai stop instance {instance_id}", where="local",
            survives="the instance's disk on that host machine (until destroy)",
            reversible=True,
            warnings=(
                "a stopped instance keeps billing its disk storage until it is destroyed",
                "`vastai destroy instance {instance_id}` is the only verb that stops all billing, "
                "and it deletes the disk irreversibly",
                "after a stop another renter can take the GPU: a restart may have to wait; the "
                "data stays reachable for copying while stopped",
            ),
            id_hint="the instance id: `vastai show instances`",
        ),
        Preset(
            name="lambda", title="Lambda Cloud", verb="terminate",
            command=(
                "curl -fsS -u \"$LAMBDA_API_KEY:\" -X POST "
                "https://cloud.lambdalabs.com/api/v1/instance-operations/terminate "
                "-H 'Content-Type: application/json' "
                "-d '{\"instance_ids\": [\"{instance_id}\"]}'"
            ),
            where="local",
            survives="only a persistent filesystem attached at launch; the instance's own disk "
            "is deleted",
            reversible=False,
            warnings=(
                "Lambda on-demand instances have no stop: terminate is the meter-stop and it is "
                "IRREVERSIBLE",
                "an idle instance bills in full until it is terminated",
                "the API key is read from $LAMBDA_API_KEY on this machine (never from the config)",
            ),
            id_hint="the instance id: the Cloud console, or GET /api/v1/instances",
        ),
        Preset(
            name="autodl", title="AutoDL", verb="power off (关机)",
            command=None, where="console",
            survives="the system and data disks while powered off — until AutoDL releases an "
            "instance left off too long",
            reversible=True,
            warnings=(
                "AutoDL has no official CLI: power the instance off in the console "
                "(容器实例 → 关机)",
                "power-off stops GPU billing and keeps the disk; an instance left powered off is "
                "released with its data after a while (15 days at the time of writing — check "
                "the console's notice)",
                "release (释放) deletes the instance and its data irreversibly",
                "when the machine's GPUs are taken you can still start it in no-GPU mode "
                "(无卡模式) to copy data",
            ),
        ),
        Preset(
            name="paperspace", title="Paperspace", verb="stop",
            command="pspace machine stop {instance_id}", where="local",
            survives="the machine's disk",
            reversible=True,
            warnings=(
                "a stopped machine still bills its storage (and a static public IP) monthly",
                "deleting (deactivating) the machine deletes its disk and snapshots irreversibly",
                "older Paperspace CLI: `paperspace machines stop --machineId {instance_id}`",
            ),
            id_hint="the machine id: `pspace machine list`",
        ),
        Preset(
            name="ssh", title="generic SSH box", verb="power off",
            command="sudo -n shutdown -h now", where="box",
            survives="the box's disks, if the provider keeps a powered-off machine",
            reversible=True,
            warnings=(
                "many clouds bill a powered-off VM in full until it is deleted: only the "
                "provider's own stop verb is sure to stop the meter — prefer a platform preset",
                "inside a container (RunPod, vast.ai) shutdown is refused or stops nothing: use "
                "the platform's preset",
                "after a shutdown the box is unreachable until someone starts it from the "
                "provider's console",
                "needs passwordless sudo on the box",
            ),
        ),
        Preset(
            name="slurm", title="Slurm", verb="scancel",
            command="scancel {job_id}", where="box",
            survives="everything on the cluster's filesystems; the job's allocation ends",
            reversible=False,
            warnings=(
                "node-local scratch ($TMPDIR, the compute node's /tmp) is usually wiped when the "
                "job ends: copy from it first",
                "a finished job holds no allocation: scancel matters for an allocation still "
                "held (salloc, an idle interactive job)",
                "a cancelled job cannot be resumed, only resubmitted",
            ),
            id_hint="the job id: `squeue -u $USER`",
        ),
    )
}


def substitute(template: str, values: dict[str, str | None]) -> tuple[str, tuple[str, ...]]:
    """The template with its placeholders filled; the names that had no (safe) value.

    Unknown names are left in place (``{instance_id}``) so the user sees what is missing."""
    unknown: list[str] = []

    def repl(m: re.Match) -> str:
        value = values.get(m[1])
        if value is None or not SAFE_VALUE.fullmatch(str(value)):
            if m[1] not in unknown:
                unknown.append(m[1])
            return m[0]
        return str(value)

    return _PLACEHOLDER.sub(repl, template), tuple(unknown)


def stop_plan(settings: TeardownSettings) -> StopPlan:
    """The meter-stop for this host: the config's own ``stop_command`` (with ``stop_runs_on``)
    wins over the preset's template; the preset still supplies what survives and the warnings."""
    preset = PRESETS.get(settings.preset or "")
    values = {"instance_id": settings.instance_id, "job_id": settings.slurm_job,
              "host": settings.host}
    if settings.stop_command:
        command, unknown = substitute(settings.stop_command, values)
        where = settings.stop_runs_on or (
            preset.where if preset is not None and preset.where != "console" else "local")
        if preset is None:
            return StopPlan(
                preset=None, command=command, where=where,
                survives="unknown — no platform preset is set: check what this command keeps",
                reversible=False,
                warnings=("what this command stops and what it deletes is unknown to gpudash: "
                          "treat it as irreversible", DEFAULT_PLAN),
                unknown=unknown, verb="stop")
        warnings = tuple(substitute(w, values)[0] for w in preset.warnings)
        return StopPlan(preset=preset.name, command=command, where=where,
                        survives=preset.survives, reversible=preset.reversible,
                        warnings=warnings + (DEFAULT_PLAN,), unknown=unknown, verb=preset.verb)
    if preset is None:
        return StopPlan(
            preset=settings.preset, command=None, where="local",
            survives="unknown", reversible=False,
            warnings=("no platform preset or stop_command is configured: set [host.teardown] "
                      "preset (runpod, vastai, lambda, autodl, paperspace, ssh, slurm) or "
                      "stop_command, or pass --preset NAME", DEFAULT_PLAN),
            unknown=("preset",), verb="stop")
    warnings = tuple(substitute(w, values)[0] for w in preset.warnings) + (DEFAULT_PLAN,)
    if preset.command is None:
        return StopPlan(preset=preset.name, command=None, where=preset.where,
                        survives=preset.survives, reversible=preset.reversible,
                        warnings=warnings, verb=preset.verb)
    command, unknown = substitute(preset.command, values)
    if unknown and preset.id_hint:
        where = {"instance_id": "[host.teardown] instance_id (or --instance-id)",
                 "job_id": "the host's slurm_job (or --job-id)"}
        how = "; ".join(f"{u} unknown: set {where.get(u, u)}" for u in unknown)
        warnings = (f"{how} — {preset.id_hint}",) + warnings
    return StopPlan(preset=preset.name, command=command, where=preset.where,
                    survives=preset.survives, reversible=preset.reversible, warnings=warnings,
                    unknown=unknown, verb=preset.verb)
