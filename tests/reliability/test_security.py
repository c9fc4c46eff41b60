"""Security: who gpudash trusts, what it keeps, and what it runs on a box.

- host keys: strict by default through every path that builds an SSH transport; the only way
  out is a per-host ``insecure_known_hosts = true``;
- secrets: a token planted in the webhook URL (an env var) never lands in the state database,
  its sidecars, the alert log, Python's log output or a config error; inline secrets in the
  config are refused without being echoed;
- state files are 0600 (their directory 0700);
- nothing destructive runs on a box: every script every probe builder makes (watcher, teardown
  checks, restart preflight, discovery, streams) is scanned for rm/kill/shutdown/dd/mkfs/...
  and output redirections; the framing's ``kill -9 -$gd_p`` of the step's own process group is
  the one kill, and it must be exactly that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import re
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gpudash.model import Reason, State
from gpudash.transport import framing
from gpudash.transport.base import Step, StepResult, Transport
from gpudash.transport.replay import ReplayTransport
from gpudash.watch.fleet import Fleet, make_transport
from gpudash.watch.host import HostWatcher
from gpudash.watch.spec import WatchSpec
from tests.reliability.conftest import fast_spec, gpudash_async, within
from tests.services.ssh_server import BIN

TOKEN = "GDSECRET-" + os.urandom(6).hex()


# ----------------------------------------------------------------------------- host keys


def test_every_ssh_transport_is_strict_by_default():
    t = make_transport(WatchSpec(name="box", target="box", transport="ssh"))
    assert t.insecure_known_hosts is False
    assert "known_hosts" not in t._connect_kwargs(), "strict = asyncssh's own default checks"
    loose = make_transport(WatchSpec(name="b", target="b", transport="ssh",
                                     insecure_known_hosts=True))
    assert loose._connect_kwargs()["known_hosts"] is None


def test_known_hosts_none_appears_only_under_the_opt_in():
    """A source scan: the one place that turns host-key checking off is guarded by the flag."""
    root = Path(__file__).resolve().parents[2] / "gpudash"
    hits = []
    for path in root.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines()):
            if re.search(r"known_hosts\W*(=|\]\s*=)\s*None", line) or "known_hosts=None" in line:
                hits.append((path.relative_to(root).as_posix(), i, line.strip()))
    assert [h[0] for h in hits] == ["transport/ssh.py"], hits
    src = (root / "transport" / "ssh.py").read_text().splitlines()
    _, i, _ = hits[0]
    assert "if self.insecure_known_hosts" in src[i - 1]


async def test_unknown_host_key_refused_unless_that_host_opted_out(make_box, tmp_path, figures):
    """Through the real config loader and Fleet: two boxes whose keys are NOT in known_hosts;
    only the host with `insecure_known_hosts = true` is connected to."""
    from gpudash.config import load_config
    from gpudash.watch.spec import spec_from_host_config

    figures.fault("unknown host key", "in-process ssh")
    await make_box("strictbox", trust="no")
    await make_box("loosebox", trust="no")
    cfg = tmp_path / "gpudash.toml"
    cfg.write_text('[[host]]\nname = "strictbox"\n\n'
                   '[[host]]\nname = "loosebox"\ninsecure_known_hosts = true\n')
    specs = [dataclasses.replace(spec_from_host_config(h), cadence=fast_spec("x").cadence,
                                 discover=False) for h in load_config(cfg).hosts]
    fleet = Fleet(specs)
    views = {v.name: v for v in await within(figures, "fleet round, unknown host keys",
                                             fleet.one_round(deadline=15), 15)}
    assert views["strictbox"].reason is Reason.HOST_KEY_UNKNOWN
    assert "ssh strictbox" in views["strictbox"].snapshot.link.message
    assert views["loosebox"].snapshot.link.ok


def test_the_opt_out_is_per_host_only(tmp_path):
    from gpudash.config import ConfigError, load_config

    cfg = tmp_path / "gpudash.toml"
    cfg.write_text('[defaults]\ninsecure_known_hosts = true\n\n[[host]]\nname = "a"\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "insecure_known_hosts" in str(err.value)


# ----------------------------------------------------------------------------- secrets


def test_inline_secrets_in_the_config_are_refused_and_never_echoed(tmp_path):
    from gpudash.config import ConfigError, load_config

    cases = {
        "webhook": f'[alerts]\nwebhook_url = "https://hooks.slack.com/services/T0/B0/{TOKEN}"\n',
        "url creds": f'[prometheus]\nurl = "https://user:{TOKEN}@prom.example"\n',
        "url token": f'[prometheus]\nurl = "https://prom.example/api?token={TOKEN}"\n',
        "token": f'[prometheus]\nurl = "https://prom.example"\ntoken = "{TOKEN}"\n',
        "key material": f'[[host]]\nname = "a"\nnotes = """-----BEGIN OPENSSH PRIVATE KEY-----\n{TOKEN}\n"""\n',
        "bad type": f'[[host]]\nname = "a"\nmounts = "{TOKEN}"\n',
    }
    for what, text in cases.items():
        cfg = tmp_path / f"{what.replace(' ', '_')}.toml"
        cfg.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert TOKEN not in str(err.value), f"{what}: the error echoes the secret"


async def test_config_check_never_prints_a_secret(tmp_path):
    cfg = tmp_path / "gpudash.toml"
    cfg.write_text(f'[alerts]\nwebhook_url = "https://hooks.slack.com/services/T0/B0/{TOKEN}"\n')
    home = tmp_path / "home"
    home.mkdir()
    r = await gpudash_async(home, "config", "check", "--config", str(cfg), timeout=60)
    assert r.returncode != 0 and "webhook_url" in (r.stdout + r.stderr)
    assert TOKEN not in r.stdout + r.stderr


class _Hook:
    """A webhook endpoint that fails (500), so retries and error paths run too."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.paths.append(self.path)
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/{TOKEN}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _FullDiskBox:
    """A replay box whose disk is 99% full: a CRIT alert on the first round."""

    def link_error(self, now):
        return None

    def answer(self, step: Step, now: float) -> StepResult:
        if step.key in ("df_bytes", "df_inodes"):
            return StepResult(step.key, b"Filesystem 1-blocks Used Available Capacity Mounted on\n"
                              b"/dev/vda 1000000000000 990000000000 10000000000 99% /\n")
        return StepResult(step.key, b"", b"", 0)


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


