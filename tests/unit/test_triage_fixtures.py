"""Every real captured log in tests/fixtures gets the class its README lists, with the right key
evidence line (1-based, counted on `\\n` like `grep -n`)."""

import pytest

from gpudash.sanitize import is_inert
from gpudash.triage import CLASS_IDS, classify, classify_file
from tests.conftest import FIXTURES

CASES = [
    # file, class, key evidence line (None: no evidence expected), cause
    ("logs/train-healthy.log", "completed", 26, None),
    ("logs/hf-trainer.log", "completed", 17, None),  # the train_runtime summary dict
    ("logs/lightning.log", "completed", 22, None),  # `Trainer.fit` stopped
    ("logs/stall-pattern.log", "none", None, None),
    ("logs/fail-cuda-oom.log", "cuda_oom", 4, None),
    ("logs/fail-disk-full-write.log", "disk_full", 3, None),
    ("logs/fail-inodes.log", "disk_full", 3, None),  # inodes only known from df -Pi (fusion)
    ("logs/fail-killed.log", "host_oom", 2, None),
    ("logs/fail-segv.log", "segfault", 2, None),
    ("logs/fail-keyerror.log", "code_error", 4, None),
    ("logs/fail-illegal-memory.log", "cuda_error", 6, None),
    ("logs/fail-nan.log", "nan_loss", 1, None),
    ("slurm/job-timelimit.out", "time_limit", 65, None),
    ("slurm/job-cancelled-tail.out", "cancelled", 4, None),
]


@pytest.mark.parametrize("name,cls,line,cause", CASES, ids=[c[0] for c in CASES])
def test_fixture_log_class_and_key_line(name, cls, line, cause):
    r = classify_file(FIXTURES / name)
    assert r.cls == cls, r.summary
    assert r.cls in CLASS_IDS
    assert r.cause == cause
    if line is None:
        assert r.evidence == ()
    else:
        assert r.evidence[0].line_no == line
        raw = (FIXTURES / name).read_bytes().split(b"\n")[line - 1].decode("utf-8", "replace")
        # the key line is really that line of the file (its last `\r` segment at most)
        assert r.evidence[0].text.strip() in raw.replace("\r", "\n")
    assert all(is_inert(e.text) for e in r.evidence)
    assert is_inert(r.summary)


@pytest.mark.parametrize("name,cls,line,cause", CASES, ids=[c[0] for c in CASES])
def test_classify_text_and_bytes_agree_with_file(name, cls, line, cause):
    data = (FIXTURES / name).read_bytes()
    assert classify(data).cls == cls
    assert classify(data.decode("utf-8", "replace")).cls == cls


def test_killed_fixture_carries_the_exit_code_as_supporting_evidence():
    r = classify_file(FIXTURES / "logs/fail-killed.log")
    assert [e.line_no for e in r.evidence] == [2, 3]
    assert r.evidence[1].text == "exit code 137"


def test_failure_results_carry_fixed_remediation_and_category():
    from gpudash.triage.classes import info

    for name, cls, _line, _cause in CASES:
        r = classify_file(FIXTURES / name)
        assert r.remediation == info(cls).remediation
        assert r.category == info(cls).category
        assert r.explanation == info(cls).explanation
