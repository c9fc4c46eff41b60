#!/bin/sh
# On a real GPU box: a small training loop in the background, then `gpudash status --json` over the
# local transport and `gpudash triage --host` on its log. Used to check the real nvidia-smi path.
set -u
out=${OUT:-/tmp/gpu-smoke}; mkdir -p "$out"
export PYTHONPATH="$PWD:$PWD/.devdeps${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d); export HOME="$work/home"; mkdir -p "$HOME"
cat > "$work/train_smoke.py" <<'PY'
import time, torch
x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
w = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for step in range(1, 100000):
    for _ in range(20):
        y = x @ w
    torch.cuda.synchronize()
    if step % 10 == 0:
        print(f"step {step} loss {1.0 / step:.5f}", flush=True)
    if step % 40 == 0:
        time.sleep(1.0)  # a loader stall
PY
nohup python3 -u "$work/train_smoke.py" >"$work/train.log" 2>&1 </dev/null &
cat > "$work/gpudash.toml" <<TOML
[[host]]
name = "h100"
transport = "local"
log = "$work/train.log"
pgrep = "train_smoke"
mounts = ["/", "/dev/shm"]
TOML
sleep 20
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -m gpudash --config "$work/gpudash.toml" status --no-history > "$out/status.txt" 2>&1; echo "exit=$?" >> "$out/status.txt"
python3 -m gpudash --config "$work/gpudash.toml" status --json --no-history > "$out/status.json" 2>"$out/status.err"; echo "exit=$?" >> "$out/status.err"
python3 -m gpudash --config "$work/gpudash.toml" triage --host h100 > "$out/triage.txt" 2>&1; echo "exit=$?" >> "$out/triage.txt"
# the cost of one full probe round on the box, measured by the round itself
python3 - "$work/gpudash.toml" > "$out/rounds.txt" 2>&1 <<'PY'
import asyncio, resource, sys, time
from pathlib import Path
from gpudash.config import load_config
from gpudash.watch.spec import spec_from_host_config
from gpudash.watch.fleet import Fleet
spec = spec_from_host_config(load_config(Path(sys.argv[1])).hosts[0])
fleet = Fleet([spec]); w = fleet.watchers[spec.name]
async def main():
    await w.full_round()
    for group in ("gpu", "disk", "jobs", "log"):
        walls = []
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN); s0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(10):
            t = time.perf_counter(); await w.round(group); walls.append(time.perf_counter() - t)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN); s1 = resource.getrusage(resource.RUSAGE_SELF)
        walls.sort()
        print(f"{group:5s} median {walls[5]*1000:.1f} ms  client cpu/round {((s1.ru_utime+s1.ru_stime)-(s0.ru_utime+s0.ru_stime))*100:.2f} ms")
    await fleet.close()
asyncio.run(main())
PY
kill %1 2>/dev/null; pkill -f train_smoke; true
