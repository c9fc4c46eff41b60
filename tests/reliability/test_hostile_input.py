"""Hostile input: what a box sends must reach the screen inert, and what a user configures must
reach the box as data, never as a command.

Unlike tests/ui/test_hostile.py (which pushes raw strings into the widgets to prove the UI's own
defence), here the hostile bytes come FROM THE BOX: they go through the transport, the real
parsers, the watcher, the health engine and the triage, and then the real widgets. Every remote
string users can see carries the payload: log lines, process names, command lines, tmux session
names, GPU names, mount points, Slurm job names, triage evidence, error messages.

"Inert" means: no ESC, C1 control, bidi override or zero-width character in any rendered segment
or in the exported screenshot, and markup shown as the literal text it is — a ``[@click=app.quit]``
that is clicked does not quit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import time

import pytest

from gpudash.model import Reason
from gpudash.sanitize import is_inert
from gpudash.transport.base import Step, StepResult
from gpudash.transport.replay import ReplayTransport
from gpudash.watch.fleet import Fleet
from gpudash.watch.host import HostWatcher
from tests.reliability.conftest import fast_spec
from tests.services.ssh_server import BIN

FULL = os.environ.get("GD_RELIABILITY_FULL") == "1"  # scripts/reliability.py sets it

# Every kind of terminal attack at once: clear screen (CSI 2J), clipboard write (OSC 52), a
# hyperlink (OSC 8), a DCS query, an 8-bit CSI (C1 0x9b), a right-to-left override (U+202E), a
# zero-width space, and three kinds of Textual/Rich markup.
MARKUP = "[bold red]x[/][link=https://evil.example]l[/link][@click=app.quit]Q[/]"
ESCAPES = ("\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\"
           "\x1bP+q544e\x1b\\\x9b31m\u202eevil\u200b")
HOSTILE = ESCAPES + MARKUP
#: what must be on screen instead: the escapes gone, the markup as literal text
VISIBLE = "linkevil" + MARKUP
# What must never reach a terminal: ESC, C0 (bar TAB/LF), DEL, C1, bidi controls, zero-width.
_DANGER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def danger_count(text: str) -> int:
    return len(_DANGER.findall(text))


# ----------------------------------------------------------------------------- a hostile box


def _ps_row(pid: int, command: str) -> str:
    return f"{pid:>7} {3600:>8} {97.5:>5} {18_432_112:>9} {42:>4} Sun Nov 22 13:30:00 2026 {command}\n"


class HostileBox:
    """A box whose every free-text output carries :data:`HOSTILE`, in the real tools' formats
    (the same formats gpudash.demo.box.SimBox replays). ``errors``: every probe fails instead,
    with the payload in its error message."""

    LOG = ("step 10 loss 0.52 " + HOSTILE + "\n"
           "plain line with a hyperlink " + HOSTILE + "\n"
           "Traceback (most recent call last):\n"
           '  File "train.py", line 10, in <module>\n'
           "KeyError: '" + HOSTILE + "'\n").encode()

    def __init__(self, *, errors: bool = False, down: bool = False) -> None:
        self.errors = errors
        self.down = down

    def link_error(self, now: float):
        return (Reason.UNREACHABLE, "connection closed by the box: " + HOSTILE) if self.down else None

    def answer(self, step: Step, now: float) -> StepResult:
        fn = getattr(self, ("_err_" if self.errors else "_") + step.key, None)
        if fn is None:
            return StepResult(step.key, b"", b"", 0)
        out = fn(step)
        if isinstance(out, StepResult):
            return out
        return StepResult(step.key, out.encode() if isinstance(out, str) else out, b"", 0)

    # -------------------------------------------------------------- data everywhere
    def _gpu(self, step):
        return (f"0, GPU-{HOSTILE}, NVIDIA H100 {HOSTILE}, 00000000:18:00.0, 535.183, P0, 41, 50,"
                " 97, 60, 81559, 70000, 11559, 650, 700, 1980, 2619, 1980, [N/A], Disabled,"
                " Default\n")

    def _gpu_health(self, step):
        return "0, 0, 0x0000000000000000\n"

    def _gpu_apps(self, step):
        return f"4242, python {HOSTILE}, 70000, GPU-{HOSTILE}\n"

    def _procs(self, step):
        return _ps_row(4242, f"python train.py --name {HOSTILE}")

    def _tmux(self, step):
        created = int(time.time()) - 3600
        return f"$1\t{created}\t1\t0\ttrain-{HOSTILE}\n"

    def _squeue(self, step):
        return f"777|job-{HOSTILE}|alice|RUNNING|1:00:00|2:00:00|1|node-{HOSTILE}\n"

    def _df(self, kind: str):
        head = ("Filesystem 1-blocks Used Available Capacity Mounted on\n" if kind == "b" else
                "Filesystem Inodes IUsed IFree IUse% Mounted on\n")
        return (head + f"/dev/vdb{HOSTILE} 1000000 500000 500000 50% /data/{HOSTILE}\n"
                "/dev/vda 1000000 100000 900000 10% /\n")

    def _df_bytes(self, step):
        return self._df("b")

    def _df_inodes(self, step):
        return self._df("i")

    def _memory(self, step):
        from gpudash.demo import traces

        return traces.read("cgroup.txt")

    def _files(self, step):
        return b"".join(f"M\t{i}\t\t\t{p}\0".encode() for i, p in enumerate(step.params.get("paths", [])))

    def _ckpt(self, step):
        mtime = time.time() - 60
        return (b"EXISTS\n/ckpt\0" + f"d\t4096\t{mtime:.1f}\tcheckpoint-{HOSTILE}\0".encode()
                + f"f\t1000\t{mtime:.1f}\tcheckpoint-{HOSTILE}/model-{HOSTILE}.safetensors\0".encode())

    def _log(self, step):
        p = step.params
        data, off = self.LOG, int(p.get("offset", 0))
        reset = 1 if len(data) < off else 0
        off = 0 if reset else off
        body = data[off:]
        head = f"LOG\t{len(data)}\t99\t{int(time.time())}\t{off}\t{len(body)}\t{reset}\t0\n"
        return head.encode() + f"/runs/{HOSTILE}/train.log".encode() + b"\0" + body

    # -------------------------------------------------------------- errors everywhere
    def _err_nvsmi(self, step):
        return StepResult(step.key, f"Failed to initialize NVML: {HOSTILE}\n".encode(), b"", 18)

    _err_gpu = _err_gpu_health = _err_gpu_apps = _err_nvsmi

    def _err_df(self, step):
        return StepResult(step.key, b"", f"df: /data/{HOSTILE}: No such file or directory\n".encode(), 1)

    _err_df_bytes = _err_df_inodes = _err_df

    def _err_log(self, step):
        return StepResult(step.key, f"LOG\tgarbage {HOSTILE}\n".encode(), f"tail: {HOSTILE}\n".encode(), 1)

    def _err_procs(self, step):
        return StepResult(step.key, b"", f"pgrep: {HOSTILE}\n".encode(), 2)

    def _err_tmux(self, step):
        return StepResult(step.key, b"", f"error: {HOSTILE}\n".encode(), 1)

    def _err_squeue(self, step):
        return StepResult(step.key, b"", f"squeue: error: {HOSTILE}\n".encode(), 1)


def hostile_fleet() -> Fleet:
    specs, transports = [], {}
    for name, box in (("evil", HostileBox()), ("evil-errors", HostileBox(errors=True)),
                      ("evil-down", HostileBox(down=True))):
        # the config's own values are plain: only the box speaks hostile here
        spec = fast_spec(name, transport="replay", log="/runs/train.log", pgrep="train",
                         slurm_user="alice", tmux_session="train", markers=("/runs/DONE",),
                         checkpoint_dir="/ckpt", mounts=("/", "/data"))
        specs.append(spec)
        transports[name] = ReplayTransport(name, box, latency=0.001)
    return Fleet(specs, transports=transports)


def strings_in(value, seen=None):
    """Every str inside a (nested) dataclass / tuple / dict value."""
    if seen is None:
        seen = set()
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings_in(getattr(value, f.name), seen)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k, seen)
            yield from strings_in(v, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from strings_in(v, seen)
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("gpudash"):
        yield from strings_in(vars(value), seen)


async def test_hostile_box_output_is_inert_in_every_view_string(figures):
    """Through the real parsers, watcher, health engine and triage: not one string of the views
    carries an escape, a C1 control or a bidi override; the payload's text is still there."""
    fleet = hostile_fleet()
    try:
        for w in fleet.watchers.values():
            await w.full_round()
            await w.full_round()
        views = [w.view for w in fleet.watchers.values()]
    finally:
        await fleet.close()
    n = 0
    texts = []
    for view in views:
        for s in strings_in(view):
            n += 1
            assert is_inert(s) and danger_count(s) == 0, repr(s)
            texts.append(s)
    figures.inputs("hostile remote strings checked in views", n)
    joined = "\n".join(texts)
    # the payload reached every kind of field, sanitised (not dropped)
    evil = views[0].snapshot
    assert any("linkevil" in g.name for g in evil.gpus)
    assert any("linkevil" in a.process_name for a in evil.apps)
    assert any("linkevil" in p.command for p in evil.processes)
    assert any("linkevil" in t.name for t in evil.tmux)
    assert any("linkevil" in j.name for j in evil.slurm)
    assert any("linkevil" in d.mount for d in evil.disks)
    assert any("linkevil" in line for line in evil.log_lines)
    assert views[0].triage is not None and views[0].triage.cls == "code_error"
    assert any("linkevil" in e.text for e in views[0].triage.evidence)
    errs = views[1].snapshot
    assert "linkevil" in errs.gpu_error.message
    assert any("linkevil" in m or "linkevil" in msg for m, msg in errs.disk_errors)
    assert "linkevil" in views[2].snapshot.link.message
    assert MARKUP in joined  # markup is data: kept literally, never interpreted