async def test_no_secret_in_state_logs_or_db_and_state_files_are_private(tmp_path, monkeypatch,
                                                                         caplog):
    """A real round with a CRIT alert, the store and the notifier with a webhook whose URL
    (holding the token) comes from an env var; the endpoint fails, so error paths run. Then
    every file gpudash wrote, and every log record, is searched for the token."""
    from gpudash.config import AlertsConfig
    from gpudash.health.thresholds import Thresholds
    from gpudash.notify import Notifier
    from gpudash.store import Store
    from gpudash.store.paths import default_db_path, state_dir
    from gpudash.store.wiring import attach_fleet

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    hook = _Hook()
    monkeypatch.setenv("GD_TEST_HOOK", hook.url)
    try:
        store = Store.open(default_db_path())
        notifier = Notifier(AlertsConfig(webhook_url_env="GD_TEST_HOOK"), store,
                            writer=lambda s: None, webhook_retries=1, webhook_backoff_s=0.01,
                            coalesce_s=0.01)
        spec = fast_spec("fullbox", transport="replay",
                         thresholds=Thresholds(hysteresis_results=1, hysteresis_s=0.0))
        fleet = Fleet([spec], transports={"fullbox": ReplayTransport("fullbox", _FullDiskBox())})
        attach_fleet(fleet, store, notifier)
        with caplog.at_level(logging.DEBUG):
            for w in fleet.watchers.values():
                await w.full_round()
                await w.full_round()
            await asyncio.sleep(0.2)
            await notifier.drain()
        store.close()
    finally:
        hook.close()
    assert hook.paths, "the webhook was never called: the test would prove nothing"
    assert any(ev.new is State.CRIT for ev in fleet.journal)
    written = [p for p in state_dir().rglob("*") if p.is_file()]
    assert any(p.suffix in (".db", ".sqlite", ".sqlite3") or "history" in p.name for p in written)
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), f"the secret is in {path}"
        assert b"/services/T0/B0" not in path.read_bytes(), f"the webhook path is in {path}"
        assert _private(path), f"{path} is {oct(stat.S_IMODE(path.stat().st_mode))}, not 0600"
    assert TOKEN not in caplog.text
    for d in {p.parent for p in written}:
        assert stat.S_IMODE(d.stat().st_mode) & 0o077 == 0, f"{d} is readable by others"


async def test_status_leaves_only_private_state_files(make_box, ssh_home, tmp_path):
    await make_box("box")
    cfg = tmp_path / "gpudash.toml"
    cfg.write_text('[defaults]\nprobe_timeout = 3\n\n[[host]]\nname = "box"\n')
    r = await gpudash_async(ssh_home.path, "status", "--config", str(cfg), timeout=60)
    assert r.returncode in (0, 1, 2), r.stdout + r.stderr
    state = ssh_home.path / ".state"
    files = [p for p in state.rglob("*") if p.is_file()]
    assert files, "status kept no history: nothing to check (the test would prove nothing)"
    for p in files:
        assert _private(p), f"{p} is {oct(stat.S_IMODE(p.stat().st_mode))}"


# ----------------------------------------------------------------------------- nothing destructive

