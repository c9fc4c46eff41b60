"""Training metrics, progress, completion lines and the W&B URL from the real trainer logs."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.training.progress import DEFAULT_COMPLETION, is_completion
from gpudash.training import completion_line, find_wandb_url, parse_metrics, parse_progress
from gpudash.training.metrics import parse_segment
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"


def lines(name):
    # split on \n only: a tqdm line rewritten with \r is ONE line of the file (grep -n numbering)
    return (FIXTURES / name).read_bytes().decode("utf-8", "replace").split("\n")


def test_hf_trainer_quoted_dict_lines():
    pts = parse_metrics(lines("logs/hf-trainer.log"))
    assert len(pts) == 9  # eight logging steps + logging_first_step; the train_runtime summary is not one
    first, last = pts[0], pts[-1]
    assert (first.loss, first.grad_norm, first.lr, first.epoch, first.line_no) == (6.804, 0.9595, 5e-05, 0.03125, 4)
    assert (last.loss, last.grad_norm, last.lr, last.epoch) == (6.805, 1.022, 7.813e-07, 2.0)
    assert pts[3].loss == 6.819 and pts[3].epoch == 0.75
    assert all(p.step is None for p in pts)  # HF dict lines carry no step: never guessed from tqdm


def test_hf_trainer_progress_is_exact():
    prog = parse_progress(lines("logs/hf-trainer.log"))
    assert (prog.current, prog.total) == (64, 64)
    assert prog.label() == "~64/64"
    assert prog.rate_per_s == 42.0 and prog.eta_s == 0.0  # tqdm's own rate and remaining time


def test_hf_trainer_completion_is_the_train_runtime_summary():
    line_no, text = completion_line((LOGS / "hf-trainer.log").read_bytes())
    assert line_no == 17 and text.startswith("{'train_runtime': '1.525'")


def test_plain_epoch_step_loss_lr():
    pts = parse_metrics(lines("logs/train-healthy.log"))
    assert len(pts) == 25
    assert (pts[0].epoch, pts[0].step, pts[0].loss, pts[0].lr, pts[0].line_no) == (0.0, 20, 0.029071, 1e-4, 1)
    assert (pts[-1].step, pts[-1].loss) == (500, 0.000209)
    assert parse_progress(lines("logs/train-healthy.log")).label() == "~500/unknown"
    assert completion_line((LOGS / "train-healthy.log").read_text()) == (26, "Training completed")


def test_step_loss_without_epoch_and_unknown_total():
    pts = parse_metrics(lines("logs/stall-pattern.log"))
    assert (pts[0].step, pts[0].loss) == (25, 0.01922)
    assert (pts[-1].step, pts[-1].loss, pts[-1].line_no) == (650, 0.00017, 26)
    assert parse_progress(lines("logs/stall-pattern.log")).label() == "~650/unknown"
    assert completion_line((LOGS / "stall-pattern.log").read_text()) is None


def test_lightning_wrapped_bar_metrics_and_epoch_progress():
    pts = parse_metrics(lines("logs/lightning.log"))
    assert len(pts) == 1
    assert (pts[0].loss, pts[0].epoch, pts[0].line_no) == (1.124, 2.0, 24)
    assert parse_progress(lines("logs/lightning.log")).label() == "~2/2"  # "Epoch 2/2" as printed
    assert completion_line((LOGS / "lightning.log").read_text())[0] == 22


def test_nan_loss_is_kept_as_printed():
    (p,) = parse_metrics(lines("logs/fail-nan.log"))
    assert p.step == 5 and math.isnan(p.loss)


def test_slurm_job_output_progress_and_start_line_no():
    ls = lines("slurm/job-timelimit.out")
    pts = parse_metrics(ls, start_line_no=101)
    assert pts[0].line_no == 101 and pts[-1].step == 640 and pts[-1].loss == 0.936
    assert parse_progress(ls).label() == "~640/unknown"


def test_other_formats():
    fairseq = ("| epoch 001:    200 / 1374 loss=14.351, ppl=20899.56, wps=49604, num_updates=190, "
               "lr=4.84525e-06, gnorm=3.901, loss_scale=0.062")
    p = parse_segment(fairseq)
    assert (p.loss, p.lr, p.grad_norm, p.epoch, p.step) == (14.351, 4.84525e-06, 3.901, 1.0, 190)
    d2 = ("[11/01 20:14:15 d2.utils.events]: eta: 5:41:49  iter: 379  total_loss: 1.707  loss_cls: 1.184  "
          "time: 0.2293  lr: 0.003796  max_mem: 3782M")
    p = parse_segment(d2)
    assert (p.loss, p.step, p.lr) == (1.707, 379, 0.003796)
    hf_old = "{'loss': 0.9042, 'learning_rate': 0.00029342138051333165, 'epoch': 0.24}"
    assert parse_segment(hf_old).loss == 0.9042
    assert parse_segment("{'eval_loss': 1.19, 'eval_runtime': 0.47, 'epoch': 0.24}") is None
    assert parse_segment("Using the default loss: `ForCausalLMLoss`.") is None


def test_progress_forms():
    assert parse_progress(["Step 100/1000 | loss 2.3"]).label() == "~100/1000"
    assert parse_progress(["[Epoch 3/100][Iter 200/1000] loss 0.2"]).label() == "~200/1000"
    # a described bar that is not training (model shards) is not the run's progress
    assert parse_progress(["Writing model shards: 100%|██████████| 1/1 [00:00<00:00, 130.25it/s]"]) is None
    assert parse_progress(["Epoch 0:   6%|██  | 32040/500150 [6:28:43<94:39:17,  1.37it/s, loss=2.6]"]).label() \
        == "~32040/500150"


def test_rate_and_eta_from_two_timestamped_observations():
    prog = parse_progress(["2026-11-22 10:00:00 step 100/1000 loss 2", "2026-11-22 10:01:40 step 200/1000 loss 1"])
    assert prog.rate_per_s == 1.0 and prog.eta_s == 800.0
    prog = parse_progress(["step 100/1000", "step 300/1000"], times=[0.0, 100.0])
    assert prog.rate_per_s == 2.0 and prog.eta_s == 350.0


def test_completion_markers():
    assert completion_line("Epoch 00012: early stopping\n") == (1, "Epoch 00012: early stopping")
    assert completion_line("EarlyStopping counter: 3 out of 10\n") is None
    assert completion_line("early stopping patience: 3\n") is None
    assert completion_line("x\nQUEUE DONE\n") == (2, "QUEUE DONE")
    assert completion_line("all FINISHED\n") == (1, "all FINISHED")
    assert completion_line("Finished epoch 3\n") is None
    assert completion_line("stage ok: ALL_STAGES_OK\n", extra=["ALL_STAGES_OK"]) == (1, "stage ok: ALL_STAGES_OK")
    assert completion_line("done\n", markers=["done"]) == (1, "done")


def test_wandb_url():
    text = ("wandb: Syncing run glowing-sun-3\n"
            "wandb: 🚀 View run at https://wandb.ai/acme/llm-sft/runs/3x9k2q1z\n"
            "see https://example.com/a/b/runs/zzz for unrelated\n")
    assert find_wandb_url(text) == "https://wandb.ai/acme/llm-sft/runs/3x9k2q1z"
    assert find_wandb_url("wandb: View run at https://wandb.corp.example:8080/team/proj/runs/ab12\n") \
        == "https://wandb.corp.example:8080/team/proj/runs/ab12"
    assert find_wandb_url("nothing here\n") is None


# The anchor prefilter in is_completion must never hide a line a default marker matches.
@pytest.mark.parametrize("marker", DEFAULT_COMPLETION, ids=lambda m: m.pattern[:30])
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_completion_anchors_cover_every_default_marker(marker, data):
    line = data.draw(st.from_regex(marker, fullmatch=False))
    assert marker.search(line)
    assert is_completion(line), line


def _all_observations_progress(lines, times=None):
    """The straightforward reading parse_progress must agree with: observe EVERY line, then
    take the newest observation and the nearest earlier one of the same count for the rate."""
    from gpudash.model import Progress
    from gpudash.sanitize import clean_text
    from gpudash.training.progress import _observe, _timestamp

    obs = []
    for i, line in enumerate(lines):
        at = times[i] if times is not None and i < len(times) else None
        for seg in reversed([s for s in line.split("\r") if s.strip()]):
            seg = clean_text(seg, max_len=None)
            o = _observe(seg)
            if o is not None:
                obs.append((*o, at if at is not None else _timestamp(seg)))
                break
    if not obs:
        return None
    cur, tot, rate, eta, at = obs[-1]
    if at is not None:
        for pcur, ptot, _r, _e, pat in reversed(obs[:-1]):
            if pat is not None and pat < at and pcur < cur and ptot == tot:
                rate = (cur - pcur) / (at - pat)
                eta = (tot - cur) / rate if tot is not None and rate > 0 else None
                break
    if eta is None and rate and tot is not None:
        eta = max(0.0, (tot - cur) / rate)
    return Progress(current=cur, total=tot, rate_per_s=rate, eta_s=eta)


_PROGRESS_BITS = st.sampled_from([
    "step 12", "step 40/64", "global_step=7", "Epoch 2/3", "loss 0.5", "",
    " 45%|████▌     | 29/64 [00:12<00:15,  2.31it/s]", "Downloading: 10/20 [00:01<00:01]",
    "2026-11-22 14:00:0{} INFO step {}/100", "eval 3/9", "\r 10/64 [00:01<00:06, 9.1it/s]",
])


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(_PROGRESS_BITS, st.integers(0, 9), st.integers(0, 99)), max_size=12),
       st.booleans())
def test_newest_first_progress_equals_reading_every_line(parts, with_times):
    lines = [p.format(a, b) if "{}" in p else p for p, a, b in parts]
    times = [1000.0 + i for i in range(len(lines))] if with_times else None
    assert parse_progress(lines, times=times) == _all_observations_progress(lines, times)


# The whole-text and per-segment prefilters (skip cleaning text without keywords) must agree
# with reading every segment cleaned. Escape sequences and invisible characters, which cleaning
# deletes and which could join a keyword's letters, are in the alphabet on purpose.
_HIDING_BITS = st.sampled_from([
    "Training completed", "Training com\x1b[1mpleted", "com\u200bpleted", "early stop", "ping",
    "FINI", "SHED", "QUEUE DONE", "'train_runtime': 3", "loss", "lo\x1b[0mss", "l\u200boss", ": 0.5",
    "grad_norm", "lr", "l\x1b[2mr", "=3e-4", "Epoch 2/10", "step 40/64", " 40/64 [00:01<00:02]",
    "\r", "\n", " ", "\t", "x",
])


def _completion_every_segment(text):
    from gpudash.sanitize import clean_text

    lines = text.split("\n")
    for idx in range(len(lines) - 1, -1, -1):
        for seg in reversed(lines[idx].split("\r")):
            if seg.strip() and is_completion(clean_text(seg, max_len=None)):
                return idx + 1, clean_text(seg)
    return None


def _metrics_every_segment(lines):
    from gpudash.sanitize import clean_text
    from gpudash.training.metrics import _EPOCH_HEADER, parse_segment

    out, hint = [], None
    for i, line in enumerate(lines):
        if not line:
            continue
        for seg in line.split("\r"):
            if not seg.strip():
                continue
            seg = clean_text(seg, max_len=None)
            m = _EPOCH_HEADER.search(seg)
            p = parse_segment(seg, line_no=1 + i, epoch_hint=hint)
            if m and p is None:
                hint = float(m["v"])
            if p is not None:
                out.append(p)
                if p.epoch is not None:
                    hint = p.epoch
    return out


@settings(deadline=None, max_examples=300)
@given(st.lists(_HIDING_BITS, max_size=30))
def test_prefiltered_completion_and_metrics_equal_reading_every_segment(bits):
    from gpudash.training.metrics import parse_metrics

    text = "".join(bits)
    assert completion_line(text) == _completion_every_segment(text)
    lines = text.split("\n")
    assert parse_metrics(lines) == _metrics_every_segment(lines)
