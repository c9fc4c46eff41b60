"""`gpudash config check|path`, called the way the CLI calls it: run(Namespace)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gpudash.commands import config_cmd

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "bad_configs"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpudash config")
    config_cmd.add_arguments(parser)
    return parser.parse_args(argv)


def test_check_valid_file(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[[host]]\nname = "a"\n[[host]]\nname = "b"\ntarget = "u@h:2"\n')
    assert config_cmd.run(_parse(["check", "--config", str(path)])) == 0
    assert capsys.readouterr().out.startswith("OK: 2 hosts")


def test_check_prints_every_problem_as_file_line_key_message(tmp_path, capsys):
    path = tmp_path / "c.toml"
    shutil.copy(CORPUS / "many_wrong_types.toml", path)
    assert config_cmd.run(_parse(["check", "--config", str(path)])) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5
    assert out[0] == (f"{path}:9: host[a100].insecure_known_hosts: must be a boolean "
                      "(true or false), not a string")
    assert all(line.startswith(f"{path}:") for line in out)


def test_check_syntax_error(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[ui]\ntheme = \n")
    assert config_cmd.run(_parse(["check", "--config", str(path)])) == 1
    assert capsys.readouterr().out.startswith(f"{path}:2: TOML syntax error")


def test_check_missing_explicit_file(tmp_path, capsys):
    assert config_cmd.run(_parse(["check", "--config", str(tmp_path / "none.toml")])) == 1
    assert "no such config file" in capsys.readouterr().out


def test_check_without_any_file_is_the_embedded_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_cmd.run(_parse(["check"])) == 0
    assert capsys.readouterr().out.startswith("OK: 1 host (no config file")


def test_global_config_option_is_not_clobbered(tmp_path, capsys):
    """`gpudash --config X config check`: the subcommand must not reset --config to None."""
    path = tmp_path / "c.toml"
    path.write_text('[[host]]\nname = "a"\n')
    top = argparse.ArgumentParser(prog="gpudash")
    top.add_argument("--config", type=Path)
    sub = top.add_subparsers(dest="command")
    config_cmd.add_arguments(sub.add_parser("config"))
    args = top.parse_args(["--config", str(path), "config", "check"])
    assert args.config == path
    assert config_cmd.run(args) == 0
    assert str(path) in capsys.readouterr().out


def test_path_action(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_cmd.run(_parse(["path"])) == 0
    assert capsys.readouterr().out.startswith(str(tmp_path / "gpudash" / "config.toml"))


def test_no_action_means_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_cmd.run(_parse([])) == 0
    assert capsys.readouterr().out.startswith("OK: 1 host")
