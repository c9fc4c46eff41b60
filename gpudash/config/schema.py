"""What each config section may contain: key → converter, plus the hints for common mistakes.

One table per section. A key listed here with a converter is checked and converted; a key that is
not listed is an error ("unknown key", with a "did you mean" suggestion or a specific hint). The
defaults live on the dataclasses (``types.py``; thresholds and cadences in gpudash.health.thresholds,
the classes health judges with); this file only says what is valid.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from . import convert as c
from .errors import Invalid
from .types import PRESETS, SEVERITIES, SINKS, STOP_RUNS_ON, TRANSPORTS, Thresholds, Timing

HOST_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,63}"
HOST_NAME_WHAT = "a host name: up to 64 letters, digits and . _ @ : + - (starting with a letter or digit)"

_positive = c.duration(positive=True)

TIMING_SPEC: dict[str, c.Converter] = {
    "gpu_interval": _positive,
    "log_interval": _positive,
    "disk_interval": _positive,
    "memory_interval": _positive,
    "jobs_interval": _positive,
    "files_interval": _positive,
    "ray_interval": _positive,
    "probe_timeout": _positive,
    "connect_timeout": _positive,
    "keepalive_interval": _positive,
    "stale_after": c.number(1, 1000),
}

THRESHOLD_SPEC: dict[str, c.Converter] = {
    "disk_warn_pct": c.percent,
    "disk_crit_pct": c.percent,
    "disk_warn_free_gb": c.number(0),
    "inode_warn_pct": c.percent,
    "inode_crit_pct": c.percent,
    "mem_warn_pct": c.percent,
    "gpu_mem_warn_pct": c.percent,
    "gpu_util_low_pct": c.percent,
    "gpu_util_window_s": _positive,
    "gpu_temp_warn_c": c.number(0, 150, lo_open=True),
    "grad_norm_warn": c.number(0, lo_open=True),
    "loss_flat_pct": c.percent,
    # both compare an older mean with a newer one: fewer than 2 windows/steps has nothing to compare
    "loss_flat_windows": c.integer(2, 1000),
    "loss_early_steps": c.integer(2),
    "checkpoint_age_warn_s": _positive,
    "log_silent_warn_s": _positive,
    "log_silent_close_watch_s": _positive,
    "early_end_fraction": c.number(0, 1),
    "close_watch_steps": c.integer(0),
    "patrol_window_s": _positive,
    "hysteresis_results": c.integer(1, 100),
    "hysteresis_s": c.duration(positive=False),
    "flap_changes": c.integer(2, 1000),
    "flap_window_s": _positive,
    "flap_stable_s": _positive,
}

# (warn key, crit key): WARN must not come after CRIT.
WARN_CRIT_PAIRS = (("disk_warn_pct", "disk_crit_pct"), ("inode_warn_pct", "inode_crit_pct"))

# Every field is a key and every key a field: an accepted key is one health reads (no silent lie).
assert set(TIMING_SPEC) == set(Timing.__dataclass_fields__)
assert set(THRESHOLD_SPEC) == set(Thresholds.__dataclass_fields__)


def slurm_job(value: Any) -> str:
    """A Slurm job id: ``12345`` or ``"12345"`` or an array task ``"12345_7"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise Invalid("must be a positive job id")
        return str(value)
    return c.string(pattern=r"[0-9]+(?:_[0-9]+)?", what="a Slurm job id like 12345 or \"12345_7\"")(value)


def http_url(value: Any) -> str:
    """An http(s) URL that carries no credentials. Never echoes the value: it may hold a token."""
    text = c.one_line(value)
    if any(ch.isspace() for ch in text):
        raise Invalid("must be an http:// or https:// URL without spaces")
    try:
        parts = urlsplit(text)
        parts.port  # raises ValueError on a bad port
        host = parts.hostname
    except ValueError:
        raise Invalid("is not a valid URL (check the host and port)") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Invalid("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise Invalid("carries credentials: a URL with a user/password is a secret; "
                      "use basic_auth_file (or token_file/token_env) instead")
    if re.search(r"(?i)(token|key|secret|password|passwd|auth|sig)=", parts.query):
        raise Invalid("carries a token in its query string: that is a secret; "
                      "use token_file or token_env instead")
    return text


def remote_path_for(local: bool) -> c.Converter:
    """Paths on the box; for the local transport the box is this machine, so ``~`` works."""
    if not local:
        return c.remote_path

    def conv(value: Any) -> str:
        text = c.one_line(value)
        if text.startswith("~"):
            text = os.path.expanduser(text)  # unchanged (and refused below) for an unknown ~user
        if not text.startswith("/"):
            raise Invalid("must be an absolute path (starting with '/' or '~')")
        return text
    return conv


def marker_for(local: bool) -> c.Converter:
    path = remote_path_for(local)

    def conv(value: Any) -> str:
        text = c.one_line(value)
        return path(text) if "/" in text or text.startswith("~") else text
    return conv


