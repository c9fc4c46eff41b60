"""The key → line index that gives tomllib-valid files their error lines."""

from __future__ import annotations

import tomllib

from gpudash.config.durations import format_duration, parse_duration
from gpudash.config.line_index import LineIndex

import pytest

DOC = '''\
# 1 comment
top = 1                                   # 2
[defaults]                                # 3
gpu_interval = 2 # [not = a table]        # 4
[defaults.thresholds]                     # 5
disk_warn_pct = 80                        # 6

[[host]]                                  # 8
name = "a"                                # 9
mounts = [                                # 10
  "/",                                    # 11
  # "ignored", [[host]]                   # 12
  "/x",                                   # 13
]                                         # 14
notes = """                               # 15
[[host]]
name = "fake"
"""                                       # 18
thresholds.mem_warn_pct = 5               # 19
[host.teardown]                           # 20
preset = "ssh"                            # 21

[[host]]                                  # 23
"quoted key" = 'lit[eral'                 # 24
inline = { a = 1, b.c = [1, {d = 2}], "e f" = "}" }   # 25
when = 1979-05-27 07:32:00Z               # 26
lit = \'\'\'two
lines\'\'\'                               # 28
[host.thresholds]                         # 29
x = 1                                     # 30
[ alerts . sub ]                          # 31
y = [[1, 2], [3,                          # 32
  4]]                                     # 33
'''


def test_document_is_valid_toml():
    tomllib.loads(DOC)


@pytest.mark.parametrize("path, line", [
    (("top",), 2),
    (("defaults",), 3),
    (("defaults", "gpu_interval"), 4),
    (("defaults", "thresholds"), 5),
    (("defaults", "thresholds", "disk_warn_pct"), 6),
    (("host",), 8),
    (("host", 0), 8),
    (("host", 0, "name"), 9),
    (("host", 0, "mounts"), 10),
    (("host", 0, "mounts", 0), 11),
    (("host", 0, "mounts", 1), 13),
    (("host", 0, "notes"), 15),
    (("host", 0, "thresholds"), 19),
    (("host", 0, "thresholds", "mem_warn_pct"), 19),
    (("host", 0, "teardown"), 20),
    (("host", 0, "teardown", "preset"), 21),
    (("host", 1), 23),
    (("host", 1, "quoted key"), 24),
    (("host", 1, "inline", "a"), 25),
    (("host", 1, "inline", "b", "c", 1, "d"), 25),
    (("host", 1, "inline", "e f"), 25),
    (("host", 1, "when"), 26),
    (("host", 1, "lit"), 27),
    (("host", 1, "thresholds"), 29),
    (("host", 1, "thresholds", "x"), 30),
    (("alerts", "sub"), 31),
    (("alerts", "sub", "y", 1, 1), 33),
])
def test_exact_lines(path, line):
    assert LineIndex.build(DOC).exact(path) == line


def test_the_string_that_looks_like_a_host_is_not_one():
    index = LineIndex.build(DOC)
    assert index.exact(("host", 2)) is None
    assert index.exact(("host", 0, "name")) == 9


def test_missing_key_falls_back_to_its_table():
    index = LineIndex.build(DOC)
    assert index.line(("host", 1, "name")) == 23
    assert index.line(("host", 0, "teardown", "artifacts_dir")) == 20
    assert index.line(("nowhere", "at", "all")) == 0


def test_garbage_never_raises():
    for text in ["[", "a = [1, 2", "= = =", '"unterminated', "[[", "a.b.", "\x00", "a = {"]:
        LineIndex.build(text)


def test_crlf_line_endings():
    text = 'a = 1\r\n[t]\r\nb = [\r\n 1,\r\n 2 ]\r\nc = "x"\r\n'
    tomllib.loads(text)
    index = LineIndex.build(text)
    assert index.exact(("t", "b", 1)) == 5 and index.exact(("t", "c")) == 6


# ---------------------------------------------------------------------------- durations
@pytest.mark.parametrize("value, seconds", [
    (90, 90), (0.5, 0.5), ("3600", 3600), ("90m", 5400), ("6h", 21600), ("1h30m", 5400),
    ("2d", 172800), ("500ms", 0.5), (" 1h 30m ", 5400), ("1.5h", 5400), ("45S", 45), (0, 0),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "6 hours", "90x", "-5", "1h1h", "h", "1m 30", True,
                                   float("nan"), float("inf"), -1, None, [1]])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize("seconds, text", [(21600, "6h"), (5400, "1h30m"), (45, "45s"),
                                           (0, "0s"), (0.25, "250ms"), (90061, "1d1h1m1s")])
def test_format_duration_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
