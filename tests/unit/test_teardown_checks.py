"""The six teardown checks on hand-built probe results (and the real H100 captures where a probe
output exists): every rule that decides green, red or unknown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import (
    DirListing,
    DiskUsage,
    FileInfo,
    ProbeError,
    ProcessInfo,
    Reason,
    SlurmJob,
    TmuxSession,
)
from gpudash.probes.disk import merge_disks, parse_df_bytes, parse_df_inodes
from gpudash.probes.gpu import parse_gpu, parse_gpu_apps
from gpudash.teardown.checks import (
    JobFacts,
    Liveness,
    VerifyResult,
    check_artifacts,
    check_gpu,
    check_job,
    check_local,
    check_stop,
    check_verify,
    implausible,
)
from gpudash.teardown.presets import stop_plan
from gpudash.teardown.types import GREEN, RED, UNKNOWN, Check, TeardownSettings

FX = Path(__file__).resolve().parents[1] / "fixtures" / "h100"


def fx(name: str) -> bytes:
    return (FX / name).read_bytes()


S = TeardownSettings(host="box", artifacts_dir="/data/out", expected_count=3,
                     local_dir=Path("/tmp/pull"), verify_command="python verify.py",
                     markers=("/data/TRAIN_DONE",), pgrep="train.py", preset="ssh")
GONE = Liveness(alive=False, confirmed_gone=True, failed=None,
                lines=("no process matches pgrep 'train.py'",))
UNSURE = Liveness(alive=False, confirmed_gone=False, failed=None, lines=("discovery",))


def files(*pairs) -> tuple[FileInfo, ...]:
    return tuple(FileInfo(path=n, exists=True, size=s, mtime=1.0) for n, s in pairs)


def listing(*pairs) -> DirListing:
    return DirListing(path="/data/out", exists=True, files=files(*pairs))


ROOMY = DiskUsage(mount="/data", size_bytes=1000, used_bytes=400, avail_bytes=600,
                  inodes_total=100, inodes_used=10, inodes_free=90)


# ----------------------------------------------------------------------------- 2. GPU


def test_container_hiding_processes_is_unknown_not_green():
    gpus = parse_gpu(fx("query-busy.csv"))  # 1041 MiB in use
    apps = parse_gpu_apps(b"", b"", 0)  # errors.txt: an empty compute-apps list, exit 0
    assert apps == ()
    c = check_gpu(gpus, apps, UNSURE)
    assert c.state == UNKNOWN
    assert "container" in c.missing and "1041 MiB" in c.evidence[0]


def test_container_hidden_is_green_once_the_jobs_own_process_is_confirmed_gone():
    c = check_gpu(parse_gpu(fx("query-busy.csv")), (), GONE)
    assert c.state == GREEN
    assert any("confirmed gone" in e for e in c.evidence)


def test_a_listed_compute_process_is_red_with_its_pid():
    c = check_gpu(parse_gpu(fx("query-busy.csv")), parse_gpu_apps(fx("apps-busy.csv")), GONE)
    assert c.state == RED
    assert "pid 436" in c.missing and "python3" in c.missing


def test_no_process_and_no_memory_is_green():
    gpus = parse_gpu(fx("query-idle.csv"))
    assert gpus[0].mem_used_mib == 0
    assert check_gpu(gpus, (), UNSURE).state == GREEN


def test_no_devices_is_green_but_missing_nvidia_smi_needs_the_job_confirmed():
    nodev = parse_gpu(b"No devices were found\n", b"", 6)
    assert check_gpu(nodev, nodev, UNSURE).state == GREEN
    missing = parse_gpu(b"", b"sh: nvidia-smi: not found\n", 127)
    assert check_gpu(missing, missing, UNSURE).state == UNKNOWN
    assert check_gpu(missing, missing, GONE).state == GREEN


def test_hung_driver_and_dead_link_are_unknown():
    hung = parse_gpu(b"", b"", None)
    assert hung.reason is Reason.DRIVER_HUNG
    assert check_gpu(hung, hung, GONE).state == UNKNOWN
    assert check_gpu(None, None, GONE, link_error="cannot reach the box").state == UNKNOWN


# ----------------------------------------------------------------------------- 3. artifacts


def test_complete_artifacts_on_a_roomy_disk_are_green():
    c = check_artifacts(S, listing(("ckpt-1.pt", 100), ("ckpt-2.pt", 101), ("ckpt-3.pt", 99)),
                        ROOMY)
    assert c.state == GREEN, c.missing


def test_a_zero_byte_artifact_is_red_and_named():
    c = check_artifacts(S, listing(("ckpt-1.pt", 100), ("ckpt-2.pt", 0), ("ckpt-3.pt", 99)),
                        ROOMY)
    assert c.state == RED
    assert "empty" in c.missing and "ckpt-2.pt" in c.missing


def test_a_truncated_sibling_is_red():
    c = check_artifacts(S, listing(("ckpt-1.pt", 1000), ("ckpt-2.pt", 1000), ("ckpt-3.pt", 120)),
                        ROOMY)
    assert c.state == RED and "ckpt-3.pt" in c.missing and "truncated" in c.missing


def test_unlike_files_are_not_compared_by_size():
    # config.json is tiny next to the weights: different shapes, no sibling, not judged
    assert implausible(files(("model.safetensors", 10**9), ("config.json", 700),
                             ("tokenizer.json", 2 * 10**6))) == []


def test_the_count_decides_not_the_folder_existing():
    c = check_artifacts(S, listing(("ckpt-1.pt", 100), ("ckpt-2.pt", 100)), ROOMY)
    assert c.state == RED and "2 artifacts, expected 3" in c.missing
    empty_dir = DirListing(path="/data/out", exists=True)  # made by a killed transfer
    assert check_artifacts(S, empty_dir, ROOMY).state == RED
    absent = DirListing(path="/data/out", exists=False)
    assert "does not exist" in check_artifacts(S, absent, ROOMY).missing


def test_without_an_expected_count_it_is_unknown():
    s = TeardownSettings(host="box", artifacts_dir="/data/out")
    c = check_artifacts(s, listing(("a", 1)), ROOMY)
    assert c.state == UNKNOWN and "expected_count" in c.missing


def test_full_inodes_are_red_even_when_bytes_look_fine():
    # the real capture: a 64 MiB tmpfs, bytes 2% used, inodes 100%
    disk = merge_disks(parse_df_bytes(fx("df-PB1-small.txt")),
                       parse_df_inodes(fx("df-Pi-small.txt")))
    assert len(disk) == 1 and disk[0].bytes_pct < 5
    c = check_artifacts(S, listing(("ckpt-1.pt", 100), ("ckpt-2.pt", 100), ("ckpt-3.pt", 100)),
                        disk[0])
    assert c.state == RED and "inodes" in c.missing


def test_full_bytes_are_red():
    full = DiskUsage(mount="/data", size_bytes=1000, used_bytes=990, avail_bytes=10,
                     inodes_total=100, inodes_used=1, inodes_free=99)
    c = check_artifacts(S, listing(("ckpt-1.pt", 1), ("ckpt-2.pt", 1), ("ckpt-3.pt", 1)), full)
    assert c.state == RED and "full" in c.missing


def test_listing_or_df_failures_are_unknown():
    err = ProbeError(Reason.TIMEOUT, "dir: no answer before the deadline")
    assert check_artifacts(S, err, ROOMY).state == UNKNOWN
    c = check_artifacts(S, listing(("ckpt-1.pt", 1), ("ckpt-2.pt", 1), ("ckpt-3.pt", 1)),
                        ProbeError(Reason.TIMEOUT, "df hung"))
    assert c.state == UNKNOWN and "df hung" in c.missing


# ----------------------------------------------------------------------------- 4. local copy


REMOTE = listing(("ckpt-1.pt", 100), ("ckpt-2.pt", 100), ("ckpt-3.pt", 100))


def test_the_missing_local_file_is_named():
    local = DirListing(path="/tmp/pull", exists=True,
                       files=files(("ckpt-1.pt", 100), ("ckpt-2.pt", 100)))
    c = check_local(S, REMOTE, local)
    assert c.state == RED and "missing locally: ckpt-3.pt" in c.missing


def test_a_partial_local_copy_is_red():
    local = DirListing(path="/tmp/pull", exists=True,
                       files=files(("ckpt-1.pt", 100), ("ckpt-2.pt", 100), ("ckpt-3.pt", 60)))
    c = check_local(S, REMOTE, local)
    assert c.state == RED and "ckpt-3.pt" in c.missing and "partial" in c.missing


def test_sha256_on_request():
    local = DirListing(path="/tmp/pull", exists=True, files=REMOTE.files)
    assert check_local(S, REMOTE, local).state == GREEN
    same = {"ckpt-1.pt": "a" * 64, "ckpt-2.pt": "b" * 64, "ckpt-3.pt": "c" * 64}
    assert check_local(S, REMOTE, local, remote_hashes=same, local_hashes=dict(same),
                       sha256=True).state == GREEN
    other = dict(same, **{"ckpt-2.pt": "d" * 64})
    c = check_local(S, REMOTE, local, remote_hashes=same, local_hashes=other, sha256=True)
    assert c.state == RED and "sha256 differs: ckpt-2.pt" in c.missing
    failed = ProbeError(Reason.TIMEOUT, "sha256: no answer before the deadline")
    assert check_local(S, REMOTE, local, remote_hashes=failed, local_hashes=same,
                       sha256=True).state == UNKNOWN


def test_local_dir_absent_or_unset():
    assert check_local(S, REMOTE, DirListing(path="/tmp/pull", exists=False)).state == RED
    unset = TeardownSettings(host="box", artifacts_dir="/data/out")
    assert check_local(unset, REMOTE, None).state == UNKNOWN


# ----------------------------------------------------------------------------- 5. verify


def vr(code, *lines, error=""):
    return VerifyResult(command="python verify.py", exit_code=code, output=lines, timeout=60,
                        error=error)


def test_verify_passes_with_ok_n_of_n():
    c = check_verify(S, vr(0, "loading ckpt-1.pt", "OK 3/3"))
    assert c.state == GREEN and "  OK 3/3" in c.evidence


@pytest.mark.parametrize("result,needle", [
    (vr(0, "OK 2/3"), "OK 2/3"),
    (vr(1, "Traceback", "RuntimeError: PytorchStreamReader failed"), "exit 1"),
    (vr(None, "loading…"), "did not finish"),
    (vr(0, "OK 2/2"), "expected 3"),
    (vr(None, error="could not start: No such file"), "could not run"),
])
def test_verify_failures_are_red(result, needle):
    c = check_verify(S, result)
    assert c.state == RED and needle in c.missing


def test_verify_unset_or_skipped_is_unknown():
    assert check_verify(TeardownSettings(host="b"), None).state == UNKNOWN
    c = check_verify(S, None, skipped="not run: fix check 4 first")
    assert c.state == UNKNOWN and "check 4" in c.missing


# ----------------------------------------------------------------------------- 1. the job


MARKER = (FileInfo(path="/data/TRAIN_DONE", exists=True, size=0, mtime=5.0),)
NO_MARKER = (FileInfo(path="/data/TRAIN_DONE", exists=False),)


def test_job_gone_with_its_marker_is_green():
    c, live = check_job(S, JobFacts(processes=(), markers=MARKER))
    assert c.state == GREEN and live.confirmed_gone
    assert any("marker /data/TRAIN_DONE" in e for e in c.evidence)


def test_a_running_job_is_red():
    proc = ProcessInfo(pid=4242, command="python train.py --lr 3e-4")
    c, live = check_job(S, JobFacts(processes=(proc,), markers=MARKER))
    assert c.state == RED and live.alive is True and "still runs" in c.missing


def test_looks_done_is_not_done():
    c, _ = check_job(S, JobFacts(processes=(), markers=NO_MARKER))
    assert c.state == RED and "looks done" in c.missing


def test_the_completion_line_counts_as_completion():
    c, _ = check_job(S, JobFacts(processes=(), markers=NO_MARKER, log_read=True,
                                 completion=(120, "Training completed")))
    assert c.state == GREEN


def test_slurm_failure_and_tmux_exit_status_are_red():
    s = TeardownSettings(host="b", slurm_job="42", markers=("/d/DONE",))
    c, _ = check_job(s, JobFacts(slurm=SlurmJob(job_id="42", state="TIMEOUT", source="sacct"),
                                 markers=MARKER))
    assert c.state == RED and "TIMEOUT" in c.missing
    s = TeardownSettings(host="b", tmux_session="run", markers=("/d/DONE",))
    dead = TmuxSession(name="run", pane_dead=True, pane_dead_status=137)
    c, _ = check_job(s, JobFacts(tmux=(dead,), markers=MARKER))
    assert c.state == RED and "137" in c.missing


def test_unreadable_probes_or_link_are_unknown():
    c, _ = check_job(S, JobFacts(processes=ProbeError(Reason.TIMEOUT, "scan hung"), markers=MARKER))
    assert c.state == UNKNOWN
    c, _ = check_job(S, JobFacts(link_error="cannot reach the box: unreachable"))
    assert c.state == UNKNOWN and "reached" in c.missing


def test_no_completion_evidence_configured_is_unknown():
    s = TeardownSettings(host="b", pgrep="train.py")
    c, _ = check_job(s, JobFacts(processes=()))
    assert c.state == UNKNOWN and "--marker" in c.missing


# ----------------------------------------------------------------------------- 6. the stop


def test_the_stop_is_enabled_only_when_1_to_5_are_green():
    plan = stop_plan(S)
    ok = tuple(Check(id=str(i), title="t", state=GREEN) for i in range(5))
    assert check_stop(plan, ok).state == GREEN
    blocked = ok[:3] + (Check(id="local", title="t", state=RED, missing="x"),) + ok[4:]
    c = check_stop(plan, blocked)
    assert c.state == RED and "4" in c.missing
    assert any(e.startswith("command: sudo -n shutdown") for e in c.evidence)
    assert any(e.startswith("warning:") for e in c.evidence)


def test_the_stop_without_preset_or_with_unknown_id_is_unknown():
    ok = tuple(Check(id=str(i), title="t", state=GREEN) for i in range(5))
    assert check_stop(stop_plan(TeardownSettings(host="b")), ok).state == UNKNOWN
    c = check_stop(stop_plan(TeardownSettings(host="b", preset="runpod")), ok)
    assert c.state == UNKNOWN and "instance_id" in c.missing


# ----------------------------------------------------------------------------- robustness


file_infos = st.lists(st.builds(FileInfo, path=st.text(max_size=20), exists=st.just(True),
                                size=st.one_of(st.none(), st.integers(0, 10**12)),
                                mtime=st.none()), max_size=30)


@settings(deadline=None)
@given(file_infos, st.integers(0, 40))
def test_artifact_and_local_checks_never_raise(items, expect):
    s = TeardownSettings(host="b", artifacts_dir="/d", expected_count=expect,
                         local_dir=Path("/l"))
    remote = DirListing(path="/d", exists=True, files=tuple(items))
    for c in (check_artifacts(s, remote, ROOMY),
              check_local(s, remote, DirListing(path="/l", exists=True, files=tuple(items[::2])))):
        assert c.state in (GREEN, RED, UNKNOWN)
        assert (c.state == GREEN) == (c.missing == "")
