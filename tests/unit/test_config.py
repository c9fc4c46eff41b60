"""Loading valid configs: the documented example, defaults, per-host overrides, CLI hosts."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w

from gpudash.config import (
    Config, ConfigError, Defaults, HostConfig, Target, Thresholds, Timing, default_config_path,
    load_config, parse_config, parse_target,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Example", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def test_documented_example_loads_with_every_value():
    config = parse_config(docs_example(), file="docs/config.md")
    assert [h.name for h in config.hosts] == ["a100-box", "lab-login", "workstation"]
    a100 = config.host("a100-box")
    assert a100.address == Target(host="203.0.113.7", user="root", port=22022)
    assert a100.transport == "ssh" and not a100.is_local and not a100.discover
    assert a100.key_file == Path("~/.ssh/id_ed25519_runpod").expanduser()
    assert a100.mounts == ("/", "/workspace")
    assert a100.markers == ("/workspace/runs/exp1/DONE", "*_DONE")
    assert a100.expected_duration == 6 * 3600
    assert a100.checkpoint_size_gb == 14.5
    assert a100.notes.strip().startswith("Spot instance")
    assert dict(a100.labels) == {"project": "llm-sft"}
    # per-host override beats [defaults], which beats the built-in default
    assert a100.timing.gpu_interval == 5
    assert config.host("lab-login").timing.gpu_interval == 2
    assert a100.timing.jobs_interval == 15
    assert a100.thresholds.disk_crit_pct == 95 and a100.thresholds.disk_warn_pct == 85
    assert config.host("lab-login").thresholds.disk_crit_pct == 97
    assert a100.thresholds.checkpoint_age_warn_s == 3 * 3600
    assert a100.teardown.expected_count == 3 and a100.teardown.preset == "runpod"
    assert a100.teardown.local_dir == Path("~/results/llm-sft").expanduser()
    lab = config.host("lab-login")
    assert lab.slurm_user == "alice" and lab.address.user == "alice" and lab.address.port is None
    ws = config.host("workstation")
    assert ws.is_local and ws.address is None
    assert config.alerts.sinks_for("critical")[-1] == "webhook"
    assert config.alerts.webhook_url_file == Path("~/.config/gpudash/webhook-url").expanduser()
    assert dict(config.keymap) == {"refresh": "r,f5"}
    assert config.prometheus.url == "http://prometheus.internal:9090"
    assert dict(config.prometheus.label_map) == {"lab-login": "node-17"}


def test_round_trip_through_tomli_w_gives_the_same_config():
    """The loader depends on data, not layout: re-serialised by tomli-w, the same Config."""
    text = docs_example()
    again = tomli_w.dumps(tomllib.loads(text))
    assert parse_config(again) == parse_config(text)


def test_every_documented_key_is_accepted_and_every_accepted_key_documented():
    from gpudash.config import schema

    doc = DOCS.read_text(encoding="utf-8")
    keys = (set(schema.TIMING_SPEC) | set(schema.THRESHOLD_SPEC) | {k for k, v in schema.host_spec(False).items() if v}
            | set(schema.TEARDOWN_SPEC) | set(schema.ALERTS_SPEC) | set(schema.PROMETHEUS_SPEC)
            | set(schema.UI_SPEC))
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"undocumented keys: {missing}"


def test_defaults_section_reaches_every_host_and_overrides_only_that_host():
    text = """
