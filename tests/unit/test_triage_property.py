"""Arbitrary input never breaks the classifier or the metrics parsers: always a valid class,
inert text, no exception (hypothesis, no deadline: the point is robustness, not speed)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.sanitize import is_inert
from gpudash.training import completion_line, find_wandb_url, parse_metrics, parse_progress
from gpudash.triage import CLASS_IDS, classify
from gpudash.triage.fusion import LiveFacts, fuse

REAL_LINES = [
    "Traceback (most recent call last):",
    '  File "train.py", line 5, in <module>',
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    "RuntimeError: DataLoader worker (pid 4024) is killed by signal: Killed.",
    "ConnectionResetError: [Errno 104] Connection reset by peer",
    "slurmstepd: error: *** JOB 2 ON vm CANCELLED AT 2026-11-22T19:16:16 DUE TO TIME LIMIT ***",
    "epoch 0 step 20 loss 0.029071 lr 1.00e-04",
    "{'loss': '6.804', 'grad_norm': '0.9595', 'learning_rate': '5e-05', 'epoch': '0.03125'}",
    " 62%|██████▎   | 40/64 [00:01<00:00, 44.92it/s]\r 63%|██████▎   | 41/64 [00:01<00:00, 44.92it/s]",
    "***** Running training *****",
    "Training completed",
    "KeyError: 'num_layers'",
    "step 5: loss is nan, stopping",
    "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768",
    "Exception ignored in: <function _MultiProcessingDataLoaderIter.__del__ at 0x7f>",
    "\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202e[bold]x[/bold]",
    "wandb: 🚀 View run at https://wandb.ai/me/proj/runs/abc123",
]

texts = st.one_of(
    st.text(),
    st.binary(),
    st.lists(st.one_of(st.sampled_from(REAL_LINES), st.text(max_size=80)), max_size=40).map("\n".join),
    st.lists(st.sampled_from(REAL_LINES), max_size=60).map(lambda ls: "\r".join(ls) if len(ls) % 3 == 0 else "\n".join(ls)),
)


@settings(deadline=None, max_examples=300)
@given(texts)
def test_classify_never_raises_and_returns_a_valid_sanitised_verdict(text):
    r = classify(text)
    assert r.cls in CLASS_IDS
    assert isinstance(r.summary, str) and "\n" not in r.summary
    assert is_inert(r.summary)
    for e in r.evidence:
        assert e.line_no >= 1
        assert is_inert(e.text)
    for p in r.past:
        assert p.cls in CLASS_IDS
    js = r.to_json()
    assert {"class", "category", "summary", "remediation", "evidence"} <= set(js)


@settings(deadline=None, max_examples=200)
@given(texts)
def test_metrics_and_progress_parsers_never_raise(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = text.split("\n")
    for p in parse_metrics(lines):
        assert p.line_no is not None and p.line_no >= 1
    prog = parse_progress(lines)
    if prog is not None:
        assert prog.current >= 0
        assert prog.label().startswith("~")
    done = completion_line(text)
    if done is not None:
        assert is_inert(done[1])
    url = find_wandb_url(text)
    assert url is None or (is_inert(url) and "/runs/" in url)


@settings(deadline=None, max_examples=200)
@given(texts, st.builds(
    LiveFacts,
    bytes_pct=st.none() | st.floats(0, 100),
    inode_pct=st.none() | st.floats(0, 100),
    process_gone=st.none() | st.booleans(),
    oom_kills_delta=st.none() | st.integers(0, 5),
    pane_dead_status=st.none() | st.sampled_from([0, 1, 130, 137, 139, 143]),
    slurm_state=st.none() | st.sampled_from(["TIMEOUT", "OUT_OF_MEMORY", "CANCELLED by 0", "NODE_FAIL", "FAILED"]),
    log_silent_s=st.none() | st.floats(0, 10000),
    checkpoint_advanced=st.none() | st.booleans(),
    gpu_util_window=st.none() | st.floats(0, 100),
    steps_advancing=st.none() | st.booleans(),
    load_per_core=st.none() | st.floats(0, 8),
    threads_vs_quota=st.none() | st.floats(0, 64),
))
def test_fusion_never_raises_and_keeps_a_valid_class(text, facts):
    r = fuse(classify(text), facts)
    assert r.cls in CLASS_IDS
    assert all(is_inert(n) for n in r.diagnoses)
