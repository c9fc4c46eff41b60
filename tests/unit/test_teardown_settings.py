"""Teardown settings: the config's [host.teardown] and job identity, overridden flag by flag."""

from __future__ import annotations

from pathlib import Path

from gpudash.config import parse_config
from gpudash.teardown.settings import settings_from

CONFIG = """
[[host]]
name = "a100"
target = "ubuntu@10.0.0.5:2222"
pgrep = "train.py"
log = "/runs/sft/train.log"
markers = ["TRAIN_DONE", "/runs/sft/EVAL_DONE"]
completion_lines = ["All done"]

[host.teardown]
artifacts_dir = "/workspace/out"
artifacts_glob = "*.safetensors"
expected_count = 3
local_dir = "~/results/sft"
verify_command = "python verify.py"
preset = "runpod"
instance_id = "abc123xyz"
"""


def host():
    return parse_config(CONFIG).host("a100")


def test_the_config_fills_every_setting():
    s = settings_from("a100", host())
    assert (s.artifacts_dir, s.artifacts_glob, s.expected_count) == ("/workspace/out",
                                                                     "*.safetensors", 3)
    assert s.local_dir == Path("~/results/sft").expanduser()
    assert (s.preset, s.instance_id, s.verify_command) == ("runpod", "abc123xyz",
                                                           "python verify.py")
    assert s.pgrep == "train.py" and s.log == "/runs/sft/train.log"
    assert s.markers == ("TRAIN_DONE", "/runs/sft/EVAL_DONE")
    assert s.completion_lines == ("All done",)


def test_flags_override_one_by_one():
    s = settings_from("a100", host(), {"artifacts": "/other", "expect": 5, "local": "/tmp/p",
                                       "verify": "true", "marker": ["/x/DONE"], "preset": "vastai",
                                       "instance_id": None})
    assert (s.artifacts_dir, s.expected_count, s.local_dir) == ("/other", 5, Path("/tmp/p"))
    assert s.verify_command == "true" and s.markers == ("/x/DONE",)
    assert s.preset == "vastai" and s.instance_id == "abc123xyz"  # None flags change nothing
    assert s.artifacts_glob == "*.safetensors"


def test_a_host_named_only_on_the_command_line():
    s = settings_from("gpu-box", None, {"artifacts": "/d", "expect": 1})
    assert s.host == "gpu-box" and s.artifacts_dir == "/d" and s.expected_count == 1
    assert s.markers == ("*_DONE",) and not s.has_job_identity


def test_bare_markers_are_looked_for_next_to_the_log_and_in_the_artifacts_dir():
    from gpudash.teardown.runner import marker_paths

    paths = marker_paths(settings_from("a100", host()))
    assert paths == ["/runs/sft/TRAIN_DONE", "/workspace/out/TRAIN_DONE", "/runs/sft/EVAL_DONE"]
