"""Alert routing: severities to sinks, hostile text made inert inside OSC, one summary for many,
no repeats, the alert log's mode, and dedup across two processes' stores."""

from __future__ import annotations

import os
import re
import stat
from types import MappingProxyType

import pytest
from hypothesis import given, settings, strategies as st

from gpudash.config import AlertsConfig
from gpudash.model import Event, State
from gpudash.notify import Notifier, severity_of
from gpudash.notify.logfile import AlertLog
from gpudash.notify.terminal import desktop_sequence, osc9, osc777, osc_safe, pick_protocol
from gpudash.notify.webhook import redact_url, scrub
from gpudash.sanitize import is_inert
from gpudash.store import Store

T = 1_700_000_000.0
HOSTILE = ("job\x07name;evil\x1b]52;c;ZXZpbA==\x07\x1b\\ \x9c\x9d8;;http://x\x1b\\ "
           "\x1b[2J\u202eexe.txt\nsecond line;;")


class Tty:
    """What the terminal would receive."""

    def __init__(self) -> None:
        self.data = ""

    def __call__(self, text: str) -> None:
        self.data += text


def ev(host="a", key="disk.bytes:/", new=State.CRIT, old=State.OK, at=T, msg=None) -> Event:
    return Event(at, host, key, old, new, msg or f"{key}: {old.value if old else 'new'} → {new.value}")


def make(tmp_path, **kw) -> tuple[Notifier, Tty, list]:
    tty, shown = Tty(), []
    kw.setdefault("env", {})
    n = Notifier(kw.pop("config", None), kw.pop("store", None), writer=tty, screen=shown.append,
                 log_path=tmp_path / "alerts.log", **kw)
    return n, tty, shown


# ----------------------------------------------------------------------------- OSC safety


def _osc_fields(seq: str, prefix: str) -> list[str]:
    assert seq.startswith(prefix) and seq.endswith("\x07")
    inner = seq[len(prefix):-1]
    assert "\x1b" not in inner and "\x07" not in inner
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", inner)
    return inner.split(";")


def test_osc777_with_hostile_text_is_inert():
    seq = osc777(HOSTILE, HOSTILE)
    fields = _osc_fields(seq, "\x1b]777;notify;")
    assert len(fields) == 2  # title; body — no injected field
    assert all(is_inert(f) for f in fields)
    assert "\u202e" not in seq


def test_osc9_with_hostile_text_is_inert():
    fields = _osc_fields(osc9(HOSTILE, HOSTILE), "\x1b]9;")
    assert len(fields) == 1 and fields[0].startswith("gpudash: ")


@settings(deadline=None, max_examples=300)
@given(st.text(), st.text())
def test_any_text_stays_inside_its_osc_field(title, body):
    assert len(_osc_fields(osc777(title, body), "\x1b]777;notify;")) == 2
    assert len(_osc_fields(osc9(title, body), "\x1b]9;")) == 1


def test_tmux_passthrough_wraps_and_doubles_escapes():
    seq = desktop_sequence("t", HOSTILE, {"TMUX": "/tmp/tmux-0/default,1,0"}, "777")
    assert seq.startswith("\x1bPtmux;") and seq.endswith("\x1b\\")
    inner = seq[len("\x1bPtmux;"):-2]
    # every ESC inside is doubled: undoubling gives back exactly the plain sequence
    assert "\x1b" not in inner.replace("\x1b\x1b", "")
    assert inner.replace("\x1b\x1b", "\x1b") == osc777("t", HOSTILE)


def test_protocol_choice():
    assert pick_protocol({}) == "777"
    assert pick_protocol({"LC_TERMINAL": "iTerm2"}) == "9"
    assert pick_protocol({"WT_SESSION": "x"}) == "9"
    both = desktop_sequence("t", "b", {}, "both")
    assert both.count("\x1b]") == 2


def test_osc_safe_keeps_ordinary_text():
    assert osc_safe("disk / 97% used → CRIT (ckpt 12 GB)") == "disk / 97% used → CRIT (ckpt 12 GB)"
    assert osc_safe("a;b") == "a,b"


# ----------------------------------------------------------------------------- routing


async def test_default_routes_by_severity(tmp_path):
    n, tty, shown = make(tmp_path)
    d = await n.notify([ev(new=State.OK, old=State.WARN, key="gpu.temp:0")])  # info
    assert tty.data == "" and shown == [] and d.file_lines == 1
    d = await n.notify([ev(new=State.WARN, key="gpu.temp:0")])  # warning
    assert tty.data == "" and len(shown) == 1 and d.file_lines == 1
    d = await n.notify([ev(new=State.CRIT, key="disk.bytes:/")])  # critical
    assert tty.data.count("\x07") == 2  # the bell and the OSC terminator
    assert tty.data.startswith("\x07\x1b]777;notify;gpudash CRIT a;")
    assert len(shown) == 2 and "tmux" not in d.notices and "webhook" not in d.notices
    log = (tmp_path / "alerts.log").read_text()
    assert [ln.split()[1] for ln in log.splitlines()] == ["INFO", "WARNING", "CRITICAL"]


def test_severity_mapping():
    assert [severity_of(ev(new=s)) for s in (State.CRIT, State.WARN, State.UNKNOWN, State.OK)] \
        == ["critical", "warning", "warning", "info"]


async def test_config_routes_are_followed(tmp_path):
    cfg = AlertsConfig(routes=MappingProxyType({"info": (), "warning": ("bell",),
                                                "critical": ("file",)}))
    n, tty, shown = make(tmp_path, config=cfg)
    await n.notify([ev(new=State.WARN)])
    assert tty.data == "\x07"
    await n.notify([ev(new=State.CRIT, key="other")])
    assert tty.data == "\x07" and shown == []
    assert "CRITICAL" in (tmp_path / "alerts.log").read_text()


