"""Parsed TOML data → ``Config``, collecting every problem with its line before failing.

Order of work: a scan for private key material anywhere (so its value is never run through
another check that might echo it), then each section against its spec in ``schema.py``, then
the checks that span keys (WARN before CRIT, duplicate host names, a webhook sink without a URL
source…). Nothing is reported twice and nothing is dropped.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from . import schema as s
from .convert import looks_like_key_material, type_name
from .errors import ConfigError, HostRef, Invalid, Problem, show_key
from .frozen_map import FrozenMap
from .line_index import LineIndex
from .targets import parse_target
from .types import (
    AlertsConfig, Config, Defaults, HostConfig, PrometheusConfig, TeardownConfig, Thresholds,
    Timing, UiConfig,
)


class Checker:
    """Collects problems; turns index paths (``("host", 0, "log")``) into lines and display keys."""

    def __init__(self, file: str, index: LineIndex):
        self.file = file
        self.index = index
        self.problems: list[Problem] = []
        self.host_names: dict[int, str] = {}
        self.secret_paths: set[tuple] = set()

    def report(self, path: tuple, message: str) -> None:
        shown = tuple(path)
        if len(shown) >= 2 and shown[0] == "host" and isinstance(shown[1], int):
            shown = ("host", HostRef(shown[1], self.host_names.get(shown[1]))) + shown[2:]
        self.problems.append(Problem(self.file, self.index.line(path), show_key(shown), message))

    def has_secret_under(self, path: tuple) -> bool:
        return any(p[: len(path)] == path for p in self.secret_paths)

    def scan_secrets(self, value: Any, path: tuple = ()) -> None:
        """Private key material anywhere in the file is an error, reported without its value."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.scan_secrets(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.scan_secrets(v, path + (i,))
        elif isinstance(value, str) and looks_like_key_material(value):
            self.secret_paths.add(path)
            self.report(path, "looks like private key material: " + s._KEY_MATERIAL)

    def table(self, raw: Any, path: tuple, spec: dict, hints: dict | None = None) -> dict[str, Any]:
        """Check one table against ``spec``; return the converted values of the valid keys."""
        if not isinstance(raw, dict):
            self.report(path, f"must be a table, not {type_name(raw)}")
            return {}
        out: dict[str, Any] = {}
        for key, value in raw.items():
            kpath = path + (key,)
            if key not in spec:
                self.unknown(kpath, key, spec, hints or {})
                continue
            conv = spec[key]
            if conv is None or self.has_secret_under(kpath):
                continue
            try:
                out[key] = conv(value)
            except Invalid as exc:
                for e in exc.all():
                    self.report(kpath + e.subpath, e.message)
        return out

    def unknown(self, path: tuple, key: str, allowed, hints: dict) -> None:
        if self.has_secret_under(path):
            return
        if key in hints:
            self.report(path, f"unknown key: {hints[key]}")
            return
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.report(path, f"unknown key{hint}")


def build_config(data: dict, index: LineIndex, file: str, path: Path | None) -> Config:
    """Validate parsed TOML; ``ConfigError`` listing every problem, or the ``Config``."""
    ck = Checker(file, index)
    raw_hosts = data.get("host")
    if isinstance(raw_hosts, list):  # names first, so every problem can say which host
        for i, h in enumerate(raw_hosts):
            name = h.get("name") if isinstance(h, dict) else None
            if isinstance(name, str) and name and name not in ck.host_names.values():
                ck.host_names[i] = name  # a duplicate shows as host[#N]: never ambiguous
    ck.scan_secrets(data)
    for key in data:
        if key not in s.TOP_SPEC:
            ck.unknown((key,), key, s.TOP_SPEC, s.TOP_HINTS)

    defaults = _defaults(ck, data.get("defaults", {}))
    hosts = _hosts(ck, data.get("host", []), defaults)
    alerts = _alerts(ck, data.get("alerts", {}))
    keymap = _keymap(ck, data.get("keymap", {}))
    prometheus = _prometheus(ck, data.get("prometheus"), set(ck.host_names.values()))
    ui = UiConfig(**ck.table(data.get("ui", {}), ("ui",), s.UI_SPEC))

    if ck.problems:
        raise ConfigError(ck.problems)
    if not hosts:
        hosts = [HostConfig.local(defaults, discover=True)]
    return Config(hosts=tuple(hosts), defaults=defaults, alerts=alerts, keymap=keymap,
                  prometheus=prometheus, ui=ui, path=path)


