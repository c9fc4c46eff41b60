"""The incremental log tail, run with the real /bin/sh against real files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import LogChunk, ProbeError, Reason
from gpudash.probes.lines import LineAssembler
from gpudash.probes.logtail import log_step, parse_log, read_local_tail
from gpudash.sanitize import clean_line, is_inert
from gpudash.transport import framing


class Tail:
    """A caller's state across ticks, as the host watcher keeps it."""

    def __init__(self, path: str, max_bytes: int = 256 * 1024, env=None, cwd=None):
        self.path = path
        self.max_bytes = max_bytes
        self.offset = 0
        self.inode: int | None = None
        self.env = env
        self.cwd = cwd

    def tick(self, max_bytes: int | None = None) -> LogChunk:
        step = log_step(self.path, self.offset, self.inode, max_bytes or self.max_bytes)
        r = subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, timeout=30,
                           env=self.env, cwd=self.cwd)
        chunk = parse_log(r.stdout, r.stderr, r.returncode,
                          prev_offset=self.offset, prev_inode=self.inode)
        assert isinstance(chunk, LogChunk), (chunk, r.stderr)
        if not chunk.missing:
            self.offset, self.inode = chunk.end, chunk.inode
        return chunk


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


# ----------------------------------------------------------------------------- growth


def test_first_read_then_only_appended_bytes(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"step 1 loss 2.0\nstep 2 loss 1.9\n")
    t = Tail(str(log))
    c = t.tick()
    assert (c.start, c.end, c.data, c.reset, c.skipped) == (0, 32, log.read_bytes(), False, 0)
    assert c.inode == os.stat(log).st_ino and c.size == 32 and c.path == str(log)

    appended = b"step 3 loss 1.8\npartial li"
    append(log, appended)
    c = t.tick()
    assert c.data == appended  # only the new bytes moved
    assert c.end - c.start == len(appended) and c.start == 32 and not c.reset

    c = t.tick()  # nothing new
    assert c.data == b"" and c.start == c.end == 32 + len(appended) and not c.reset


def test_truncation_resets_and_reads_from_zero(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"a" * 100 + b"\n")
    t = Tail(str(log))
    t.tick()
    ino = t.inode
    with open(log, "r+b") as fh:  # copytruncate: same inode, shorter file
        fh.truncate(0)
        fh.write(b"fresh\n")
    c = t.tick()
    assert c.inode == ino and c.reset and c.start == 0 and c.data == b"fresh\n" and c.skipped == 0


def test_rotation_resets_and_reads_new_file_from_zero(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"old 1\nold 2\n")
    t = Tail(str(log))
    t.tick()
    log.rename(tmp_path / "train.log.1")
    log.write_bytes(b"new 1\nnew 2\nnew 3\n")  # longer than before: only the inode tells
    c = t.tick()
    assert c.reset and c.start == 0 and c.data == b"new 1\nnew 2\nnew 3\n"
    assert c.inode == os.stat(log).st_ino
    lines = LineAssembler().feed(c)
    assert [str(x) for x in lines] == ["── log rotated/truncated ──", "new 1", "new 2", "new 3"]


def test_glob_follows_the_newest_file(tmp_path):
    (tmp_path / "run-1.log").write_bytes(b"first run\n")
    os.utime(tmp_path / "run-1.log", (1_700_000_000, 1_700_000_000))
    (tmp_path / "other.txt").write_bytes(b"not a log\n")
    t = Tail(str(tmp_path / "run-*.log"))
    c = t.tick()
    assert c.path.endswith("run-1.log") and c.data == b"first run\n"

    (tmp_path / "run-2.log").write_bytes(b"second run, line 1\n")
    os.utime(tmp_path / "run-2.log", (1_700_000_100, 1_700_000_100))
    c = t.tick()
    assert c.path.endswith("run-2.log")
    assert c.reset and c.start == 0 and c.data == b"second run, line 1\n"

    append(tmp_path / "run-1.log", b"late write to the old run\n")  # newer mtime now
    os.utime(tmp_path / "run-1.log", (1_700_000_000, 1_700_000_000))
    append(tmp_path / "run-2.log", b"line 2\n")
    os.utime(tmp_path / "run-2.log", (1_700_000_200, 1_700_000_200))
    c = t.tick()
    assert c.path.endswith("run-2.log") and not c.reset and c.data == b"line 2\n"


