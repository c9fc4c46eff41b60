"""`gpudash init` and the ~/.ssh/config reader behind it."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from gpudash.commands import config_cmd, init
from gpudash.config import load_config, parse_config
from gpudash.ssh_config import read_ssh_aliases, read_ssh_hosts

MAIN = """\
# my boxes
Host a100
    HostName 203.0.113.7
    User root
    Port 22022
    IdentityFile ~/.ssh/id_runpod

Host *.internal !bastion
    User alice

host=lab-login
  ProxyJump bastion

Host gh
    HostName github.com

Include conf.d/*.conf
Match host h100 exec "true"
    User bob
"""
INCLUDED = """\
Host h100 *
  Port 2200
Host a100
  Port 1
"""


@pytest.fixture
def ssh_dir(tmp_path) -> Path:
    d = tmp_path / "ssh"
    (d / "conf.d").mkdir(parents=True)
    (d / "config").write_text(MAIN)
    (d / "conf.d" / "gpu.conf").write_text(INCLUDED)
    (d / "conf.d" / "ignored.txt").write_text("Host not-included\n")
    return d


def _args(tmp_path, ssh_dir, *extra) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpudash init")
    init.add_arguments(parser)
    return parser.parse_args(["--config", str(tmp_path / "cfg" / "gpudash" / "config.toml"),
                              "--ssh-config", str(ssh_dir / "config"), *extra])


# ---------------------------------------------------------------------------- ssh config
def test_reads_aliases_skipping_patterns_and_following_include(ssh_dir):
    hosts, problems = read_ssh_hosts(ssh_dir / "config")
    assert [h.alias for h in hosts] == ["a100", "lab-login", "gh", "h100"]
    assert problems == []
    a100 = hosts[0]
    assert (a100.hostname, a100.user, a100.port) == ("203.0.113.7", "root", "22022")
    assert a100.identity_file == "~/.ssh/id_runpod"
    assert hosts[2].is_forge and not a100.is_forge
    assert hosts[3].port == "2200" and hosts[3].source == ssh_dir / "conf.d" / "gpu.conf"


def test_include_cycle_and_missing_file(tmp_path):
    (tmp_path / "a").write_text(f"Host one\nInclude {tmp_path}/b\n")
    (tmp_path / "b").write_text(f"Host two\nInclude {tmp_path}/a\nInclude {tmp_path}/none\n")
    assert read_ssh_aliases(tmp_path / "a") == ["one", "two"]
    assert read_ssh_aliases(tmp_path / "absent") == []


def test_quoted_and_odd_lines(tmp_path):
    (tmp_path / "c").write_text('Host "spaced name" plain\n\tHOST\ttabbed # trailing\n'
                                'Host "unbalanced\nHost ?ingle\n')
    assert read_ssh_aliases(tmp_path / "c") == ["spaced name", "plain", "tabbed", '"unbalanced']


# ---------------------------------------------------------------------------- init
def test_init_writes_a_config_that_loads_and_checks(tmp_path, ssh_dir, capsys):
    args = _args(tmp_path, ssh_dir)
    assert init.run(args) == 0
    path = tmp_path / "cfg" / "gpudash" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    config = load_config(path)
    assert [h.name for h in config.hosts] == ["a100", "lab-login", "h100"]
    assert all(h.target == h.name and h.transport == "ssh" for h in config.hosts)
    out = capsys.readouterr().out
    assert "skipped 'gh': a code forge" in out
    check = argparse.Namespace(config_action="check", config=path)
    assert config_cmd.run(check) == 0
    assert capsys.readouterr().out.startswith("OK: 3 hosts")
    text = path.read_text()
    assert text.startswith("# gpudash config, written by `gpudash init`")
    assert "docs/config.md" in text


def test_header_defaults_are_valid_when_uncommented(tmp_path, ssh_dir):
    assert init.run(_args(tmp_path, ssh_dir)) == 0
    text = (tmp_path / "cfg" / "gpudash" / "config.toml").read_text()
    head, body = text.split("\n[[host]]", 1)
    start = head.index("# [defaults]\n")
    uncommented = "\n".join(line[2:] for line in head[start:].splitlines()) + "\n"
    config = parse_config(uncommented + "[[host]]" + body)
    assert config.defaults == parse_config("").defaults  # the header lists the real defaults


def test_init_refuses_to_overwrite(tmp_path, ssh_dir, capsys):
    path = tmp_path / "cfg" / "gpudash" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("# my hand-edited config\n")
    assert init.run(_args(tmp_path, ssh_dir)) == 1
    assert path.read_text() == "# my hand-edited config\n"
    assert "--force" in capsys.readouterr().err
    assert sorted(os.listdir(path.parent)) == ["config.toml"]


def test_force_keeps_a_backup(tmp_path, ssh_dir):
    path = tmp_path / "cfg" / "gpudash" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("# my hand-edited config\n")
    assert init.run(_args(tmp_path, ssh_dir, "--force")) == 0
    assert init.run(_args(tmp_path, ssh_dir, "--force")) == 0  # twice in one second: two backups
    backups = sorted(path.parent.glob("config.toml.bak-*"))
    assert len(backups) == 2
    assert backups[0].read_text() == "# my hand-edited config\n"
    assert backups[0].name[len("config.toml.bak-"):][:8].isdigit()
    assert load_config(path).hosts[0].name == "a100"
    assert not list(path.parent.glob(".config.toml.tmp-*"))


def test_no_usable_alias_writes_this_machine(tmp_path, capsys):
    ssh = tmp_path / "ssh_config"
    ssh.write_text("Host *\n  User x\nHost github.com\nHost -oProxyCommand=x\n")
    parser = argparse.ArgumentParser()
    init.add_arguments(parser)
    path = tmp_path / "c.toml"
    args = parser.parse_args(["--config", str(path), "--ssh-config", str(ssh)])
    assert init.run(args) == 0
    (host,) = load_config(path).hosts
    assert host.is_local and host.name == "localhost"
    assert "cannot be used as a target" in capsys.readouterr().out


def test_missing_explicit_ssh_config_is_an_error(tmp_path, capsys):
    args = argparse.Namespace(config=tmp_path / "c.toml", force=False,
                              ssh_config=tmp_path / "absent")
    assert init.run(args) == 1
    assert not (tmp_path / "c.toml").exists()


def test_odd_aliases_become_valid_unique_names():
    from gpudash.ssh_config import SshHost

    hosts, skipped = init.starter_hosts([SshHost("box_1"), SshHost("_box"), SshHost("x" * 80)])
    names = [h["name"] for h in hosts]
    assert names[0] == "box_1" and names[1] == "box" and len(names[2]) == 64
    parse_config(init.render(hosts, Path("ssh_config")))
