"""Disk probe: df parsers on the real captures (the inode trap included), on this machine's own
df, and the step scripts run by a real /bin/sh with hostile mount names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import DiskUsage, ProbeError, Reason
from gpudash.probes import disk
from gpudash.sanitize import is_inert

H100 = Path(__file__).resolve().parent.parent / "fixtures" / "h100"


def read(name: str) -> bytes:
    return (H100 / name).read_bytes()


# ----------------------------------------------------------------------------- real captures


def test_df_bytes_capture():
    assert disk.parse_df_bytes(read("df-PB1.txt")) == (
        DiskUsage("/dev/shm", "tmpfs", 137438953472, 0, 137438953472),
        DiskUsage("/", "/dev/vda", 270553174016, 17286590464, 68702347264),
    )


def test_df_inodes_capture():
    assert disk.parse_df_inodes(read("df-Pi.txt")) == (
        DiskUsage("/dev/shm", "tmpfs", inodes_total=16497627, inodes_used=1, inodes_free=16497626),
        DiskUsage("/", "/dev/vda", inodes_total=16777216, inodes_used=123432,
                  inodes_free=16653784),
    )
    # `df -i` (no -P) has the same columns here
    assert disk.parse_df_inodes(read("df-i.txt"))[1].inodes_used == 123430


def test_merged_capture():
    merged = disk.merge_disks(disk.parse_df_bytes(read("df-PB1.txt")),
                              disk.parse_df_inodes(read("df-Pi.txt")))
    root = merged[1]
    assert root == DiskUsage("/", "/dev/vda", 270553174016, 17286590464, 68702347264,
                             16777216, 123432, 16653784)
    assert round(root.bytes_pct) == 20 and round(root.inodes_pct, 2) == 0.74


def test_the_inode_trap_small_tmpfs():
    (d,) = disk.merge_disks(disk.parse_df_bytes(read("df-PB1-small.txt")),
                            disk.parse_df_inodes(read("df-Pi-small.txt")))
    assert d == DiskUsage("/mnt/small", "tmpfs", 67108864, 815104, 66293760, 200, 200, 0)
    assert d.inodes_pct == 100.0 and d.bytes_pct < 2  # bytes fine, inodes gone
    assert disk.parse_df_inodes(read("df-i-small.txt")) == disk.parse_df_inodes(
        read("df-Pi-small.txt"))


def test_human_units_are_not_guessed():
    # df -h prints "1.2G": only -B1 numbers are read
    e = disk.parse_df_bytes(read("df-h.txt"))
    assert e == ProbeError(Reason.PROBE_ERROR, "unreadable df output", 0)


# ----------------------------------------------------------------------------- layout tolerance


def test_mount_points_with_spaces_and_btrfs_inodes():
    out = ("Filesystem 1-blocks Used Available Capacity Mounted on\n"
           "/dev/sdb1 1000 400 600 40% /mnt/my data  2\n"
           "//nas/share name 10 5 5 50% /mnt/nas share\n")
    assert [(d.filesystem, d.mount) for d in disk.parse_df_bytes(out)] == [
        ("/dev/sdb1", "/mnt/my data  2"), ("//nas/share name", "/mnt/nas share")]
    ino = disk.parse_df_inodes("Filesystem Inodes IUsed IFree IUse% Mounted on\n"
                               "/dev/sda2 0 0 0 - /btr\n")
    assert ino == (DiskUsage("/btr", "/dev/sda2"),)  # no inode table: None, not 0


def test_wrapped_long_device_name():
    out = ("Filesystem           1K-blocks      Used Available Use% Mounted on\n"
           "/dev/mapper/vg0-a-very-long-logical-volume-name\n"
           "                      1000       250       750  25% /data\n"
           "tmpfs                   10         0        10   0% /run\n")
    assert disk.parse_df_bytes(out) == (
        DiskUsage("/data", "/dev/mapper/vg0-a-very-long-logical-volume-name", 1000, 250, 750),
        DiskUsage("/run", "tmpfs", 10, 0, 10),
    )


def test_duplicate_rows_are_dropped_and_crlf_tolerated():
    out = b"Filesystem 1-blocks Used Available Capacity Mounted on\r\n/dev/a 4 1 3 25% /\r\n" \
          b"/dev/a 4 1 3 25% /\r\n"
    assert disk.parse_df_bytes(out) == (DiskUsage("/", "/dev/a", 4, 1, 3),)


def test_hostile_mount_is_sanitised_and_not_markup():
    out = b"tmpfs 10 1 9 10% /mnt/\x1b]0;pwn\x07evil\x1b[2J[bold]\xe2\x80\xae\x9b31m\n"
    (d,) = disk.parse_df_bytes(out)
    assert is_inert(d.mount) and d.mount.startswith("/mnt/evil[bold]")
    ((mount, msg),) = disk.missing_mounts(b"df: '/x\x1b[31m[bold]': No such file or directory\n")
    assert is_inert(mount) and mount == "/x[bold]" and msg == "No such file or directory"


# ----------------------------------------------------------------------------- errors


def test_vanished_mount_is_an_error_for_that_mount_only():
    out = b"Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/vda 10 5 5 50% /\n"
    err = (b"df: /scratch/gone: No such file or directory\n"
           b"df: '/mnt/a b': Transport endpoint is not connected\n"
           b"df: /nfs: Stale file handle\n")
    assert disk.parse_df_bytes(out, err, 1) == (DiskUsage("/", "/dev/vda", 10, 5, 5),)
    assert disk.missing_mounts(err) == (
        ("/scratch/gone", "No such file or directory"),
        ("/mnt/a b", "Transport endpoint is not connected"),
        ("/nfs", "Stale file handle"),
    )
    # every requested mount gone: no rows, no df failure — the per-mount errors say it all
    assert disk.parse_df_bytes(b"", err, 1) == ()
    assert disk.missing_mounts(b"df: no file systems processed\n") == ()


@pytest.mark.parametrize(
    "parser, out, err, code, expected",
    [
        (disk.parse_df_bytes, b"", b"", 124, ProbeError(
            Reason.TIMEOUT, "df did not finish before its deadline (a hung network mount?)", 124)),
        (disk.parse_df_inodes, b"Filesystem", b"", None, ProbeError(
            Reason.TIMEOUT, "df -i did not finish before its deadline (a hung network mount?)",
            None)),
        (disk.parse_df_bytes, b"", b"sh: 1: df: not found\n", 127,
         ProbeError(Reason.NOT_FOUND, "no df on this box", 127)),
        (disk.parse_df_bytes, b"", b"df: invalid option -- 'B'\n", 1,
         ProbeError(Reason.PROBE_ERROR, "df failed: df: invalid option -- 'B'", 1)),
        (disk.parse_df_inodes, b"", b"", 2, ProbeError(Reason.PROBE_ERROR, "df -i failed (exit 2)",
                                                        2)),
        (disk.parse_df_bytes, b"", b"", 0, ()),
    ],
)
def test_whole_df_failures(parser, out, err, code, expected):
    assert parser(out, err, code) == expected


def test_merge_with_one_side_missing():
    b = disk.parse_df_bytes(read("df-PB1.txt"))
    i = disk.parse_df_inodes(read("df-Pi-small.txt"))
    assert disk.merge_disks(b, ProbeError(Reason.TIMEOUT)) == b
    assert disk.merge_disks(None, i) == i
    merged = disk.merge_disks(b, i)  # an inode-only mount comes after the byte rows
    assert [d.mount for d in merged] == ["/dev/shm", "/", "/mnt/small"]
    assert merged[2].size_bytes is None and merged[2].inodes_used == 200


# ----------------------------------------------------------------------------- steps, real sh

HOSTILE_MOUNTS = ["/data/with space", "it's", 'say "hi"', "a;b", "$(touch pwned)",
                  "`touch pwned`", "-x", "--", "*", "x\ny", "&& touch pwned"]

FAKE_DF = """#!/bin/sh
for a in "$@"; do printf '%s\\0' "$a"; done >> "$GD_ARGV_LOG"
printf '\\n' >> "$GD_ARGV_LOG"
echo 'Filesystem 1-blocks Used Available Capacity Mounted on'
echo '/dev/vda 10 5 5 50% /'
"""


def run_fake(tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    """Run a step script with a stand-in `df` first on PATH, in an empty work dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "df").write_text(FAKE_DF)
    (bin_dir / "df").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (tmp_path / "argv").unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               GD_ARGV_LOG=str(tmp_path / "argv"))
    return subprocess.run(["/bin/sh", "-c", script], cwd=work, env=env, capture_output=True,
                          timeout=30)