# ----------------------------------------------------------------------------- through the TUI


def screen_danger(app) -> tuple[int, str]:
    from tests.ui.helpers import screen_text, segments

    n = sum(danger_count(seg.text) for seg in segments(app))
    n += danger_count(app.export_screenshot())
    return n, screen_text(app)


def clickable_segments(app) -> list[str]:
    """Segments that carry a link or an action: had the payload been parsed as markup, its
    `[link=…]` and `[@click=…]` would be here."""
    from tests.ui.helpers import segments

    out = []
    for seg in segments(app):
        style = seg.style
        if style is None:
            continue
        meta = style.meta or {}
        if style.link or "@click" in meta:
            out.append(seg.text)
    return out


async def test_hostile_box_output_renders_inert_on_every_screen(figures):
    from gpudash.ui.app import GpudashApp
    from gpudash.ui.screens.host import HostScreen
    from gpudash.ui.screens.overview import OverviewScreen
    from gpudash.ui.screens.split import SplitScreen
    from gpudash.ui.screens.triage import TriageScreen

    fleet = hostile_fleet()
    app = GpudashApp(fleet)
    seen_literal = set()

    async def check(pilot, where: str) -> str:
        await pilot.pause(0.3)
        n, text = screen_danger(app)
        figures.screen(n)
        assert n == 0, f"{n} dangerous characters on the {where} screen"
        hostile_links = [t for t in clickable_segments(app) if "evil" in t or t.strip() in "lQ"]
        assert hostile_links == [], f"markup from the box became a link/action on {where}"
        for needle in ("[bold red]x[/]", "[@click=app.quit]Q[/]", "[link=https://evil.example]"):
            if needle in text:
                seen_literal.add((where, needle))
        return text

    async with app.run_test(size=(180, 50)) as pilot:
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while not (all(fleet.view(h) is not None for h in fleet.host_names())
                   and fleet.view("evil").triage is not None and "evil" in app.views):
            assert loop.time() < end, "the hostile fleet never produced views"
            await pilot.pause(0.1)
        # The data is in and does not change: stop the rounds, so screens are not re-rendered
        # while they are being pushed (a view update landing on a host screen whose panels are
        # not composed yet crashes the app today — reported to the UI's owner).
        for h in fleet.host_names():
            fleet.set_paused(h, True)
        await pilot.pause(0.5)
        text = await check(pilot, "overview")
        assert "linkevil" in text
        # click the literal [@click=app.quit] wherever it shows: it is text, not an action
        row = next((i for i, ln in enumerate(text.splitlines()) if "[@click=app.quit]" in ln), None)
        assert row is not None, text
        col = text.splitlines()[row].index("[@click=app.quit]") + len("[@click=")
        await pilot.click(offset=(col, row))
        await pilot.pause(0.2)
        assert app.is_running and app.return_code is None, "clicking remote text quit the app"

        async def open_host(name: str) -> None:
            for _ in range(5):
                if isinstance(app.screen, OverviewScreen):
                    break
                await pilot.press("escape")
                await pilot.pause(0.2)
            app.screen.select_host(name)  # the overview's cursor, as the arrow keys move it
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, HostScreen) and app.screen.host == name

        await open_host("evil")
        text = await check(pilot, "host")
        for needle in ("NVIDIA H100 linkevil", "python linkevil", "train-linkevil",
                       "job-linkevil", "/data/linkevil", "loss 0.52 linkevil[bold red]x[/]"):
            assert needle in text, f"{needle!r} not on the host screen:\n{text}"
        await pilot.press("e")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TriageScreen)
        text = await check(pilot, "triage")
        assert "KeyError" in text and "linkevil" in text
        await open_host("evil-errors")  # the host whose every probe failed
        text = await check(pilot, "host (errors)")
        assert "linkevil" in text
        if FULL:  # the split view shows the same widgets; the full run visits it too
            await pilot.press("escape", "s")
            await pilot.pause(0.3)
            assert isinstance(app.screen, SplitScreen)
            await check(pilot, "split")
        assert app.is_running
    await fleet.close()
    figures.inputs("hostile strings rendered (screens x fields)", 5 * 9)
    assert {w for w, _ in seen_literal} >= {"overview", "host", "triage"}


