"""GPU samples from NVML called in-process on the box: one small `python3` instead of `nvidia-smi`.

Why: a streaming `nvidia-smi --query-gpu … -lms 2000` costs ~5 ms of CPU per sample on an H100
(0.25% of a core at 2 s, on its own more than half of gpudash's whole budget on the box); the
same readings through NVML from a process that stays up cost a fraction of that (measured on a
real H100: benchmarks/nvsmi_cost.py, `results/nvsmi_h100.json`).

The agent prints exactly what `nvidia-smi --query-gpu=CORE_FIELDS --format=csv,noheader,nounits`
prints — one line per GPU per interval, the same columns, units and placeholders — so
:func:`gpudash.probes.gpu.parse_gpu_line` reads it unchanged and a sample is the same sample
whichever tool produced it (checked field by field against nvidia-smi on the H100).

It is a fast path only. Anything it does not expect ends it, and the watcher goes back to
`nvidia-smi`, whose error classification (no GPU, driver hung, GPU lost, version mismatch …)
stays the one that speaks:

    NONVML <why>        no python3, no libnvidia-ml.so.1, a missing symbol, or nvmlInit failed:
                        the watcher uses `nvidia-smi -lms` (and tries NVML again later)
    NVMLERR <fn> <code> an NVML call failed mid-stream (GPU lost, unknown error …): the agent
                        exits, the watcher runs a one-shot `nvidia-smi`, which says what it is
    APPS <n>            the compute apps changed (and at the start): n lines follow, each
    A <pid>, <name>, <MiB>, <gpu uuid>   as `nvidia-smi --query-compute-apps` prints them
    APPS -              this NVML cannot list them: the watcher asks nvidia-smi, as before

    HEALTH <n>          the health readings changed (and at the start): n lines follow, each
    H <index>, <ECC>, <events>   as the health query prints them (uncorrectable volatile ECC
                        total, active clock-event reasons as 0x + 16 hex digits)

While the sampler runs, the compute apps and health readings it last sent are current (it looks
every sample), so the watcher starts no `nvidia-smi --query-compute-apps` (~18 ms of CPU on an
H100) in its jobs rounds and no health query (~23 ms) in its disk rounds: in the steady state no
nvidia-smi runs on the box at all.

A reading the GPU does not support becomes ``[N/A]`` and one the user may not read
``[Insufficient Permissions]``, as nvidia-smi prints them (both parse to ``None``).

Bounds: the process lives at most the stream's lifetime (the transport's `timeout -k`), dies of
EPIPE at its next sample once its channel is gone, and every line is one GPU's sample (names and
UUIDs have any line break replaced, so the box cannot forge a second line). A hung driver call
leaves the stream silent, and the watcher's per-sample deadline ends it as it does nvidia-smi's.
"""

from __future__ import annotations

import functools
import shlex

from gpudash.transport.base import PROBE_MARKER, Step

__all__ = ["nvml_stream_step"]

NOT_NVML = b"NONVML"

