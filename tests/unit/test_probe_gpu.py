"""GPU probe: parsers on the real H100 captures, every error mapping, and the step scripts run by
a real /bin/sh against stand-in `nvidia-smi`/`srun` programs that record their argv."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import ComputeApp, GpuHealthFields, GpuSample, ProbeError, Reason
from gpudash.probes import gpu
from gpudash.sanitize import is_inert

H100 = Path(__file__).resolve().parent.parent / "fixtures" / "h100"

# The field list the query-*-nounits.csv captures were made with (fixtures README).
CAPTURE_FIELDS = (
    "index,uuid,name,pci.bus_id,driver_version,pstate,temperature.gpu,temperature.memory,"
    "utilization.gpu,utilization.memory,memory.total,memory.used,memory.free,power.draw,"
    "power.limit,clocks.sm,clocks.mem,clocks.max.sm,fan.speed,"
    "ecc.errors.uncorrected.volatile.total,"
    "clocks_throttle_reasons.active,clocks_event_reasons.active,mig.mode.current,compute_mode"
).split(",")
SERIES_FIELDS = (
    "index,uuid,name,utilization.gpu,utilization.memory,memory.total,memory.used,temperature.gpu,"
    "power.draw,power.limit,clocks.sm,pstate,clocks_event_reasons.active,"
    "ecc.errors.uncorrected.volatile.total"
).split(",")

UUID = "GPU-03c43c8c-e555-6128-fe25-59eeeed028c2"
UUID2 = "GPU-0e6ec022-830e-b7e7-608d-52a277b07ec1"


def read(name: str) -> bytes:
    return (H100 / name).read_bytes()


def idle_expected(power: float, sm: float) -> GpuSample:
    return GpuSample(
        index=0, uuid=UUID, name="NVIDIA H100 80GB HBM3", util_pct=0.0, mem_util_pct=0.0,
        mem_total_mib=81559.0, mem_used_mib=0.0, mem_free_mib=81079.0, temp_c=33.0,
        mem_temp_c=36.0, power_w=power, power_limit_w=700.0, sm_clock_mhz=sm,
        mem_clock_mhz=2619.0, max_sm_clock_mhz=1980.0, fan_pct=None, pstate="P0",
        bus_id="00000000:00:06.0", driver="580.159.04", mig_mode="Disabled",
        compute_mode="Default",
    )


def busy_expected(power: float) -> GpuSample:
    return GpuSample(
        index=0, uuid=UUID, name="NVIDIA H100 80GB HBM3", util_pct=0.0, mem_util_pct=0.0,
        mem_total_mib=81559.0, mem_used_mib=1041.0, mem_free_mib=80039.0, temp_c=34.0,
        mem_temp_c=36.0, power_w=power, power_limit_w=700.0, sm_clock_mhz=1980.0,
        mem_clock_mhz=2619.0, max_sm_clock_mhz=1980.0, fan_pct=None, pstate="P0",
        bus_id="00000000:00:06.0", driver="580.159.04", mig_mode="Disabled",
        compute_mode="Default",
    )


# ----------------------------------------------------------------------------- real captures


def test_query_idle_with_header_and_units():
    assert gpu.parse_gpu(read("query-idle.csv")) == (idle_expected(94.14, 375.0),)


def test_query_idle_nounits():
    got = gpu.parse_gpu(read("query-idle-nounits.csv"), fields=CAPTURE_FIELDS)
    assert got == (idle_expected(92.14, 345.0),)


def test_query_busy_both_forms():
    assert gpu.parse_gpu(read("query-busy.csv")) == (busy_expected(117.73),)
    assert gpu.parse_gpu(read("query-busy-nounits.csv"), fields=CAPTURE_FIELDS) == (
        busy_expected(117.74),
    )


def test_query_busy2_shorter_field_list_by_its_header():
    (s,) = gpu.parse_gpu(read("query-busy2.csv"))
    assert (s.uuid, s.mem_used_mib, s.mem_total_mib, s.temp_c, s.power_w, s.sm_clock_mhz) == (
        UUID2, 1041.0, 81559.0, 35.0, 116.64, 1980.0,
    )
    # columns the capture did not ask for are unknown, not 0
    assert s.mem_free_mib is None and s.bus_id is None and s.mem_temp_c is None


def test_fan_na_is_none_not_zero():
    (s,) = gpu.parse_gpu(read("query-idle.csv"))
    assert s.fan_pct is None


def test_health_fields_from_the_captures():
    assert gpu.parse_gpu_health(read("query-idle.csv")) == (GpuHealthFields(0, 0, 1),)
    assert gpu.parse_gpu_health(read("query-busy.csv")) == (GpuHealthFields(0, 0, 0),)
    assert gpu.parse_gpu_health(read("query-busy-nounits.csv"), fields=CAPTURE_FIELDS) == (
        GpuHealthFields(0, 0, 0),
    )
    assert gpu.parse_gpu_health(read("query-idle-nounits.csv"), fields=CAPTURE_FIELDS) == (
        GpuHealthFields(0, 0, 1),
    )
    assert gpu.decode_throttle(1) == ("GPU idle",)


SERIES_UTIL = [0] * 12 + [9] + [0] * 13 + [23, 1] + [100] * 16 + [0] * 6 + [100, 99] + [100] * 16
SERIES_MEM = (
    [0] * 12 + [1041] * 14 + [5687] + [8317] * 6 + [12133] * 6 + [15949] * 4 + [19765] * 5
    + [23581] * 6 + [27397] * 6 + [31213] * 6 + [35029] * 2
)


def test_the_34_second_series_line_by_line():
    lines = read("series-lms500-nounits.csv").splitlines()
    samples = [gpu.parse_gpu_line(line, fields=SERIES_FIELDS) for line in lines]
    assert len(samples) == 68 and all(isinstance(s, GpuSample) for s in samples)
    assert [s.util_pct for s in samples] == SERIES_UTIL
    assert [s.mem_used_mib for s in samples] == SERIES_MEM
    assert {s.uuid for s in samples} == {UUID2}
    assert samples[0].power_w == 70.60 and samples[28].power_w == 433.42
    assert all(s.mem_total_mib == 81559.0 and s.power_limit_w == 700.0 for s in samples)
    # the fragile columns of the same lines: idle reason while idle, never an ECC error
    health = gpu.parse_gpu_health(read("series-lms500-nounits.csv"), fields=SERIES_FIELDS)
    assert [h.throttle_mask for h in health] == [1] * 12 + [0] * 56
    assert {h.ecc_uncorrected for h in health} == {0}


def test_a_header_line_in_the_stream_is_not_a_sample():
    header = read("query-idle.csv").splitlines()[0]
    assert gpu.parse_gpu_line(header) is None
    assert gpu.parse_gpu_line(b"") is None
    assert gpu.parse_gpu_line(b"Unable to determine the device handle for GPU0000:00:06.0: GPU "
                              b"is lost.") is None


def test_compute_apps_captures():
    app = ComputeApp(pid=436, process_name="python3", used_mib=1032.0, gpu_uuid=UUID)
    assert gpu.parse_gpu_apps(read("apps-busy.csv")) == (app,)
    assert gpu.parse_gpu_apps(read("apps-busy-nounits.csv")) == (app,)
    assert gpu.parse_gpu_apps(read("apps-idle.csv")) == ()
    series = gpu.parse_gpu_apps(read("apps-series-l2-nounits.csv"),
                                fields=("pid", "process_name", "used_memory"))
    assert [a.used_mib for a in series] == [1032.0] * 4 + [8308.0] * 2 + [
        12124.0, 15940.0, 19756.0, 23572.0, 23572.0, 27388.0, 31204.0, 31204.0]
    assert {(a.pid, a.process_name, a.gpu_uuid) for a in series} == {(401, "python3", "")}


# ----------------------------------------------------------------------------- errors.txt


def error_cases() -> dict[str, tuple[bytes, int]]:
    """errors.txt as {command: (output, exit)}: `### cmd`, output lines, `### exit=N`."""
    cases: dict[str, tuple[bytes, int]] = {}
    cmd, out = None, []
    for line in read("errors.txt").decode().split("\n"):
        if line.startswith("### exit="):
            cases[cmd] = ("\n".join(out).encode(), int(line[len("### exit="):]))
            cmd, out = None, []
        elif line.startswith("### "):
            cmd, out = line[4:], []
        else:
            out.append(line)
    return cases


def test_errors_txt_every_case():
    cases = error_cases()
    assert len(cases) == 7

    out, code = cases["nvidia-smi --query-gpu=index,bogus.field --format=csv"]
    e = gpu.parse_gpu(out, b"", code)
    assert e == ProbeError(Reason.NVIDIA_SMI_ERROR, "this driver rejects a query field: "
                           'Field "bogus.field" is not a valid field to query.', 2)

    out, code = cases["nvidia-smi --query-gpu=index,clocks_throttle_reasons.active,"
                      "clocks_event_reasons.active --format=csv,noheader"]
    fields = ("index", "clocks_throttle_reasons.active", "clocks_event_reasons.active")
    assert gpu.parse_gpu_health(out, b"", code, fields=fields) == (GpuHealthFields(0, None, 1),)

    out, code = cases["nvidia-smi -i 5 --query-gpu=index --format=csv"]
    assert gpu.parse_gpu(out, b"", code) == ProbeError(
        Reason.NO_GPU, "nvidia-smi found no NVIDIA GPU", 6)

    out, code = cases["nvidia-smi --query-gpu=index --format=json"]
    assert gpu.parse_gpu(out, b"", code) == ProbeError(
        Reason.NVIDIA_SMI_ERROR, "invalid argument or field: Format modifier is not recognized.", 2)

    out, code = cases["nvidia-smi --query-compute-apps=pid,used_memory "
                      "--format=csv,noheader,nounits"]
    assert (out.strip(), code) == (b"", 0)
    assert gpu.parse_gpu_apps(out, b"", code) == ()

    out, code = cases["nvidia-smi --query-gpu=index,utilization.gpu,memory.used "
                      "--format=csv,noheader,nounits -lms 200 -c 3"]
    e = gpu.parse_gpu(out, b"", code)
    assert e.reason is Reason.NVIDIA_SMI_ERROR and e.exit_code == 255
    assert e.message.startswith("nvidia-smi failed (other error): ERROR: Option --query-gpu=")


# ----------------------------------------------------------------------------- error mapping

LOST = (b"Unable to determine the device handle for GPU0000:00:06.0: GPU is lost.  "
        b"Reboot the system to recover this GPU\n")


@pytest.mark.parametrize(
    "stdout, stderr, code, reason, message",
    [
        (b"", b"sh: 1: nvidia-smi: not found\n", 127, Reason.NO_GPU, "no nvidia-smi on this box"),
        (b"", b"bash: nvidia-smi: command not found\n", 127, Reason.NO_GPU,
         "no nvidia-smi on this box"),
        (b"", b"", 127, Reason.NO_GPU, "no nvidia-smi on this box"),
        (b"No devices were found\n", b"", 6, Reason.NO_GPU, "nvidia-smi found no NVIDIA GPU"),
        (b"Failed to initialize NVML: Driver/library version mismatch\nNVML library version: "
         b"535.183\n", b"", 18, Reason.NVIDIA_SMI_ERROR,
         "Failed to initialize NVML: Driver/library version mismatch (the driver was updated "
         "without a reboot: reboot or reload the module)"),
        (LOST, b"", 15, Reason.NVIDIA_SMI_ERROR,
         "the GPU has fallen off the bus (GPU is lost): " + LOST.decode().strip()),
        (b"", b"", 15, Reason.NVIDIA_SMI_ERROR, "the GPU has fallen off the bus (GPU is lost)"),
        (b"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make "
         b"sure that the latest NVIDIA driver is installed and running.\n", b"", 9,
         Reason.NVIDIA_SMI_ERROR, "the NVIDIA driver is not loaded: NVIDIA-SMI has failed because"
         " it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA "
         "driver is installed and running."),
        (b"", b"", 12, Reason.NVIDIA_SMI_ERROR, "the NVML library was not found (driver not "
         "installed, or a container without GPU access)"),
        (b"", b"", 3, Reason.NVIDIA_SMI_ERROR,
         "the requested operation is not available on this GPU"),
        (b"", b"", 4, Reason.NVIDIA_SMI_ERROR, "no permission to query the GPU"),
        (b"", b"", 6, Reason.NVIDIA_SMI_ERROR, "the query failed"),
        (b'Field "x" is not a valid field to query.\n\n', b"", 2, Reason.NVIDIA_SMI_ERROR,
         'this driver rejects a query field: Field "x" is not a valid field to query.'),
        (b"", b"", 2, Reason.NVIDIA_SMI_ERROR, "invalid argument or field"),
        (b"", b"", 255, Reason.NVIDIA_SMI_ERROR, "nvidia-smi failed (other error)"),
        (b"", b"", 1, Reason.NVIDIA_SMI_ERROR, "nvidia-smi exited 1"),
        (b"", b"", 124, Reason.DRIVER_HUNG, "nvidia-smi did not finish before its deadline: the "
         "driver is possibly hung (after an Xid?)"),
        (b"0, GPU-x, half a li", b"", 137, Reason.DRIVER_HUNG, "nvidia-smi did not finish before"
         " its deadline: the driver is possibly hung (after an Xid?)"),
        (b"", b"", None, Reason.DRIVER_HUNG, "nvidia-smi did not finish before its deadline: the "
         "driver is possibly hung (after an Xid?)"),
        (b"@@GD_NVSMI_STUCK\n", b"", 0, Reason.DRIVER_HUNG, "a previous nvidia-smi (or NVML "
         "sampler) is still stuck (uninterruptible): the driver is possibly hung"),
        (b"", b"srun: error: Unable to confirm allocation for job 7: Invalid job id specified\n",
         1, Reason.PROBE_ERROR, "srun could not reach the job's node: srun: error: Unable to "
         "confirm allocation for job 7: Invalid job id specified"),
        (LOST, b"", 0, Reason.NVIDIA_SMI_ERROR,
         "the GPU has fallen off the bus (GPU is lost): " + LOST.decode().strip()),
        (b"", b"", 0, Reason.PROBE_ERROR, "nvidia-smi printed nothing"),
        (b"garbage\n", b"", 0, Reason.PROBE_ERROR, "unreadable nvidia-smi output: garbage"),
    ],
)
def test_error_mapping(stdout, stderr, code, reason, message):
    assert gpu.parse_gpu(stdout, stderr, code) == ProbeError(reason, message, code)


def test_every_documented_exit_code_has_its_own_message():
    messages = {gpu.parse_gpu(b"", b"", c).message for c in (2, 3, 4, 6, 9, 12, 15, 18, 255)}
    assert len(messages) == 9


def test_errors_apply_to_health_and_apps_queries_too():
    assert gpu.parse_gpu_health(b"No devices were found\n", b"", 6).reason is Reason.NO_GPU
    assert gpu.parse_gpu_apps(LOST, b"", 15).reason is Reason.NVIDIA_SMI_ERROR
    assert gpu.parse_gpu_apps(b"", b"", 124).reason is Reason.DRIVER_HUNG


def test_a_process_named_like_an_error_is_still_an_app():
    out = b"77, No devices were found, 10, GPU-x\n"
    assert gpu.parse_gpu_apps(out) == (ComputeApp(77, "No devices were found", 10.0, "GPU-x"),)


def test_error_messages_are_sanitised():
    e = gpu.parse_gpu(b"Failed to initialize NVML: \x1b[2J\x1b]0;pwn\x07evil\x9b31m\n", b"", 18)
    assert e.reason is Reason.NVIDIA_SMI_ERROR and is_inert(e.message) and "evil" in e.message


# ----------------------------------------------------------------------------- values


def test_placeholders_are_none_never_zero():
    line = ("0, GPU-m, NVIDIA A100-SXM4-40GB, 00000000:07:00.0, 535.1, P0, [N/A], N/A, "
            "[Not Supported], N/A, 40960, 2048, 38912, [Unknown Error], 400.00, [N/A], 1215, "
            "1410, [N/A], Enabled, [Insufficient Permissions]")
    s = gpu.parse_gpu_line(line)
    assert (s.temp_c, s.mem_temp_c, s.util_pct, s.mem_util_pct, s.power_w, s.sm_clock_mhz,
            s.fan_pct, s.compute_mode) == (None,) * 8
    assert (s.mem_used_mib, s.power_limit_w, s.mig_mode) == (2048.0, 400.0, "Enabled")
    (h,) = gpu.parse_gpu_health(b"0, [N/A], [Not Supported]\n")
    assert h == GpuHealthFields(0, None, None)
    (a,) = gpu.parse_gpu_apps(b"12, python, [N/A], GPU-m\n")
    assert a.used_mib is None


def test_hostile_gpu_name_is_sanitised_and_not_markup():
    line = (b"0, GPU-x, \x1b[31mEvil\x1b[0m[bold]GPU\x07\xe2\x80\xae, 00000000:00:06.0, 580, P0, "
            b"30, 30, 1, 1, 100, 1, 99, 50, 700, 1, 1, 1, [N/A], Disabled, Default")
    s = gpu.parse_gpu_line(line)
    assert is_inert(s.name) and "\x1b" not in s.name
    assert s.name.startswith("Evil[bold]GPU")  # kept as literal text; the UI never parses markup
    (a,) = gpu.parse_gpu_apps(b"5, /tmp/\x1b]0;title\x07x[bold], 1, GPU-x\n")
    assert is_inert(a.process_name) and a.process_name == "/tmp/x[bold]"


def test_commas_inside_a_name_stay_in_the_name():
    s = gpu.parse_gpu_line("0, GPU-x, Acme, Inc. GPU, 0:1, 1, P0, 30, 30, 1, 1, 100, 1, 99, 50, "
                           "700, 1, 1, 1, 50, Disabled, Default")
    assert (s.name, s.bus_id, s.fan_pct) == ("Acme, Inc. GPU", "0:1", 50.0)
    (a,) = gpu.parse_gpu_apps(b"9, python train.py --a=1,2, 300, GPU-y\n")
    assert (a.process_name, a.used_mib, a.gpu_uuid) == ("python train.py --a=1,2", 300.0, "GPU-y")


def test_non_finite_and_absurd_numbers_are_none():
    s = gpu.parse_gpu_line("0, u, n, b, d, P0, nan, inf, -inf, 1e999, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
                           "x, y")
    assert (s.temp_c, s.mem_temp_c, s.util_pct, s.mem_util_pct) == (None,) * 4
    assert gpu.parse_gpu_health(b"0, --5, 0xZZ\n") == (GpuHealthFields(0, None, None),)


def test_multi_gpu_output():
    lines = [read("query-busy-nounits.csv").decode().strip().replace("0, GPU", f"{i}, GPU", 1)
             for i in range(8)]
    got = gpu.parse_gpu("\n".join(lines), fields=CAPTURE_FIELDS)
    assert [s.index for s in got] == list(range(8))


def test_decode_throttle_bits():
    assert gpu.decode_throttle(None) == ()
    assert gpu.decode_throttle(0) == ()
    assert gpu.decode_throttle(0x4 | 0x40) == ("SW power cap", "HW thermal slowdown")
    assert gpu.decode_throttle(0x1FF) == (
        "GPU idle", "applications clocks setting", "SW power cap", "HW slowdown", "sync boost",
        "SW thermal slowdown", "HW thermal slowdown", "HW power brake slowdown",
        "display clock setting",
    )
    assert gpu.decode_throttle(0x8 | 0x1000) == ("HW slowdown", "other (0x1000)")


def test_apps_visibility():
    (busy,) = gpu.parse_gpu(read("query-busy.csv"))
    (idle,) = gpu.parse_gpu(read("query-idle.csv"))
    apps = gpu.parse_gpu_apps(read("apps-busy.csv"))
    assert gpu.apps_visibility((busy,), apps) == "visible"
    assert gpu.apps_visibility((idle,), ()) == "none"
    # memory held, no app listed: a container hiding PIDs, not "no processes"
    assert gpu.apps_visibility((busy,), ()) == "not_visible"
    assert gpu.apps_visibility((busy,), None) == "unknown"
    assert gpu.apps_visibility((busy,), ProbeError(Reason.NO_GPU)) == "unknown"
    assert gpu.apps_visibility((GpuSample(index=0),), ()) == "unknown"
    # a few MiB the driver reserves is not a hidden process
    assert gpu.apps_visibility((GpuSample(index=0, mem_used_mib=4.0),), ()) == "none"


# ----------------------------------------------------------------------------- step scripts

RECORDER = """#!/bin/sh
# a stand-in that records its argv (NUL-separated, one call per line) and prints OUTPUT_FILE
for a in "$@"; do printf '%s\\0' "$a"; done >> "$GD_ARGV_LOG.{name}"
printf '\\n' >> "$GD_ARGV_LOG.{name}"
[ -n "$GD_OUTPUT" ] && cat -- "$GD_OUTPUT"
exit 0
"""

FAKE_SRUN = """#!/bin/sh
for a in "$@"; do printf '%s\\0' "$a"; done >> "$GD_ARGV_LOG.srun"
printf '\\n' >> "$GD_ARGV_LOG.srun"
while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
exec "$@"
"""


@pytest.fixture
def fakebin(tmp_path):
    """A PATH dir with stand-in nvidia-smi and srun; the work dir the scripts run in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("nvidia-smi", RECORDER.format(name="nvidia-smi")), ("srun", FAKE_SRUN)):
        p = bin_dir / name
        p.write_text(text)
        p.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    return tmp_path