# ----------------------------------------------------------------------------- real tools


async def test_real_tools_hostile_log_process_and_tmux(tmp_path, figures):
    """Hostile text made by the real tools of a box (the local transport: real sh, ps, pgrep,
    tmux, tail): a log line, a process's command line, a tmux session name."""
    from gpudash.transport.local import LocalTransport

    token = "gdhost" + os.urandom(4).hex()
    log = tmp_path / "train.log"
    log.write_bytes(b"step 1 loss 1.0 " + HOSTILE.encode() + b"\n"
                    + b"\x1b]52;c;" + b"A" * 3000 + b"\x07 long OSC\n")
    # argv[0] is whatever the process says it is: a hostile command line, as ps shows it
    proc = subprocess.Popen([f"python {token} {HOSTILE}", "60"], executable="/bin/sleep")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", TMUX_TMPDIR=str(tmp_path))
    tmux = shutil.which("tmux")
    session = f"run-{HOSTILE}".replace(":", "").replace(".", "")
    if tmux:
        subprocess.run([tmux, "new-session", "-d", "-s", session, "sleep 60"], env=env,
                       check=True, capture_output=True)
    transport = LocalTransport(env=env)
    w = HostWatcher(fast_spec("local", transport="local", log=str(log), pgrep=token), transport)
    try:
        view = await w.full_round()
    finally:
        await transport.close()
        proc.kill()
        proc.wait()
        if tmux:
            subprocess.run([tmux, "kill-server"], env=env, capture_output=True)
    s = view.snapshot
    checked = 0
    for text in strings_in(view):
        checked += 1
        assert is_inert(text) and danger_count(text) == 0, repr(text)
    figures.inputs("hostile strings from real tools checked", checked)
    assert any("linkevil" in line for line in s.log_lines)
    # ps itself prints control characters as '.' (LC_ALL=C); what is left is literal text
    assert any(token in p.command and MARKUP in p.command for p in s.processes), s.processes
    if tmux:
        assert any(t.name.startswith("run-") for t in s.tmux), s.tmux