[defaults]
disk_interval = "30s"
[defaults.thresholds]
gpu_temp_warn_c = 80
[[host]]
name = "a"
disk_interval = 5
thresholds = { gpu_temp_warn_c = 75 }
[[host]]
name = "b"
"""
    config = parse_config(text)
    a, b = config.hosts
    assert (a.timing.disk_interval, b.timing.disk_interval) == (5, 30)
    assert (a.thresholds.gpu_temp_warn_c, b.thresholds.gpu_temp_warn_c) == (75, 80)
    assert a.timing == replace(Timing(), disk_interval=5)
    assert b.thresholds == replace(Thresholds(), gpu_temp_warn_c=80)
    assert config.defaults == Defaults(replace(Timing(), disk_interval=30),
                                       replace(Thresholds(), gpu_temp_warn_c=80))


def test_host_without_target_uses_its_name_as_alias_and_keeps_builtin_lists():
    config = parse_config('[[host]]\nname = "gpu-box"\n')
    host = config.hosts[0]
    assert host.target == "gpu-box" and host.address == Target("gpu-box")
    assert host.mounts == ("/",) and host.markers == ("*_DONE",)
    assert "Training completed" in host.completion_lines


def test_no_hosts_means_this_machine_with_the_files_defaults():
    config = parse_config("[defaults]\ngpu_interval = 1\n")
    (host,) = config.hosts
    assert host.is_local and host.name == "localhost" and host.timing.gpu_interval == 1


def test_empty_file_is_the_default():
    config = parse_config("")
    assert config.hosts == Config.default_local().hosts


def test_default_local_is_this_machine():
    config = Config.default_local()
    (host,) = config.hosts
    assert host.name == "localhost" and host.transport == "local" and host.mounts == ("/",)
    assert host.timing == Timing() and host.thresholds == Thresholds()
    assert config.path is None


def test_load_config_without_a_file_is_the_embedded_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "gpudash" / "config.toml"
    assert load_config() == Config.default_local()


def test_load_config_reads_the_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "gpudash" / "config.toml"
    path.parent.mkdir()
    path.write_text('[[host]]\nname = "box"\n')
    config = load_config()
    assert [h.name for h in config.hosts] == ["box"] and config.path == path


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    (problem,) = info.value.problems
    assert problem.line == 0 and "no such config file" in problem.message


def test_a_directory_is_an_error_not_a_crash(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path)


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(b"# x\n" * 300_000)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


def test_config_error_is_a_value_error_and_prints_one_line_per_problem():
    with pytest.raises(ValueError) as info:
        parse_config("[ui]\ntheme = 1\nrefresh_hz = true\n", file="c.toml")
    assert str(info.value).splitlines() == [
        "c.toml:2: ui.theme: must be a string, not an integer",
        "c.toml:3: ui.refresh_hz: must be a number, not a boolean",
    ]


def test_hostile_key_names_are_neutralised_in_messages():
    with pytest.raises(ConfigError) as info:
        parse_config('[ui]\n"\\u001b]52;c;aGk=\\u0007x" = 1\n')
    assert "\x1b" not in str(info.value) and "\x07" not in str(info.value)


def test_a_config_value_with_shell_metacharacters_is_kept_verbatim():
    """Values are data: quoting is the probes' job, the config must not mangle or run them."""
    text = '[[host]]\nname = "a"\nlog = "/runs/x; rm -rf ~ $(reboot)/train.log"\n'
    host = parse_config(text).hosts[0]
    assert host.log == "/runs/x; rm -rf ~ $(reboot)/train.log"


# ---------------------------------------------------------------------------- command-line hosts
@pytest.mark.parametrize("text, expected", [
    ("my-alias", Target("my-alias")),
    ("root@10.0.0.5", Target("10.0.0.5", "root")),
    ("root@10.0.0.5:2222", Target("10.0.0.5", "root", 2222)),
    ("box.example.org:22", Target("box.example.org", None, 22)),
    ("ubuntu@[2001:db8::1]:2200", Target("2001:db8::1", "ubuntu", 2200)),
    ("2001:db8::1", Target("2001:db8::1")),
])
def test_from_cli_ssh_targets(text, expected):
    host = HostConfig.from_cli(text)
    assert host.transport == "ssh" and host.address == expected and host.name == text
    assert host.discover and host.timing == Timing()
    assert parse_target(str(expected)) == expected


@pytest.mark.parametrize("text", ["local", "localhost"])
def test_from_cli_local(text):
    host = HostConfig.from_cli(text)
    assert host.is_local and host.name == "localhost" and host.address is None


@pytest.mark.parametrize("text", ["", "-oProxyCommand=x", "a b", "root@host:0", "root@host:x",
                                  "root@host:70000", "a;b", "$(id)", "root@", "[::1", "box/1"])
def test_from_cli_rejects_bad_targets(text):
    with pytest.raises(ConfigError) as info:
        HostConfig.from_cli(text)
    assert info.value.problems[0].key == "target"


def test_from_cli_uses_the_given_defaults():
    defaults = Defaults(replace(Timing(), gpu_interval=7), replace(Thresholds(), disk_warn_pct=50))
    host = HostConfig.from_cli("u@h:2", defaults)
    assert host.timing.gpu_interval == 7 and host.thresholds.disk_warn_pct == 50


def test_select_prefers_configured_hosts_then_cli_targets():
    config = parse_config('[defaults]\ngpu_interval = 9\n[[host]]\nname = "a"\ntarget = "x@y"\n')
    a, b, loc = config.select(["a", "other@z:2200", "local"])
    assert a is config.hosts[0]
    assert b.address == Target("z", "other", 2200) and b.timing.gpu_interval == 9
    assert loc.is_local
    assert config.select([]) == config.hosts


def test_timing_helpers():
    t = Timing()
    assert t.interval("disk") == 10 and t.stale_after_s("disk") == 30


def test_configs_are_frozen_and_hashable():
    import dataclasses

    config = parse_config(docs_example())
    host = config.hosts[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        host.name = "other"
    with pytest.raises(TypeError):
        host.labels["x"] = "y"
    assert {h: h.name for h in config.hosts}[host] == "a100-box"
    assert hash(config) == hash(parse_config(docs_example()))


def test_log_follow_reaches_the_watcher_and_is_on_by_default():
    from gpudash.watch.spec import spec_from_host_config

    config = parse_config('[[host]]\nname = "a"\n\n[[host]]\nname = "b"\nlog_follow = false\n')
    assert spec_from_host_config(config.host("a")).log_follow is True
    assert spec_from_host_config(config.host("b")).log_follow is False
    with pytest.raises(ConfigError) as err:
        parse_config('[[host]]\nname = "c"\nlog_follow = "no"\n', file="x.toml")
    assert "x.toml:3: host[c].log_follow: must be a boolean" in str(err.value)
