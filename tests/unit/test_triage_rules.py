"""The rules of product.md's triage section, each on a log built from real lines: root cause over
decoys, the final exception over earlier warnings, routine noise, history vs the current run,
completion, sanitising, and reading only the tail of big logs."""

from gpudash.sanitize import is_inert
from gpudash.triage import classify, classify_file
from tests.conftest import FIXTURES

OOM_TRACEBACK = """Traceback (most recent call last):
  File "train.py", line 80, in <module>
    loss.backward()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.18 GiB of which 1.02 GiB is free.
"""
HF_START = "***** Running training *****\n  Num examples = 1000\n  Num Epochs = 2\n"
HF_STEPS = "".join(
    f"{{'loss': '{6.8 - i / 100:.3f}', 'grad_norm': '0.95', 'learning_rate': '5e-05', 'epoch': '{i / 10}'}}\n"
    for i in range(1, 6)
)
PLAIN_STEPS = "".join(f"epoch 0 step {s} loss {1 / s:.4f} lr 1.00e-04\n" for s in range(10, 60, 10))


def lines_of(text):
    return text.split("\n")


# ----------------------------------------------------------------------------- root cause


def test_connection_reset_before_dataloader_killed_is_host_oom():
    log = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.10/multiprocessing/connection.py", line 414, in _recv_bytes\n'
        "ConnectionResetError: [Errno 104] Connection reset by peer\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "train.py", line 12, in <module>\n'
        "RuntimeError: DataLoader worker (pid 4024) is killed by signal: Killed.\n"
    )
    r = classify(log)
    assert r.cls == "host_oom"
    assert r.evidence[0].line_no == 9
    assert r.evidence[0].text.startswith("RuntimeError: DataLoader worker")


def test_keyerror_on_one_rank_before_the_nccl_watchdog_is_code_error():
    log = (
        "[rank2]: Traceback (most recent call last):\n"
        '[rank2]:   File "train.py", line 40, in <module>\n'
        "[rank2]: KeyError: 'labels'\n"
        "[rank0]:[E321 02:07:08.408271257 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught collective "
        "operation timeout: WorkNCCL(SeqNum=1580, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) "
        "ran for 600060 milliseconds before timing out.\n"
    )
    r = classify(log)
    assert r.cls == "code_error"
    assert r.evidence[0].line_no == 3


def test_nccl_error_then_cleanup_attributeerror_is_nccl():
    log = (
        "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1191, unhandled system error, NCCL version 2.10.3\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        "AttributeError: 'NoneType' object has no attribute 'close'\n"
    )
    assert classify(log).cls == "nccl"


def test_ecc_then_torchrun_sigterm_to_siblings_is_gpu_hardware():
    log = (
        "RuntimeError: CUDA error: uncorrectable ECC error encountered\n"
        "WARNING:torch.distributed.elastic.multiprocessing.api:Sending process 197 closing signal SIGTERM\n"
        "WARNING:torch.distributed.elastic.multiprocessing.api:Sending process 198 closing signal SIGTERM\n"
    )
    assert classify(log).cls == "gpu_hardware"


def test_oom_then_srun_cancels_the_step_is_host_oom_not_cancelled():
    r = classify_file(FIXTURES / "triage_corpus" / "023-hostoom-slurm-then-step-cancelled.log")
    assert r.cls == "host_oom"
    assert r.evidence[0].line_no == 1


def test_time_limit_outranks_the_nccl_errors_its_sigterm_causes():
    log = PLAIN_STEPS + (
        "slurmstepd: error: *** JOB 7 ON node1 CANCELLED AT 2026-09-21T10:00:00 DUE TO TIME LIMIT ***\n"
        "[E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5, "
        "OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1802212 milliseconds before timing out.\n"
    )
    assert classify(log).cls == "time_limit"


def test_chained_root_cause_is_the_first_known_exception():
    log = (
        "Traceback (most recent call last):\n"
        "FileNotFoundError: [Errno 2] No such file or directory: 'data/train.jsonl'\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        "RuntimeError: dataset build failed\n"
    )
    r = classify(log)
    assert r.cls == "code_error"
    assert r.evidence[0].line_no == 2


def test_unknown_exception_shows_the_final_exception_line():
    log = (
        "Traceback (most recent call last):\n"
        '  File "train.py", line 3, in <module>\n'
        "RuntimeError: something odd happened\n"
        "\nThe above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        "subprocess.CalledProcessError: Command 'x' returned non-zero exit status 1.\n"
    )
    r = classify(log)
    assert r.cls == "unknown_error"
    assert r.evidence[0].line_no == 8