# ---------------------------------------------------------------------------- sections
def _defaults(ck: Checker, raw: Any) -> Defaults:
    spec = {**s.TIMING_SPEC, "thresholds": None}
    values = ck.table(raw, ("defaults",), spec, s.DEFAULTS_HINTS)
    thresholds = Thresholds()
    if isinstance(raw, dict) and "thresholds" in raw:
        found = ck.table(raw["thresholds"], ("defaults", "thresholds"), s.THRESHOLD_SPEC)
        thresholds = replace(thresholds, **found)
        _warn_before_crit(ck, thresholds, ("defaults", "thresholds"), set(found))
    return Defaults(timing=replace(Timing(), **values), thresholds=thresholds)


def _warn_before_crit(ck: Checker, t: Thresholds, path: tuple, set_here: set[str]) -> None:
    for warn, crit in s.WARN_CRIT_PAIRS:
        if not ({warn, crit} & set_here):
            continue  # neither set at this level: already judged where they were set
        w, c = getattr(t, warn), getattr(t, crit)
        if w > c:
            where = warn if warn in set_here else crit
            ck.report(path + (where,), f"{warn} ({w:g}) is above {crit} ({c:g}): WARN must not "
                      "come after CRIT")


def _hosts(ck: Checker, raw: Any, defaults: Defaults) -> list[HostConfig]:
    if isinstance(raw, dict):
        ck.report(("host",), "must be an array of tables: write [[host]] (double brackets) "
                  "for each host")
        return []
    if not isinstance(raw, list):
        ck.report(("host",), f"must be an array of tables ([[host]]), not {type_name(raw)}")
        return []
    first_seen: dict[str, int] = {}
    for i, h in enumerate(raw):
        name = h.get("name") if isinstance(h, dict) else None
        if not isinstance(name, str) or not name:
            continue
        if name in first_seen:
            line = ck.index.line(("host", first_seen[name], "name"))
            ck.report(("host", i, "name"), f"duplicate host name (first at line {line})")
        else:
            first_seen[name] = i
    hosts = [_host(ck, h, i, defaults) for i, h in enumerate(raw)]
    return [h for h in hosts if h is not None]


def _host(ck: Checker, raw: Any, i: int, defaults: Defaults) -> HostConfig | None:
    path = ("host", i)
    if not isinstance(raw, dict):
        ck.report(path, f"must be a table, not {type_name(raw)}")
        return None
    transport = raw.get("transport", "ssh")
    local = transport == "local"
    before = len(ck.problems)
    values = ck.table(raw, path, s.host_spec(local), s.HOST_HINTS)

    if "name" not in raw:
        ck.report(path + ("name",), "is required (a short unique name for this host)")
    name = values.get("name")

    address = None
    if local:
        for key in ("target", "key_file", "insecure_known_hosts"):
            if key in raw:
                ck.report(path + (key,), "is not used with transport = \"local\" (this machine, "
                          "no SSH): remove it")
        target = "localhost"
    else:
        target = values.get("target", name)
        if target is not None and not ck.has_secret_under(path + ("target",)):
            try:
                address = parse_target(target)
            except ValueError as exc:
                if "target" in raw:
                    ck.report(path + ("target",), str(exc))
                else:
                    ck.report(path + ("name",), f"is used as the SSH target (no target given) "
                              f"but it {exc}; add target = \"user@host:port\" or an alias")
    if values.get("auto_resume") and not values.get("resume_command"):
        ck.report(path + ("auto_resume",), "needs resume_command (what to run to resume)")

    timing = replace(defaults.timing, **{k: values.pop(k) for k in s.TIMING_SPEC if k in values})
    thresholds = defaults.thresholds
    if "thresholds" in raw:
        found = ck.table(raw["thresholds"], path + ("thresholds",), s.THRESHOLD_SPEC)
        thresholds = replace(thresholds, **found)
        _warn_before_crit(ck, thresholds, path + ("thresholds",), set(found))
    teardown = _teardown(ck, raw.get("teardown"), path + ("teardown",), local)

    if len(ck.problems) > before or name is None:
        return None
    values.pop("target", None)
    values.pop("name", None)
    values.pop("transport", None)
    return HostConfig(name=name, target=target, transport=transport, address=address,
                      timing=timing, thresholds=thresholds, teardown=teardown, **values)