# ----------------------------------------------------------------------------- config injection

MARK = "GDPWNED"


def injections(marker_dir) -> list[str]:
    m = f"{marker_dir}/{MARK}"
    out = [
        f"/tmp/x'; touch {m}.1; '",
        f'/tmp/x"; touch {m}.2; "',
        f"/tmp/x$(touch {m}.3)",
        f"/tmp/x`touch {m}.4`",
        f"/tmp/x; touch {m}.5",
        f"/tmp/x\\'$(touch {m}.8)",
    ]
    if FULL:
        out += [f"/tmp/x && touch {m}.6", f"/tmp/x | touch {m}.7"]
    return out


async def test_config_values_never_inject_remote_commands(inproc, tmp_path, figures):
    """Every config string that reaches a remote command, set to quotes, `;`, `$()`, backticks,
    `&&` and `|`: through the real TOML loader (which refuses what is not a user name or a job
    id), and straight into a WatchSpec (`gpudash watch HOST` has no loader; and it proves the
    quoting itself), then every probe group on an SSH box running real /bin/sh: no marker file."""
    import tomli_w

    from gpudash.config import ConfigError, load_config
    from gpudash.watch.spec import WatchSpec, spec_from_host_config

    marker_dir = tmp_path / "box"
    marker_dir.mkdir()
    payloads = injections(marker_dir)
    free_keys = ("log", "tmux_session", "pgrep", "ray_address", "checkpoint_dir", "script")
    checked_keys = ("slurm_user", "slurm_job", "ray_job")  # validated by the loader
    hosts = []
    for i, p in enumerate(payloads):
        host = {"name": f"h{i}", "target": inproc.alias, "mounts": [p, "/"],
                "markers": [p, f"{p}/*_DONE"], "ray_job": "raysubmit_1"}
        host.update({k: p for k in free_keys})
        hosts.append(host)
    cfg_path = tmp_path / "gpudash.toml"
    cfg_path.write_text(tomli_w.dumps({"host": hosts}))
    specs = [spec_from_host_config(h) for h in load_config(cfg_path).hosts]
    for key in checked_keys:
        for p in payloads:
            bad = tmp_path / "bad.toml"
            bad.write_text(tomli_w.dumps({"host": [{"name": "b", key: p}]}))
            with pytest.raises(ConfigError) as err:
                load_config(bad)
            assert key in str(err.value) and MARK not in str(err.value)
    for i, p in enumerate(payloads):  # no loader in between: the quoting alone must hold
        specs.append(WatchSpec(name=f"direct{i}", target=inproc.alias, transport="ssh", log=p,
                               tmux_session=p, pgrep=p, slurm_user=p, slurm_job=p, ray_job=p,
                               ray_address=p, mounts=(p, "/"), markers=(p,), checkpoint_dir=p,
                               script=p, discover=True))
    steps = 0
    transport = inproc.transport()  # one connection for all: the specs differ, not the box
    try:
        for spec in specs:
            w = HostWatcher(spec, transport)
            for group in list(w.groups()) + ["ray"]:
                steps += len(w.steps_for(group))
                await w.round(group)
            assert w.link.ok, w.link.message
    finally:
        await transport.close()
    figures.inputs("config injection payloads x keys",
                   len(payloads) * (len(free_keys) + 2) * 2 + len(payloads) * len(checked_keys) * 2)
    assert steps > len(specs) * 8
    assert not list(marker_dir.iterdir()), f"a config value ran a command: {list(marker_dir.iterdir())}"
    assert not list(tmp_path.glob(f"**/{MARK}*"))