# ----------------------------------------------------------------------------- warnings and noise


def test_final_exception_outranks_an_earlier_warning():
    log = (
        "/opt/venv/lib/python3.10/site-packages/huggingface_hub/file_download.py:1132: UserWarning: Not enough "
        "free disk space to download the file. The expected file size is: 4944.17 MB. The target location "
        "/root/.cache only has 1200.00 MB free disk space.\n"
        "Traceback (most recent call last):\n"
        '  File "train.py", line 9, in <module>\n'
        "KeyError: 'num_layers'\n"
    )
    r = classify(log)
    assert r.cls == "code_error"
    assert r.evidence[0].line_no == 4


def test_a_warning_alone_still_counts():
    log = "UserWarning: Not enough free disk space to download the file.\n"
    assert classify(log).cls == "disk_full"


def test_fp16_overflow_skips_are_routine_noise():
    log = "".join(
        f"[2023-04-28 06:51:{i:02d},903] [INFO] [loss_scaler.py:181:update_scale] [deepspeed] OVERFLOW! Rank 0 "
        f"Skipping step. Attempted loss scale: {65536 >> i}, reducing to {32768 >> i}\n"
        for i in range(5)
    ) + PLAIN_STEPS
    r = classify(log)
    assert r.cls == "none"
    assert r.past == ()


def test_nan_loss_that_recovers_is_not_a_failure_but_a_final_nan_streak_is():
    ok = "step 100 loss 2.31\nstep 200 loss nan\nstep 300 loss 2.10\nstep 400 loss 2.00\n"
    assert classify(ok).cls == "none"
    bad = "step 100 loss 2.31\nstep 200 loss 2.2\nstep 300 loss nan\nstep 400 loss nan\n"
    r = classify(bad)
    assert r.cls == "nan_loss"
    assert r.evidence[0].line_no == 3


def test_transient_network_retry_followed_by_progress_leaves_no_past():
    log = "wandb: Network error (ReadTimeout), entering retry loop.\n" + PLAIN_STEPS
    r = classify(log)
    assert r.cls == "none"
    assert r.past == ()


def test_retry_that_is_the_last_thing_printed_is_network():
    log = PLAIN_STEPS + "wandb: Network error (ReadTimeout), entering retry loop.\n"
    assert classify(log).cls == "network"


def test_exception_ignored_at_teardown_after_completion_is_completed():
    log = PLAIN_STEPS + "Training completed\n" + (
        "Exception ignored in: <function _MultiProcessingDataLoaderIter.__del__ at 0x7f>\n"
        "Traceback (most recent call last):\n"
        '  File "dataloader.py", line 1478, in __del__\n'
        "ConnectionResetError: [Errno 104] Connection reset by peer\n"
    )
    r = classify(log)
    assert r.cls == "completed"
    assert r.evidence[0].line_no == 6


def test_real_failure_after_the_completion_line_wins():
    log = PLAIN_STEPS + "Training completed\n" + OOM_TRACEBACK
    assert classify(log).cls == "cuda_oom"


# ----------------------------------------------------------------------------- history


def test_shared_master_log_earlier_failure_then_healthy_run_is_none_with_past():
    log = OOM_TRACEBACK + HF_START + HF_STEPS
    r = classify(log)
    assert r.cls == "none"
    assert [p.cls for p in r.past] == ["cuda_oom"]
    assert r.past[0].evidence[0].line_no == 4
    assert "earlier cuda_oom (line 4)" in r.summary
    assert r.to_json()["past"][0]["class"] == "cuda_oom"


def test_restart_seen_as_the_step_counter_going_backwards():
    log = (
        "epoch 0 step 600 loss 0.51\n"
        "[E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5, "
        "OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1802212 milliseconds before timing out.\n"
        "epoch 0 step 500 loss 0.55\n"
    )
    r = classify(log)
    assert r.cls == "none"
    assert [p.cls for p in r.past] == ["nccl"]


def test_a_single_progress_line_after_the_failure_is_not_a_fresh_start():
    # tqdm's final refresh after the crash must not hide it
    log = OOM_TRACEBACK + "100%|██████████| 64/64 [00:01<00:00, 42.00it/s]\n"
    assert classify(log).cls == "cuda_oom"


