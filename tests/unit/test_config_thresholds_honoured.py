"""A threshold key the config accepts must change what health says.

Each test goes the whole way a real config goes: TOML text → ``parse_config`` → the host's
``WatchSpec`` (``spec_from_host_config``) → the watcher's ``HostAnalysis`` (its HealthEngine and
RunContext) → the verdict in the host's view. Every test shows the same data judged with the
default and with the key set, and asserts the two verdicts differ: a key that is dropped on the
way, or a health check that goes on using a constant, fails it. ``now`` is passed: no clock.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gpudash.config import Thresholds, parse_config
from gpudash.config.schema import THRESHOLD_SPEC
from gpudash.model import (
    CheckResult, DiskUsage, FileInfo, HostSnapshot, MetricPoint, ProcessInfo, State,
)
from gpudash.watch.analysis import HostAnalysis
from gpudash.watch.spec import spec_from_host_config

T0 = 1_800_000_000.0  # the run's process start
PROC = ProcessInfo(4242, "python -u train.py", start_epoch=T0)
HEALTH = Path(__file__).resolve().parents[2] / "gpudash" / "health"
# One raw result is shown at once, so a single view tells the verdict (hysteresis has its own tests).
IMMEDIATE = "hysteresis_results = 1\nhysteresis_s = 0"


def analysis(thresholds: str = "", host: str = "") -> HostAnalysis:
    cfg = parse_config(f"""
[defaults.thresholds]
{IMMEDIATE}
{thresholds}

