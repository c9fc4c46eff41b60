"""The real recorded traces shipped inside the package (copied from a real H100 box), and the
text forms the demo's simulated boxes print — in exactly the formats the real tools use, so the
real parsers read them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


def read(name: str) -> str:
    return resources.files("gpudash.demo").joinpath("traces", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class GpuRow:
    """One sample of the real `-lms 500` series (utilization, memory, temperature, power…)."""

    uuid: str
    name: str
    util: float
    mem_util: float
    mem_total: float
    mem_used: float
    temp: float
    power: float
    power_limit: float
    sm_clock: float
    pstate: str
    reasons: str
    ecc: str


@lru_cache(maxsize=1)
def series() -> tuple[GpuRow, ...]:
    rows = []
    for line in read("series-lms500-nounits.csv").splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) != 14:
            continue
        rows.append(GpuRow(f[1], f[2], float(f[3]), float(f[4]), float(f[5]), float(f[6]),
                           float(f[7]), float(f[8]), float(f[9]), float(f[10]), f[11], f[12], f[13]))
    return tuple(rows)


def busy_rows() -> tuple[GpuRow, ...]:
    """The samples where the real run was computing."""
    return tuple(r for r in series() if r.util >= 50)


def stall_rows() -> tuple[GpuRow, ...]:
    """The samples where the real run's loader was sleeping (memory held, util 0)."""
    return tuple(r for r in series() if r.util == 0 and r.mem_used > 0)


def idle_rows() -> tuple[GpuRow, ...]:
    return tuple(r for r in series() if r.mem_used == 0)


@lru_cache(maxsize=1)
def _query_template() -> list[str]:
    return [x.strip() for x in read("query-busy-nounits.csv").splitlines()[0].split(",")]


def nvidia_smi_core_line(row: GpuRow, index: int = 0, uuid: str | None = None, name: str | None = None,
                         temp: float | None = None) -> str:
    """A `--query-gpu=<CORE_FIELDS> --format=csv,noheader,nounits` line built from a real sample;
    the fields the series did not record come from the real one-shot query of the same box."""
    t = _query_template()
    # CORE order: index,uuid,name,pci.bus_id,driver_version,pstate,temperature.gpu,temperature.memory,
    # utilization.gpu,utilization.memory,memory.total,memory.used,memory.free,power.draw,power.limit,
    # clocks.sm,clocks.mem,clocks.max.sm,fan.speed,mig.mode.current,compute_mode
    free = row.mem_total - row.mem_used
    fields = [
        str(index), uuid or row.uuid, name or row.name, t[3], t[4], row.pstate,
        f"{temp if temp is not None else row.temp:.0f}", t[7], f"{row.util:.0f}", f"{row.mem_util:.0f}",
        f"{row.mem_total:.0f}", f"{row.mem_used:.0f}", f"{free:.0f}", f"{row.power:.2f}",
        f"{row.power_limit:.2f}", f"{row.sm_clock:.0f}", t[16], t[17], t[18], t[22], t[23],
    ]
    return ", ".join(fields)


def nvidia_smi_health_line(row: GpuRow, index: int = 0) -> str:
    return f"{index}, {row.ecc}, {row.reasons}"


def df_bytes_text(rows: list[tuple[str, int, int, int, str]]) -> str:
    """`df -P -B1` output: (filesystem, size, used, avail, mount)."""
    out = ["Filesystem                  1-blocks        Used    Available Capacity Mounted on"]
    for fs, size, used, avail, mount in rows:
        cap = (100 * used + (used + avail) - 1) // (used + avail) if used + avail else 0
        out.append(f"{fs:<20} {size:>15} {used:>11} {avail:>12} {cap:>7}% {mount}")
    return "\n".join(out) + "\n"


def df_inodes_text(rows: list[tuple[str, int, int, int, str]]) -> str:
    """`df -Pi` output: (filesystem, inodes, used, free, mount)."""
    out = ["Filesystem                Inodes  IUsed    IFree IUse% Mounted on"]
    for fs, total, used, free, mount in rows:
        pct = (100 * used + total - 1) // total if total else 0
        out.append(f"{fs:<20} {total:>12} {used:>8} {free:>9} {pct:>4}% {mount}")
    return "\n".join(out) + "\n"


def meminfo_text(total_kb: int, available_kb: int) -> str:
    """The `/proc/meminfo` head of the real box, with the simulated availability."""
    return (
        f"MemTotal:       {total_kb} kB\n"
        f"MemFree:        {max(0, available_kb - 1_000_000)} kB\n"
        f"MemAvailable:   {available_kb} kB\n"
        "Buffers:           12776 kB\n"
        "Cached:           946076 kB\n"
    )