#: commands that change or destroy things (as shell words)
DESTRUCTIVE = re.compile(
    r"(?<![\w./$-])(rm|rmdir|unlink|shred|truncate|dd|mkfs(?:\.\w+)?|wipefs|fdisk|parted|"
    r"shutdown|reboot|halt|poweroff|systemctl|service|kill|pkill|killall|scancel|mv|cp|ln|"
    r"chmod|chown|chgrp|touch|mkdir|tee|crontab|sudo|su|at|nohup|setsid|sbatch|srun --pty|"
    r"sed\s+-i|kill-server|kill-session|kill-pane|kill-window|send-keys|respawn-pane|"
    r"scontrol\s+(?:cancel|requeue|update|hold|release|suspend|resume|reboot)|"
    r"ray\s+job\s+(?:stop|submit|delete))(?![\w.-])")
#: the framing's one allowed kill: the step's own process group, after the step ended
ALLOWED_KILL = "kill -9 -$gd_p 2>/dev/null"


def _strip_data(script: str) -> str:
    """Drop what is data to the shell, not a command: arithmetic $((...)), and the bodies of
    awk/sed/printf programs (single-quoted strings NOT passed to a nested `sh -c`)."""
    script = re.sub(r"\$\(\([^()]*(?:\([^()]*\)[^()]*)*\)\)", " ", script)
    out, i = [], 0
    for m in re.finditer(r"'[^']*'", script):
        before = script[max(0, m.start() - 8):m.start()]
        body = m.group(0)[1:-1]
        out.append(script[i:m.start()])
        out.append(" " + body + " " if re.search(r"sh -c\s*$", before) else " '' ")
        i = m.end()
    out.append(script[i:])
    return "".join(out)


def _redirect_targets(script: str) -> list[str]:
    code = _strip_data(script)
    code = re.sub(r'"[^"]*"', '""', code)  # double-quoted text is not a redirection either
    code = re.sub(r"\[\s[^]]*\s\]", " ", code)  # `[ a -gt b ]` tests
    return [m.group(1) for m in re.finditer(r"(?<![<>-])\d?>>?\s*([^\s;|)]+)", code)]


def _sample_arg(name: str, annotation) -> object:
    table = {"pids": [1, 2], "paths": ["/tmp/gd/a", "/tmp/gd/*_DONE"], "mounts": ["/", "/data"],
             "pattern": "train", "path": "/tmp/gd/ckpt", "path_or_glob": "/tmp/gd/*.log",
             "offset": 0, "inode": None, "interval_ms": 500, "max_bytes": 4096, "job_id": "7", "user": "alice",
             "session": "train", "pid": 1, "address": "http://127.0.0.1:8265", "lines": 50}
    if name in table:
        return table[name]
    raise KeyError(f"no sample argument for {name}")


def every_builder_step() -> list[tuple[str, Step]]:
    """Call every public *_step builder of gpudash.probes with sample arguments (each with and
    without its optional switches)."""
    import importlib
    import pkgutil

    import gpudash.probes as probes

    steps = []
    for mod in pkgutil.iter_modules(probes.__path__):
        m = importlib.import_module(f"gpudash.probes.{mod.name}")
        for name, fn in vars(m).items():
            if not (name.endswith("_step") and inspect.isfunction(fn) and fn.__module__ == m.__name__):
                continue
            sig = inspect.signature(fn)
            args = {p.name: _sample_arg(p.name, p.annotation) for p in sig.parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD}
            variants = [{}]
            if "guard_hung" in sig.parameters:
                variants += [{"guard_hung": True}, {"guard_hung": True, "srun_jobid": "7"}]
            if "srun_jobid" in sig.parameters:
                variants.append({"srun_jobid": "7"})
            if "socket" in sig.parameters:
                variants.append({"socket": "gd"})
            for extra in variants:
                steps.append((f"{mod.name}.{name}{extra or ''}", fn(**args, **extra)))
    return steps


class RecordingTransport(Transport):
    """Runs steps on this machine (real tools) and keeps every script it was handed."""

    kind = "local"

    def __init__(self) -> None:
        from gpudash.transport.local import LocalTransport

        super().__init__("rec")
        self.inner = LocalTransport(env=dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}"))
        self.steps: list[Step] = []

    @property
    def link(self):
        return self.inner.link

    async def run(self, steps, *, deadline):
        self.steps.extend(steps)
        return await self.inner.run(steps, deadline=deadline)

    def stream(self, step, *, sample_timeout, lifetime):
        self.steps.append(step)
        return self.inner.stream(step, sample_timeout=sample_timeout, lifetime=lifetime)

    async def close(self):
        await self.inner.close()


