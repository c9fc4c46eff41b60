"""Samples: one compact row per probe reading per GPU / mount, downsampled with age, bounded
by retention.

Rows are ``(host, probe, key, res, t, n, a, b, c, d)``:

- ``gpu``:    key = GPU index, a = util %, b = memory used %
- ``disk``:   key = mount, a = used bytes, b = size bytes, c = inodes used, d = inodes total
- ``memory``: key = "m", a = used bytes, b = limit bytes (the cgroup limit, else host total)

``None`` stays NULL (unavailable is never 0). Retention: raw rows for the last hour, then one
mean per minute (weighted by how many raw rows it stands for) for 7 days, then nothing. Means and
buckets are computed by SQLite (C), so a 7-day chart of 8 GPUs costs milliseconds, not seconds.
"""

from __future__ import annotations

import math
import sqlite3

from gpudash.model import HostSnapshot

RAW_KEEP_S = 3600.0
MINUTE_KEEP_S = 7 * 86400.0
MINUTE = 60
HISTORY_ROW_CAP = 200_000  # rows per probe returned by history(): bounds memory on restore
WIDTH = {"gpu": 2, "disk": 4, "memory": 2}


def _num(x, nd: int = 1):
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return int(f) if nd == 0 else round(f, nd)


def encode_probes(snap: HostSnapshot) -> dict[str, tuple[float, dict]]:
    """{probe: (time, value)} for each probe the snapshot has a good sample of."""
    out: dict[str, tuple[float, dict]] = {}
    if snap.gpu_at is not None and snap.gpus:
        v = {}
        for g in snap.gpus:
            mem = (100.0 * g.mem_used_mib / g.mem_total_mib
                   if g.mem_used_mib is not None and g.mem_total_mib else None)
            v[str(g.index)] = [_num(g.util_pct), _num(mem)]
        out["gpu"] = (snap.gpu_at, v)
    if snap.disk_at is not None and snap.disks:
        out["disk"] = (snap.disk_at, {
            d.mount: [_num(d.used_bytes, 0), _num(d.size_bytes, 0), _num(d.inodes_used, 0),
                      _num(d.inodes_total, 0)]
            for d in snap.disks
        })
    m = snap.memory
    if snap.memory_at is not None and m is not None:
        limit = m.limit_bytes if m.limit_bytes is not None else m.host_total_bytes
        out["memory"] = (snap.memory_at, {"m": [_num(m.used_bytes, 0), _num(limit, 0)]})
    return out


def insert_raw(conn: sqlite3.Connection, host: str, probes) -> int:
    """``probes``: (probe, t, {key: [values]}) triples, as from encode_probes."""
    data = []
    for probe, t, per_key in probes:
        for key, vals in per_key.items():
            vals = (list(vals) + [None] * 4)[:4]
            data.append((host, probe, str(key), float(t), *vals))
    conn.executemany("INSERT OR IGNORE INTO samples (host, probe, key, res, t, n, a, b, c, d) "
                     "VALUES (?,?,?,0,?,1,?,?,?,?)", data)
    return len(probes)


# ----------------------------------------------------------------------------- downsampling

_MERGE = ", ".join(
    f"{c} = CASE WHEN {c} IS NULL THEN excluded.{c} WHEN excluded.{c} IS NULL THEN {c} "
    f"ELSE ({c} * n + excluded.{c} * excluded.n) / (n + excluded.n) END" for c in "abcd")


def compact(conn: sqlite3.Connection, now: float) -> tuple[int, int]:
    """Fold raw rows older than an hour into per-minute means; drop what is older than 7 days.

    Only whole minutes before the cutoff are folded, so a minute is never split between a raw
    and a mean row; a minute folded twice (a late writer, another instance) merges weighted by
    ``n``. Returns (raw rows folded, rows dropped). Call inside a transaction.
    """
    cutoff = math.floor((now - RAW_KEEP_S) / MINUTE) * MINUTE
    conn.execute(
        "INSERT INTO samples (host, probe, key, res, t, n, a, b, c, d) "
        "SELECT host, probe, key, 60, CAST(t / 60 AS INTEGER) * 60.0, count(*), avg(a), avg(b), "
        "avg(c), avg(d) FROM samples WHERE res = 0 AND t < ? "
        "GROUP BY host, probe, key, CAST(t / 60 AS INTEGER) "
        f"ON CONFLICT (host, probe, t, key, res) DO UPDATE SET {_MERGE}, n = n + excluded.n",
        (cutoff,))
    folded = conn.execute("DELETE FROM samples WHERE res = 0 AND t < ?", (cutoff,)).rowcount
    dropped = conn.execute("DELETE FROM samples WHERE res IN (0, 60) AND t < ?",
                           (now - MINUTE_KEEP_S,)).rowcount
    return folded, dropped


# ----------------------------------------------------------------------------- reading back


def history(conn: sqlite3.Connection, host: str, since: float, until: float | None = None,
            step_s: float | None = None) -> dict:
    """Series to restore sparklines and trends, oldest first, each point ``(t, ...)``:

    ``{"gpu_util": {idx: [(t, pct)]}, "gpu_mem": {idx: [(t, pct)]},
       "disk": {mount: [(t, used, size, iused, itotal)]}, "memory": [(t, used, limit)]}``

    Minute means and raw rows interleave by time (means for the older part). ``step_s``:
    average into buckets of that many seconds, weighted by the rows each stands for (a 7-day
    chart needs ~500 points, not 10,000; ``t`` is then the bucket's first sample). Bounded to
    the newest HISTORY_ROW_CAP rows per probe.
    """
    hi = 1e300 if until is None else float(until)
    out: dict = {"gpu_util": {}, "gpu_mem": {}, "disk": {}, "memory": []}
    for probe, width in WIDTH.items():
        cols = "abcd"[:width]
        if step_s:
            vals = ", ".join(f"sum({c} * n * 1.0) / sum(CASE WHEN {c} IS NULL THEN NULL ELSE n END)"
                             for c in cols)
            rows = conn.execute(
                f"SELECT key, min(t), {vals} FROM samples WHERE host = ? AND probe = ? "
                "AND t >= ? AND t <= ? GROUP BY CAST(t / ? AS INTEGER), key "
                "ORDER BY CAST(t / ? AS INTEGER) DESC LIMIT ?",
                (host, probe, float(since), hi, float(step_s), float(step_s),
                 HISTORY_ROW_CAP)).fetchall()
        else:
            # newest first straight off the primary key (no sort), capped, then oldest first
            rows = conn.execute(
                f"SELECT key, t, {', '.join(cols)} FROM samples WHERE host = ? AND probe = ? "
                "AND t >= ? AND t <= ? ORDER BY t DESC LIMIT ?",
                (host, probe, float(since), hi, HISTORY_ROW_CAP)).fetchall()
        rows.reverse()
        for key, t, *v in rows:
            if probe == "gpu":
                idx = int(key) if key.isdigit() else key
                out["gpu_util"].setdefault(idx, []).append((t, v[0]))
                out["gpu_mem"].setdefault(idx, []).append((t, v[1]))
            elif probe == "disk":
                out["disk"].setdefault(key, []).append((t, *v))
            else:
                out["memory"].append((t, *v))
    return out