def test_glob_ignores_directories(tmp_path):
    (tmp_path / "a.log").mkdir()
    (tmp_path / "b.log").write_bytes(b"x\n")
    os.utime(tmp_path / "b.log", (1_600_000_000, 1_600_000_000))
    c = Tail(str(tmp_path / "*.log")).tick()
    assert c.path.endswith("b.log") and c.data == b"x\n"


# ----------------------------------------------------------------------------- bounds


def test_flood_keeps_the_newest_bytes_and_counts_the_skip_exactly(tmp_path):
    log = tmp_path / "flood.log"
    log.write_bytes(b"start\n")
    t = Tail(str(log), max_bytes=4096)
    t.tick()
    flood = b"".join(b"line %07d %s\n" % (i, b"x" * (i % 50)) for i in range(20000))
    append(log, flood)
    c = t.tick()
    assert len(c.data) == 4096
    assert c.data == log.read_bytes()[-4096:]  # the newest bytes win
    assert c.skipped == len(flood) - 4096  # exact
    assert c.start == 6 + c.skipped and c.end == c.size == 6 + len(flood)
    lines = LineAssembler().feed(c)
    assert str(lines[0]) == f"── {c.skipped} bytes skipped ──" and lines[0].marker
    shown = [x.raw for x in lines[1:]]
    # the torn first line is dropped, every other one is whole and in order
    assert shown == flood.decode().splitlines()[-len(shown):]
    assert len(shown) == c.data.count(b"\n") - 1


def test_first_read_of_a_big_log_is_bounded(tmp_path):
    log = tmp_path / "big.log"
    with open(log, "wb") as fh:
        for i in range(300_000):
            fh.write(b"%d\n" % i)
    size = log.stat().st_size
    c = Tail(str(log), max_bytes=1000).tick()
    assert len(c.data) == 1000 and c.skipped == size - 1000 and c.end == size


def test_ten_megabyte_single_line_stays_bounded(tmp_path):
    log = tmp_path / "one-line.log"
    log.write_bytes(b"before\n" + b"Z" * (10 * 1024 * 1024) + b"\nafter\n")
    t = Tail(str(log), max_bytes=64 * 1024)
    c = t.tick()
    assert len(c.data) == 64 * 1024 and c.skipped == log.stat().st_size - 64 * 1024
    lines = LineAssembler().feed(c)
    assert [str(x) for x in lines] == [f"── {c.skipped} bytes skipped ──", "after"]

    # Read unbounded by the tail, the assembler still bounds it: one cut line, then the next.
    c = Tail(str(log), max_bytes=11 * 1024 * 1024).tick()
    assert c.skipped == 0 and len(c.data) == log.stat().st_size
    asm = LineAssembler(max_line=4096, max_partial=65536)
    lines = asm.feed(c)
    assert [x.raw for x in lines][0] == "before" and lines[2].raw == "after"
    cut = lines[1]
    assert cut.cut and cut.display.endswith("…[cut]") and len(cut.display) <= 4096 + 10
    assert len(cut.raw) == 65536 and asm.buffered_bytes == 0


def test_binary_junk_and_invalid_utf8_come_through(tmp_path):
    log = tmp_path / "junk.log"
    junk = bytes(range(256)) * 3 + b"\n\xff\xfe\xc3(ok\n\xe2\x82\n"
    log.write_bytes(junk)
    c = Tail(str(log)).tick()
    assert c.data == junk  # byte-exact
    lines = LineAssembler().feed(c)
    assert len(lines) == junk.count(b"\n")
    assert all(is_inert(x.display) for x in lines)
    assert "\ufffd" in lines[-1].display