def run_step(tmp_path: Path, script: str, output: bytes = b"") -> subprocess.CompletedProcess:
    out_file = tmp_path / "output"
    out_file.write_bytes(output)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
               GD_ARGV_LOG=str(tmp_path / "argv"), GD_OUTPUT=str(out_file))
    return subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path / "work", env=env,
                          capture_output=True, timeout=30)


def calls(tmp_path: Path, name: str) -> list[list[str]]:
    p = tmp_path / f"argv.{name}"
    if not p.exists():
        return []
    return [line.split("\0")[:-1] for line in p.read_text().split("\n")[:-1]]


def test_gpu_step_runs_the_core_query(fakebin):
    step = gpu.gpu_step()
    assert step.key == "gpu"
    r = run_step(fakebin, step.script, read("query-idle-nounits.csv"))
    assert r.returncode == 0
    assert calls(fakebin, "nvidia-smi") == [
        ["--query-gpu=" + ",".join(gpu.CORE_FIELDS), "--format=csv,noheader,nounits"]]


def test_core_and_health_fields_are_as_agreed():
    assert gpu.CORE_FIELDS == tuple(
        "index,uuid,name,pci.bus_id,driver_version,pstate,temperature.gpu,temperature.memory,"
        "utilization.gpu,utilization.memory,memory.total,memory.used,memory.free,power.draw,"
        "power.limit,clocks.sm,clocks.mem,clocks.max.sm,fan.speed,mig.mode.current,compute_mode"
        .split(","))
    assert gpu.HEALTH_FIELDS == (
        "index", "ecc.errors.uncorrected.volatile.total", "clocks_throttle_reasons.active")
    # every field is one the driver documents (help-query-gpu.txt), so none fails the query
    help_text = read("help-query-gpu.txt").decode()
    for f in gpu.CORE_FIELDS + gpu.HEALTH_FIELDS:
        assert f'"{f}"' in help_text