async def workflow_steps(tmp_path) -> list[tuple[str, Step]]:
    """What the real workflows send: a watcher over a spec using every feature, the teardown
    checklist (with sha256) and the restart preflight."""
    from gpudash.restart import RestartPolicy, preflight
    from gpudash.teardown.runner import run_checks
    from gpudash.teardown.types import TeardownSettings

    art = tmp_path / "artifacts"
    art.mkdir()
    (art / "model.safetensors").write_bytes(b"x" * 100)
    rec = RecordingTransport()
    try:
        spec = fast_spec("rec", transport="local", log=str(tmp_path / "train.log"),
                         tmux_session="train", pgrep="train", slurm_user="alice", slurm_job="7",
                         ray_job="raysubmit_1", markers=(str(tmp_path / "DONE"),),
                         checkpoint_dir=str(art), script=str(tmp_path / "train.py"), discover=True,
                         mounts=("/", str(tmp_path)))
        w = HostWatcher(spec, rec)
        for group in list(w.groups()) + ["ray"]:
            await w.round(group)
        w.nvsmi_stuck = False  # and the unguarded variants
        for group in ("gpu", "disk", "jobs"):
            await w.round(group)
        settings = TeardownSettings(host="rec", artifacts_dir=str(art), expected_count=1,
                                    markers=(str(tmp_path / "DONE"),), log=str(tmp_path / "t.log"),
                                    pgrep="train", tmux_session="train", slurm_job="7",
                                    ray_job="raysubmit_1", probe_timeout=5)
        await run_checks(rec, settings, sha256=True)
        await run_checks(rec, dataclasses.replace(settings, pgrep=None, tmux_session=None,
                                                  slurm_job=None, ray_job=None))
        await preflight(rec, RestartPolicy(resume_command="python train.py", pgrep="train",
                                           tmux_session="train", slurm_job="7",
                                           markers=(str(tmp_path / "DONE"),)))
    finally:
        await rec.close()
    return [(f"workflow:{s.key}", s) for s in rec.steps]


def destructive_words(script: str) -> list[str]:
    code = _strip_data(script)
    # `kill -0 PID` sends no signal: it only asks whether the process exists
    return [m.group(0) for m in DESTRUCTIVE.finditer(code)
            if not (m.group(0) == "kill" and re.match(r"\s+-0\s", code[m.end():]))]


async def test_no_probe_script_runs_anything_destructive(tmp_path, figures):
    steps = every_builder_step() + await workflow_steps(tmp_path)
    assert len(steps) > 40
    problems = []
    for label, step in steps:
        words = destructive_words(step.script)
        if words:
            problems.append((label, words))
        bad_redirects = [t for t in _redirect_targets(step.script)
                         if t not in ("/dev/null", "&1", "&2")]
        if bad_redirects:
            problems.append((label, bad_redirects))
    figures.inputs("probe scripts scanned for destructive commands", len(steps))
    assert problems == [], problems


def test_the_framings_only_kill_is_its_own_process_group():
    """Render a batch as it goes to the box: the only kill is `kill -9 -$gd_p`, once per step,
    right after `wait $gd_p` — $gd_p being the pid of the step's own `timeout` (its group)."""
    steps = [Step("a", "true"), Step("b", "echo hi")]
    batch = framing.render_batch(steps, framing.new_nonce(), 1).decode()
    session = framing.session_command(3600) + "\n" + framing.PRELUDE
    stream = framing.render_stream(Step("s", "echo x"), framing.new_nonce(), 60).decode()
    everything = "\n".join([batch, session, stream])
    kills = re.findall(r"\bkill\b[^;\n]*", everything)
    assert kills == [ALLOWED_KILL] * len(steps), kills
    for line in batch.splitlines():
        if "kill" in line:
            assert re.search(r"& gd_p=\$!; wait \$gd_p; gd_rc=\$\?; kill -9 -\$gd_p 2>/dev/null;", line)
    # nothing else destructive in the framing itself (the step scripts are single-quoted data)
    assert [w for w in destructive_words(everything) if w != "kill"] == []
    assert {t for t in _redirect_targets(everything)} <= {"/dev/null", "&2", "&1"}


def test_the_scanner_catches_what_it_must():
    """The scan above would see a destructive command if a builder made one."""
    for bad in ("rm -rf /data", "x; kill -9 1234", "tmux kill-session -t train", "echo x > /etc/y",
                "dd if=/dev/zero of=/dev/sda", "/bin/sh -c 'rm -f /x'", "scancel 7",
                "sed -i s/a/b/ f", "shutdown -h now"):
        assert destructive_words(bad) or [t for t in _redirect_targets(bad)
                                          if t not in ("/dev/null", "&2")], bad
    for fine in ("df -P -B1 -- /", "printf '%s > rm\\n' x", "[ $((a > b)) = 1 ]", "kill -0 42 ",
                 "tail -c +1 -- f | head -c 10", "cat f 2>/dev/null", "pgrep -f -- 'kill'"):
        assert not destructive_words(fine) and all(
            t in ("/dev/null", "&2") for t in _redirect_targets(fine)), fine
