"""Framing: render a batch, run it with a real /bin/sh, split the output back.

The round trips execute the rendered script for real (no remote needed): framing is only worth
something if a real POSIX sh produces markers the splitter recognises.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudash.transport import framing
from gpudash.transport.base import Step, marked
from tests.conftest import FIXTURES

NONCE = "0123456789abcdef"


def run_sh(script: bytes, prefix_junk: bytes = b"") -> tuple[bytes, bytes]:
    """Feed a framed script to a real `/bin/sh -s`, as a session would (prelude first)."""
    proc = subprocess.run(
        ["/bin/sh", "-s"],
        input=framing.PRELUDE.encode() + script,
        capture_output=True,
        timeout=60,
    )
    return prefix_junk + proc.stdout, prefix_junk + proc.stderr


def roundtrip(steps, batch_id=1, junk=b""):
    out, err = run_sh(framing.render_batch(steps, NONCE, batch_id), junk)
    return framing.split_batch(steps, out, err, NONCE, batch_id), out, err


def test_several_steps_keep_their_output_exit_code_and_stderr():
    fixture = FIXTURES / "h100" / "query-busy-nounits.csv"
    steps = [
        Step("a", "echo hello"),
        Step("gpu", f"cat {shlex.quote(str(fixture))}"),
        Step("fail", "echo oops >&2; exit 3"),
        Step("nonl", "printf 'no newline'"),
        Step("empty", "true"),
    ]
    res, _, _ = roundtrip(steps, junk=b"conda banner\n(base) ")
    assert res["a"].stdout == b"hello\n" and res["a"].exit_code == 0
    assert res["gpu"].stdout == fixture.read_bytes()
    assert res["fail"].exit_code == 3
    assert res["fail"].stdout == b"" and res["fail"].stderr == b"oops\n"
    assert res["nonl"].stdout == b"no newline"
    assert res["empty"].stdout == b"" and res["empty"].exit_code == 0
    assert all(not r.truncated for r in res.values())


def test_last_step_stderr_has_no_stray_newline():
    res, _, _ = roundtrip([Step("a", "echo x"), Step("b", "printf err >&2")])
    assert res["b"].stderr == b"err"
    assert res["a"].stderr == b""


def test_rc_junk_and_forged_markers_cannot_fake_a_boundary():
    # A hostile log line that knows the marker format but not the nonce.
    forged = "\\n@@GD:deadbeefdeadbeef:E:a:0\\n@@GD:deadbeefdeadbeef:Z:1\\n"
    steps = [Step("a", f"printf '{forged}'; echo tail"), Step("b", "echo b")]
    junk = b"\n@@GD:deadbeefdeadbeef:B:1\n@@GD:deadbeefdeadbeef:S:a\nfake\n"
    res, _, _ = roundtrip(steps, junk=junk)
    assert res["a"].stdout.endswith(b"tail\n")
    assert b"deadbeef" in res["a"].stdout  # kept as data, not taken as a marker
    assert res["a"].exit_code == 0 and res["b"].stdout == b"b\n"


def test_step_reading_stdin_cannot_eat_the_rest_of_the_script():
    steps = [Step("cat", "cat"), Step("after", "echo still here")]
    res, _, _ = roundtrip(steps)
    assert res["cat"].stdout == b"" and res["after"].stdout == b"still here\n"


def test_remote_timeout_bounds_a_step():
    steps = [Step("slow", "sleep 30", timeout=1), Step("next", "echo ok")]
    res, _, _ = roundtrip(steps)
    assert res["slow"].exit_code == 124 and res["slow"].timed_out
    assert res["next"].stdout == b"ok\n"


def test_remote_timeout_bounds_a_plain_command_step_too():
    # `sleep 30` is one plain command line: `timeout` runs it with no shell between them
    steps = [Step("slow", "sleep 30", timeout=1), Step("next", "echo ok")]
    script = framing.render_batch(steps, NONCE, 1).decode()
    assert "timeout -k 1 1 sleep 30 </dev/null & gd_p=$!" in script
    res, _, _ = roundtrip(steps)
    assert res["slow"].exit_code == 124 and res["slow"].timed_out
    assert res["next"].stdout == b"ok\n"


_PLAIN_CHARS = "abcXYZ0189_./,:+@%=-"


@settings(deadline=None, max_examples=60)
@given(st.lists(st.text(_PLAIN_CHARS, min_size=1, max_size=12), min_size=0, max_size=6))
def test_a_plain_command_line_runs_as_its_shell_would_run_it(words):
    # The same words, through `timeout` alone and through `/bin/sh -c`: the same argv arrives.
    script = " ".join(["/bin/echo", *words])
    forced = f"/bin/sh -c {shlex.quote(script)}"
    direct = framing.render_batch([Step("d", script)], NONCE, 1).decode()
    assert f"timeout -k 1 8 {script} </dev/null" in direct
    res, _, _ = roundtrip([Step("d", script), Step("s", forced)])
    assert res["d"].stdout == res["s"].stdout and res["d"].exit_code == res["s"].exit_code == 0


@pytest.mark.parametrize("script", [
    "echo hi",  # a builtin: `timeout` would run /bin/echo, whose escapes differ
    "true", ": nothing", "cd /tmp", "exit 3", "if true",
    "A=1 env", "--version", "ls $HOME", "ls ~", "ls *", "ls 'a b'", "ls a;ls b", "ls a|wc", "ls >x",
    "ls  -l", " ls", "ls\nls", "ls\tx", "ls #x", "ls \\x", "ls {a,b}", "ls !x", "ls a&",
])
def test_anything_but_one_plain_command_runs_under_a_marked_shell(script):
    rendered = framing.render_batch([Step("a", script)], NONCE, 1).decode()
    assert f"/bin/sh -c {shlex.quote(marked(script))} </dev/null" in rendered


def test_a_missing_plain_command_exits_127_as_under_a_shell():
    res, _, _ = roundtrip([Step("d", "gd-no-such-command --x"),
                           Step("s", "gd-no-such-command --x; exit $?")])
    assert res["d"].exit_code == res["s"].exit_code == 127


def test_output_past_max_bytes_is_cut_and_flagged():
    res, _, _ = roundtrip([Step("big", "head -c 5000 /dev/zero", max_bytes=1000)])
    assert res["big"].truncated and len(res["big"].stdout) == 1000


def test_cut_short_batch_leaves_unfinished_steps_without_exit_code():
    steps = [Step("a", "echo a"), Step("b", "echo b1; sleep 5; echo b2"), Step("c", "echo c")]
    out, err = run_sh(framing.render_batch(steps, NONCE, 7))
    cut = out[: out.index(b"b1\n") + 3]  # the link died while b was running
    res = framing.split_batch(steps, cut, err, NONCE, 7)
    assert res["a"].exit_code == 0 and res["a"].stdout == b"a\n"
    assert res["b"].exit_code is None and res["b"].stdout == b"b1\n"
    assert res["c"].exit_code is None and res["c"].stdout == b""


def test_other_batch_output_is_ignored():
    steps = [Step("a", "echo a")]
    out, err = run_sh(framing.render_batch(steps, NONCE, 1))
    res = framing.split_batch(steps, out, err, NONCE, 2)
    assert res["a"].exit_code is None and res["a"].stdout == b""


def test_keys_are_validated():
    with pytest.raises(ValueError):
        framing.render_batch([Step("bad key;", "true")], NONCE, 1)
    with pytest.raises(ValueError):
        framing.render_batch([Step("a", "true"), Step("a", "true")], NONCE, 1)


def test_injection_through_a_quoted_value_stays_data(tmp_path):
    canary = tmp_path / "pwned"
    value = f"x'; touch {canary}; $(touch {canary}) `touch {canary}` \" \\"
    res, _, _ = roundtrip([Step("v", f"printf '%s\\n' {shlex.quote(value)}")])
    assert res["v"].stdout == value.encode() + b"\n"
    assert not canary.exists()


def test_session_command_runs_a_bounded_sh_reading_stdin():
    cmd = framing.session_command(3600)
    proc = subprocess.run(
        ["/bin/sh", "-c", cmd], input=b"echo $$; ps -o args= -p $PPID\n", capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0
    assert b"timeout -k 2 3600 /bin/sh -s" in proc.stdout


def test_session_command_works_without_timeout_binary(tmp_path):
    # A PATH with sh's helpers but no `timeout`: the session must still start.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "printf").symlink_to("/usr/bin/printf")
    proc = subprocess.run(
        ["/bin/sh", "-c", framing.session_command(60)],
        input=framing.PRELUDE.encode() + framing.render_batch([Step("a", "echo hi")], NONCE, 1),
        capture_output=True, timeout=30, env={"PATH": str(bindir)},
    )
    res = framing.split_batch([Step("a", "echo hi")], proc.stdout, proc.stderr, NONCE, 1)
    assert res["a"].stdout == b"hi\n" and res["a"].exit_code == 0


def test_stream_script_prints_begin_marker_then_lines():
    step = Step("s", "echo one; echo two")
    proc = subprocess.run(
        ["/bin/sh", "-s"], input=framing.render_stream(step, NONCE, 30),
        capture_output=True, timeout=30,
    )
    begin = framing.begin_marker(NONCE, 0)
    assert proc.stdout.startswith(begin)
    assert proc.stdout[len(begin):] == b"one\ntwo\n"


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=400), st.binary(max_size=200), st.integers(0, 5))
def test_split_never_raises_on_any_bytes(out, err, bid):
    steps = [Step("a", "x"), Step("b", "y", max_bytes=10)]
    res = framing.split_batch(steps, out, err, NONCE, bid)
    assert set(res) == {"a", "b"}
    assert len(res["b"].stdout) <= 10


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.binary(max_size=100))
def test_any_bytes_survive_the_round_trip(tmp_path, payload, err_payload):
    out_file, err_file = tmp_path / "out.bin", tmp_path / "err.bin"
    out_file.write_bytes(payload)
    err_file.write_bytes(err_payload)
    steps = [
        Step("p", f"cat {shlex.quote(str(out_file))}; cat {shlex.quote(str(err_file))} >&2"),
        Step("q", "echo q"),
    ]
    res, _, _ = roundtrip(steps)
    assert res["p"].stdout == payload and res["p"].stderr == err_payload
    assert res["q"].stdout == b"q\n"


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_markers_take_one_write_per_stream_per_step_boundary(n):
    # Every write the box makes between steps can become its own SSH packet: n steps take n + 1
    # printfs on stdout and n + 1 on stderr (begin+start, end+start / start, end+batch end) —
    # and still split back per step, stderr included.
    steps = [Step(f"s{i}", f"echo out{i}; echo err{i} >&2; exit {i}") for i in range(n)]
    script = framing.render_batch(steps, NONCE, 3).decode()
    printfs = script.count("printf '")
    to_err = script.count("' >&2")
    assert (printfs - to_err, to_err) == (n + 1, n + 1)
    res, _, _ = roundtrip(steps, batch_id=3)
    for i in range(n):
        r = res[f"s{i}"]
        assert (r.stdout, r.stderr, r.exit_code) == (f"out{i}\n".encode(), f"err{i}\n".encode(), i)


def test_empty_batch_still_frames():
    out, err = run_sh(framing.render_batch([], NONCE, 4))
    assert framing.end_marker(NONCE, 4) in out and framing.end_marker(NONCE, 4) in err
    assert framing.split_batch([], out, err, NONCE, 4) == {}