def test_health_and_apps_steps(fakebin):
    run_step(fakebin, gpu.gpu_health_step().script)
    run_step(fakebin, gpu.gpu_apps_step().script, read("apps-busy-nounits.csv"))
    assert calls(fakebin, "nvidia-smi") == [
        ["--query-gpu=index,ecc.errors.uncorrected.volatile.total,clocks_throttle_reasons.active",
         "--format=csv,noheader,nounits"],
        ["--query-compute-apps=pid,process_name,used_memory,gpu_uuid",
         "--format=csv,noheader,nounits"],
    ]
    assert gpu.gpu_health_step().key == "gpu_health" and gpu.gpu_apps_step().key == "gpu_apps"


def test_stream_step_uses_lms_and_its_lines_parse(fakebin):
    step = gpu.gpu_stream_step(500)
    assert step.key == "gpu_stream"
    r = run_step(fakebin, step.script, read("query-busy-nounits.csv") * 3)
    (argv,) = calls(fakebin, "nvidia-smi")
    assert argv[-2:] == ["-lms", "500"] and "-c" not in argv
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    assert all(gpu.parse_gpu_line(ln, fields=CAPTURE_FIELDS) is not None for ln in lines)
    # The capture has more columns than CORE_FIELDS: read with the wrong field list, its
    # columns would shift (util 1041 %) — such a row is refused, never passed on as data.
    assert all(gpu.parse_gpu_line(ln) is None for ln in lines)


