"""Platform presets: each a complete row; values substituted safely; unknown values said so."""

from __future__ import annotations

import shlex

import pytest

from gpudash.config import PRESETS as CONFIG_PRESETS
from gpudash.teardown.presets import DEFAULT_PLAN, PRESETS, stop_plan, substitute
from gpudash.teardown.types import TeardownSettings


def test_every_config_preset_has_a_documented_row():
    assert set(PRESETS) == set(CONFIG_PRESETS)
    for p in PRESETS.values():
        assert p.where in ("local", "box", "console")
        assert p.survives and p.warnings and p.verb
        assert (p.command is None) == (p.where == "console")


@pytest.mark.parametrize("name,needle", [
    ("runpod", "runpodctl stop pod abc123"),
    ("vastai", "vastai stop instance abc123"),
    ("paperspace", "pspace machine stop abc123"),
    ("lambda", '"instance_ids": ["abc123"]'),
])
def test_provider_cli_presets_run_locally_with_the_instance_id(name, needle):
    plan = stop_plan(TeardownSettings(host="b", preset=name, instance_id="abc123"))
    assert plan.runnable and plan.where == "local"
    assert needle in plan.command
    assert plan.warnings[-1] == DEFAULT_PLAN
    shlex.split(plan.command)  # still one well-formed shell command


def test_irreversible_verbs_say_so():
    lam = stop_plan(TeardownSettings(host="b", preset="lambda", instance_id="i-1"))
    assert lam.verb == "terminate" and not lam.reversible
    assert any("IRREVERSIBLE" in w for w in lam.warnings)
    run = stop_plan(TeardownSettings(host="b", preset="runpod", instance_id="p1"))
    assert any("still bills" in w for w in run.warnings)
    assert any("runpodctl remove pod p1" in w for w in run.warnings)


def test_unknown_instance_id_is_named_and_not_runnable():
    plan = stop_plan(TeardownSettings(host="b", preset="vastai"))
    assert not plan.runnable and plan.unknown == ("instance_id",)
    assert "{instance_id}" in plan.command
    assert "instance_id unknown" in plan.warnings[0]


def test_slurm_uses_the_job_id_and_runs_on_the_box():
    plan = stop_plan(TeardownSettings(host="login", preset="slurm", slurm_job="4242"))
    assert plan.command == "scancel 4242" and plan.where == "box" and plan.runnable
    assert stop_plan(TeardownSettings(host="login", preset="slurm")).unknown == ("job_id",)


def test_generic_ssh_and_autodl():
    ssh = stop_plan(TeardownSettings(host="b", preset="ssh"))
    assert ssh.command == "sudo -n shutdown -h now" and ssh.where == "box"
    autodl = stop_plan(TeardownSettings(host="b", preset="autodl"))
    assert autodl.command is None and autodl.where == "console" and not autodl.runnable
    assert any("no official CLI" in w for w in autodl.warnings)


@pytest.mark.parametrize("value", ["x; rm -rf ~", "$(touch /tmp/pwned)", "a b", "'q'", "`id`",
                                   "-rf", ""])
def test_hostile_ids_are_never_substituted(value):
    command, unknown = substitute("vastai stop instance {instance_id}", {"instance_id": value})
    assert unknown == ("instance_id",) and command == "vastai stop instance {instance_id}"
    plan = stop_plan(TeardownSettings(host="b", preset="runpod", instance_id=value))
    assert not plan.runnable


def test_a_custom_stop_command_wins_and_keeps_the_presets_warnings():
    s = TeardownSettings(host="b", preset="runpod", instance_id="p1",
                         stop_command="my-stop --pod {instance_id}", stop_runs_on="local")
    plan = stop_plan(s)
    assert plan.command == "my-stop --pod p1" and plan.runnable
    assert any("volume disk" in w for w in plan.warnings)
    bare = stop_plan(TeardownSettings(host="b", stop_command="poweroff", stop_runs_on="box"))
    assert bare.where == "box" and not bare.reversible and "unknown" in bare.survives


def test_no_preset_is_not_runnable():
    plan = stop_plan(TeardownSettings(host="b"))
    assert plan.command is None and not plan.runnable and "preset" in plan.warnings[0]


def test_the_hint_names_the_setting_that_is_missing():
    assert "--job-id" in stop_plan(TeardownSettings(host="b", preset="slurm")).warnings[0]
    assert "--instance-id" in stop_plan(TeardownSettings(host="b", preset="runpod")).warnings[0]