[[host]]
name = "box"
target = "trainer@box.example:22"
log = "/data/run.log"
{host}
""")
    return HostAnalysis(spec_from_host_config(cfg.host("box")))


def snap(now: float, **kw) -> HostSnapshot:
    base = dict(name="box", transport="ssh", taken_at=now, gpu_at=now, disk_at=now,
                memory_at=now, jobs_at=now, log_at=now, files_at=now, processes=(PROC,))
    base.update(kw)
    return HostSnapshot(**base)


def checks(a: HostAnalysis, s: HostSnapshot) -> dict[str, CheckResult]:
    return {c.key: c for c in a.view(s, paused=False, now=s.taken_at).checks}


# ----------------------------------------------------------------------------- loss


def patrol_losses(loss_of_minute, minutes: int) -> tuple[MetricPoint, ...]:
    """A run past its close watch: early losses that fall fast (so only the plateau rule can
    speak), then one point per 10 s for ``minutes`` minutes, from step 1000 on."""
    early = tuple(MetricPoint(step=s, loss=10.0 - s / 200, line_no=i + 1, at=T0 - 1000 + i)
                  for i, s in enumerate(range(0, 1000, 10)))
    n = minutes * 6 + 1
    later = tuple(MetricPoint(step=1000 + 15 * i, loss=loss_of_minute(i / 6), line_no=101 + i,
                              at=T0 + 10 * i) for i in range(n))
    return early + later


def loss_verdict(a: HostAnalysis, loss_of_minute, minutes: int) -> CheckResult:
    now = T0 + 60 * minutes
    return checks(a, snap(now, metrics=patrol_losses(loss_of_minute, minutes), log_grew_at=now))["loss"]


def test_loss_flat_pct_sets_how_much_improvement_is_not_flat():
    slow = lambda m: 2.0 - 0.0004 * m  # noqa: E731 - ~0.6 % better per 30-minute window
    default = loss_verdict(analysis(), slow, 70)
    assert default.state is State.WARN and "flat" in default.summary  # < 1 %
    relaxed = loss_verdict(analysis("loss_flat_pct = 0.2"), slow, 70)
    assert relaxed.state is State.OK, relaxed.summary  # 0.6 % is progress when 0.2 % is enough


def test_loss_flat_pct_also_sets_what_counts_as_falling_early_on():
    pts = tuple(MetricPoint(step=s, loss=2.0 - 0.0001 * s, line_no=s + 1, at=T0 + s)
                for s in range(100))  # the first 10 vs the last 10: ~0.45 % lower
    default = checks(analysis(), snap(T0 + 300, metrics=pts))["loss"]
    assert default.state is State.WARN and "not falling" in default.summary
    relaxed = checks(analysis("loss_flat_pct = 0.2"), snap(T0 + 300, metrics=pts))["loss"]
    assert relaxed.state is State.OK, relaxed.summary


def test_loss_flat_windows_sets_how_far_back_the_plateau_looks():
    # fell from 3.0 to 2.0 at minute 35, flat since: flat over the last 2 windows, not over 3
    step_down = lambda m: 3.0 if m < 35 else 2.0  # noqa: E731
    default = loss_verdict(analysis(), step_down, 100)
    assert default.state is State.WARN and "flat" in default.summary
    three = loss_verdict(analysis("loss_flat_windows = 3"), step_down, 100)
    assert three.state is State.OK, three.summary


def early_flat(n: int) -> tuple[MetricPoint, ...]:
    """``n`` logged losses from step 0 that do not fall (a noisy 2.00-2.02)."""
    return tuple(MetricPoint(step=s, loss=2.0 + 0.01 * (s % 3), line_no=s + 1, at=T0 + s)
                 for s in range(n))


@pytest.mark.parametrize("n,setting,expected", [
    (50, "", State.OK),  # the default judges after 100 losses: 50 are not enough
    (50, "loss_early_steps = 50", State.WARN),
    (100, "", State.WARN),
    (100, "loss_early_steps = 200", State.OK),  # not yet 200: no verdict
    (200, "loss_early_steps = 200", State.WARN),
])
def test_loss_early_steps_sets_how_many_losses_must_show_a_fall(n, setting, expected):
    c = checks(analysis(setting), snap(T0 + 300, metrics=early_flat(n)))["loss"]
    assert c.state is expected, c.summary
    if expected is State.WARN:
        assert f"first {n} logged steps" in c.summary


# ----------------------------------------------------------------------------- run end


def run_end_verdict(setting: str, ended_after: float) -> CheckResult:
    """Expected 2 h; seen running, then gone with its completion marker after ``ended_after``."""
    a = analysis(setting, host='expected_duration = "2h"\nmarkers = ["/data/TRAIN_DONE"]')
    assert checks(a, snap(T0 + 60))["run.ended"].state is State.OK  # seen alive
    now = T0 + ended_after
    done = (FileInfo("/data/TRAIN_DONE", True, 0, now),)
    return checks(a, snap(now, processes=(), markers=done))["run.ended"]


def test_early_end_fraction_sets_what_counts_as_a_probable_failure():
    default = run_end_verdict("", 2400)  # 40 min of an expected 2 h: under half
    assert default.state is State.WARN and "probable failure" in default.summary
    quarter = run_end_verdict("early_end_fraction = 0.25", 2400)  # 1/3 is over a quarter
    assert quarter.state is State.OK, quarter.summary
    strict = run_end_verdict("early_end_fraction = 0.9", 5400)  # 75 % is under 90 %
    assert strict.state is State.WARN and "90% of" in strict.summary


# ----------------------------------------------------------------------------- flapping


def flap_then_hold(a: HostAnalysis, hold_s: float):
    """4 changes in 80 s (flapping by the defaults), then WARN held; the events at the end."""
    key = "disk.bytes:/data"
    states = (State.OK, State.WARN, State.OK, State.WARN, State.OK, State.WARN)
    t = 0.0
    for s in states:
        shown, _ = a.engine.update("box", [CheckResult(key, s, f"disk {s.value}")], t)
        t += 20
    assert shown[0].flapping
    last_change = t - 20
    shown, events = a.engine.update("box", [CheckResult(key, State.WARN, "disk WARN")],
                                    last_change + hold_s)
    return shown[0], events


def test_flap_stable_s_sets_how_long_a_flapping_check_stays_held():
    c, events = flap_then_hold(analysis(), 180)
    assert c.flapping and events == []  # default: held for 600 s
    c, events = flap_then_hold(analysis("flap_stable_s = 120"), 180)
    assert not c.flapping
    assert len(events) == 1 and "settled at WARN" in events[0].message
    # flap_window_s stays 600: it is the stable time, not the flap window, that released it
    assert analysis("flap_stable_s = 120").engine.thresholds.flap_window_s == 600


# ----------------------------------------------------------------------------- every key


def test_the_config_builds_the_very_thresholds_health_judges_with():
    a = analysis()
    assert type(a.engine.thresholds) is Thresholds
    assert a.engine.thresholds == dataclasses.replace(Thresholds(), hysteresis_results=1,
                                                      hysteresis_s=0.0)


# (the two hysteresis keys are set by every config here: the test above shows them arrive)
@pytest.mark.parametrize("key", sorted(set(THRESHOLD_SPEC) - {"hysteresis_results", "hysteresis_s"}))
def test_every_threshold_key_reaches_the_health_engine(key):
    default = getattr(Thresholds(), key)
    value = default + 1 if key != "early_end_fraction" else 0.75
    if key in ("disk_warn_pct", "inode_warn_pct"):
        value = default - 1  # stays under its CRIT
    a = analysis(f"{key} = {value!r}")
    assert getattr(a.engine.thresholds, key) == value


@pytest.mark.parametrize("key", sorted(THRESHOLD_SPEC))
def test_every_threshold_key_is_read_by_a_health_check(key):
    """An accepted key that no health code reads is a lie to the user (five were, once)."""
    source = "\n".join(p.read_text() for p in sorted(HEALTH.glob("*.py"))
                       if p.name != "thresholds.py")
    assert re.search(rf"\bth\w*\.{key}\b", source), f"{key} is accepted but health never reads it"


def test_staleness_follows_the_configured_cadence():
    """stale_after and the intervals are cadences: they reach health's Intervals."""
    a = analysis(host="disk_interval = 5\nstale_after = 2")
    assert a.engine.intervals.stale_after_s("disk") == 10
    now = T0 + 100
    d = (DiskUsage("/data", size_bytes=10**12, used_bytes=10**11, avail_bytes=9 * 10**11),)
    assert checks(a, snap(now, disks=d, disk_at=now - 11))["disk.bytes:/data"].state is State.STALE
    assert checks(analysis(), snap(now, disks=d, disk_at=now - 11))["disk.bytes:/data"].state \
        is State.OK


