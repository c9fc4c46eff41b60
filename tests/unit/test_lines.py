"""LineAssembler: whole, bounded, sanitised lines from arbitrary byte chunks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gpudash.model import LogChunk
from gpudash.probes.lines import ROTATED_MARK, LineAssembler, LogLine, skipped_mark
from gpudash.sanitize import ELLIPSIS_MARK, clean_line, is_inert
from tests.conftest import FIXTURES

HF_LOG = (FIXTURES / "logs" / "hf-trainer.log").read_bytes()


def chunk(data: bytes, *, reset=False, skipped=0) -> LogChunk:
    return LogChunk(path="x", start=0, end=len(data), size=len(data), inode=1, data=data,
                    reset=reset, skipped=skipped)


def feed_in_pieces(asm: LineAssembler, data: bytes, size: int) -> list[LogLine]:
    out = []
    for i in range(0, len(data), size):
        out.extend(asm.feed(chunk(data[i : i + size])))
    return out


def test_lines_split_across_chunks_and_utf8_boundaries():
    asm = LineAssembler()
    data = "loss=1.5 · épöch 1\nzweite Zeile ✓\n".encode()
    lines = feed_in_pieces(asm, data, 1)  # every multi-byte character split
    assert [x.raw for x in lines] == ["loss=1.5 · épöch 1", "zweite Zeile ✓"]
    assert [str(x) for x in lines] == [x.display for x in lines] == [x.raw for x in lines]
    assert asm.buffered_bytes == 0


def test_partial_line_waits_for_its_newline():
    asm = LineAssembler()
    assert asm.feed(chunk(b"step 1")) == []
    assert [x.raw for x in asm.feed(chunk(b"0 done\nstep"))] == ["step 10 done"]
    assert asm.buffered_bytes == 4
    assert [x.raw for x in asm.flush()] == ["step"]


def test_crlf_line_ends():
    lines = LineAssembler().feed(chunk(b"windows line\r\nnext\r\n"))
    assert [x.raw for x in lines] == ["windows line", "next"]


def test_reset_drops_the_partial_and_says_so():
    asm = LineAssembler()
    asm.feed(chunk(b"half a li"))
    lines = asm.feed(chunk(b"new file\n", reset=True))
    assert [str(x) for x in lines] == [ROTATED_MARK, "new file"]
    assert lines[0].marker and lines[0].raw == "" and not lines[1].marker
    quiet = LineAssembler(rotation_marker=False)
    quiet.feed(chunk(b"half"))
    assert [str(x) for x in quiet.feed(chunk(b"new\n", reset=True))] == ["new"]


def test_skip_drops_partial_and_the_torn_first_line():
    asm = LineAssembler()
    asm.feed(chunk(b"line one\nline tw"))
    lines = asm.feed(chunk(b"ragment of a skipped line\nwhole line\n", skipped=1234))
    assert [str(x) for x in lines] == [skipped_mark(1234), "whole line"]
    assert skipped_mark(1234) == "── 1234 bytes skipped ──"
    # the fragment may span several chunks before its newline comes
    asm.feed(chunk(b"aaaa", skipped=10))
    assert asm.feed(chunk(b"bbbb")) == [] and asm.pending_progress() is None
    assert [x.raw for x in asm.feed(chunk(b"cc\nok\n"))] == ["ok"]


def test_ten_megabyte_line_is_cut_and_memory_stays_bounded():
    asm = LineAssembler(max_line=4096, max_partial=65536)
    piece = b"Q" * 100_000
    cut_lines = []
    for _ in range(100):  # 10 MB without a newline
        cut_lines.extend(asm.feed(chunk(piece)))
        assert asm.buffered_bytes <= 65536
    assert len(cut_lines) == 1  # shown once, as soon as it passed the bound
    line = cut_lines[0]
    assert line.cut and line.display == "Q" * 4096 + ELLIPSIS_MARK and len(line.raw) == 65536
    # the rest of that line is discarded up to its newline; the next line is intact
    lines = asm.feed(chunk(b"QQQ\nnext line\n"))
    assert [x.raw for x in lines] == ["next line"]


def test_long_complete_line_in_one_chunk_is_cut():
    asm = LineAssembler(max_line=100, max_partial=1000)
    lines = asm.feed(chunk(b"x" * 5000 + b"\nshort\n"))
    assert lines[0].cut and lines[0].display.endswith(ELLIPSIS_MARK) and len(lines[0].raw) == 1000
    assert lines[1].raw == "short" and not lines[1].cut
    medium = asm.feed(chunk(b"y" * 500 + b"\n"))[0]  # over the display bound only
    assert not medium.cut and medium.display == "y" * 100 + ELLIPSIS_MARK and len(medium.raw) == 500


def test_hostile_lines_come_out_inert():
    hostile = (
        b"\x1b[2J\x1b[31mred\x1b[0m clear screen\n"
        b"\x1b]52;c;cHduZWQ=\x07osc52 clipboard write\n"
        b"\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\n"
        b"\xe2\x80\xaebidi override\xe2\x80\xac\n"
        b"\x9b31m c1 csi\n"
        b"[bold red]markup[/] [link=http://x]y[/link]\n"
        b"del\x7f bell\x07 nul\x00 backspace\x08\n"
    )
    lines = feed_in_pieces(LineAssembler(), hostile, 3)
    assert len(lines) == 7
    for line in lines:
        assert is_inert(line.display), repr(line.display)
    assert lines[0].display == "red clear screen"
    # markup stays literal text: it is the UI's job never to parse it
    assert lines[5].display == "[bold red]markup[/] [link=http://x]y[/link]"
    assert "\x1b" in lines[0].raw  # raw keeps the bytes for parsers


def test_binary_junk_never_raises():
    data = bytes(range(256)) * 40 + b"\n\xff\xfe\n"
    lines = feed_in_pieces(LineAssembler(), data, 97)
    assert len(lines) == data.count(b"\n") and all(is_inert(x.display) for x in lines)


# ----------------------------------------------------------------------------- \r progress


def test_hf_trainer_log_renders_like_a_terminal():
    """The real HF Trainer log: tqdm rewrites its bar with \\r, metric dicts end lines."""
    whole = LineAssembler().feed(chunk(HF_LOG))
    for size in (1, 7, 64, 1000):
        assert feed_in_pieces(LineAssembler(), HF_LOG, size) == whole
    shown = [x.display for x in whole]
    assert all("\r" not in s and is_inert(s) for s in shown)
    assert shown[3] == "{'loss': '6.804', 'grad_norm': '0.9595', 'learning_rate': '5e-05', 'epoch': '0.03125'}"
    assert shown[8].startswith(" 50%|") and "32/64" in shown[8]
    assert "\x1b" not in shown[9] and shown[9].startswith("Writing model shards: 100%|")
    assert shown[-1] == "100%|██████████| 64/64 [00:01<00:00, 42.00it/s]"
    # raw keeps every \r state for the progress and metrics parsers
    assert "\r" in whole[3].raw and "1/64" in whole[3].raw


def test_pending_progress_shows_the_live_bar():
    asm = LineAssembler()
    asm.feed(chunk(HF_LOG[:-1]))  # the final bar, its newline not written yet
    assert asm.pending_progress() == "100%|██████████| 64/64 [00:01<00:00, 42.00it/s]"
    last = asm.feed(chunk(b"\n"))
    assert [x.display for x in last] == ["100%|██████████| 64/64 [00:01<00:00, 42.00it/s]"]
    assert asm.pending_progress() is None


def test_endless_progress_bar_stays_small():
    asm = LineAssembler(max_partial=65536)
    for i in range(1, 20001):
        out = asm.feed(chunk(b"\r%3d%%|bar| %d/20000 [00:01<00:00, 99it/s]" % (i * 100 // 20000, i)))
        assert out == []
        assert asm.buffered_bytes < 8192 + 100
    assert asm.pending_progress() == "100%|bar| 20000/20000 [00:01<00:00, 99it/s]"
    # tqdm clears the bar (spaces, \r) and prints a line: the line wins
    lines = asm.feed(chunk(b"\r" + b" " * 40 + b"\r{'loss': 0.5}\n"))
    assert [x.display for x in lines] == ["{'loss': 0.5}"]
    # a blank rewrite keeps the last visible state
    asm.feed(chunk(b"\r 10%|b| 1/10\r" + b" " * 20))
    assert asm.pending_progress() == " 10%|b| 1/10"


def test_pending_progress_is_none_for_plain_partial_lines():
    asm = LineAssembler()
    asm.feed(chunk(b"just a half written line"))
    assert asm.pending_progress() is None


def test_pending_progress_is_sanitised():
    asm = LineAssembler()
    asm.feed(chunk(b"\r\x1b]52;c;eA==\x07 5%|\xe2\x80\xae| 1/20"))
    p = asm.pending_progress()
    assert p is not None and is_inert(p) and "1/20" in p


# ----------------------------------------------------------------------------- properties


@settings(deadline=None, max_examples=300)
@given(st.lists(st.binary(max_size=200), max_size=20), st.integers(1, 300), st.integers(1, 300))
def test_any_chunks_never_raise_and_stay_bounded(pieces, max_line, max_partial):
    asm = LineAssembler(max_line=max_line, max_partial=max_partial)
    for i, p in enumerate(pieces):
        for line in asm.feed(chunk(p, reset=i % 7 == 3, skipped=i % 5 == 4)):
            assert is_inert(line.display)
            assert line.marker or len(line.display) <= max_line + len(ELLIPSIS_MARK)
        assert asm.buffered_bytes <= max_partial
        pp = asm.pending_progress()
        assert pp is None or is_inert(pp)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                        max_size=40), max_size=30),
       st.lists(st.integers(0, 2000), max_size=10))
def test_chunking_does_not_change_the_lines(lines, cuts):
    data = "".join(x + "\n" for x in lines).encode()
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    asm = LineAssembler(max_line=10_000, max_partial=10_000)
    got = []
    for a, b in zip(points, points[1:]):
        got.extend(asm.feed(chunk(data[a:b])))
    assert [x.raw for x in got] == lines
    assert [x.display for x in got] == [clean_line(x) for x in lines]