def test_webhook_if_set_goes_to_critical(tmp_path):
    cfg = AlertsConfig(webhook_url_env="GD_HOOK")
    n, _, _ = make(tmp_path, config=cfg, env={"GD_HOOK": "https://h/x"})
    assert "webhook" in n.sinks_for("critical") and "webhook" not in n.sinks_for("warning")
    plain, _, _ = make(tmp_path, config=AlertsConfig())
    assert "webhook" not in plain.sinks_for("critical")


def test_tmux_sink_only_inside_tmux(tmp_path):
    n, _, _ = make(tmp_path, env={})
    assert "tmux" not in n.sinks_for("critical")
    n, _, _ = make(tmp_path, env={"TMUX": "/tmp/tmux-0/default,1,0"})
    assert "tmux" in n.sinks_for("critical")


# ----------------------------------------------------------------------------- batching


async def test_many_at_once_make_one_summary(tmp_path):
    n, tty, shown = make(tmp_path)
    events = [ev(host=h, key=f"disk.bytes:/d{i}", new=s)
              for h, i, s in [("a", 0, State.CRIT), ("a", 1, State.CRIT), ("a", 2, State.WARN),
                              ("b", 0, State.CRIT), ("b", 1, State.WARN), ("c", 0, State.CRIT),
                              ("c", 1, State.WARN)]]
    d = await n.notify(events)
    assert tty.data.count("\x1b]777;") == 1 and tty.data.startswith("\x07\x1b]")
    assert tty.data.count("\x07") == 2  # one bell + one OSC
    assert "gpudash: 4 alerts on 3 hosts;4 CRIT — a: disk.bytes:/d0 CRIT, disk.bytes:/d1 CRIT | b:" \
        in tty.data
    # the critical sinks summarise their 4 events; the screen its 7
    assert len(shown) == 1 and shown[0].title == "gpudash: 7 alerts on 3 hosts"
    assert shown[0].body.startswith("4 CRIT, 3 WARN — ")
    assert d.notices["desktop"][0].title == "gpudash: 4 alerts on 3 hosts"
    assert d.file_lines == 7


async def test_few_at_once_are_told_one_by_one(tmp_path):
    n, tty, shown = make(tmp_path)
    await n.notify([ev(key="a1"), ev(key="a2")])
    assert tty.data.count("\x1b]777;") == 2 and tty.data.count("\x07") == 3  # 1 bell + 2 OSC
    assert len(shown) == 2


async def test_submitted_events_are_batched(tmp_path):
    n, tty, shown = make(tmp_path, coalesce_s=30)
    for i in range(6):
        n.submit(ev(host=f"h{i % 2}", key=f"k{i}"))
    assert tty.data == ""  # nothing sent while the batch is open
    await n.drain()
    assert len(shown) == 1 and shown[0].title == "gpudash: 6 alerts on 2 hosts"
    await n.drain()  # nothing left
    assert len(shown) == 1


# ----------------------------------------------------------------------------- no repeats


async def test_same_condition_is_not_repeated_within_the_window(tmp_path):
    n, tty, shown = make(tmp_path, repeat_window_s=600)
    await n.notify([ev(at=T)])
    await n.notify([ev(at=T + 10, new=State.OK, old=State.CRIT)])
    d = await n.notify([ev(at=T + 20)])  # flapped back: not again
    assert d.suppressed and not d.claimed
    d = await n.notify([ev(at=T + 700)])
    assert d.claimed
    assert tty.data.count("\x1b]777;") == 2


async def test_two_instances_sharing_a_store_notify_once(tmp_path):
    db = tmp_path / "h.sqlite3"
    s1, s2 = Store.open(db, repeat_window_s=0), Store.open(db, repeat_window_s=0)
    n1, tty1, _ = make(tmp_path, store=s1)
    n2, tty2, _ = make(tmp_path, store=s2)
    await n1.notify([ev(at=T)])
    await n2.notify([ev(at=T + 4)])  # the other instance saw the same change a bit later
    assert tty1.data.count("\x07") == 2 and tty2.data == ""
    s1.close()
    s2.close()


# ----------------------------------------------------------------------------- alert log


async def test_alert_log_is_private_and_inert(tmp_path):
    old = os.umask(0o022)
    try:
        n, _, _ = make(tmp_path)
        await n.notify([ev(msg="log says " + HOSTILE, new=State.WARN)])
    finally:
        os.umask(old)
    path = tmp_path / "alerts.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.count("\n") == 1 and is_inert(text.rstrip("\n"))


def test_alert_log_rotates(tmp_path):
    log = AlertLog(tmp_path / "a.log", max_bytes=1000)
    for i in range(50):
        assert log.write([f"line {i} " + "x" * 50])
    assert (tmp_path / "a.log").stat().st_size <= 1000
    assert (tmp_path / "a.log.1").exists()


# ----------------------------------------------------------------------------- webhook text


@pytest.mark.parametrize("url", [
    "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
    "https://discord.com/api/webhooks/123/XXXXSECRET?wait=true",
    "http://user:XXXXSECRET@127.0.0.1:8080/hook",
])
def test_redaction_keeps_only_scheme_and_host(url):
    red = redact_url(url)
    assert "XXXXSECRET" not in red and red.count("/") == 2
    assert "XXXXSECRET" not in scrub(f"failed to POST {url}: refused", url)
