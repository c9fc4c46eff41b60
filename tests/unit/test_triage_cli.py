"""`gpudash triage FILE | -` (`--json`): the command handler directly (argparse Namespace) and the
real CLI in a subprocess. Exit codes: 0 none/completed, 1 cancelled, 2 failure, 3 unreadable.
(`--host` over a real box is covered by tests/integration/test_status_e2e.py.)"""

import argparse
import io
import json
import subprocess
import sys

import pytest

from gpudash.commands import triage as cmd
from gpudash.sanitize import is_inert
from tests.conftest import FIXTURES, ROOT

LOGS = FIXTURES / "logs"
HOSTILE = (b"epoch 0 step 1 loss 2.0\n"
           b"\x1b]52;c;ZXZpbA==\x07\x1b[2J\xe2\x80\xae[bold red]pwned[/] RuntimeError: CUDA error: "
           b"an illegal memory access was encountered\x1b[0m\x9b31m\n")


def ns(**kw):
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    args = p.parse_args([])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def run(capsys, **kw):
    rc = cmd.run(ns(**kw))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("name,rc", [
    ("logs/fail-cuda-oom.log", 2), ("logs/train-healthy.log", 0), ("logs/stall-pattern.log", 0),
    ("slurm/job-cancelled-tail.out", 1), ("slurm/job-timelimit.out", 2),
])
def test_exit_codes(capsys, name, rc):
    assert run(capsys, file=str(FIXTURES / name))[0] == rc


def test_human_output_has_class_summary_evidence_and_remediation(capsys):
    rc, out, _ = run(capsys, file=str(LOGS / "fail-killed.log"))
    assert rc == 2
    assert out.startswith("class:       host_oom (resource)\n")
    assert "summary:     killed by the host OOM killer (line 2)" in out
    assert "\n  2: bash: line 1:   692 Killed" in out
    assert "\n  3: exit code 137\n" in out
    assert "remediation: Size DataLoader workers" in out


def test_json_output_has_the_contract_fields(capsys):
    rc, out, _ = run(capsys, file=str(LOGS / "fail-keyerror.log"), json=True)
    data = json.loads(out)
    assert rc == 2
    assert data["class"] == "code_error" and data["category"] == "real bug"
    assert data["evidence"] == [{"line": 4, "text": "KeyError: 'num_layers'"}]
    assert data["summary"] and data["remediation"] and data["explanation"]


def test_escape_sequences_and_markup_are_neutralised_in_both_outputs(tmp_path, capsys):
    p = tmp_path / "hostile.log"
    p.write_bytes(HOSTILE)
    _, human, _ = run(capsys, file=str(p))
    _, js, _ = run(capsys, file=str(p), json=True)
    for out in (human, js):
        assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out and "\x07" not in out
        assert is_inert(out.replace("\n", " "))
    data = json.loads(js)
    assert data["class"] == "cuda_error"
    assert "[bold red]pwned[/]" in data["evidence"][0]["text"]  # inert text, printed, never rendered


def test_stdin_dash(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((LOGS / "fail-nan.log").read_bytes())))
    rc, out, _ = run(capsys, file="-", json=True)
    assert rc == 2 and json.loads(out)["class"] == "nan_loss"


def test_missing_file_is_unreadable(tmp_path, capsys):
    rc, out, err = run(capsys, file=str(tmp_path / "nope.log"))
    assert rc == 3 and out == "" and "cannot read" in err


def test_host_with_a_text_provider(capsys):
    seen = []

    def provider(host):
        seen.append(host)
        return (LOGS / "fail-segv.log").read_bytes()

    rc = cmd.run(ns(host="gpu-box", json=True), text_provider=provider)
    data = json.loads(capsys.readouterr().out)
    assert rc == 2 and seen == ["gpu-box"]
    assert data["class"] == "segfault" and data["source"] == "gpu-box"


def test_the_real_cli_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "gpudash", "triage", str(LOGS / "fail-cuda-oom.log"), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    data = json.loads(proc.stdout)
    assert data["class"] == "cuda_oom"
    assert data["evidence"][0]["line"] == 4
