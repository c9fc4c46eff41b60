"""The real thing in a real tmux pane: the app started by `run_tui` on the fake fleet, driven
with send-keys, read with capture-pane, and `q` ends the process with status 0.

Skipped when tmux is missing (fails under CI=true: tests/services/require.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.services.tmux import tmux_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.tmux
ROOT = Path(__file__).resolve().parents[2]


def _pane(server, target: str) -> str:
    return server.run("capture-pane", "-p", "-t", target).stdout


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_tui_in_a_tmux_pane(tmux_server, size, tmp_path):  # noqa: F811
    server = tmux_server
    status_file = tmp_path / "exit-status"
    server.run("set-option", "-sg", "escape-time", "10")  # the README's advice
    cmd = (f"cd {shlex.quote(str(ROOT))} && XDG_CONFIG_HOME={shlex.quote(str(tmp_path))} "
           f"{shlex.quote(sys.executable)} -m tests.ui.fake_fleet; "
           f"echo $? > {shlex.quote(str(status_file))}.part && mv {shlex.quote(str(status_file))}.part "
           f"{shlex.quote(str(status_file))}")
    w, h = size
    server.run("new-session", "-d", "-s", "ui", "-x", str(w), "-y", str(h), cmd)
    server.wait_for(lambda: "h100-train" in _pane(server, "ui"), "the overview")
    text = _pane(server, "ui")
    assert "unreachable since 14:02" in text and "UNKNOWN gone-box" in text
    assert all(len(line) <= w for line in text.splitlines())

    server.run("send-keys", "-t", "ui", "l", "Enter")  # l: next host in any grid width
    server.wait_for(lambda: "eval-box (ssh)" in _pane(server, "ui"), "the host detail")
    server.wait_for(lambda: "/mnt/small" in _pane(server, "ui"), "the disk panel")

    server.run("send-keys", "-t", "ui", "Escape")
    server.wait_for(lambda: "gpudash  5 hosts" in _pane(server, "ui"), "back on the overview")
    server.run("send-keys", "-t", "ui", "q")

    # The shell in the pane reaps the app and writes its status to a file. (tmux's own
    # #{pane_dead_status} is racy — tmux 3.3a can mark the pane dead on the pty's EOF before it
    # has the status — and text echoed after the app's alternate screen may not be captured.)
    def exit_status():
        return status_file.read_text().strip() if status_file.exists() else None

    assert server.wait_for(exit_status, "the app to exit") == "0"
