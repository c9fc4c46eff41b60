"""TeardownSettings from the config's host (``[[host]]`` + ``[host.teardown]``) and the command
line's flags, which override the config one by one (``--artifacts``, ``--expect``, ``--local``,
``--verify``, ``--marker``, ``--preset``, ``--instance-id``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpudash.teardown.types import TeardownSettings

DEFAULT_MARKERS = ("*_DONE",)


def settings_from(name: str, host_config: Any | None = None,
                  overrides: Mapping[str, Any] | None = None) -> TeardownSettings:
    """``host_config`` is a :class:`gpudash.config.HostConfig` (or None for a host named only on
    the command line). ``overrides`` holds the flags that were given (None values are ignored)."""
    g = (lambda key, default=None: getattr(host_config, key, default)) if host_config else \
        (lambda key, default=None: default)
    td = g("teardown")
    t = (lambda key, default=None: getattr(td, key, default)) if td is not None else \
        (lambda key, default=None: default)
    timing = g("timing")
    values: dict[str, Any] = {
        "host": name,
        "artifacts_dir": t("artifacts_dir"),
        "artifacts_glob": t("artifacts_glob", "*") or "*",
        "expected_count": t("expected_count"),
        "min_artifact_bytes": t("min_artifact_bytes", 1),
        "local_dir": t("local_dir"),
        "verify_command": t("verify_command"),
        "preset": t("preset"),
        "stop_command": t("stop_command"),
        "stop_runs_on": t("stop_runs_on"),
        "instance_id": t("instance_id"),
        "markers": tuple(g("markers", DEFAULT_MARKERS) or ()),
        "completion_lines": tuple(g("completion_lines", ()) or ()),
        "log": g("log"),
        "checkpoint_dir": g("checkpoint_dir"),
        "pgrep": g("pgrep"),
        "tmux_session": g("tmux_session"),
        "slurm_job": str(g("slurm_job")) if g("slurm_job") is not None else None,
        "slurm_user": g("slurm_user"),
        "ray_job": g("ray_job"),
        "ray_address": g("ray_address"),
    }
    timeout = getattr(timing, "probe_timeout", None) if timing is not None else None
    if isinstance(timeout, (int, float)) and timeout > 0:
        values["probe_timeout"] = float(timeout)
    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    mapping = {"artifacts": "artifacts_dir", "expect": "expected_count", "local": "local_dir",
               "verify": "verify_command", "preset": "preset", "instance_id": "instance_id",
               "glob": "artifacts_glob", "verify_timeout": "verify_timeout",
               "job_id": "slurm_job"}
    for flag, key in mapping.items():
        if flag in o:
            values[key] = o[flag]
    if o.get("marker"):
        values["markers"] = tuple(o["marker"])
    if values.get("local_dir") is not None:
        values["local_dir"] = Path(values["local_dir"]).expanduser()
    if o.get("preset") and "stop_command" not in o and host_config is not None \
            and values.get("preset") != t("preset"):
        # --preset NAME picks that platform's own command over a configured custom one
        values["stop_command"] = None
        values["stop_runs_on"] = None
    return TeardownSettings(**values)
