"""Render the results of :mod:`benchmarks.run` as Markdown tables (printed, and kept in the JSON).

    python -m benchmarks.report [benchmarks/results/latest.json]
"""

from __future__ import annotations

import json
import sys


def _f(x, nd=1, unit="") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.{nd}f}{unit}"


def _ratio(a, b) -> float | None:
    try:
        return a / b if a is not None and b else None
    except TypeError:
        return None


def _real_h100() -> dict | None:
    """nvidia-smi's own costs measured on a real H100 box (benchmarks/nvsmi_cost.py, by hand)."""
    import os

    path = os.path.join(os.path.dirname(__file__), "results", "nvsmi_h100.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def section_a(a: dict, targets: list) -> list[str]:
    if not a:
        return []
    g, s, w = a.get("gpudash", {}), a.get("ssh_per_poll", {}), a.get("gpustat_web", {})
    rtt, own, floor = a.get("rtt", {}), a.get("own", {}), a.get("floor_true", {})
    sshd = a.get("sshd", {})
    lines = ["### (a) Steady tick, one host: GPU + disk + jobs + log tail", "",
             f"Box: {sshd.get('sshd', '?')}; box user `{sshd.get('user')}` ({sshd.get('mode')}); "
             f"its ~/.bashrc burns {_f(sshd.get('rc_cpu_ms'))} ms CPU ({_f(sshd.get('rc_wall_ms'))} ms wall) "
             "for every shell sshd starts. Stand-in `nvidia-smi` (a `printf`) in every variant.", ""]
    rows = []
    names = [("gpudash: every probe in one tick (one-shot GPU)", g),
             ("its batches on gpudash's transport, nothing parsed", a.get("transport", {})),
             ("ssh-per-poll (OpenSSH, new connection)", s),
             ("gpustat-web style (asyncssh, new channel, GPU only)", w),
             ("floor: `true` on gpudash's warm session", floor), ("round trip: `echo` on a raw warm channel", rtt),
             ("the commands alone, on the box, no SSH", own),
             ("gpudash with asyncssh's default cipher (chacha20-poly1305)", a.get("gpudash_chacha", {})),
             ("round trip, chacha20-poly1305", a.get("rtt_chacha", {}))]
    if "gpudash_gcm" in a:  # results from before gpudash preferred AES-GCM itself
        names[-2:] = [("gpudash, AES-GCM preferred", a["gpudash_gcm"]),
                      ("round trip, AES-GCM preferred", a.get("rtt_gcm", {}))]
    for label, r in names:
        if not r:  # a variant this run's code did not have
            continue
        if "error" in r:
            rows.append([label, "error", "", "", "", "", ""])
            continue
        box = r.get("box_cpu_ms_per_tick")
        rows.append([label, _f(r.get("latency_ms_median")), _f(r.get("latency_ms_p95")),
                     _f(r.get("client_cpu_ms_per_tick"), 2), _f(box, 1),
                     _f(box / 2000 * 100 if box is not None else None, 2, "%"),
                     _f(r.get("ssh_packets_in"), 0) if "ssh_packets_in" in r else "–"])
    lines += _table(["variant", "latency median ms", "p95 ms", "client CPU ms/tick", "box CPU ms/tick",
                     "box CPU at 2 s (% core)", "SSH packets in/tick"], rows)
    st, cad = a.get("gpu_stream", {}), a.get("cadence", {})
    for label, st in (("", a.get("gpu_stream", {})), (" (AES-GCM)", a.get("gpu_stream_gcm", {})),
                      (" (chacha20-poly1305)", a.get("gpu_stream_chacha", {}))):
        if st and "error" not in st:
            lines += ["", f"GPU as a stream{label} (`nvidia-smi … -lms {st.get('interval_ms')}` on the warm "
                      f"connection, as the watcher now samples GPUs): {_f(st.get('client_cpu_ms_per_sample'), 2)} ms "
                      f"client CPU, {_f(st.get('box_cpu_ms_per_sample'), 2)} ms box CPU, "
                      f"{_f(st.get('ssh_packets_in'), 1)} SSH packets per sample."]
    steps = (a.get("steps") or {}).get("per_step")
    if steps:
        lines += ["", "Box CPU per step, each alone in the warm session (ms): "
                  + ", ".join(f"`{k}` {_f(v['box_cpu_ms'], 1)}" for k, v in steps.items()) + "."]
    fr = a.get("framing") or {}
    if fr and "error" not in fr:
        shipped, per_step = fr.get("shipped_ms"), fr.get("sh_per_step_ms")
        lines += ["", f"The framing on the box, the every-probe tick's batches run by `/bin/sh -s` with no SSH "
                  f"({fr.get('n')} ticks of each, alternated): as shipped {_f(shipped, 2)} ms (plain commands "
                  f"under `timeout` alone: {', '.join(f'`{k}`' for k in fr.get('plain_steps', []))}); every step "
                  f"under its own `/bin/sh -c`, as before 2026-11-24, {_f(per_step, 2)} ms "
                  f"(×{_f(per_step / shipped if shipped and per_step else None, 2)}); without the per-step "
                  f"remote `timeout` {_f(fr.get('no_timeout_ms'), 2)} ms (the deadline's cost); the session "
                  f"shell alone {_f(fr.get('sh_alone_ms'), 2)} ms."]
    if cad and "error" not in cad:
        c = cad.get("cadence", {})
        lines += ["", f"Default cadences (GPU {c.get('gpu')} s, log {c.get('log')} s, disk {c.get('disk')} s, "
                  f"jobs {c.get('jobs')} s, files {c.get('files')} s) for {_f(cad.get('seconds'), 0)} s: "
                  f"client {_f(cad.get('client_cpu_pct'), 2)}% of a core, box {_f(cad.get('box_cpu_pct'), 2)}% "
                  f"of a core, RSS {_f(cad.get('rss_mb'))} MB"
                  + (f", {_f(cad.get('ssh_packets_in_per_s'), 2)} SSH packets in/s; "
                     + ("" if cad.get("job_identified") else
                        "no process matches the run's pattern, so the /proc scan runs every jobs round; ")
                     + "the log quiet"
                     + (" (followed on the box by one `python3` sampler: a heartbeat line every 5 s)"
                        if cad.get("log_followed") else
                        f" (its reads backed off to every {_f(cad.get('log_wait_s'), 1)} s)")
                     if "log_wait_s" in cad else "") + "."]
        tm = a.get("cadence_tmux") or {}
        if tm and "error" not in tm:
            lines += [f"The same with the job in a tmux session `train` on the box (tmux vouches for "
                      f"it, so the /proc scan runs every 60 s instead of every jobs round): client "
                      f"{_f(tm.get('client_cpu_pct'), 2)}% of a core, box {_f(tm.get('box_cpu_pct'), 2)}% "
                      "of a core."]
        pol, gpol = a.get("cadence_polled") or {}, a.get("cadence_growing_polled") or {}
        if pol and gpol and "error" not in pol and "error" not in gpol:
            lines += [f"Without the log follower (polled reads, as on a box without `python3`; same run): box "
                      f"{_f(pol.get('box_cpu_pct'), 2)}% of a core with the log quiet, "
                      f"{_f(gpol.get('box_cpu_pct'), 2)}% with it growing; client {_f(pol.get('client_cpu_pct'), 2)}% "
                      f"/ {_f(gpol.get('client_cpu_pct'), 2)}%."]
        grow = a.get("cadence_growing") or {}
        if grow and "error" not in grow:
            how = ("the follower looks every 1 s and sends what grew" if grow.get("log_followed")
                   else f"log read every {_f(grow.get('log_wait_s'), 1)} s")
            if grow.get("job_identified"):
                how += ("; the writer is the run: it matches the run's pattern, so after one /proc scan "
                        "its live pid vouches for the job and the scan runs every 60 s")
            lines += [f"The same with a line appended to the log every 0.5 s ({how}): client {_f(grow.get('client_cpu_pct'), 2)}% of a core, "
                      f"box {_f(grow.get('box_cpu_pct'), 2)}% of a core, {_f(grow.get('ssh_packets_in_per_s'), 2)} "
                      "SSH packets in/s."]
    lat_x = _ratio(s.get("latency_ms_median"), g.get("latency_ms_median"))
    cpu_x = _ratio(s.get("client_cpu_ms_per_tick"), g.get("client_cpu_ms_per_tick"))
    box_x = _ratio(s.get("box_cpu_ms_per_tick"), g.get("box_cpu_ms_per_tick"))
    boxw_x = _ratio(w.get("box_cpu_ms_per_tick"), g.get("box_cpu_ms_per_tick"))
    floor_ms = (rtt.get("latency_ms_median") or 0) + (own.get("latency_ms_median") or 0)
    near = _ratio(g.get("latency_ms_median"), floor_ms)
    lines += ["", f"Ratios (same run): ssh-per-poll / gpudash — latency ×{_f(lat_x)}, client CPU ×{_f(cpu_x)}, "
              f"box CPU ×{_f(box_x)}; gpustat-web / gpudash box CPU ×{_f(boxw_x)}; gpudash latency / (round trip + "
              f"commands' own time) = {_f(near, 2)}."]
    tr = a.get("transport") or {}
    if tr and "error" not in tr and g.get("client_cpu_ms_per_tick") and s.get("client_cpu_ms_per_tick"):
        # The transport alone (the same batches, nothing parsed) bounds the client ratio any
        # parsing could reach: ssh-per-poll / transport is the ceiling on this machine, now.
        tc, gc_ = tr.get("client_cpu_ms_per_tick"), g["client_cpu_ms_per_tick"]
        lines += ["", f"The transport's share of the every-probe tick's client CPU: {_f(tc, 2)} ms of "
                  f"{_f(gc_, 2)} ms ({_f(tr.get('ssh_packets_in'), 0)} SSH packets in, "
                  f"{len(tr.get('batches') or [])} batches; parsing, health and triage are the other "
                  f"{_f(gc_ - tc, 2)} ms). With nothing parsed at all, ssh-per-poll would cost "
                  f"×{_f(_ratio(s['client_cpu_ms_per_tick'], tc))} of it."]
    if cad and "error" not in cad and s and "error" not in s:
        per2c = cad.get("client_cpu_pct", 0) * 20  # ms per 2 s
        per2b = cad.get("box_cpu_pct", 0) * 20
        cx = _ratio(s.get("client_cpu_ms_per_tick"), per2c)
        bx = _ratio(s.get("box_cpu_ms_per_tick"), per2b)
        bwx = _ratio(w.get("box_cpu_ms_per_tick"), per2b)
        lines += ["", f"Steady state per 2 s at the default cadences: client {_f(per2c, 1)} ms, box {_f(per2b, 1)} ms — "
                  f"ssh-per-poll costs ×{_f(cx)} the client CPU and ×{_f(bx)} the box CPU of that; gpustat-web "
                  f"×{_f(bwx)} the box CPU."]
        targets.append(("(a) client CPU ≥ 50× less, steady state (default cadences) vs a poll every 2 s",
                        f"×{_f(cx)}", cx is not None and cx >= 50))
        targets.append(("(a) box CPU ≥ 25× below ssh-per-poll / gpustat-web, steady state",
                        f"×{_f(bx)} / ×{_f(bwx)}", bool(bx and bwx and min(bx, bwx) >= 25)))
        real = _real_h100()
        steps = (a.get("steps") or {}).get("per_step") or {}
        st = a.get("gpu_stream") or {}
        if real and steps and st and "error" not in st:
            # Swap the stand-in nvidia-smi's costs for the real ones measured on an H100 box:
            # the NVML sampler's per sample (it sends the compute apps and the health readings
            # too, so no one-shot query runs) when it was measured there, else `nvidia-smi -lms`
            # and the one-shots.
            nv = real.get("stream_nvml2000") or {}
            rs = nv.get("cpu_ms_per_sample_steady") or real["stream_lms2000"].get("cpu_ms_per_sample_steady") or 0
            rl = real.get("gpudash_step_box_cpu_ms", {})
            apps_real = 0.0 if nv else rl.get("gpu_apps", 0)
            health_real = 0.0 if nv else rl.get("gpu_health", 0)

            def project(run: dict) -> float:
                """% of a core on an H100 for one cadence run: its box CPU, the stand-in's
                nvidia-smi costs out and the real ones in, each at the cadence it ran at."""
                c = run.get("cadence", {})
                apps_every = (c.get("procs", 60) if run.get("job_identified") else c.get("jobs", 15))
                health_every = c.get("gpu_health", c.get("disk", 10))
                stand = (st.get("box_cpu_ms_per_sample", 0) / c.get("gpu", 2)
                         + steps.get("gpu_health", {}).get("box_cpu_ms", 0) / health_every
                         + steps.get("gpu_apps", {}).get("box_cpu_ms", 0) / apps_every)
                realc = rs / c.get("gpu", 2) + health_real / health_every + apps_real / apps_every
                return (run.get("box_cpu_pct", 0) * 10 - stand + realc) / 10

            proj = project(cad)
            tmp = a.get("cadence_tmux") or {}
            proj_tmux = project(tmp) if tmp and "error" not in tmp else None
            # the nvidia-smi stream measured beside the sampler in the same run, when it was
            lms = (real.get("stream_lms2000_same_run") or real["stream_lms2000"]).get("cpu_ms_per_sample_steady") or 0
            lines += ["", f"On a real H100 box (measured there, `results/nvsmi_h100.json`): a one-shot core "
                      f"query costs {_f(real['one_shot_core']['cpu_ms'], 1)} ms CPU, a `nvidia-smi -lms` stream "
                      f"{_f(lms, 1)} ms per sample ({_f(lms / 2 / 10, 2)}% of a core at 2 s on its own)"
                      + (f", gpudash's NVML sampler {_f(rs, 2)} ms per sample, compute apps and health included" if nv else "")
                      + f". Swapping the stand-in's costs for those, the default cadences would cost the box about "
                      f"{_f(proj, 2)}% of a core"
                      + (f", {_f(proj_tmux, 2)}% with the job in tmux" if proj_tmux is not None else "") + "."]
            w, wj = real.get("gpudash_watch_nvml"), real.get("gpudash_watch_nvml_job")
            ws, wsj = real.get("gpudash_watch_nvidia_smi"), real.get("gpudash_watch_nvidia_smi_job")
            if w and wj:
                lines += ["", f"Measured there directly (the whole watch at the default cadences, local transport, "
                          f"so without sshd's share): {_f(w['box_cpu_pct'], 2)}% of a core with no job found, "
                          f"{_f(wj['box_cpu_pct'], 2)}% with a GPU job running"
                          + (f"; with `gpu_nvml = false` (nvidia-smi) {_f(ws['box_cpu_pct'], 2)}% and "
                             f"{_f(wsj['box_cpu_pct'], 2)}%" if ws and wsj else "") + "."]
            targets.append(("(a) box CPU < 0.4% of a core, default cadences, projected on a real H100 (job in tmux)",
                            f"{_f(proj, 2)}% ({_f(proj_tmux, 2)}%)",
                            (proj_tmux if proj_tmux is not None else proj) < 0.4))
    gbox = g.get("box_cpu_ms_per_tick")
    targets += [
        ("(a) tick latency ≥ 20× lower than ssh-per-poll", f"×{_f(lat_x)}", lat_x is not None and lat_x >= 20),
        ("(a) client CPU ≥ 50× less than ssh-per-poll", f"×{_f(cpu_x)}", cpu_x is not None and cpu_x >= 50),
        ("(a) latency within 2× of round trip + commands' own time", f"{_f(near, 2)}×",
         near is not None and near <= 2),
        ("(a) box CPU < 0.4% of a core at 2 s, every probe every tick",
         f"{_f(gbox / 20 if gbox is not None else None, 2)}%", gbox is not None and gbox / 20 < 0.4),
    ]
    if cad and "error" not in cad:
        targets.append(("(a) box CPU < 0.4% of a core, default cadences (GPU 2 s), log quiet",
                        f"{_f(cad.get('box_cpu_pct'), 2)}%", cad.get("box_cpu_pct", 99) < 0.4))
        tm = a.get("cadence_tmux") or {}
        if tm and "error" not in tm:
            targets.append(("(a) box CPU < 0.4% of a core, default cadences, log quiet, job in tmux",
                            f"{_f(tm.get('box_cpu_pct'), 2)}%", tm.get("box_cpu_pct", 99) < 0.4))
        grow = a.get("cadence_growing") or {}
        if grow and "error" not in grow:
            targets.append(("(a) box CPU < 0.4% of a core, default cadences (GPU 2 s), log growing",
                            f"{_f(grow.get('box_cpu_pct'), 2)}%", grow.get("box_cpu_pct", 99) < 0.4))
    targets.append(("(a) box CPU ≥ 25× below ssh-per-poll and gpustat-web",
                    f"×{_f(box_x)} / ×{_f(boxw_x)}", bool(box_x and boxw_x and min(box_x, boxw_x) >= 25)))
    return lines


def _retriage(r: dict | None) -> str:
    if not r:
        return ""
    parts = [f"{kind} log {_f(v['fresh'], 1)} afresh, {_f(v['memo'], 1)} with the memo" for kind, v in r.items()]
    n = next(iter(r.values()))["lines"]
    return f" Re-triage of a full tail ({n:,} lines) after 5 new lines: " + "; ".join(parts) + "."


def _first_read(r: dict | None) -> str:
    if not r:
        return ""
    parts = [f"{name} ({v['lines']:,} lines, {v['metric_points']:,} metric points kept) {_f(v['ms'], 0)} ms, "
             f"×{_f(v['x_split'])} of merely splitting its bytes into lines; {_f(v['state_kb'], 0)} KB of log state"
             for name, v in r.items()]
    return " A first read of a day-old log (its newest 256 KiB): " + "; ".join(parts) + "."


def _loss_history(r: dict | None) -> str:
    if not r:
        return ""
    parts = [f"{rate.split('_')[0]} a second, {v['pairs']:,} pairs: {_f(v['kb'], 0)} KB "
             f"(as the deque of tuples it was: {_f(v['deque_of_tuples_kb'], 0)} KB, ×{_f(v['ratio'])})"
             for rate, v in r.items() if rate.endswith("_per_s")]
    return (f" A host's loss history over its {_f(r['horizon_s'] / 60, 0)}-minute horizon, for a run "
            "logging a loss " + "; ".join(parts) + ".")


#: scale runs that are one side of an A/B (scale.section_b's tags), not gpudash as it runs
AB_KEYS = (" asyncio loop", " CPython GC", " generator pads")


def section_b(b: dict, targets: list) -> list[str]:
    if not b:
        return []
    rows = []
    for key, r in b.items():
        if key == "costs":
            continue
        if "error" in r:
            rows.append([key, "error: " + r["error"][-200:].replace("\n", " ").replace("|", "/"), "", "", "", "", "", "", "", "", "", ""])
            continue
        rows.append([key, _f(r.get("client_cpu_pct"), 1, "%"), _f(r.get("rss_mb"), 0),
                     _f(r.get("share_on_time", 0) * 100, 1, "%"), _f(r.get("generator_cpu_pct"), 1, "%"),
                     f"{_f(r.get('round_ms_median', r.get('log_round_ms_median')))} / "
                     f"{_f(r.get('round_ms_p99', r.get('log_round_ms_p99')))}",
                     # GPU samples flowing, then (since 2026-11-24) every log read and triaged once
                     f"{_f((r.get('warmup_s') or 0) + (r.get('log_warmup_s') or 0), 0)} s",
                     "yes" if r.get("ui") else "no",
                     f"{r['logs_followed_at_end']}/{r.get('hosts')}" if "logs_followed_at_end" in r else "–",
                     r.get("loop", "asyncio"),
                     "/".join(map(str, r["gc_threshold"])) if "gc_threshold" in r else "–",
                     # a stall delays every host's samples; measured since 2026-11-23 22:00
                     f"{_f(r.get('loop_lag_ms_p99'), 0)} / {_f(r.get('loop_lag_ms_max'), 0)}"
                     if "loop_lag_ms_p99" in r else "–"])
        hosts, iv = r.get("hosts"), r.get("interval_s")
        if r.get("gpus_per_host", 1) != 1 or any(k in key for k in AB_KEYS):
            continue  # the targets: one-GPU boxes of the default runs, as gpudash runs
        if hosts == 500 and iv == 2.0 and r.get("ui"):
            targets.append(("(b) 500 hosts at 2 s under 25% of a core", _f(r.get("client_cpu_pct"), 1, "%"),
                            r.get("client_cpu_pct", 999) < 25))
        if hosts == 1000 and iv == 1.0 and r.get("ui"):
            ok = (r.get("client_cpu_pct", 999) < 100 and r.get("rss_mb", 9999) < 300
                  and r.get("share_on_time", 0) >= 0.99)
            targets.append(("(b) 1,000 hosts at 1 s: < 1 core, < 300 MB, ≥ 99% on time",
                            f"{_f(r.get('client_cpu_pct'), 1, '%')}, {_f(r.get('rss_mb'), 0)} MB, "
                            f"{_f(r.get('share_on_time', 0) * 100, 1, '%')}", ok))
    lines = ["### (b) Scale: the real Fleet (+ the TUI, headless) against the load generator", ""]
    lines += _table(["hosts @ GPU cadence", "gpudash CPU (% core)", "RSS MB", "GPU samples on time",
                     "generator CPU (% core)", "probe round ms median / p99", "warm-up", "UI", "logs followed", "loop", "GC thresholds",
                     "loop lag ms p99 / max"], rows)
    costs = b.get("costs") or {}
    if costs and "error" not in costs:
        from benchmarks.costs import budget

        bud = budget(costs, A_SECTION.get("a"))
        lines += ["", "Per-operation client CPU (no network, `benchmarks/costs.py`, ms): "
                  f"`refresh()` {_f(costs.get('refresh_ms'), 2)} (health evaluate {_f(costs.get('health_evaluate_ms'), 2)}, "
                  f"debounce {_f(costs.get('health_debounce_ms'), 2)}, triage fusion {_f(costs.get('triage_fuse_ms'), 2)}, "
                  f"snapshot {_f(costs.get('snapshot_ms'), 2)}); one GPU CSV line parsed {_f(costs.get('gpu_line_parse_ms'), 3)}; "
                  f"a log tick of 100 lines {_f(costs.get('log_tick_100_lines_ms'), 1)}; framing a batch "
                  f"{_f(costs.get('render_batch_ms'), 3)} + splitting its answer {_f(costs.get('split_batch_ms'), 3)}."
                  + _retriage(costs.get("retriage_ms")) + _first_read(costs.get("first_read"))
                  + _loss_history(costs.get("loss_history")),
                  "", f"Budget per host in a big fleet at a 2 s GPU cadence ({_f(bud['refreshes_per_s'], 2)} view "
                  f"refreshes/s, {_f(bud['rounds_per_s'], 2)} batch round trips/s, "
                  f"{_f(bud.get('stream_lines_per_s', 0.5), 2)} streamed lines/s: GPU samples and log records), ms of "
                  "client CPU per second: " + ", ".join(f"{k} {_f(v, 2)}" for k, v in bud["ms_per_host_per_s"].items())
                  + (f" — total {_f(bud['total_ms_per_host_per_s'], 2)} ms/s, i.e. about "
                     f"{_f(bud['hosts_at_25pct_core'], 0)} hosts in 25% of a core before the log's own parsing "
                     "and triage, without the UI."
                     if len(bud["ms_per_host_per_s"]) > 2 else " (SSH costs come from (a), not run here).")]
    return lines


def section_c(c: dict, targets: list) -> list[str]:
    if not c:
        return []
    if "error" in c:
        return ["### (c) Log tail", "", "error: " + c["error"][-500:]]
    rows = []
    for p in c.get("phases", []):
        rows.append([f"{p['rate_lines_s']:,.0f} lines/s", _f(p["appended_bytes_per_tick"] / 1024, 1),
                     _f(p["moved_bytes_per_tick"] / 1024, 1), _f(p["ssh_bytes_in_per_tick"] / 1024, 1),
                     _f(p["moved_over_appended"], 3), _f(p["skipped_bytes_per_tick"] / 1024, 0),
                     _f(p.get("tick_gap_s_median"), 2), _f(p.get("client_cpu_pct"), 1, "%")])
    lines = ["### (c) Log tail under a writer (separate process), over the real sshd", ""]
    lines += _table(["writer", "appended KiB/tick", "moved KiB/tick (step output)", "SSH KiB in/tick",
                     "moved / appended", "skipped KiB/tick", "tick gap s", "client CPU"], rows)
    lines += ["", f"Checks: byte accounting exact (offset = read + reported skipped = file size): "
              f"{_f(c.get('accounting_exact'))}; lines torn: {c.get('torn_lines')}; shown twice or out of order: "
              f"{c.get('duplicate_or_reordered')}; sequence gaps {c.get('sequence_gaps')} ≤ skip events "
              f"{c.get('skip_events')}: {_f(c.get('gaps_all_explained_by_skips'))}; last line shown = last written: "
              f"{c.get('last_line_shown') == (c.get('lines_written') or 0) - 1}; display lines ≤ "
              f"{c.get('display_lines_max')}; RSS growth {_f(c.get('rss_mb_growth'))} MB; largest tick "
              f"{_f((c.get('tick_moved_max') or 0) / 1024)} KiB."]
    calm = next((p for p in c.get("phases", []) if p["skipped_bytes_per_tick"] == 0), None)
    ok = bool(c.get("accounting_exact")) and c.get("torn_lines") == 0 and c.get("duplicate_or_reordered") == 0
    targets.append(("(c) only appended bytes move; skips exact; nothing torn or twice",
                    f"calm ×{_f(calm['moved_over_appended'], 3) if calm else '–'}", ok and calm is not None
                    and calm["moved_over_appended"] < 1.05))
    targets.append(("(c) memory bounded under the flood", f"+{_f(c.get('rss_mb_growth'))} MB RSS",
                    (c.get("rss_mb_growth") or 99) < 20))
    return lines


def section_d(d: dict, targets: list) -> list[str]:
    if not d:
        return []
    h, ff = d.get("help", {}), d.get("first_frame", {})
    rows = [[k, _f(v["median_s"] * 1e3, 0), _f(v["min_s"] * 1e3, 0), _f(v["over_python_s"] * 1e3, 0),
             _f(v.get("cpu_s_median", 0) * 1e3, 0)] for k, v in h.items() if isinstance(v, dict)]
    lines = ["### (d) Start-up", ""]
    lines += _table(["command", "wall ms (median)", "wall ms (min)", "over `python -c pass` ms",
                     "CPU ms (median)"], rows)
    lines += ["", f"Heavy modules imported by `--help`: {', '.join(h.get('heavy_modules_imported_by_help') or []) or 'none'}.",
              "", f"First frame of `gpudash demo` in a tmux pane: {_f((ff.get('gpudash_demo_s') or 0) * 1e3, 0)} ms "
              f"(baseline `python -c print` in the same pane: {_f((ff.get('baseline_print_s') or 0) * 1e3, 0)} ms); "
              f"headless, first compositor update from spawn: "
              f"{_f((ff.get('headless', {}).get('median_s') or 0) * 1e3, 0)} ms."]
    imp = d.get("import_ms") or {}
    if imp:
        lines += ["", "Import time of the TUI (`-X importtime`, cumulative ms): "
                  + ", ".join(f"`{k}` {_f(v, 0)}" for k, v in imp.items()) + "."]
    helpt = (h.get("gpudash --help") or h.get("python -m gpudash --help") or {}).get("median_s")
    targets.append(("(d) `gpudash --help` < 0.3 s", f"{_f((helpt or 0) * 1e3, 0)} ms", helpt is not None and helpt < 0.3))
    fft = ff.get("gpudash_demo_s") or ff.get("median_s")
    targets.append(("(d) first frame < 1.5 s", f"{_f((fft or 0) * 1e3, 0)} ms", fft is not None and fft < 1.5))
    return lines


def section_e(e: dict, targets: list) -> list[str]:
    if not e:
        return []
    if "error" in e:
        return ["### (e) UI", "", "error: " + e["error"][-500:]]
    rows = []
    for phase in ("live", "idle"):
        for key, label in (("down", "`j`/`k` (move selection)"),
                           ("enter_open_host", "`enter` (open the same host again)"),
                           ("enter_next_host", "`enter` (open another host)"),
                           ("escape_back", "`escape` (back)")):
            if key == "enter_next_host" and key not in e.get(phase, {}):
                continue  # runs before the reused host screen had no such row
            r = e.get(phase, {}).get(key, {})
            rows.append([f"{phase}: {label}", _f(r.get("median_ms")), _f(r.get("p95_ms")), r.get("lost", "–")])
    f = e.get("idle_frame", {})
    rows.append(["idle frame: `refresh()` → update", _f(f.get("median_ms")), _f(f.get("p95_ms")), 0])
    lines = [f"### (e) Key → screen, {e.get('hosts')} live hosts (headless 160×50, Pilot)", ""]
    lines += _table(["", "median ms", "p95 ms", "lost"], rows)
    lines += ["", f"Live: {_f(e.get('live_views_per_s'), 0)} host views/s arriving, "
              f"{_f(e.get('live_frames_per_s'), 1)} frames/s, the app process at {_f(e.get('live_cpu_pct'), 0)}% of a core."]
    mv = e.get("live", {}).get("down", {}).get("median_ms")
    live = e.get("live", {})
    # the worse of the two opens: another host (every panel filled anew) when it was measured
    op = max((live.get(k, {}).get("median_ms") for k in ("enter_open_host", "enter_next_host")
              if live.get(k, {}).get("median_ms") is not None), default=None)
    targets.append(("(e) key → screen < 100 ms with 50 hosts (move / open a host)", f"{_f(mv, 0)} / {_f(op, 0)} ms",
                    mv is not None and op is not None and mv < 100 and op < 100))
    return lines


A_SECTION: dict = {}


def _speed_line(start: dict, end: dict | None) -> str:
    """The machine's speed when the run began (and ended): compare runs next to it."""
    def one(d: dict) -> str:
        return (f"a 1M-step Python loop {_f(d.get('python_loop_1m_ms'), 1)} ms, "
                + (f"a 300k-entry table {_f(d['python_table_300k_ms'], 1)} ms, "
                   if d.get("python_table_300k_ms") is not None else "")
                + f"spawning /bin/true {_f(d.get('spawn_true_ms'), 2)} ms")
    return "Machine speed at start: " + one(start) + (f"; at end: {one(end)}" if end else "") + "."


def render(results: dict) -> str:
    m = results.get("machine", {})
    s = results.get("sections", {})
    A_SECTION.clear()
    A_SECTION["a"] = s.get("a") or {}
    targets: list = []
    out = [f"gpudash benchmarks — {results.get('started', '?')} on {m.get('host')} "
           f"({m.get('cpu')}, {m.get('cores')} cores, {m.get('mem_mb')} MB; Python {m.get('python')}, "
           f"asyncssh {m.get('asyncssh')}, textual {m.get('textual')}; load average at start "
           f"{', '.join(f'{x:.1f}' for x in m.get('loadavg_at_start', []))})"
           + (" — QUICK run" if results.get("quick") else ""), ""]
    if m.get("speed_at_start"):
        out[-1:-1] = [_speed_line(m["speed_at_start"], results.get("speed_at_end"))]
    for fn, key in ((section_a, "a"), (section_b, "b"), (section_c, "c"), (section_d, "d"), (section_e, "e")):
        part = fn(s.get(key) or {}, targets)
        if part:
            out += part + [""]
    if targets:
        out += ["### Targets (issue 7)", ""]
        out += _table(["target", "measured", "met"], [[t, m_, "yes" if ok else "**no**"] for t, m_, ok in targets])
    return "\n".join(out)


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/latest.json"
    with open(path) as f:
        print(render(json.load(f)))
