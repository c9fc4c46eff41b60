"""`tmux display-message` with hostile text, against a real tmux server and client: the text is
shown literally, and a `#(command)` in it never runs."""

from __future__ import annotations

import os
import subprocess

import pytest

from gpudash.model import Event, State
from gpudash.notify import Notifier
from gpudash.notify.tmux_sink import display_argv, display_message, tmux_literal
from tests.services.tmux import tmux_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.tmux


def test_literal_doubles_every_hash_and_uses_argv():
    assert tmux_literal("a #(rm -rf ~) #{pane_id} ##") == "a ##(rm -rf ~) ##{pane_id} ####"
    argv = display_argv("-t evil ; kill-server")
    assert argv[:3] == ["tmux", "display-message", "--"] and len(argv) == 4


@pytest.fixture
def attached(tmux_server):  # noqa: F811
    """A control-mode client attached to the test server (display-message needs a client)."""
    server = tmux_server
    client = subprocess.Popen([server.tmux, "-L", server.socket, "-f", "/dev/null", "-C",
                               "attach", "-t", "keep"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server.wait_for(lambda: server.run("list-clients").stdout.strip(), "a client")
        sock = server.run("display-message", "-p", "#{socket_path}").stdout.strip()
        env = {"TMUX": f"{sock},{os.getpid()},0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        yield server, env
    finally:
        client.kill()
        client.wait()


def _messages(server) -> str:
    return server.run("show-messages").stdout


async def test_display_message_shows_hostile_text_literally(attached, tmp_path):
    server, env = attached
    marker = tmp_path / "pwned"
    text = f"job #(touch {marker}) #{{pane_id}} #[fg=red] done"
    assert await display_message(text, env=env, tmux=server.tmux)
    # the message log holds the expanded text: #( and #{ came out literal (nothing ran, no
    # pane id), and the style stays escaped as ##[ (drawn as a literal #[ on the status line)
    assert f"message: job #(touch {marker}) #{{pane_id}} ##[fg=red] done" in _messages(server)
    assert not marker.exists()


async def test_notifier_tmux_sink_end_to_end(attached, tmp_path):
    server, env = attached
    marker = tmp_path / "pwned2"
    n = Notifier(None, writer=lambda s: None, env=env, tmux_bin=server.tmux,
                 log_path=tmp_path / "alerts.log")
    ev = Event(1.0, "gpu1", "run.ended", State.OK, State.CRIT,
               f"run ended: #(touch {marker})\x1b]0;title\x07")
    d = await n.notify([ev])
    assert d.notices["tmux"]
    msgs = _messages(server)
    assert f"gpudash CRIT gpu1: run ended: #(touch {marker})" in msgs
    assert "\x1b" not in msgs and not marker.exists()