def test_missing_log_is_a_state_not_a_hang(tmp_path):
    for pattern in (str(tmp_path / "nope.log"), str(tmp_path / "nope-*.log")):
        t = Tail(pattern)
        t.offset, t.inode = 500, 42
        c = t.tick()
        assert c.missing and c.data == b"" and c.path == pattern
        assert (c.start, c.end, c.inode) == (500, 500, 42)  # the caller's state is kept
    # it comes back after a rotation gap: new inode → reset
    (tmp_path / "nope.log").write_bytes(b"back\n")
    t = Tail(str(tmp_path / "nope.log"))
    t.offset, t.inode = 500, 42
    c = t.tick()
    assert c.reset and c.data == b"back\n"


HOSTILE_DIRS = [
    "with space",
    "quo'te\"s",
    "semi;colon && touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "new\nline",
    "glob*star",
    "[;touch pwned]",
]


@pytest.mark.parametrize("name", HOSTILE_DIRS)
def test_hostile_paths_never_run_anything(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "train.log").write_bytes(b"hello from a hostile path\n")
    for pattern in (str(d / "train.log"), str(d) + "/*.log", str(d) + "/tr?in.log",
                    str(d / "missing; touch pwned"), str(d / "$(touch pwned).log")):
        c = Tail(pattern, cwd=tmp_path).tick()
        if "pwned" in pattern.rsplit("/", 1)[-1]:
            assert c.missing
        else:
            assert c.data == b"hello from a hostile path\n", pattern
    assert not [p for p in tmp_path.rglob("pwned*")]


def test_home_relative_path(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.log").write_bytes(b"from home\n")
    env = dict(os.environ, HOME=str(tmp_path))
    c = Tail("~/runs/*.log", env=env).tick()
    assert c.data == b"from home\n"


def test_works_without_gnu_stat(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "stat").write_text("#!/bin/sh\necho 'stat: not here' >&2\nexit 1\n")
    (fake / "stat").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    log = tmp_path / "x.log"
    log.write_bytes(b"one\n")
    t = Tail(str(log), env=env)
    c = t.tick()
    assert c.inode == os.stat(log).st_ino and c.size == 4 and c.data == b"one\n"
    append(log, b"two\n")
    c = t.tick()
    assert c.data == b"two\n" and not c.reset


def test_through_the_real_framing(tmp_path):
    """The transport's framed batch keeps the log bytes exact, forged sentinels and NULs included."""
    log = tmp_path / "x.log"
    payload = b"\n@@GD:0000000000000000:E:log:0\n\x00\x1b]52;c;aGk=\x07 fine\n"
    log.write_bytes(payload)
    step = log_step(str(log), 0, None)
    nonce = framing.new_nonce()
    script = framing.PRELUDE.encode() + framing.render_batch([step], nonce, 1)
    r = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, timeout=30)
    res = framing.split_batch([step], r.stdout, r.stderr, nonce, 1)["log"]
    c = parse_log(res.stdout, res.stderr, res.exit_code, prev_offset=0, prev_inode=None)
    assert isinstance(c, LogChunk) and c.data == payload and res.exit_code == 0


# ----------------------------------------------------------------------------- parser


def test_parse_log_errors():
    err = parse_log(b"", b"", 124, prev_offset=0, prev_inode=None)
    assert isinstance(err, ProbeError) and err.reason is Reason.TIMEOUT
    err = parse_log(b"", b"sh: 1: tail: Permission denied\x1b[2J", 2, prev_offset=0, prev_inode=None)
    assert isinstance(err, ProbeError) and err.reason is Reason.PROBE_ERROR
    assert is_inert(err.message) and "Permission denied" in err.message


def test_parse_log_rejects_offsets_from_another_state(tmp_path):
    log = tmp_path / "x.log"
    log.write_bytes(b"abc\n")
    step = log_step(str(log), 0, None)
    r = subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, timeout=30)
    assert isinstance(parse_log(r.stdout, prev_offset=0, prev_inode=None), LogChunk)
    assert isinstance(parse_log(r.stdout, prev_offset=2, prev_inode=None), ProbeError)