def test_history_then_completion_is_completed_with_past():
    log = OOM_TRACEBACK + HF_START + HF_STEPS + "Training completed. Do not forget to share your model\n"
    r = classify(log)
    assert r.cls == "completed"
    assert [p.cls for p in r.past] == ["cuda_oom"]


def test_completed_run_followed_by_a_new_run_in_progress_is_none():
    log = PLAIN_STEPS + "Training completed\n" + HF_START + HF_STEPS
    assert classify(log).cls == "none"


def test_lightning_bar_after_fit_stopped_is_still_completed():
    assert classify_file(FIXTURES / "logs/lightning.log").cls == "completed"


# ----------------------------------------------------------------------------- text handling


def test_carriage_return_progress_line_with_the_error_in_its_last_segment():
    log = " 45%|████▌     | 45/100 [00:10<00:12, 4.4it/s]\r 46%|████▌     | 46/100 [00:10<00:12, 4.4it/s]\rKilled\n"
    r = classify(log)
    assert r.cls == "host_oom"
    assert r.evidence[0].text == "Killed"


def test_evidence_and_summary_are_sanitised():
    log = ("step 1 loss 2\n\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202e[red]x[/red] RuntimeError: CUDA error: an illegal "
           "memory access was encountered\x1b[0m\x07\n")
    r = classify(log)
    assert r.cls == "cuda_error"
    assert all(is_inert(e.text) for e in r.evidence)
    assert is_inert(r.summary)
    assert "[red]x[/red]" in r.evidence[0].text  # markup is kept as inert text, never interpreted


def test_custom_completion_marker_from_the_config():
    log = PLAIN_STEPS + "ALL STAGES OK\n"
    assert classify(log).cls == "none"
    assert classify(log, completion_markers=["ALL STAGES OK"]).cls == "completed"


def test_disk_quota_and_inodes_causes_from_the_log():
    assert classify("OSError: [Errno 122] Disk quota exceeded\n").cause == "quota"
    assert classify("mkdir: cannot create directory: No free inodes left\n").cause == "inodes"
    assert classify("OSError: [Errno 28] No space left on device\n").cause is None  # bytes or inodes?


def test_empty_and_blank_logs_are_none():
    assert classify("").cls == "none"
    assert classify(b"\n\n   \n").cls == "none"


# ----------------------------------------------------------------------------- big logs


def _big_log(tmp_path, head_lines, tail_lines, middle=""):
    p = tmp_path / "big.log"
    with open(p, "w") as f:
        for i in range(head_lines):
            f.write(f"2026-11-22 10:00:00 INFO epoch 0 step {i} loss {1 / (i + 1):.5f} lr 1.00e-04 grad_norm 0.93\n")
        f.write(middle)
        for i in range(tail_lines):
            f.write(f"[1] NCCL INFO Channel {i % 16:02d}/0 : 0[90000] -> 1[1000] [send] via NET/Socket/{i % 8}\n")
    return p


def test_big_file_failure_at_the_end_gets_absolute_line_numbers(tmp_path):
    p = _big_log(tmp_path, 60000, 0, OOM_TRACEBACK)
    r = classify_file(p)
    assert r.cls == "cuda_oom"
    assert r.truncated
    assert r.evidence[0].line_no == 60004
    r2 = classify_file(p, exact_line_numbers=False)
    assert r2.cls == "cuda_oom" and r2.evidence[0].line_no < 60004


def test_big_file_root_cause_found_by_widening_the_window(tmp_path):
    # the OOM is followed by ~2 MB of NCCL chatter and a watchdog timeout: no progress in between,
    # so the window widens until the root cause is in view
    watchdog = ("[E ProcessGroupNCCL.cpp:737] [Rank 1] Watchdog caught collective operation timeout: "
                "WorkNCCL(SeqNum=5, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1802212 milliseconds\n")
    p = _big_log(tmp_path, 1000, 25000, OOM_TRACEBACK)
    with open(p, "a") as f:
        f.write(watchdog)
    r = classify_file(p)
    assert r.cls == "cuda_oom"
    assert r.evidence[0].line_no == 1004
    assert classify(p.read_text()).cls == "cuda_oom"


def test_big_file_failure_in_the_middle_then_healthy_tail_is_none(tmp_path):
    p = _big_log(tmp_path, 30000, 0, OOM_TRACEBACK)
    with open(p, "a") as f:
        for i in range(30000):
            f.write(f"epoch 1 step {i} loss 0.1 lr 1.00e-04\n")
    assert classify_file(p).cls == "none"
