"""Memory probe: the real capture (a box without cgroup files), hand-written v2/v1 outputs, the
step script run by a real /bin/sh against fake /proc + /sys/fs/cgroup trees, and this machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import MemorySample, ProbeError, Reason
from gpudash.probes import memory
from gpudash.probes.memory import parse_memory

H100 = Path(__file__).resolve().parent.parent / "fixtures" / "h100"
GiB = 1 << 30

MEMINFO = """MemTotal:       131981020 kB
MemFree:        130729148 kB
MemAvailable:   131479584 kB
Buffers:           12776 kB
Cached:           946076 kB
"""


def test_capture_of_a_box_without_cgroup_files():
    s = parse_memory((H100 / "cgroup.txt").read_bytes())
    assert s == MemorySample(
        source="meminfo",
        used_bytes=(131981020 - 131479584) * 1024,
        limit_bytes=None,
        oom_kills=None,
        host_total_bytes=131981020 * 1024,
        host_available_bytes=131479584 * 1024,
        load1=0.08, load5=0.02, load15=0.01,
        nproc=16,
        cpu_quota=None,
    )


V2 = f"""== /proc/4242/cgroup
0::/system.slice/x
== /sys/fs/cgroup/system.slice/x/memory.current
{6 * GiB}
== /sys/fs/cgroup/system.slice/x/memory.max
{8 * GiB}
== /sys/fs/cgroup/system.slice/x/memory.events
low 0
high 0
max 17
oom 3
oom_kill 2
oom_group_kill 0
== /sys/fs/cgroup/system.slice/x/memory.stat
anon 4000
file 2000000000
active_file 100
inactive_file {GiB}
== /sys/fs/cgroup/system.slice/x/cpu.max
200000 100000
== /proc/meminfo
{MEMINFO}== nproc
16
== /proc/loadavg
3.50 2.25 1.00 4/900 12345
"""


def test_cgroup_v2():
    s = parse_memory(V2)
    assert s == MemorySample(
        source="cgroup_v2", used_bytes=5 * GiB, limit_bytes=8 * GiB, oom_kills=2,
        host_total_bytes=131981020 * 1024, host_available_bytes=131479584 * 1024,
        load1=3.5, load5=2.25, load15=1.0, nproc=16, cpu_quota=2.0,
    )
    assert s.used_pct == 62.5


def test_cgroup_v2_unlimited():
    out = V2.replace(f"memory.max\n{8 * GiB}", "memory.max\nmax").replace(
        "200000 100000", "max 100000")
    s = parse_memory(out)
    assert (s.limit_bytes, s.cpu_quota) == (None, None)
    # no limit: the percentage is the host's
    assert s.used_pct == pytest.approx(100 * (131981020 - 131479584) / 131981020)


def test_cgroup_v2_without_stat_uses_raw_usage_and_missing_files_are_normal():
    out = f"== /sys/fs/cgroup/memory.current\n{GiB}\n== /sys/fs/cgroup/memory.max\n" \
          "== /sys/fs/cgroup/memory.events\n== /sys/fs/cgroup/cpu.max\n" \
          f"== /proc/meminfo\n{MEMINFO}== nproc\n4\n== /proc/loadavg\n"
    s = parse_memory(out)
    assert (s.source, s.used_bytes, s.limit_bytes, s.oom_kills, s.nproc, s.load1) == (
        "cgroup_v2", GiB, None, None, 4, None)


V1 = f"""== /proc/4242/cgroup
12:memory:/slurm/uid_1000/job_7
3:cpu,cpuacct:/slurm/uid_1000/job_7
0::/
== /sys/fs/cgroup/memory/slurm/uid_1000/job_7/memory.usage_in_bytes
{3 * GiB}
== /sys/fs/cgroup/memory/slurm/uid_1000/job_7/memory.limit_in_bytes
9223372036854771712
== /sys/fs/cgroup/memory/slurm/uid_1000/job_7/memory.oom_control
oom_kill_disable 0
under_oom 0
oom_kill 3
== /sys/fs/cgroup/memory/slurm/uid_1000/job_7/memory.stat
inactive_file 999
total_inactive_file {GiB}
== /sys/fs/cgroup/cpu/slurm/uid_1000/job_7/cpu.cfs_quota_us
150000
== /sys/fs/cgroup/cpu/slurm/uid_1000/job_7/cpu.cfs_period_us
100000
== /proc/meminfo
{MEMINFO}== nproc
8
== /proc/loadavg
0.10 0.20 0.30 1/100 7
"""


def test_cgroup_v1_near_2_63_is_unlimited():
    s = parse_memory(V1)
    assert (s.source, s.used_bytes, s.limit_bytes, s.oom_kills, s.cpu_quota, s.nproc) == (
        "cgroup_v1", 2 * GiB, None, 3, 1.5, 8)


def test_cgroup_v1_real_limit_and_no_quota():
    out = V1.replace("9223372036854771712", str(4 * GiB)).replace("\n150000\n", "\n-1\n")
    s = parse_memory(out)
    assert (s.limit_bytes, s.cpu_quota, s.used_pct) == (4 * GiB, None, 50.0)


def test_old_kernel_without_memavailable():
    s = parse_memory("== /proc/meminfo\nMemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\n"
                     "Cached: 250 kB\n")
    assert (s.source, s.host_available_bytes, s.used_bytes) == ("meminfo", 400 * 1024,
                                                                 600 * 1024)


def test_errors():
    assert parse_memory(b"", b"", 124) == ProbeError(
        Reason.TIMEOUT, "the memory probe did not finish before its deadline", 124)
    assert parse_memory(b"partial", b"", None).reason is Reason.TIMEOUT
    e = parse_memory(b"", b"cat: /proc/meminfo: \x1b[31mNo such file\n", 0)
    assert e.reason is Reason.PROBE_ERROR and "\x1b" not in e.message
    assert "no memory figures" in e.message


# ----------------------------------------------------------------------------- the script


def sh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=30)


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture
def tree(tmp_path):
    """Fake /proc and /sys/fs/cgroup roots, with a quote, spaces and `$()` in their paths."""
    proc = tmp_path / "pr oc'$(touch pwned)"
    cg = tmp_path / "cg; touch pwned"
    write(proc, {"meminfo": MEMINFO, "loadavg": "1.00 2.00 3.00 2/300 999\n"})
    cg.mkdir()
    return proc, cg


def run_tree(proc: Path, cg: Path, pid: int | None):
    r = sh(memory.memory_step(pid, cgroup_root=str(cg), proc_root=str(proc)).script)
    assert r.returncode == 0, r.stderr
    return parse_memory(r.stdout, r.stderr, r.returncode), r


def test_script_follows_a_v2_job_cgroup(tree, tmp_path):
    proc, cg = tree
    write(proc, {"4242/cgroup": "0::/system.slice/x\n"})
    write(cg, {
        "cgroup.controllers": "cpu memory\n",
        "memory.current": "1\n",  # the root's: must not be read for a job
        "system.slice/x/memory.current": f"{6 * GiB}\n",
        "system.slice/x/memory.max": f"{8 * GiB}\n",
        "system.slice/x/memory.events": "low 0\nhigh 0\nmax 0\noom 2\noom_kill 2\n",
        "system.slice/x/memory.stat": f"inactive_file {GiB}\n",
        "system.slice/x/cpu.max": "200000 100000\n",
    })
    s, r = run_tree(proc, cg, 4242)
    assert (s.source, s.used_bytes, s.limit_bytes, s.oom_kills, s.cpu_quota) == (
        "cgroup_v2", 5 * GiB, 8 * GiB, 2, 2.0)
    assert (s.load1, s.load5, s.load15) == (1.0, 2.0, 3.0)
    assert s.host_total_bytes == 131981020 * 1024
    assert s.nproc == len(os.sched_getaffinity(0))
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_script_follows_a_v1_job_cgroup(tree):
    proc, cg = tree
    write(proc, {"4242/cgroup": "12:memory:/slurm/job_7\n3:cpu,cpuacct:/slurm/job_7\n0::/\n"})
    write(cg, {
        "memory/memory.usage_in_bytes": "1\n",
        "memory/slurm/job_7/memory.usage_in_bytes": f"{3 * GiB}\n",
        "memory/slurm/job_7/memory.limit_in_bytes": f"{4 * GiB}\n",
        "memory/slurm/job_7/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        "cpu/slurm/job_7/cpu.cfs_quota_us": "400000\n",
        "cpu/slurm/job_7/cpu.cfs_period_us": "100000\n",
    })
    s, _ = run_tree(proc, cg, 4242)
    assert (s.source, s.used_bytes, s.limit_bytes, s.oom_kills, s.cpu_quota) == (
        "cgroup_v1", 3 * GiB, 4 * GiB, 1, 4.0)


def test_script_without_cgroup_files_falls_back_to_meminfo(tree):
    proc, cg = tree
    for pid in (None, 4242):  # no pid; a pid that is gone
        s, r = run_tree(proc, cg, pid)
        assert s.source == "meminfo" and s.used_bytes == (131981020 - 131479584) * 1024
        assert b"== " in r.stdout and s.load15 == 3.0


def test_script_path_not_visible_here_uses_the_root(tree):
    # a container without a cgroup namespace: /proc/PID/cgroup names a path this view lacks
    proc, cg = tree
    write(proc, {"4242/cgroup": "0::/docker/abc\n"})
    write(cg, {"cgroup.controllers": "memory\n", "memory.current": f"{GiB}\n",
               "memory.max": f"{2 * GiB}\n"})
    s, _ = run_tree(proc, cg, 4242)
    assert (s.source, s.used_bytes, s.limit_bytes) == ("cgroup_v2", GiB, 2 * GiB)


def _cpus_line() -> str:
    with open("/proc/self/status") as f:
        return next(line for line in f if line.startswith("Cpus_allowed_list:"))


def test_script_prints_each_file_exactly_as_cat_did(tree):
    # One awk prints every file under its header: same bytes as `cat` (a final newline added to
    # a file without one), backslashes, tabs and leading blanks kept; a directory, a missing or
    # an empty file has no section (the parser reads that as it read an empty one); no error
    # text; of /proc/self/status only the affinity line.
    proc, cg = tree
    stat = "inactive_file 5\\n \\t x\n  lead\ttab\ntrail \\"  # no final newline
    write(proc, {"4242/cgroup": "0::/a:b/c d\n"})
    write(cg, {"cgroup.controllers": "memory\n", "a:b/c d/memory.current": "7\n",
               "a:b/c d/memory.stat": stat, "a:b/c d/memory.events": ""})
    (cg / "a:b" / "c d" / "memory.max").mkdir()  # not a file
    r = sh(memory.memory_step(4242, cgroup_root=str(cg), proc_root=str(proc)).script)
    d = f"{cg}/a:b/c d"
    expected = (f"== {proc}/meminfo\n{MEMINFO}== {proc}/loadavg\n1.00 2.00 3.00 2/300 999\n"
                f"== /proc/self/status\n{_cpus_line()}"
                f"== {proc}/4242/cgroup\n0::/a:b/c d\n== {d}/memory.current\n7\n"
                f"== {d}/memory.stat\n{stat}\n")
    assert (r.stdout.decode(), r.stderr, r.returncode) == (expected, b"", 0)


def _shims(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    """A PATH of logging shims: each appends its name to a file, then runs the real tool."""
    import shutil

    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    for name in names:
        real = shutil.which(name)
        if real:
            (bin_dir / name).write_text(f'#!/bin/sh\necho {name} >> "{calls}"\nexec {real} "$@"\n')
            (bin_dir / name).chmod(0o755)
    return bin_dir, calls


def test_script_execs_one_process(tree, tmp_path):
    # Why the step is cheap on the box: every fork+exec costs ~0.7 ms there. Builtins pick the
    # files; one awk prints them all, the CPU count included (no `nproc`, no `cat` per file).
    import shutil

    if shutil.which("awk") is None:
        pytest.skip("no awk on this machine: the step falls back to builtins (tested below)")
    proc, cg = tree
    write(proc, {"4242/cgroup": "0::/x\n"})
    write(cg, {"cgroup.controllers": "memory\n", "x/memory.current": "7\n", "x/memory.max": "9\n",
               "x/memory.stat": "inactive_file 1\n", "x/cpu.max": "max 100000\n"})
    bin_dir, calls = _shims(tmp_path, ["awk", "cat", "head", "nproc", "getconf", "grep", "sed",
                                       "tr", "cut", "wc"])
    script = memory.memory_step(4242, cgroup_root=str(cg), proc_root=str(proc)).script
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=30,
                       env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    s = parse_memory(r.stdout, r.stderr, r.returncode)
    assert (s.source, s.used_bytes, s.limit_bytes, s.nproc) == (
        "cgroup_v2", 6, 9, len(os.sched_getaffinity(0)))
    assert calls.read_text().split() == ["awk"]


def test_script_without_awk_reads_the_same(tree, tmp_path):
    # A box without awk (a minimal image): the builtin read loop prints the same sections.
    proc, cg = tree
    write(proc, {"4242/cgroup": "12:memory:/slurm/job_7\n3:cpu,cpuacct:/slurm/job_7\n"})
    write(cg, {"memory/slurm/job_7/memory.usage_in_bytes": f"{3 * GiB}\n",
               "memory/slurm/job_7/memory.limit_in_bytes": f"{4 * GiB}\n",
               "memory/slurm/job_7/memory.stat": f"total_inactive_file {GiB}\n",
               "cpu/slurm/job_7/cpu.cfs_quota_us": "400000\n",
               "cpu/slurm/job_7/cpu.cfs_period_us": "100000\n"})
    script = memory.memory_step(4242, cgroup_root=str(cg), proc_root=str(proc)).script
    with_awk = sh(script)
    empty = tmp_path / "empty"
    empty.mkdir()
    without = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=30,
                             env={"PATH": str(empty)})
    assert b"status" in without.stdout and without.returncode == 0
    a = parse_memory(with_awk.stdout, with_awk.stderr, with_awk.returncode)
    b = parse_memory(without.stdout, without.stderr, without.returncode)
    assert a == b and (a.source, a.used_bytes, a.cpu_quota) == ("cgroup_v1", 2 * GiB, 4.0)
    assert a.nproc == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("text, n", [
    ("Cpus_allowed_list:\t0-3,8,10-11", 7), ("Cpus_allowed_list:\t5", 1),
    ("Cpus_allowed_list:\t3-1", None), ("Cpus_allowed_list:\t0-x", None),
    ("Cpus_allowed_list:\t", None), ("Cpus_allowed:\tff", None)])
def test_cpu_count_from_the_affinity_list(text, n):
    out = f"== /proc/meminfo\n{MEMINFO}== /proc/self/status\n{text}\n"
    assert parse_memory(out).nproc == n


def test_pid_must_be_an_int():
    for bad in ("1; touch pwned", 1.5, True, 0, -3):
        with pytest.raises(ValueError):
            memory.memory_step(bad)
    step = memory.memory_step(77)
    assert step.key == "memory" and step.params == {"pid": 77}


def test_this_machine(tmp_path):
    for pid in (os.getpid(), None):
        r = sh(memory.memory_step(pid).script)
        s = parse_memory(r.stdout, r.stderr, r.returncode)
        assert isinstance(s, MemorySample), s
        with open("/proc/meminfo") as f:
            total_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        assert s.host_total_bytes == total_kb * 1024
        assert s.nproc == len(os.sched_getaffinity(0))
        assert s.source in ("cgroup_v2", "cgroup_v1", "meminfo")
        assert s.used_pct is not None and 0 <= s.used_pct <= 100
        if s.source != "meminfo":
            assert s.used_bytes is not None and s.used_bytes >= 0


# ----------------------------------------------------------------------------- never raises

TOKENS = ["== /sys/fs/cgroup/memory.max", "== /x/memory.current", "== nproc", "== /proc/loadavg",
          "== /a/memory.usage_in_bytes", "== /a/cpu.max", "== /a/memory.stat", "max", "0", "-1",
          "99999999999999999999999", "oom_kill 2", "oom_kill -1", "inactive_file 5",
          "MemTotal: 10 kB", "MemAvailable: 20 kB", "load average: 1, 2, 3", "max 100000",
          "0 0", "1.5 nan inf", "cat: x", "９", "", "== /proc/self/status",
          "Cpus_allowed_list:\t0-9999999", "Cpus_allowed_list:\t0-1,,3", "Cpus_allowed_list:\t-"]
memish = st.lists(st.sampled_from(TOKENS), max_size=20).map("\n".join)


@settings(deadline=None, max_examples=400)
@given(st.one_of(st.binary(max_size=2000), memish), st.binary(max_size=200),
       st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31)))
def test_parser_never_raises(out, err, code):
    s = parse_memory(out, err, code)
    assert isinstance(s, (MemorySample, ProbeError))
    if isinstance(s, MemorySample):
        s.used_pct  # noqa: B018 — must not raise (no zero division)
        assert s.limit_bytes is None or s.limit_bytes > 0
        assert s.nproc is None or s.nproc > 0