def recorded(tmp_path: Path) -> list[list[str]]:
    raw = (tmp_path / "argv").read_bytes().decode()
    calls = raw.split("\0\n")[:-1]  # each call ends with NUL then the newline separator
    return [c.split("\0") for c in calls]


@pytest.mark.parametrize("builder, opts, key", [
    (disk.df_bytes_step, ["-P", "-B1"], "df_bytes"),
    (disk.df_inodes_step, ["-Pi"], "df_inodes"),
])
def test_mounts_reach_df_as_literal_arguments(tmp_path, builder, opts, key):
    step = builder(HOSTILE_MOUNTS)
    assert step.key == key and step.params["mounts"] == tuple(HOSTILE_MOUNTS)
    r = run_fake(tmp_path, step.script)
    assert r.returncode == 0, r.stderr
    assert recorded(tmp_path) == [[*opts, "--", *HOSTILE_MOUNTS]]
    assert not list((tmp_path / "work").iterdir())  # no `pwned`, no glob expansion effects


def test_all_local_filesystems_when_no_mounts(tmp_path):
    r = run_fake(tmp_path, disk.df_bytes_step([]).script)
    excl = [a for t in disk.EXCLUDED_TYPES for a in ("-x", t)]
    expected = [["-P", "-B1", "-l", *excl]]
    if os.path.isdir("/dev/shm"):
        expected.append(["-P", "-B1", "--", "/dev/shm"])
    assert recorded(tmp_path) == expected
    assert "overlay" not in disk.EXCLUDED_TYPES  # a container's root filesystem
    # the two df outputs (two headers, a duplicate row) parse into one row per mount
    assert disk.parse_df_bytes(r.stdout, r.stderr, r.returncode) == (
        DiskUsage("/", "/dev/vda", 10, 5, 5),)