HOSTILE_JOBID = "7; touch pwned $(touch pwned) `touch pwned` 'q\" x"


def test_srun_prefix_passes_a_hostile_jobid_as_one_literal_argument(fakebin):
    for step in (gpu.gpu_step(srun_jobid=HOSTILE_JOBID),
                 gpu.gpu_step(srun_jobid=HOSTILE_JOBID, guard_hung=True),
                 gpu.gpu_apps_step(srun_jobid=HOSTILE_JOBID),
                 gpu.gpu_stream_step(200, srun_jobid=HOSTILE_JOBID)):
        r = run_step(fakebin, step.script, read("query-idle-nounits.csv"))
        assert r.returncode == 0, r.stderr
    srun_calls = calls(fakebin, "srun")
    assert len(srun_calls) == 4
    for argv in srun_calls:
        assert argv[:4] == ["--jobid=" + HOSTILE_JOBID, "--overlap", "--nodes=1", "--ntasks=1"]
    assert len(calls(fakebin, "nvidia-smi")) == 4  # the command ran on the "compute node"
    assert not list((fakebin / "work").iterdir())  # no file `pwned` appeared


def test_plain_jobid_reads_as_documented():
    assert gpu.gpu_step(srun_jobid="1234").script.startswith(
        "srun --jobid=1234 --overlap --nodes=1 --ntasks=1 nvidia-smi --query-gpu=index,")
    with pytest.raises(ValueError):
        gpu.gpu_step(srun_jobid=" ")