def host_spec(local: bool) -> dict[str, c.Converter | None]:
    """``[[host]]`` keys. ``None`` marks sub-tables the builder handles itself."""
    rpath = remote_path_for(local)
    return {
        "name": c.string(pattern=HOST_NAME_RE, what=HOST_NAME_WHAT),
        "target": c.string(max_len=512),  # parsed by the builder (default: the name)
        "transport": c.choice(TRANSPORTS),
        "key_file": c.secret_file,
        "insecure_known_hosts": c.boolean,
        "log": rpath,
        "log_follow": c.boolean,
        "gpu_nvml": c.boolean,
        "tmux_session": c.one_line,
        "pgrep": c.one_line,
        "slurm_user": c.string(pattern=r"[A-Za-z0-9_][A-Za-z0-9._-]*", what="a user name"),
        "slurm_job": slurm_job,
        "ray_job": c.string(pattern=r"[A-Za-z0-9_][A-Za-z0-9_:.-]*", what="a Ray job id"),
        "ray_address": c.one_line,
        "mounts": c.array(rpath, unique=True, min_len=1),
        "markers": c.array(marker_for(local), unique=True),
        "completion_lines": c.array(c.one_line, unique=True),
        "checkpoint_dir": rpath,
        "checkpoint_size_gb": c.number(0, lo_open=True),
        "expected_duration": _positive,
        "script": rpath,
        "resume_command": c.one_line,
        "auto_resume": c.boolean,
        "auto_resume_max": c.integer(0, 100),
        "notes": c.string(allow_empty=True, max_len=20000),
        "group": c.string(max_len=64),
        "labels": c.str_table(),
        "teardown": None,
        "thresholds": None,
        **TIMING_SPEC,
    }


TEARDOWN_SPEC: dict[str, c.Converter] = {
    "artifacts_dir": c.remote_path,  # replaced by the host's path converter
    "artifacts_glob": c.string(pattern=r"[^/\r\n]+", what="a file-name pattern without '/'"),
    "expected_count": c.integer(0),
    "min_artifact_bytes": c.integer(0),
    "local_dir": c.local_path,
    "verify_command": c.one_line,
    "preset": c.choice(PRESETS),
    "stop_command": c.one_line,
    "stop_runs_on": c.choice(STOP_RUNS_ON),
    "instance_id": c.string(pattern=r"[A-Za-z0-9_][A-Za-z0-9_.:-]*", what="an instance id"),
}

ALERTS_SPEC: dict[str, c.Converter] = {
    **{sev: c.array(c.choice(SINKS), unique=True) for sev in SEVERITIES},
    "webhook_url_file": c.secret_file,
    "webhook_url_env": c.env_name,
    "log_file": c.local_path,
}

PROMETHEUS_SPEC: dict[str, c.Converter] = {
    "url": http_url,
    "host_label": c.string(pattern=r"[A-Za-z_][A-Za-z0-9_]*", what="a Prometheus label name"),
    "token_file": c.secret_file,
    "token_env": c.env_name,
    "basic_auth_file": c.secret_file,
    "include_fstypes": c.array(c.fstype, unique=True),
    "label_map": c.str_table(HOST_NAME_RE, c.string(max_len=256)),
    "timeout": _positive,
}

UI_SPEC: dict[str, c.Converter] = {
    "theme": c.string(pattern=r"[A-Za-z0-9_.-]+", what="a theme name like gpudash-dark"),
    "refresh_hz": c.number(0, 60, lo_open=True),
}

KEYMAP_SPEC = c.str_table(
    r"[A-Za-z0-9_.-]+",
    c.string(pattern=r"[^\s,]+(?:,[^\s,]+)*", what="a key name, or several separated by commas "
             "without spaces (\"ctrl+r,f5\")", max_len=128),
)

TOP_SPEC = ("defaults", "host", "alerts", "keymap", "prometheus", "ui")

# ---------------------------------------------------------------------------- hints
_SECRET_WEBHOOK = ("an inline webhook URL is a secret (it carries its token): put it in a file "
                   "and set webhook_url_file, or set webhook_url_env")
_SECRET_TOKEN = "an inline token or password is a secret: use token_file, token_env or basic_auth_file"
_KEY_MATERIAL = ("never put a private key or password in the config: use key_file = \"PATH\" "
                 "or the SSH agent")
_TARGET_PARTS = "write the SSH target as target = \"user@host:port\" (or an alias from ~/.ssh/config)"

TOP_HINTS = {
    "hosts": "hosts are written as [[host]] tables, one per host (with name = \"…\")",
    "thresholds": "thresholds go under [defaults.thresholds] (or [host.thresholds])",
    "teardown": "teardown settings go under each host: [host.teardown]",
}
DEFAULTS_HINTS = {k: f"thresholds go under [defaults.thresholds]: {k}" for k in THRESHOLD_SPEC}
HOST_HINTS = {
    **{k: "threshold overrides go under [host.thresholds]" for k in THRESHOLD_SPEC},
    **{k: "teardown settings go under [host.teardown]" for k in TEARDOWN_SPEC},
    "key": _KEY_MATERIAL + " (did you mean key_file?)",
    "private_key": _KEY_MATERIAL,
    "password": _KEY_MATERIAL,
    "passphrase": _KEY_MATERIAL,
    "identity_file": "did you mean key_file? (a path to the private key)",
    "user": _TARGET_PARTS,
    "port": _TARGET_PARTS,
    "hostname": _TARGET_PARTS,
    "host": _TARGET_PARTS,
}
ALERTS_HINTS = {
    "webhook_url": _SECRET_WEBHOOK,
    "webhook": _SECRET_WEBHOOK,
    "url": _SECRET_WEBHOOK,
    "token": _SECRET_WEBHOOK,
    "webhook_token": _SECRET_WEBHOOK,
    "routes": "list sinks per severity directly under [alerts]: info/warning/critical = [\"file\", …]",
}
PROMETHEUS_HINTS = {
    "token": _SECRET_TOKEN,
    "bearer_token": _SECRET_TOKEN,
    "password": _SECRET_TOKEN,
    "basic_auth": _SECRET_TOKEN,
    "username": _SECRET_TOKEN,
}