async def test_hostile_gpu_name_over_real_ssh_renders_inert(inproc, figures):
    """The same payload from a (stand-in) nvidia-smi behind the in-process SSH server: through
    framing, the session's sentinels and the parser."""
    inproc.kit.gpu("hostile")
    w = HostWatcher(fast_spec(inproc.alias), inproc.transport())
    try:
        await w.round("gpu")
    finally:
        await w.transport.close()
    [g] = w.gpus
    # CSI 2J and OSC 52 gone whole, the 8-bit CSI and the RTL override dropped, markup literal
    assert g.name == "H100 [bold red]x[/] evil"
    figures.inputs("hostile nvidia-smi output over SSH", 1)


# ----------------------------------------------------------------------------- every parser
#
# Every parser of remote output, fed (a) arbitrary bytes and (b) its OWN real output — produced
# here by running its step's script with /bin/sh on this machine (df, ps, pgrep, tmux, tail, stat
# and the stand-in nvidia-smi are real) — mutated by hypothesis: cut, spliced with escapes,
# markup, NULs, sentinels and huge numbers. It must return its typed value or a ProbeError,
# never raise, and every string it returns must already be inert.

from functools import lru_cache  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gpudash.probes import discovery, disk, files, gpu, logfollow, logtail, memory, processes  # noqa: E402
from gpudash.probes import ray, slurm, tmux  # noqa: E402
from gpudash.sources import promql  # noqa: E402
from gpudash.training import metrics, progress  # noqa: E402
from tests.conftest import FIXTURES, ROOT  # noqa: E402