def _teardown(ck: Checker, raw: Any, path: tuple, local: bool) -> TeardownConfig:
    if raw is None:
        return TeardownConfig()
    spec = {**s.TEARDOWN_SPEC, "artifacts_dir": s.remote_path_for(local)}
    values = ck.table(raw, path, spec)
    if isinstance(raw, dict):
        if "expected_count" in raw and "artifacts_dir" not in raw:
            ck.report(path + ("expected_count",), "needs artifacts_dir (where to count)")
        if "stop_runs_on" in raw and "stop_command" not in raw:
            ck.report(path + ("stop_runs_on",), "only applies to stop_command; a preset knows "
                      "where its own command runs")
    return TeardownConfig(**values)


def _alerts(ck: Checker, raw: Any) -> AlertsConfig:
    path = ("alerts",)
    values = ck.table(raw, path, s.ALERTS_SPEC, s.ALERTS_HINTS)
    base = AlertsConfig()
    routes = dict(base.routes)
    for sev in s.SEVERITIES:
        if sev in values:
            routes[sev] = values.pop(sev)
    if "webhook_url_file" in values and "webhook_url_env" in values:
        ck.report(path + ("webhook_url_env",), "set only one of webhook_url_file and webhook_url_env")
    has_source = isinstance(raw, dict) and ("webhook_url_file" in raw or "webhook_url_env" in raw)
    for sev, sinks in routes.items():
        if "webhook" in sinks and not has_source:
            ck.report(path + (sev, sinks.index("webhook")), "the webhook sink needs "
                      "webhook_url_file or webhook_url_env (never an inline URL)")
    return AlertsConfig(routes=FrozenMap(routes), **values)


def _keymap(ck: Checker, raw: Any) -> Mapping[str, str]:
    try:
        return s.KEYMAP_SPEC(raw)
    except Invalid as exc:
        for e in exc.all():
            ck.report(("keymap",) + e.subpath, e.message)
        return FrozenMap({})


def _prometheus(ck: Checker, raw: Any, host_names: set[str]) -> PrometheusConfig | None:
    if raw is None:
        return None
    path = ("prometheus",)
    values = ck.table(raw, path, s.PROMETHEUS_SPEC, s.PROMETHEUS_HINTS)
    if not isinstance(raw, dict):
        return None
    if "url" not in raw:
        ck.report(path + ("url",), "is required (the Prometheus server, http://host:9090)")
    if "token_file" in raw and "token_env" in raw:
        ck.report(path + ("token_env",), "set only one of token_file and token_env")
    if "basic_auth_file" in raw and ("token_file" in raw or "token_env" in raw):
        ck.report(path + ("basic_auth_file",), "set either a token or basic auth, not both")
    for name in values.get("label_map", {}):
        if name not in host_names:
            ck.report(path + ("label_map", name), "names no configured host")
    if "url" not in values:
        return None
    return PrometheusConfig(**values)