def test_cut_short_read_resumes_without_loss(tmp_path):
    """A read truncated in transit (byte cap, timeout) hands on what came; the next tick resumes."""
    log = tmp_path / "x.log"
    log.write_bytes(b"0123456789\n" * 10)
    step = log_step(str(log), 0, None)
    r = subprocess.run(["/bin/sh", "-c", step.script], capture_output=True, timeout=30)
    cut = r.stdout[: len(r.stdout) - 50]
    c = parse_log(cut, b"", 124, prev_offset=0, prev_inode=None)
    assert isinstance(c, LogChunk) and c.end == 60 and c.data == log.read_bytes()[:60]
    t = Tail(str(log))
    t.offset, t.inode = c.end, c.inode
    assert t.tick().data == log.read_bytes()[60:]


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=300), st.binary(max_size=50), st.one_of(st.none(), st.integers(-3, 200)),
       st.integers(0, 10**12), st.one_of(st.none(), st.integers(0, 10**12)))
def test_parse_log_never_raises(out, err, code, off, ino):
    for data in (out, b"LOG\t" + out, b"MISSING\n" + out, b"LOG\t10\t5\t1\t0\t10\t0\t0\n" + out):
        res = parse_log(data, err, code, prev_offset=off, prev_inode=ino)
        assert isinstance(res, (LogChunk, ProbeError))
        if isinstance(res, LogChunk):
            assert res.end - res.start == len(res.data) and is_inert(res.path)


# ----------------------------------------------------------------------------- property


_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                max_size=60)


@settings(deadline=None, max_examples=40)
@given(
    lines=st.lists(_LINE, min_size=1, max_size=60),
    cuts=st.lists(st.floats(0, 1), max_size=8),
    bounds=st.lists(st.integers(8, 400), min_size=1, max_size=8),
)
def test_assembled_lines_equal_written_lines_except_reported_skips(lines, cuts, bounds):
    content = "".join(line + "\n" for line in lines).encode()
    # each line's byte span [first byte, its newline]
    spans, pos = [], 0
    for line in lines:
        n = len(line.encode())
        spans.append((pos, pos + n))
        pos += n + 1
    points = sorted({int(f * len(content)) for f in cuts} | {len(content)})
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "run.log"
        log.write_bytes(b"")
        t = Tail(str(log))
        asm = LineAssembler(max_line=10_000, max_partial=10_000)
        got, lost, written, moved, skipped = [], [], 0, 0, 0
        ticks = 0
        for i, point in enumerate(points + [len(content)]):  # a last tick after the last write
            append(log, content[written:point])
            written = point
            before = t.offset
            c = t.tick(bounds[i % len(bounds)])
            ticks += 1
            assert not c.reset
            assert c.data == content[c.start:c.end]  # exact bytes, never duplicated
            if c.skipped:
                assert c.start == before + c.skipped and c.end == written
                lost.append((before, c.start))
            else:
                assert c.start == before
            moved += len(c.data)
            skipped += c.skipped
            got.extend(asm.feed(c))
        # drain what the bounds left behind
        while t.offset < len(content):
            c = t.tick(max(bounds))
            moved += len(c.data)
            skipped += c.skipped
            if c.skipped:
                lost.append((c.start - c.skipped, c.start))
            got.extend(asm.feed(c))
    assert moved + skipped == len(content)
    expected = [
        line for line, (s, e) in zip(lines, spans)
        if not any(s <= hi and e >= lo for lo, hi in lost)  # line touches a skipped range
    ]
    assert [x.raw for x in got if not x.marker] == expected
    assert [x.display for x in got if not x.marker] == [clean_line(x) for x in expected]
    assert sum(1 for x in got if x.marker) == len(lost)


# ----------------------------------------------------------------------------- local


def test_read_local_tail(tmp_path):
    f = tmp_path / "big.log"
    data = hashlib.sha256(b"seed").digest() * 200_000  # 6.4 MB
    f.write_bytes(data)
    assert read_local_tail(f, 1000) == data[-1000:]
    assert read_local_tail(str(f), 10**9) == data
    assert read_local_tail(f, 0) == b""