EXAMPLES = 400 if FULL else 25

TOKENS = [HOSTILE, ESCAPES, MARKUP, "\x00", "\t", "\n", "\r", "|", ",", " ", "%", "[N/A]",
          "N/A", "-", "0", "-1", "99999999999999999999999", "1e400", "nan", "0x1f", "@@gd:",
          "@@gd:abc:ps", "@@GD_NVSMI_STUCK", "LOG\t", "MISSING\n", "EXISTS\n", "JobId=1 ",
          "StdOut=/x ", "$1\t", "\xff\xfe", "２", "²", "\u202e", "\x9b", "{", '"', "]", "}"]


def _run(script: str, cwd) -> bytes:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", LC_ALL="C",
               TMUX_TMPDIR=str(cwd))
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=60, env=env, cwd=cwd)
    return r.stdout + r.stderr


def _first_line(script: str, cwd) -> bytes:
    """The first line a long-lived step prints (then it is killed)."""
    env = dict(os.environ, LC_ALL="C")
    p = subprocess.Popen(["/bin/sh", "-c", script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=env, cwd=cwd)
    try:
        return p.stdout.readline().rstrip(b"\n")
    finally:
        p.kill()
        p.wait(30)
        p.stdout.close()


@lru_cache(maxsize=1)
def real_outputs() -> dict[str, bytes]:
    """Each probe's real output on this machine (and the Slurm/Prometheus captures)."""
    import tempfile

    d = tempfile.mkdtemp(prefix="gd-parsers-")
    for i in range(3):
        with open(f"{d}/ckpt-{i}.bin", "wb") as f:
            f.write(os.urandom(64))
    log = FIXTURES / "logs" / "hf-trainer.log"
    out = {
        "gpu": _run(gpu.gpu_step().script, d),
        "gpu_health": _run(gpu.gpu_health_step().script, d),
        "gpu_apps": _run(gpu.gpu_apps_step().script, d),
        "df_bytes": _run(disk.df_bytes_step(["/", d]).script, d),
        "df_inodes": _run(disk.df_inodes_step(["/", d]).script, d),
        "memory": _run(memory.memory_step(os.getpid()).script, d),
        "procs": _run(processes.processes_step("python").script, d),
        "alive": _run(processes.proc_alive_step([os.getpid(), 1, 999999]).script, d),
        "tmux": (FIXTURES / "local" / "tmux-list-sessions-F.txt").read_bytes(),
        "tmux_capture": _run(tmux.tmux_capture_step("train").script, d),
        "files": _run(files.files_step([f"{d}/ckpt-0.bin", f"{d}/missing", f"{d}/*.bin"]).script, d),
        "dir": _run(files.dir_step(d).script, d),
        "sha256": _run(files.sha256_step(d).script, d),
        "log": _run(logtail.log_step(str(log), 0, None).script, d),
        "log_follow": _first_line(logfollow.follow_step(str(log), 0, None, 4000).script, d),
        "discover": _run(discovery.discover_step().script, d),
        "squeue": (FIXTURES / "slurm" / "squeue.txt").read_bytes(),
        "sacct": (FIXTURES / "slurm" / "sacct-no-dbd.txt").read_bytes(),
        "scontrol": (FIXTURES / "slurm" / "scontrol-show-job-o.txt").read_bytes(),
        "ray": b"Job submission server address: http://127.0.0.1:8265\n"
               b"Status for job 'raysubmit_1': RUNNING\nStatus message: Job is currently running.\n",
        "promql": (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":'
                   b'{"__name__":"DCGM_FI_DEV_GPU_UTIL","gpu":"0","Hostname":"h1","modelName":'
                   b'"NVIDIA H100"},"value":[1700000000.5,"97"]}]}}'),
        "promql_range": (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":'
                         b'{"instance":"h1:9400"},"values":[[1700000000,"1"],[1700000015,"2"]]}]}}'),
        "targets": (b'{"status":"success","data":{"activeTargets":[{"labels":{"job":"dcgm"},'
                    b'"scrapeInterval":"15s"}]}}'),
        "train_log": log.read_bytes()[:20000],
    }
    shutil.rmtree(d, ignore_errors=True)
    return out


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


#: parser name -> (sample key, call(stdout, stderr, exit_code, n) -> result)
PARSERS = {
    "parse_gpu": ("gpu", lambda o, e, c, n: gpu.parse_gpu(o, e, c)),
    "parse_gpu_line": ("gpu", lambda o, e, c, n: gpu.parse_gpu_line(o)),
    "parse_gpu_health": ("gpu_health", lambda o, e, c, n: gpu.parse_gpu_health(o, e, c)),
    "parse_gpu_apps": ("gpu_apps", lambda o, e, c, n: gpu.parse_gpu_apps(o, e, c)),
    "parse_df_bytes": ("df_bytes", lambda o, e, c, n: disk.parse_df_bytes(o, e, c)),
    "parse_df_inodes": ("df_inodes", lambda o, e, c, n: disk.parse_df_inodes(o, e, c)),
    "missing_mounts": ("df_bytes", lambda o, e, c, n: disk.missing_mounts(o + e)),
    "parse_memory": ("memory", lambda o, e, c, n: memory.parse_memory(o, e, c)),
    "parse_processes": ("procs", lambda o, e, c, n: processes.parse_processes(o, e, c)),
    "parse_ps_line": ("procs", lambda o, e, c, n: processes.parse_ps_line(_text(o))),
    "parse_alive": ("alive", lambda o, e, c, n: processes.parse_alive(o, e, c)),
    "parse_tmux": ("tmux", lambda o, e, c, n: tmux.parse_tmux(o, e, c)),
    "parse_session_rows": ("tmux", lambda o, e, c, n: tmux.parse_session_rows(_text(o))),
    "parse_pane_rows": ("tmux", lambda o, e, c, n: tmux.parse_pane_rows(_text(o))),
    "parse_tmux_capture": ("tmux_capture", lambda o, e, c, n: tmux.parse_tmux_capture(o, e, c)),
    "parse_files": ("files", lambda o, e, c, n: files.parse_files(o, e, c)),
    "parse_dir": ("dir", lambda o, e, c, n: files.parse_dir(o, e, c)),
    "parse_sha256": ("sha256", lambda o, e, c, n: files.parse_sha256(o, e, c)),
    "parse_log": ("log", lambda o, e, c, n: logtail.parse_log(o, e, c, prev_offset=n,
                                                             prev_inode=n or None)),
    "parse_follow_line": ("log_follow", lambda o, e, c, n: logfollow.parse_follow_line(o)),
    "parse_discovery": ("discover", lambda o, e, c, n: discovery.parse_discovery(o, e, c)),
    "parse_squeue": ("squeue", lambda o, e, c, n: slurm.parse_squeue(o, e, c)),
    "parse_squeue_line": ("squeue", lambda o, e, c, n: slurm.parse_squeue_line(_text(o))),
    "parse_sacct": ("sacct", lambda o, e, c, n: slurm.parse_sacct(o, e, c)),
    "parse_scontrol": ("scontrol", lambda o, e, c, n: slurm.parse_scontrol(o, e, c)),
    "parse_ray": ("ray", lambda o, e, c, n: ray.parse_ray(o, e, c)),
    "parse_query": ("promql", lambda o, e, c, n: promql.parse_query(o, 200 if c == 0 else 500)),
    "parse_range": ("promql_range", lambda o, e, c, n: promql.parse_range(o)),
    "parse_scrape_interval": ("targets", lambda o, e, c, n: promql.parse_scrape_interval(o)),
    "parse_metrics": ("train_log", lambda o, e, c, n: metrics.parse_metrics(_text(o).split("\n"))),
    "parse_segment": ("train_log", lambda o, e, c, n: metrics.parse_segment(_text(o)[:2000])),
    "parse_progress": ("train_log", lambda o, e, c, n: progress.parse_progress(_text(o).split("\n"))),
}

#: internal row helpers: their keys and rows feed parse_tmux (checked on its own), never a screen
RAISE_ONLY = {"parse_session_rows", "parse_pane_rows"}

codes = st.sampled_from([0, 0, 0, 1, 2, 3, 4, 6, 9, 15, 18, 124, 127, 137, 255, None, -9])


@st.composite
def mutated(draw, sample: bytes) -> bytes:
    data = bytearray(sample[:6000])
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["insert", "insert", "delete", "dup", "cut", "bytes"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS)).encode("utf-8", "surrogatepass")
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 40))]
        elif kind == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 200))]
        elif kind == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(max_size=16))
    return bytes(data)