def test_guard_runs_nvidia_smi_when_none_is_stuck(fakebin):
    # a live nvidia-smi that is NOT stuck (someone's `nvidia-smi dmon`, our own -lms stream)
    other = fakebin / "other" / "nvidia-smi"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\nwhile :; do sleep 1; done\n")
    other.chmod(0o755)
    proc = subprocess.Popen([str(other)])
    try:
        r = run_step(fakebin, gpu.gpu_step(guard_hung=True).script,
                     read("query-idle-nounits.csv"))
    finally:
        proc.kill()
        proc.wait()
    assert b"@@GD_NVSMI_STUCK" not in r.stdout
    assert len(calls(fakebin, "nvidia-smi")) == 1
    assert gpu.parse_gpu(r.stdout, r.stderr, r.returncode, fields=CAPTURE_FIELDS)[0].index == 0


VFORK_C = r"""
#include <stdio.h>
#include <unistd.h>
/* The vfork parent waits in uninterruptible sleep (state D) until the child exits: a faithful
   stand-in for an nvidia-smi stuck in the driver. The child prints its pid and sleeps. */
int main(void) {
    pid_t p = vfork();
    if (p == 0) { char b[32]; int n = snprintf(b, sizeof b, "%d\n", (int)getpid());
                  write(1, b, n); sleep(60); _exit(0); }
    return 0;
}
"""