async def test_prometheus_only_hosts_keep_the_configured_stale_after():
    """Hosts only Prometheus knows have no HostConfig: the config's stale_after reaches them
    through the fleet (prometheus_fleet_from_args passes defaults.timing.stale_after)."""
    from gpudash.watch.prom_fleet import PrometheusFleet
    from tests.unit.test_prometheus_fleet import Clock, StubSource, host_data

    def fleet(**kw):
        clock = Clock()
        src = StubSource(clock)
        src.data = {"n1": host_data("n1", clock())}
        return PrometheusFleet([], src, interval=5.0, clock=clock, **kw), clock

    f, clock = fleet(stale_after=1.5)
    await f.poll_once()
    assert f.watchers["n1"].analysis.engine.intervals.stale_after_s("gpu") == 7.5
    plain, _ = fleet()
    await plain.poll_once()
    assert plain.watchers["n1"].analysis.engine.intervals.stale_after_s("gpu") == 15.0


# ----------------------------------------------------------------------------- triage shares them


def _disk_full_triage(a: HostAnalysis, bytes_pct: float):
    """A log that died of ENOSPC, read by the real classifier, fused with a disk at bytes_pct."""
    from gpudash.model import LogChunk

    line = "OSError: [Errno 28] No space left on device: '/data/ckpt/step_900.pt'"
    data = (line + "\n").encode()
    a.feed_log([line], LogChunk("/data/run.log", 0, len(data), len(data), 7, data), T0)
    used = int(1000 * bytes_pct / 100)
    disk = DiskUsage("/data", "/dev/vdb", 1000, used, 1000 - used, 1000, 10, 990)
    return a.view(snap(T0 + 5, disks=(disk,)), paused=False, now=T0 + 5).triage


def test_disk_crit_pct_is_also_what_triage_calls_a_full_disk():
    default = _disk_full_triage(analysis(), 93.0)
    lowered = _disk_full_triage(analysis("disk_crit_pct = 92"), 93.0)
    assert default.cls == lowered.cls == "disk_full"
    assert default.cause != "bytes" and any("has room now" in d for d in default.diagnoses)
    assert lowered.cause == "bytes" and "bytes ran out" in lowered.summary
