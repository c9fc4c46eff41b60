"""gpudash's configuration: TOML → typed frozen dataclasses, with ``file:line: key: problem`` errors.

The reference of every key is docs/config.md. Import from here; the submodules are internal:
``types`` (the dataclasses), ``schema`` (what is valid), ``build`` (validation), ``line_index``
(key → line), ``loader`` (files), ``targets`` and ``durations`` (small parsers shared with the CLI).
"""

from .durations import format_duration, parse_duration
from .errors import ConfigError, Problem
from .loader import MAX_CONFIG_BYTES, default_config_path, load_config, parse_config
from .targets import Target, is_local_target, parse_target
from .types import (
    DEFAULT_COMPLETION_LINES, DEFAULT_MARKERS, DEFAULT_MOUNTS, PRESETS, SEVERITIES, SINKS,
    TRANSPORTS, AlertsConfig, Config, Defaults, HostConfig, PrometheusConfig, TeardownConfig,
    Thresholds, Timing, UiConfig,
)

__all__ = [
    "AlertsConfig", "Config", "ConfigError", "DEFAULT_COMPLETION_LINES", "DEFAULT_MARKERS",
    "DEFAULT_MOUNTS", "Defaults", "HostConfig", "MAX_CONFIG_BYTES", "PRESETS", "Problem",
    "PrometheusConfig", "SEVERITIES", "SINKS", "TRANSPORTS", "Target", "TeardownConfig",
    "Thresholds", "Timing", "UiConfig", "default_config_path", "format_duration",
    "is_local_target", "load_config", "parse_config", "parse_duration", "parse_target",
]