def test_guard_reports_a_stuck_nvidia_smi_and_starts_no_second_one(fakebin):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a D-state stand-in for a hung nvidia-smi")
    src = fakebin / "vfork.c"
    src.write_text(VFORK_C)
    stuck = fakebin / "stuck" / "nvidia-smi"
    stuck.parent.mkdir()
    subprocess.run([cc, "-o", str(stuck), str(src)], check=True, capture_output=True)
    proc = subprocess.Popen([str(stuck)], stdout=subprocess.PIPE)
    child = int(proc.stdout.readline())
    try:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "D"
        r = run_step(fakebin, gpu.gpu_step(guard_hung=True).script, read("query-idle.csv"))
        unguarded = run_step(fakebin, gpu.gpu_step().script, read("query-idle.csv"))
    finally:
        os.kill(child, signal.SIGKILL)
        proc.wait(timeout=10)
    assert r.stdout == b"@@GD_NVSMI_STUCK\n" and r.returncode == 0
    assert gpu.parse_gpu(r.stdout, r.stderr, r.returncode).reason is Reason.DRIVER_HUNG
    assert len(calls(fakebin, "nvidia-smi")) == 1  # only the unguarded run started one
    assert unguarded.returncode == 0


def test_missing_nvidia_smi_under_the_guard_is_no_gpu(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "work").mkdir()
    env = dict(os.environ, PATH=str(tmp_path / "bin") + ":/usr/bin:/bin")
    for step in (gpu.gpu_step(), gpu.gpu_step(guard_hung=True)):
        r = subprocess.run(["/bin/sh", "-c", step.script], cwd=tmp_path / "work", env=env,
                           capture_output=True, timeout=30)
        if shutil.which("nvidia-smi", path=env["PATH"]):
            pytest.skip("this machine has a real nvidia-smi on /usr/bin")
        assert gpu.parse_gpu(r.stdout, r.stderr, r.returncode) == ProbeError(
            Reason.NO_GPU, "no nvidia-smi on this box", 127)


