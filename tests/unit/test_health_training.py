"""Training health over time: the data-bound window on the real busy/stall series, phases,
loss and grad norm, checkpoint age, stalled vs block-buffered stdout, how a run ended, and a
script edited under a live run. ``now`` is always passed: no clock, no sleeps."""

from dataclasses import replace
from pathlib import Path

import pytest

from gpudash.health import Intervals, Phase, RunContext, Thresholds, evaluate
from gpudash.model import (
    ComputeApp,
    DirListing,
    FileInfo,
    GpuSample,
    HostSnapshot,
    MetricPoint,
    ProcessInfo,
    State,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "h100"
T0 = 1_800_000_000.0  # the run's process start
PROC = ProcessInfo(4242, "python -u train.py", start_epoch=T0)


def snap(now: float, **kw) -> HostSnapshot:
    base = dict(name="box", transport="ssh", taken_at=now, gpu_at=now, disk_at=now,
                memory_at=now, jobs_at=now, log_at=now, files_at=now, processes=(PROC,))
    base.update(kw)
    return HostSnapshot(**base)


def run(s, now, ctx=None, th=None, iv=None) -> dict:
    return {c.key: c for c in evaluate(s, th or Thresholds(), iv or Intervals(), now,
                                       context=ctx if ctx is not None else RunContext())}


# ----------------------------------------------------------------------------- data-bound


def series_util() -> list[float]:
    """utilization.gpu (4th column) of the real 34 s `-lms 500` capture."""
    rows = (FIX / "series-lms500-nounits.csv").read_text().splitlines()
    return [float(r.split(",")[3]) for r in rows if r.strip()]


def busy_phase(util):
    start = next(i for i, v in enumerate(util) if v >= 20)  # after the start-up idle
    return util[start:]


LMS500 = Intervals(gpu=0.5)  # the capture's own cadence: -lms 500
NOW = T0 + 3600


def util_snap(history):
    g = GpuSample(0, uuid="GPU-0e6ec022", util_pct=history[-1], mem_total_mib=81559.0,
                  mem_used_mib=20000.0, temp_c=50.0)
    apps = (ComputeApp(4242, "python", 20000.0, gpu_uuid="GPU-0e6ec022"),)
    return snap(NOW, gpus=(g,), util_history=(tuple(history),), apps=apps)


def test_real_busy_phase_with_its_short_stall_is_not_data_bound():
    busy = busy_phase(series_util())
    avg = sum(busy) / len(busy)
    assert 75 <= avg <= 85  # the README's "busy-phase average ~80 %"
    assert 0.0 in busy  # it does contain the ~3 s stall at 0 %
    # Its real 8 s busy / 3 s stall cycle repeated over a full 5-minute window at 2 samples/s.
    window = (busy * 20)[-600:]
    c = run(util_snap(window), NOW, iv=LMS500)["gpu.util:0"]
    assert c.state is State.OK, c.summary
    assert c.detail["avg"] == pytest.approx(sum(window) / 600)


def test_real_series_ending_in_its_busy_phase_over_a_window_of_that_length():
    util = series_util()
    th = replace(Thresholds(), gpu_util_window_s=20.0)  # the last 40 samples: busy + stall
    c = run(util_snap(util), NOW, th=th, iv=LMS500)["gpu.util:0"]
    assert c.state is State.OK and c.detail["avg"] > 80


def test_resequenced_series_with_long_stalls_is_data_bound():
    busy = busy_phase(series_util())
    hot = [v for v in busy if v >= 50]
    stall = [v for v in busy if v == 0]
    cycle = hot[:3] + stall[:5]  # the same real samples, the loader now starving 5 of 8 ticks
    window = (cycle * 100)[-600:]
    assert sum(window) / len(window) < 50
    c = run(util_snap(window), NOW, iv=LMS500)["gpu.util:0"]
    assert c.state is State.WARN and "data-bound?" in c.summary


def test_window_not_full_yet_is_not_judged():
    # the whole 34 s capture, idle start-up included, is far less than a 5-minute window
    c = run(util_snap(series_util()), NOW, iv=LMS500)["gpu.util:0"]
    assert c.state is State.OK and "not full yet" in c.summary


def test_util_not_judged_without_a_running_job_or_on_a_young_job():
    idle = [0.0] * 600
    s = replace(util_snap(idle), processes=(), apps=())
    assert run(s, NOW, iv=LMS500)["gpu.util:0"].state is State.OK
    young = ProcessInfo(4242, "python train.py", start_epoch=NOW - 120)
    s = replace(util_snap(idle), processes=(young,))
    c = run(s, NOW, iv=LMS500)["gpu.util:0"]
    assert c.state is State.OK and "younger" in c.summary


def test_one_low_sample_never_decides():
    window = [90.0] * 599 + [0.0]
    assert run(util_snap(window), NOW, iv=LMS500)["gpu.util:0"].state is State.OK


# ----------------------------------------------------------------------------- phases


def points(steps, loss=lambda s: 2.0, t0=T0, dt=1.0):
    return tuple(MetricPoint(step=s, loss=loss(s), line_no=i + 1, at=t0 + i * dt)
                 for i, s in enumerate(steps))


def test_close_watch_until_step_1000_then_patrol():
    ctx = RunContext()
    pts = points(range(0, 1000, 10))
    run(snap(T0 + 200, metrics=pts), T0 + 200, ctx)
    assert ctx.phase is Phase.CLOSE_WATCH and ctx.max_step == 990
    run(snap(T0 + 201, metrics=pts + points([1000], t0=T0 + 201)), T0 + 201, ctx)
    assert ctx.phase is Phase.PATROL


def test_a_restart_resets_the_phase():
    ctx = RunContext()
    run(snap(T0 + 100, metrics=points(range(0, 2001, 100))), T0 + 100, ctx)
    assert ctx.phase is Phase.PATROL
    new_proc = ProcessInfo(5000, "python train.py --resume", start_epoch=T0 + 500)
    s = snap(T0 + 600, processes=(new_proc,),
             metrics=points(range(0, 2001, 100)) + points([2000, 2100], t0=T0 + 600))
    run(s, T0 + 600, ctx)
    assert ctx.restarts == 1
    assert ctx.phase is Phase.CLOSE_WATCH  # resumed at step 2000: close watch again
    s = replace(s, metrics=s.metrics + points([3000], t0=T0 + 700))
    run(s, T0 + 700, ctx)
    assert ctx.phase is Phase.PATROL


def test_attaching_mid_run_is_patrol_at_once():
    ctx = RunContext()
    run(snap(T0 + 100, metrics=points([50_000, 50_010])), T0 + 100, ctx)
    assert ctx.phase is Phase.PATROL


# ----------------------------------------------------------------------------- loss, grad norm


def test_loss_not_finite_once_is_crit_and_stays_crit():
    ctx = RunContext()
    pts = points(range(5)) + (MetricPoint(step=5, loss=float("nan"), line_no=9),)
    assert run(snap(T0 + 10, metrics=pts), T0 + 10, ctx)["loss"].state is State.CRIT
    pts = pts + points([6, 7], t0=T0 + 11)
    c = run(snap(T0 + 12, metrics=pts), T0 + 12, ctx)["loss"]
    assert c.state is State.CRIT and "step 5" in c.summary


def test_loss_not_falling_over_the_first_100_logged_steps():
    flat = points(range(100), loss=lambda s: 2.0 + 0.01 * (s % 3))
    assert run(snap(T0 + 200, metrics=flat), T0 + 200)["loss"].state is State.WARN
    falling = points(range(100), loss=lambda s: 2.0 - 0.01 * s)
    assert run(snap(T0 + 200, metrics=falling), T0 + 200)["loss"].state is State.OK
    few = points(range(99), loss=lambda s: 2.0)
    assert run(snap(T0 + 200, metrics=few), T0 + 200)["loss"].state is State.OK


def _patrol_run(loss_of_minute):
    """Steps 0..7000 over 70 minutes, one point per 10 s."""
    n = 421
    pts = tuple(MetricPoint(step=1000 + 15 * i, loss=loss_of_minute(i / 6), line_no=i + 1,
                            at=T0 + 10 * i) for i in range(n))
    # early losses fall, so only the plateau rule can speak
    early = points(range(0, 1000, 10), loss=lambda s: 10.0 - s / 200, t0=T0 - 1000)
    now = T0 + 10 * (n - 1)
    return run(snap(now, metrics=early + pts, log_grew_at=now), now)["loss"]


def test_loss_plateau_over_two_patrol_windows_warns():
    c = _patrol_run(lambda m: 2.0 - 0.0001 * m)  # 0.15 % better per 30 min
    assert c.state is State.WARN and "flat" in c.summary


def test_loss_still_improving_is_ok():
    c = _patrol_run(lambda m: 2.0 * (0.999 ** m))  # ~3 % better per 30 min
    assert c.state is State.OK, c.summary


@pytest.mark.parametrize("g,expected", [
    (100.0, State.OK), (100.1, State.WARN), (float("inf"), State.CRIT), (float("nan"), State.CRIT),
])
def test_grad_norm(g, expected):
    pts = (MetricPoint(step=10, loss=1.0, grad_norm=g),)
    assert run(snap(T0 + 10, metrics=pts), T0 + 10)["grad_norm"].state is expected


# ----------------------------------------------------------------------------- checkpoints, log


def ckpt(mtime):
    return DirListing("/data/ckpt", True, (FileInfo("/data/ckpt/last.pt", True, 10**9, mtime),))


@pytest.mark.parametrize("age,expected", [(7200, State.OK), (7201, State.WARN)])
def test_checkpoint_age(age, expected):
    now = T0 + 20000
    assert run(snap(now, checkpoints=ckpt(now - age)), now)["checkpoint.age"].state is expected


def test_no_checkpoint_two_hours_into_a_run_warns():
    now = T0 + 7300
    c = run(snap(now, checkpoints=DirListing("/data/ckpt", True, ())), now)["checkpoint.age"]
    assert c.state is State.WARN and "no checkpoint yet" in c.summary


def _silent(now, grew, ckpt_mtime=None, steps=range(0, 100, 10)):
    extra = {"checkpoints": ckpt(ckpt_mtime)} if ckpt_mtime is not None else {}
    s = snap(now, log_path="/data/run.log", log_grew_at=grew, metrics=points(steps), **extra)
    return run(s, now)["log.silent"]


def test_log_silent_in_close_watch_is_5_minutes_then_10_in_patrol():
    now = T0 + 5000
    assert _silent(now, now - 299).state is State.OK
    c = _silent(now, now - 300)
    assert c.state is State.WARN and "stalled?" in c.summary
    patrol = range(0, 1100, 100)
    assert _silent(now, now - 599, steps=patrol).state is State.OK
    assert _silent(now, now - 600, steps=patrol).state is State.WARN


def test_log_silent_but_checkpoints_advance_is_block_buffered_stdout():
    now = T0 + 5000
    c = _silent(now, grew=now - 900, ckpt_mtime=now - 60)
    assert c.state is State.WARN
    assert "block-buffered stdout" in c.summary and "PYTHONUNBUFFERED=1" in c.summary
    assert "stalled" not in c.summary
    c = _silent(now, grew=now - 900, ckpt_mtime=now - 1000)  # checkpoint older than the silence
    assert "stalled?" in c.summary


def test_log_silence_is_not_judged_when_the_process_is_gone():
    now = T0 + 5000
    s = snap(now, log_path="/data/run.log", log_grew_at=now - 5000, processes=())
    assert run(s, now)["log.silent"].state is State.OK


# ----------------------------------------------------------------------------- run end


def _end(expected=None, completion=False, marker=False, end_after=1800.0):
    ctx = RunContext(expected_duration_s=expected)
    run(snap(T0 + 60), T0 + 60, ctx)  # seen alive
    ctx.completion_seen = completion
    markers = (FileInfo("/data/TRAIN_DONE", True, 0, T0 + end_after),) if marker else ()
    now = T0 + end_after
    return run(snap(now, processes=(), markers=markers), now, ctx)["run.ended"]


def test_fast_finish_is_a_probable_failure():
    c = _end(expected=7200, completion=True, end_after=1800)
    assert c.state is State.WARN and "probable failure" in c.summary
    assert _end(expected=7200, completion=True, end_after=4000).state is State.OK
    assert _end(expected=None, completion=True, end_after=60).state is State.OK


def test_process_gone_without_completion_line_or_marker_is_crit():
    assert _end().state is State.CRIT
    assert _end(marker=True).state is State.OK
    assert _end(completion=True).state is State.OK


def test_nothing_ever_seen_running_is_not_a_dead_run():
    assert "run.ended" not in run(snap(T0, processes=()), T0)


def test_script_edited_under_a_live_run():
    ctx = RunContext(script_path="/data/train.py", script_mtime=T0 + 30)
    c = run(snap(T0 + 60), T0 + 60, ctx)["script.edited"]
    assert c.state is State.WARN and "edited under a live run" in c.summary
    ctx = RunContext(script_path="/data/train.py", script_mtime=T0 - 30)
    assert run(snap(T0 + 60), T0 + 60, ctx)["script.edited"].state is State.OK