# Python 3.6+ with ctypes, no site import (-S), isolated from PYTHON* variables (-I). The marker
# leads its command line: a `/proc` scan for the run never takes the agent for it.
_AGENT = "# " + PROBE_MARKER + r"""
import os, sys, time
from ctypes import (CDLL, Structure, Union, byref, c_char, c_double, c_int, c_int64, c_uint,
                    c_uint32, c_ulonglong, c_ushort, c_void_p, create_string_buffer)
iv = float(sys.argv[1])
out = sys.stdout.buffer

def say(b):
    try:
        out.write(b)
        out.flush()
    except Exception:
        os._exit(0)

def quit(b):
    say(b + b"\n")
    os._exit(0)

try:
    L = CDLL("libnvidia-ml.so.1")
except OSError:
    quit(b"NONVML cannot load libnvidia-ml.so.1")

def fn(name, need=True):
    try:
        return getattr(L, name)
    except AttributeError:
        if need:
            quit(b"NONVML no symbol " + name.encode())
        return None

class Mem1(Structure):
    _fields_ = [("total", c_ulonglong), ("free", c_ulonglong), ("used", c_ulonglong)]

class Mem2(Structure):
    _fields_ = [("version", c_uint), ("total", c_ulonglong), ("reserved", c_ulonglong),
                ("free", c_ulonglong), ("used", c_ulonglong)]

class Util(Structure):
    _fields_ = [("gpu", c_uint), ("memory", c_uint)]

class Pci(Structure):
    _fields_ = [("busIdLegacy", c_char * 16), ("domain", c_uint), ("bus", c_uint),
                ("device", c_uint), ("pciDeviceId", c_uint), ("pciSubSystemId", c_uint),
                ("busId", c_char * 32)]

class Value(Union):
    _fields_ = [("dVal", c_double), ("uiVal", c_uint), ("ullVal", c_ulonglong),
                ("sllVal", c_int64), ("siVal", c_int), ("usVal", c_ushort)]

class Proc(Structure):  # nvmlProcessInfo_t as the _v2 and _v3 calls fill it
    _fields_ = [("pid", c_uint), ("usedGpuMemory", c_ulonglong), ("gpuInstanceId", c_uint),
                ("computeInstanceId", c_uint)]

class Field(Structure):
    _fields_ = [("fieldId", c_uint32), ("scopeId", c_uint32), ("timestamp", c_int64),
                ("latencyUsec", c_int64), ("valueType", c_uint), ("nvmlReturn", c_uint),
                ("value", Value)]

init = fn("nvmlInit_v2", False) or fn("nvmlInit")
r = init()
if r:
    quit(b"NONVML nvmlInit failed %d" % r)
count_fn = fn("nvmlDeviceGetCount_v2", False) or fn("nvmlDeviceGetCount")
handle_fn = fn("nvmlDeviceGetHandleByIndex_v2", False) or fn("nvmlDeviceGetHandleByIndex")
temp_fn, util_fn = fn("nvmlDeviceGetTemperature"), fn("nvmlDeviceGetUtilizationRates")
power_fn, limit_fn = fn("nvmlDeviceGetPowerUsage"), fn("nvmlDeviceGetPowerManagementLimit")
clock_fn, maxclock_fn = fn("nvmlDeviceGetClockInfo"), fn("nvmlDeviceGetMaxClockInfo")
pstate_fn, fan_fn = fn("nvmlDeviceGetPerformanceState"), fn("nvmlDeviceGetFanSpeed")
mode_fn, mig_fn = fn("nvmlDeviceGetComputeMode"), fn("nvmlDeviceGetMigMode", False)
mem2_fn, mem1_fn = fn("nvmlDeviceGetMemoryInfo_v2", False), fn("nvmlDeviceGetMemoryInfo")
fields_fn, pci_fn = fn("nvmlDeviceGetFieldValues", False), fn("nvmlDeviceGetPciInfo_v3", False)
name_fn, uuid_fn = fn("nvmlDeviceGetName"), fn("nvmlDeviceGetUUID")
driver_fn = fn("nvmlSystemGetDriverVersion")
procs_fn = (fn("nvmlDeviceGetComputeRunningProcesses_v3", False)
            or fn("nvmlDeviceGetComputeRunningProcesses_v2", False))
pname_fn = fn("nvmlSystemGetProcessName", False)
ecc_fn = fn("nvmlDeviceGetTotalEccErrors", False)
events_fn = (fn("nvmlDeviceGetCurrentClocksEventReasons", False)
             or fn("nvmlDeviceGetCurrentClocksThrottleReasons", False))

NA, PERM = b"[N/A]", b"[Insufficient Permissions]"
gone = set()  # (gpu, reading) the GPU does not support: not asked again (some cost ~0.2 ms)

def call(f, *args, key=None):
    # 0 → ok; a reading the GPU cannot give → its placeholder; anything else ends the stream
    if key is not None and key in gone:
        return NA
    r = f(*args)
    if r == 0:
        return None
    if r == 3:
        if key is not None:
            gone.add(key)
        return NA
    if r == 4:
        return PERM
    quit(b"NVMLERR %s %d" % (f.__name__.encode(), r))

def one_line(b, free=False):
    # box text on one line; a comma only in the free-text column (a name), as nvidia-smi has it
    b = b.replace(b"\n", b" ").replace(b"\r", b" ")
    return b if free else b.replace(b",", b" ")

u = c_uint()
call(count_fn, byref(u))
n = u.value
handles = []
for i in range(n):
    h = c_void_p()
    call(handle_fn, c_uint(i), byref(h))
    handles.append(h)
buf = create_string_buffer(96)
drv = call(driver_fn, buf, c_uint(96)) or one_line(buf.value)
MODES = {0: b"Default", 1: b"Exclusive_Thread", 2: b"Prohibited", 3: b"Exclusive_Process"}
static, uuids = [], []
for i, h in enumerate(handles):
    uuid = call(uuid_fn, h, buf, c_uint(96)) or one_line(buf.value)
    name = call(name_fn, h, buf, c_uint(96)) or one_line(buf.value, free=True)
    bus = NA
    if pci_fn is not None:
        p = Pci()
        bus = call(pci_fn, h, byref(p)) or one_line(p.busId)
    maxsm = call(maxclock_fn, h, c_uint(1), byref(u)) or b"%d" % u.value
    static.append((b"%d, %s, %s, %s, %s, " % (i, uuid, name, bus, drv), maxsm))
    uuids.append(uuid)

def uint(i, key, f, h, *a):
    return call(f, h, *a, byref(u), key=(i, key)) or b"%d" % u.value

# The power limit is set by an admin and one read costs ~0.18 ms on an H100: read it every
# LIMIT_EVERY samples, not every sample.
LIMIT_EVERY = max(1, int(15 / iv))
limits = [NA] * len(handles)
tick = 0

def sample(i, h):
    head, maxsm = static[i]
    pst = call(pstate_fn, h, byref(u), key=(i, 0)) or (b"P%d" % u.value if u.value < 32 else NA)
    temp = uint(i, 1, temp_fn, h, c_uint(0))
    memtemp = NA
    if fields_fn is not None and (i, 2) not in gone:
        fv = Field(fieldId=82)
        r = fields_fn(h, c_int(1), byref(fv))
        if r == 0 and fv.nvmlReturn == 0:
            t = fv.valueType
            v = fv.value
            x = (v.dVal if t == 0 else v.uiVal if t == 1 else v.ullVal if t in (2, 3)
                 else v.sllVal if t == 4 else v.siVal if t == 5 else v.usVal)
            memtemp = b"%d" % x
        elif r == 3 or fv.nvmlReturn == 3:
            gone.add((i, 2))
    ut = Util()
    ugpu = umem = call(util_fn, h, byref(ut), key=(i, 3))
    if ugpu is None:
        ugpu, umem = b"%d" % ut.gpu, b"%d" % ut.memory
    mtot = mused = mfree = None
    if mem2_fn is not None and (i, 4) not in gone:
        m = Mem2(version=0x02000028)
        r = mem2_fn(h, byref(m))
        if r == 0:
            mtot, mused, mfree = (b"%d" % (m.total >> 20), b"%d" % (m.used >> 20),
                                  b"%d" % (m.free >> 20))
        else:  # an older driver's v2 (or none): the v1 figures from now on
            gone.add((i, 4))
    if mtot is None:
        m = Mem1()
        mtot = mused = mfree = call(mem1_fn, h, byref(m), key=(i, 5))
        if mtot is None:
            mtot, mused, mfree = (b"%d" % (m.total >> 20), b"%d" % (m.used >> 20),
                                  b"%d" % (m.free >> 20))
    pw = call(power_fn, h, byref(u), key=(i, 6)) or b"%.2f" % (u.value / 1000.0)
    if tick % LIMIT_EVERY == 0:
        limits[i] = call(limit_fn, h, byref(u), key=(i, 7)) or b"%.2f" % (u.value / 1000.0)
    sm = uint(i, 8, clock_fn, h, c_uint(1))
    mc = uint(i, 9, clock_fn, h, c_uint(2))
    fan = uint(i, 10, fan_fn, h)
    mig = NA
    if mig_fn is not None:
        pend = c_uint()
        mig = (call(mig_fn, h, byref(u), byref(pend), key=(i, 11))
               or (b"Enabled" if u.value else b"Disabled"))
    mode = call(mode_fn, h, byref(u), key=(i, 12)) or MODES.get(u.value, NA)
    return head + b", ".join((pst, temp, memtemp, ugpu, umem, mtot, mused, mfree, pw, limits[i],
                               sm, mc, maxsm, fan, mig, mode)) + b"\n"

# Compute apps, as `nvidia-smi --query-compute-apps=pid,process_name,used_memory,gpu_uuid`
# prints them, each line behind "A " (a process name is anyone's text: it must never read as a
# GPU sample), after "APPS <count>"; sent at the start and whenever the list changes: the
# stream running is the news that it did not. "APPS -": this box's NVML cannot list them.
names = {}  # pid → name, for the pids of the last list only (a pid reused later is read anew)
CAP = [64]

def apps():
    global names
    rows, seen = [], {}
    for i, h in enumerate(handles):
        while True:
            cnt = c_uint(CAP[0])
            arr = (Proc * CAP[0])()
            r = procs_fn(h, byref(cnt), arr)
            if r == 7 and CAP[0] < 4096:  # more processes than room: grow, and ask again
                CAP[0] *= 4
                continue
            break
        if r:
            return None
        for k in range(min(cnt.value, CAP[0])):
            p = arr[k]
            nm = names.get(p.pid)
            if nm is None:
                b = create_string_buffer(256)
                nm = (one_line(b.value, free=True)
                      if pname_fn is not None and pname_fn(c_uint(p.pid), b, c_uint(256)) == 0
                      else b"[Not Found]")
            seen[p.pid] = nm
            mem = NA if p.usedGpuMemory >= 0xFFFFFFFFFFFFFFF0 else b"%d" % (p.usedGpuMemory >> 20)
            rows.append(b"A %d, %s, %s, %s\n" % (p.pid, nm, mem, uuids[i]))
    names = seen
    return rows

# The health query's columns (uncorrectable volatile ECC total, the active clock-event
# reasons), as `nvidia-smi --query-gpu=index,ecc.errors.uncorrected.volatile.total,
# clocks_throttle_reasons.active` prints them, each line behind "H ", after "HEALTH <count>";
# sent at the start and whenever a value changes.
def health():
    rows = []
    v = c_ulonglong()
    for i, h in enumerate(handles):
        ecc = events = NA
        if ecc_fn is not None:  # uncorrected (1), volatile (0): since the last driver load
            ecc = call(ecc_fn, h, c_uint(1), c_uint(0), byref(v), key=(i, 20)) or b"%d" % v.value
        if events_fn is not None:
            events = call(events_fn, h, byref(v), key=(i, 21)) or b"0x%016x" % v.value
        rows.append(b"H %d, %s, %s\n" % (i, ecc, events))
    return rows

if not handles:
    quit(b"NONVML no GPU")
shown_health = None
shown = False  # the last apps block sent (False: none yet)
due = time.monotonic()
while True:
    out_b = b"".join([sample(i, h) for i, h in enumerate(handles)])
    if procs_fn is not None and shown is not None:
        rows = apps()
        if rows is None:
            out_b += b"APPS -\n"
            shown = None  # not asked again: the watcher lists them with nvidia-smi
        elif rows != shown:
            out_b += b"APPS %d\n" % len(rows) + b"".join(rows)
            shown = rows
    elif shown is False:
        out_b += b"APPS -\n"
        shown = None
    rows = health()
    if rows != shown_health:
        out_b += b"HEALTH %d\n" % len(rows) + b"".join(rows)
        shown_health = rows
    say(out_b)
    tick += 1
    due += iv
    now = time.monotonic()
    if due < now:  # fell behind (a slow driver call, a stopped process): no burst to catch up
        due = now + iv
    time.sleep(due - now)
"""


def nvml_stream_step(interval_ms: int) -> Step:
    """The long-lived NVML sampler (key ``gpu_stream``, ``params["source"] == "nvml"``): the
    same lines as :func:`gpudash.probes.gpu.gpu_stream_step`, from one `python3` on the box."""
    ms = max(50, int(interval_ms))
    return Step(key="gpu_stream", script=_sampler_script(ms), timeout=8.0,
                params={"interval_ms": ms, "srun_jobid": None, "source": "nvml"})


@functools.lru_cache(maxsize=8)
def _sampler_script(ms: int) -> str:
    # ~22 KB, held by every host's open stream: one string for a fleet, not one per host
    # (22 MB at 1,000 hosts)
    return (
        f"command -v python3 >/dev/null 2>&1 || {{ echo {NOT_NVML.decode()} no python3; exit 0; }}\n"
        f"exec python3 -I -S -c {shlex.quote(_AGENT)} {ms / 1000:g}"
    )