# ----------------------------------------------------------------------------- never raises

codes = st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31))
TOKENS = ["0", "1", "-3", "12.5", "[N/A]", "N/A", "[Not Supported]", "0x1", "0xZZ", "nan", "",
          "index", "pid", "GPU-x", "P0", "\x1b[31m", "[bold]", "MiB", "1e400", "９", "²"]
csvish = st.lists(st.lists(st.sampled_from(TOKENS), max_size=30).map(", ".join),
                  max_size=6).map("\n".join)


def _check_result(result, kind):
    if isinstance(result, ProbeError):
        assert isinstance(result.reason, Reason) and is_inert(result.message)
    else:
        assert isinstance(result, tuple) and all(isinstance(x, kind) for x in result)
        for x in result:
            for v in vars(x).values():
                if isinstance(v, str):
                    assert is_inert(v)


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=2000), st.binary(max_size=300), codes)
def test_parsers_never_raise_on_bytes(out, err, code):
    _check_result(gpu.parse_gpu(out, err, code), GpuSample)
    _check_result(gpu.parse_gpu_health(out, err, code), GpuHealthFields)
    _check_result(gpu.parse_gpu_apps(out, err, code), ComputeApp)
    assert gpu.parse_gpu_line(out) is None or isinstance(gpu.parse_gpu_line(out), GpuSample)


