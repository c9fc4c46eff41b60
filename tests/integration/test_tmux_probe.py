"""The tmux probe against a REAL tmux server (private socket), its script run by real /bin/sh."""

from __future__ import annotations

import uuid

import pytest

from gpudash.model import ProbeError, Reason
from gpudash.probes.discovery import best_log, best_tmux_session, discover_step, parse_discovery
from gpudash.probes.tmux import parse_tmux, parse_tmux_capture, tmux_capture_step, tmux_step
from gpudash.sanitize import is_inert
from tests.services.tmux import run_step, tmux_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.tmux


def sessions(server) -> dict:
    res = run_step(tmux_step(socket=server.socket))
    parsed = parse_tmux(res.stdout, res.stderr, res.exit_code)
    assert not isinstance(parsed, ProbeError), parsed
    return {s.name: s for s in parsed}


def test_hostile_session_names_stay_literal_and_inert(tmux_server, tmp_path):
    names = ["a|b", "\x1b[31mred", "[bold]hi", "x'; touch pwned; '", "$(touch pwned)", "tab\there"]
    for name in names:
        tmux_server.new_session(name, "sleep 600")
    found = sessions(tmux_server)
    # tmux escapes control characters itself: ESC is stored as the text `\033`, TAB as `\t`.
    assert set(found) == {"keep", "a|b", "\\033[31mred", "[bold]hi", "x'; touch pwned; '",
                          "$(touch pwned)", "tab\\there"}
    assert all(is_inert(n) for n in found)
    ab = found["a|b"]
    assert ab.windows == 1 and ab.attached is False
    assert ab.pane_pid and ab.pane_pid > 1 and ab.pane_dead is False and ab.pane_dead_status is None
    assert ab.pane_command == "sleep"
    assert isinstance(ab.created_epoch, int) and ab.created_epoch > 1_600_000_000
    assert not (tmp_path / "pwned").exists()


def test_dead_pane_reports_exit_status_137(tmux_server):
    tmux_server.new_session("died", "exit 137")
    tmux_server.new_session("ok", "true")

    def both_dead_with_status():
        # tmux marks the pane dead when its pty closes, which can come a moment before it has
        # reaped the child: pane_dead=1 with an empty status is real, and parses as None.
        s = sessions(tmux_server)
        done = all(n in s and s[n].pane_dead and s[n].pane_dead_status is not None for n in ("died", "ok"))
        if not done:
            tmux_server.reap()  # the exit may sit unreaped (tests/services/tmux.py)
        return s if done else None

    dead = tmux_server.wait_for(both_dead_with_status, "both panes to be dead with a status")
    assert dead["died"].pane_dead is True and dead["died"].pane_dead_status == 137
    assert dead["ok"].pane_dead_status == 0
    assert dead["keep"].pane_dead is False and dead["keep"].pane_dead_status is None


def test_no_server_is_an_empty_tuple_not_an_error():
    res = run_step(tmux_step(socket=f"gpudash-none-{uuid.uuid4().hex}"))
    assert res.exit_code == 1 and b"error connecting to" in res.stderr  # what real tmux says
    assert parse_tmux(res.stdout, res.stderr, res.exit_code) == ()


def test_capture_targets_the_exact_session(tmux_server):
    # "a" is a prefix of "abc": without `=NAME:` tmux would happily pick the wrong one.
    tmux_server.new_session("abc", "echo from-abc; sleep 600")
    tmux_server.new_session("a|b", "echo from-a-bar-b; sleep 600")
    tmux_server.new_session("a", "printf 'line1\\nline2\\n'; sleep 600")

    def capture(name):
        res = run_step(tmux_capture_step(name, 50, socket=tmux_server.socket))
        return parse_tmux_capture(res.stdout, res.stderr, res.exit_code)

    assert tmux_server.wait_for(lambda: capture("a") == ("line1", "line2"), "pane a output")
    assert tmux_server.wait_for(lambda: capture("a|b") == ("from-a-bar-b",), "pane a|b output")
    missing = capture("nosuch")
    assert isinstance(missing, ProbeError) and missing.reason is Reason.NOT_FOUND


def test_capture_with_hostile_name_runs_nothing(tmux_server, tmp_path):
    for name in ("$(touch pwned)", "x'; touch pwned; '", "`touch pwned`"):
        tmux_server.new_session(name, "echo hostile-ok; sleep 600")
        got = tmux_server.wait_for(
            lambda: (lambda r: parse_tmux_capture(r.stdout, r.stderr, r.exit_code))(
                run_step(tmux_capture_step(name, 20, socket=tmux_server.socket), cwd=str(tmp_path))
            ) == ("hostile-ok",),
            f"pane {name!r}",
        )
        assert got
    assert not (tmp_path / "pwned").exists()


def test_discovery_maps_a_run_in_a_pane_to_its_session(tmux_server):
    token = f"train_fake_{uuid.uuid4().hex[:10]}"
    # stdout is the pane's tty: no log file, so the pane itself is the fallback source.
    tmux_server.new_session("run", f"python3 -c 'import time; time.sleep(600)' {token}")

    def ours():
        res = run_step(discover_step(tmux_socket=tmux_server.socket))
        d = parse_discovery(res.stdout, res.stderr, res.exit_code)
        assert not isinstance(d, ProbeError), d
        mine = [c for c in d.candidates if token in c.command]
        return (d, mine[0]) if mine else None

    d, cand = tmux_server.wait_for(ours, "the fake run to be discovered")
    assert cand.source == "cmdline" and cand.tmux_session == "run" and cand.log_path is None
    assert {s.name for s in d.tmux_sessions} >= {"keep", "run"}
    only = type(d)(candidates=(cand,), tmux_sessions=d.tmux_sessions)
    assert best_log(only) is None
    assert best_tmux_session(only) == "run"