def test_a_lone_string_is_one_mount(tmp_path):
    run_fake(tmp_path, disk.df_inodes_step("/my data").script)
    assert recorded(tmp_path) == [["-Pi", "--", "/my data"]]


def run_real(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=60)


def test_real_df_of_this_machine_parses(tmp_path):
    rb = run_real(disk.df_bytes_step(["/"]).script)
    ri = run_real(disk.df_inodes_step(["/"]).script)
    assert rb.returncode == 0 and ri.returncode == 0, rb.stderr + ri.stderr
    (d,) = disk.merge_disks(disk.parse_df_bytes(rb.stdout, rb.stderr, rb.returncode),
                            disk.parse_df_inodes(ri.stdout, ri.stderr, ri.returncode))
    st_ = os.statvfs("/")
    assert d.mount == "/"
    assert d.size_bytes == st_.f_blocks * st_.f_frsize
    assert d.inodes_total == (st_.f_files or None)
    assert d.used_bytes is not None and d.avail_bytes is not None


def test_real_df_with_a_vanished_mount(tmp_path):
    gone = tmp_path / "gone dir; $(touch pwned)"
    r = run_real(disk.df_bytes_step(["/", str(gone)]).script)
    assert r.returncode == 1
    rows = disk.parse_df_bytes(r.stdout, r.stderr, r.returncode)
    assert [d.mount for d in rows] == ["/"]
    assert disk.missing_mounts(r.stderr) == ((str(gone), "No such file or directory"),)


def test_real_df_all_local_filesystems():
    r = run_real(disk.df_bytes_step([]).script)
    rows = disk.parse_df_bytes(r.stdout, r.stderr, r.returncode)
    assert isinstance(rows, tuple) and "/" in [d.mount for d in rows]
    ri = run_real(disk.df_inodes_step([]).script)
    assert isinstance(disk.parse_df_inodes(ri.stdout, ri.stderr, ri.returncode), tuple)


# ----------------------------------------------------------------------------- never raises

codes = st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31))
TOKENS = ["/dev/vda", "10", "0", "-", "5%", "100%", "/", "/mnt/a b", "Filesystem", "df:",
          "\x1b[1m", "[bold]", "９", "²", "  ", "x:", "'/q'"]
dfish = st.lists(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join),
                 max_size=8).map("\n".join)


def _check(result):
    if isinstance(result, ProbeError):
        assert is_inert(result.message)
        return
    assert isinstance(result, tuple)
    for d in result:
        assert isinstance(d, DiskUsage) and is_inert(d.mount) and is_inert(d.filesystem)
        for v in (d.size_bytes, d.used_bytes, d.avail_bytes, d.inodes_total, d.inodes_used):
            assert v is None or (isinstance(v, int) and v >= 0)
        d.bytes_pct, d.inodes_pct  # noqa: B018 — properties must not raise either


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.binary(max_size=2000), dfish), st.one_of(st.binary(max_size=300), dfish),
       codes)
def test_parsers_never_raise(out, err, code):
    b = disk.parse_df_bytes(out, err, code)
    i = disk.parse_df_inodes(out, err, code)
    _check(b)
    _check(i)
    _check(disk.merge_disks(b, i))
    for mount, msg in disk.missing_mounts(err):
        assert is_inert(mount) and is_inert(msg)