@settings(deadline=None, max_examples=300)
@given(csvish, st.text(max_size=200), codes)
def test_parsers_never_raise_on_csv_like_text(out, err, code):
    _check_result(gpu.parse_gpu(out, err, code), GpuSample)
    _check_result(gpu.parse_gpu(out, err, code, fields=("index", "name")), GpuSample)
    _check_result(gpu.parse_gpu_health(out, err, code), GpuHealthFields)
    _check_result(gpu.parse_gpu_apps(out, err, code), ComputeApp)
    for line in out.split("\n"):
        s = gpu.parse_gpu_line(line)
        assert s is None or isinstance(s, GpuSample)


@settings(deadline=None)
@given(st.one_of(st.none(), st.integers()))
def test_decode_throttle_never_raises(mask):
    names = gpu.decode_throttle(mask)
    assert isinstance(names, tuple) and all(isinstance(n, str) for n in names)


def test_no_textual_import():
    # the data path must stay importable without the UI stack
    code = textwrap.dedent("""
        import sys
        import gpudash.probes.gpu, gpudash.probes.disk, gpudash.probes.memory
        assert "textual" not in sys.modules and "asyncssh" not in sys.modules
    """)
    subprocess.run([os.sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[2])


# ----------------------------------------------------------------------------- fast paths

_NUMBERISH = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**50, 10**50).map(str),
    st.sampled_from(["N/A", "[N/A]", "[Not Supported]", "", "  ", "81559 MiB", " 45 ", "1_000",
                     "nan", "-inf", "1e400", "0x10", "４５", "45 46", "\t7\u2003", "1" * 41,
                     " " * 39 + "5", "9" * 40]),
    st.text(max_size=50),
)


@settings(deadline=None, max_examples=500)
@given(_NUMBERISH)
def test_the_plain_number_fast_path_reads_every_value_as_the_token_path_does(s):
    # _float tries float() on the whole field first; _float_token is the careful original.
    assert gpu._float(s) == gpu._float_token(s)