def check_parser_result(name: str, result) -> None:
    assert not isinstance(result, BaseException), f"{name} returned an exception"
    if name in RAISE_ONLY:
        return
    for s in strings_in(result):
        assert is_inert(s) and danger_count(s) == 0, f"{name} returned remote text raw: {s!r}"


def prior_hypothesis_coverage() -> tuple[int, list[str]]:
    """How many of these parsers an existing (non-reliability) hypothesis test already named."""
    covered = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        if "reliability" in path.parts:
            continue
        text = path.read_text(errors="replace")
        if "@given" in text:
            covered |= {p for p in PARSERS if re.search(rf"\b{p}\(", text)}
    return len(covered), sorted(set(PARSERS) - covered)


_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", list(PARSERS))
def test_parser_never_raises_and_returns_inert_text(name, figures):
    key, call = PARSERS[name]
    sample = real_outputs()[key]
    assert sample.strip(), f"no real output to mutate for {name}"
    seen = [0]

    @_SETTINGS
    @given(out=st.one_of(mutated(sample), st.binary(max_size=3000)),
           err=st.one_of(st.just(b""), mutated(b"error: " + HOSTILE.encode()), st.binary(max_size=200)),
           code=codes, n=st.integers(0, 10**12))
    def prop(out, err, code, n):
        seen[0] += 1
        check_parser_result(name, call(out, err, code, n))
        check_parser_result(name, call(_text(out), _text(err), code, n) if name in (
            "parse_gpu", "parse_df_bytes", "parse_squeue", "parse_tmux", "parse_memory") else None)

    prop()
    check_parser_result(name, call(sample, b"", 0, 0))  # and the real thing parses cleanly
    figures.inputs("malformed parser outputs (hypothesis)", seen[0])


def test_every_remote_parser_is_covered_here(figures):
    """No public parse_* of remote output escapes the property test above."""
    import importlib
    import inspect
    import pkgutil

    import gpudash

    found = set()
    for mod in pkgutil.walk_packages(gpudash.__path__, "gpudash."):
        if mod.name.split(".")[1] not in ("probes", "sources", "training"):
            continue
        m = importlib.import_module(mod.name)
        found |= {n for n, f in vars(m).items() if n.startswith("parse") and inspect.isfunction(f)
                  and f.__module__ == m.__name__}
    assert found <= set(PARSERS), f"parsers without a property test here: {found - set(PARSERS)}"
    before, missing = prior_hypothesis_coverage()
    figures.note(parsers_total=len(PARSERS), parsers_with_prior_hypothesis=before,
                 parsers_without_prior_hypothesis=missing)
