"""Markers, checkpoint folders and hashes, run with the real /bin/sh against real files."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import DirListing, FileInfo, ProbeError
from gpudash.probes.files import (
    dir_step,
    files_step,
    glob_word,
    has_glob,
    parse_dir,
    parse_files,
    parse_sha256,
    sha256_step,
)
from gpudash.sanitize import is_inert
from tests.conftest import FIXTURES


def run(step, env=None, cwd=None):
    r = subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, timeout=30,
                       env=env, cwd=cwd)
    return r.stdout, r.stderr, r.returncode


def without(tmp_path, *tools):
    """An environment where these tools exist but fail (as on a box without GNU versions)."""
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    for tool in tools:
        (fake / tool).write_text("#!/bin/sh\necho \"$0: unsupported\" >&2\nexit 1\n")
        (fake / tool).chmod(0o755)
    return dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")


# ----------------------------------------------------------------------------- glob_word


@pytest.mark.parametrize(
    "pattern, word",
    [
        ("/data/run 1/*.log", "'/data/run 1/'*.log"),
        ("plain.log", "plain.log"),
        ("a;b", "'a;b'"),
        ("run-[0-9].log", "run-[0-9].log"),
        ("x[;touch y]", "'x[;touch y]'"),
        ("~/runs/*_DONE", "\"$HOME\"/runs/*_DONE"),
        ("", "''"),
    ],
)
def test_glob_word(pattern, word):
    assert glob_word(pattern) == word


def test_has_glob():
    assert has_glob("*_DONE") and has_glob("a?b") and has_glob("ckpt-[0-9]")
    assert not has_glob("/plain/path") and not has_glob("x[;touch y]")


# ----------------------------------------------------------------------------- files


def test_markers_exist_missing_and_globbed(tmp_path):
    (tmp_path / "stage1_DONE").write_bytes(b"ok\n")
    (tmp_path / "stage2_DONE").write_bytes(b"")
    os.utime(tmp_path / "stage1_DONE", (1_700_000_000, 1_700_000_000))
    (tmp_path / "outdir").mkdir()
    step = files_step([str(tmp_path / "*_DONE"), str(tmp_path / "FINAL_DONE"), str(tmp_path / "outdir")])
    got = parse_files(*run(step))
    assert got == (
        FileInfo(str(tmp_path / "stage1_DONE"), True, 3, 1_700_000_000.0),
        FileInfo(str(tmp_path / "stage2_DONE"), True, 0, os.stat(tmp_path / "stage2_DONE").st_mtime // 1),
        FileInfo(str(tmp_path / "FINAL_DONE"), False),
        FileInfo(str(tmp_path / "outdir"), True, None, os.stat(tmp_path / "outdir").st_mtime // 1),
    )


def test_unmatched_glob_is_one_missing_entry(tmp_path):
    got = parse_files(*run(files_step([str(tmp_path / "*_DONE")])))
    assert got == (FileInfo(str(tmp_path / "*_DONE"), False),)


def test_dangling_symlink_exists_without_size(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    (got,) = parse_files(*run(files_step([str(tmp_path / "link")])))
    assert got.exists and got.size is None


HOSTILE = ["with space", "quo'te\"s", "semi;colon", "$(touch pwned)", "`touch pwned`",
           "new\nline", "tab\there", "esc\x1b[2Jape"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_marker_names(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "run_DONE").write_bytes(b"12345")
    paths = [str(d / "run_DONE"), str(d / "*_DONE"), str(d / "$(touch pwned)_DONE"),
             str(d / "x; touch pwned")]
    got = parse_files(*run(files_step(paths), cwd=tmp_path))
    assert [(f.exists, f.size) for f in got] == [(True, 5), (True, 5), (False, None), (False, None)]
    assert all(is_inert(f.path) for f in got)
    if name.isprintable():
        assert got[0].path == str(d / "run_DONE")
    assert not list(tmp_path.rglob("pwned*"))


def test_files_without_gnu_stat(tmp_path):
    (tmp_path / "m_DONE").write_bytes(b"abc")
    os.utime(tmp_path / "m_DONE", (1_700_000_000, 1_700_000_000))
    got = parse_files(*run(files_step([str(tmp_path / "m_DONE")]), env=without(tmp_path, "stat")))
    assert got == (FileInfo(str(tmp_path / "m_DONE"), True, 3, 1_700_000_000.0),)


# ----------------------------------------------------------------------------- dir


def hf_layout(root):
    """The real HF Trainer output folder of fixtures/h100/hf-checkpoints-ls.txt, rebuilt with the
    same names and sizes (sparse files: size is what matters)."""
    text = (FIXTURES / "h100" / "hf-checkpoints-ls.txt").read_text()
    expected = {}
    for block in re.split(r"\n(?=/)", text)[1:]:
        head, *rows = block.strip().splitlines()
        ckpt = head.rstrip(":").rsplit("/", 1)[1]
        (root / ckpt).mkdir(parents=True)
        total = 0
        for i, row in enumerate(rows[1:]):  # skip "total N"
            cols = row.split()
            if cols[0].startswith("d"):
                continue
            f = root / ckpt / cols[-1]
            with open(f, "wb") as fh:
                fh.truncate(int(cols[4]))
            os.utime(f, (1_700_000_000 + i, 1_700_000_000 + i))
            total += int(cols[4])
        expected[ckpt + "/"] = total
    return expected


def test_hf_checkpoint_folders_report_total_size_and_newest_mtime(tmp_path):
    out = tmp_path / "hf_out"
    expected = hf_layout(out)
    assert expected == {"checkpoint-32/": 6447098, "checkpoint-64/": 6447755}
    (out / "trainer.log").write_bytes(b"x" * 10)
    step = dir_step(str(out), key="ckpt")
    listing = parse_dir(*run(step))
    assert isinstance(listing, DirListing) and listing.exists
    assert {f.path: f.size for f in listing.files} == {**expected, "trainer.log": 10}
    ck = {f.path: f for f in listing.files}
    assert ck["checkpoint-64/"].mtime == 1_700_000_000 + 9  # the newest file in it
    assert listing.path == str(out) and listing.count == 3

    only = parse_dir(*run(dir_step(str(out), pattern="checkpoint-*")))
    assert [f.path for f in only.files] == ["checkpoint-32/", "checkpoint-64/"]


def test_dir_fallback_without_gnu_find_or_stat(tmp_path):
    out = tmp_path / "hf_out"
    expected = hf_layout(out)
    (out / ".hidden").write_bytes(b"h")
    gnu = parse_dir(*run(dir_step(str(out))))
    posix = parse_dir(*run(dir_step(str(out)), env=without(tmp_path, "find", "stat")))
    assert isinstance(posix, DirListing)
    assert [(f.path, f.size, int(f.mtime)) for f in posix.files] == \
           [(f.path, f.size, int(f.mtime)) for f in gnu.files]
    assert {f.path: f.size for f in posix.files} == {**expected, ".hidden": 1}
    only = parse_dir(*run(dir_step(str(out), pattern="*-64"), env=without(tmp_path, "find")))
    assert [f.path for f in only.files] == ["checkpoint-64/"]


def test_empty_and_missing_dirs(tmp_path):
    (tmp_path / "empty").mkdir()
    assert parse_dir(*run(dir_step(str(tmp_path / "empty")))) == DirListing(str(tmp_path / "empty"), True)
    missing = parse_dir(*run(dir_step(str(tmp_path / "nope; touch pwned"), )))
    assert missing == DirListing(str(tmp_path / "nope; touch pwned"), False)
    (tmp_path / "file").write_bytes(b"x")
    assert isinstance(parse_dir(*run(dir_step(str(tmp_path / "file")))), ProbeError)
    assert not list(tmp_path.rglob("pwned*"))


def test_empty_subfolder_is_reported_with_zero_bytes(tmp_path):
    """A folder left by a killed copy: it exists, and its count/bytes say it is empty."""
    (tmp_path / "checkpoint-500").mkdir()
    listing = parse_dir(*run(dir_step(str(tmp_path))))
    (entry,) = listing.files
    assert entry.path == "checkpoint-500/" and entry.size == 0 and entry.mtime is not None


def test_max_entries_bounds_the_listing(tmp_path):
    for i in range(50):
        (tmp_path / f"f{i:02d}").write_bytes(b"x")
    for env in (None, without(tmp_path / "..", "find")):
        listing = parse_dir(*run(dir_step(str(tmp_path), max_entries=10), env=env))
        assert listing.count == 10


def test_hostile_names_in_a_dir(tmp_path):
    names = ["new\nline", "tab\tname", "esc\x1b]52;c;eA==\x07", "bidi\u202eevil", "$(touch pwned)"]
    for n in names:
        (tmp_path / n).write_bytes(b"abc")
    (tmp_path / "sub\ndir").mkdir()
    (tmp_path / "sub\ndir" / "weights").write_bytes(b"1234")
    listing = parse_dir(*run(dir_step(str(tmp_path)), cwd=tmp_path))
    assert listing.count == 6 and listing.total_bytes == 5 * 3 + 4
    assert all(is_inert(f.path) for f in listing.files)
    assert not list(tmp_path.rglob("pwned"))


# ----------------------------------------------------------------------------- sha256


def test_sha256_of_each_regular_file(tmp_path):
    d = tmp_path / "ckpt dir"
    d.mkdir()
    files = {"model.safetensors": os.urandom(100_000), "new\nline": b"a", ".hidden": b"",
             "$(touch pwned)": b"b"}
    for n, data in files.items():
        (d / n).write_bytes(data)
    (d / "sub").mkdir()
    got = parse_sha256(*run(sha256_step(str(d)), cwd=tmp_path))
    assert got == {
        n.replace("\n", " "): hashlib.sha256(data).hexdigest()
        for n, data in files.items()
    }
    assert parse_sha256(*run(sha256_step(str(tmp_path / "missing")))) == {}
    assert not list(tmp_path.rglob("pwned"))


# ----------------------------------------------------------------------------- parsers


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=400), st.binary(max_size=40), st.one_of(st.none(), st.integers(-2, 200)))
def test_parsers_never_raise(out, err, code):
    for data in (out, b"EXISTS\n" + out, b"MISSING\n" + out, b"F\t0\t" + out):
        assert isinstance(parse_files(data, err, code), (tuple, ProbeError))
        assert isinstance(parse_dir(data, err, code), (DirListing, ProbeError))
        assert isinstance(parse_sha256(data, err, code), (dict, ProbeError))
