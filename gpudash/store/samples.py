"""Samples: compact rows per probe reading, downsampled with age, bounded by retention.

Encoding (``samples.v``, compact JSON, numbers rounded): a dict per probe so a GPU or a mount
that comes and goes never misaligns the others:

- ``gpu``:    ``{"0": [util_pct, mem_used_pct], "1": [...]}`` (key: GPU index)
- ``disk``:   ``{"/": [used_bytes, size_bytes, inodes_used, inodes_total]}`` (key: mount)
- ``memory``: ``{"m": [used_bytes, limit_bytes]}`` (limit: the cgroup limit, else host total)

``None`` stays ``null`` (unavailable is never 0). Retention: raw rows for the last hour, then
one mean per minute (weighted by how many raw rows it stands for) for 7 days, then nothing.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable

from gpudash.model import HostSnapshot

RAW_KEEP_S = 3600.0
MINUTE_KEEP_S = 7 * 86400.0
MINUTE = 60
HISTORY_ROW_CAP = 20000  # rows per probe returned by history(): bounds memory on restore


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


def dumps(v) -> str:
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def insert_raw(conn: sqlite3.Connection, host: str, rows: Iterable[tuple[str, float, dict]]) -> int:
    data = [(host, probe, float(t), 0, 1, dumps(v)) for probe, t, v in rows]
    conn.executemany("INSERT INTO samples (host, probe, t, res, n, v) VALUES (?,?,?,?,?,?)", data)
    return len(data)


# ----------------------------------------------------------------------------- downsampling


def weighted_mean(items: list[tuple[object, int]]):
    """Mean of like-shaped values (dicts merged per key, lists per position, None skipped)."""
    present = [(v, w) for v, w in items if v is not None]
    if not present:
        return None
    first = present[0][0]
    if isinstance(first, dict):
        keys: list = []
        for v, _ in present:
            if isinstance(v, dict):
                keys += [k for k in v if k not in keys]
        return {k: weighted_mean([(v.get(k), w) for v, w in present if isinstance(v, dict)])
                for k in keys}
    if isinstance(first, list):
        size = max(len(v) for v, _ in present if isinstance(v, list))
        return [weighted_mean([(v[i] if i < len(v) else None, w)
                               for v, w in present if isinstance(v, list)]) for i in range(size)]
    nums = [(float(v), w) for v, w in present if isinstance(v, (int, float))]
    if not nums:
        return None
    total = sum(w for _, w in nums)
    return round(sum(v * w for v, w in nums) / total, 3)


def compact(conn: sqlite3.Connection, now: float) -> tuple[int, int]:
    """Fold raw rows older than an hour into per-minute means; drop what is older than 7 days.

    Only whole minutes before the cutoff are folded, so a minute is never split between a raw
    and a mean row; a minute folded twice (two instances) merges weighted by ``n``.
    Returns (raw rows folded, rows dropped). Call inside a transaction.
    """
    cutoff = math.floor((now - RAW_KEEP_S) / MINUTE) * MINUTE
    rows = conn.execute(
        "SELECT host, probe, t, v FROM samples WHERE res = 0 AND t < ? ORDER BY host, probe, t",
        (cutoff,)).fetchall()
    buckets: dict[tuple[str, str, float], list[tuple[object, int]]] = {}
    for host, probe, t, v in rows:
        key = (host, probe, float(math.floor(t / MINUTE) * MINUTE))
        try:
            buckets.setdefault(key, []).append((json.loads(v), 1))
        except ValueError:
            continue
    for (host, probe, t), items in buckets.items():
        prev = conn.execute("SELECT n, v FROM samples WHERE res = 60 AND host = ? AND probe = ? "
                            "AND t = ?", (host, probe, t)).fetchone()
        if prev is not None:
            try:
                items.append((json.loads(prev[1]), int(prev[0])))
            except ValueError:
                pass
        n = sum(w for _, w in items)
        conn.execute("INSERT OR REPLACE INTO samples (host, probe, t, res, n, v) "
                     "VALUES (?,?,?,60,?,?)", (host, probe, t, n, dumps(weighted_mean(items))))
    conn.execute("DELETE FROM samples WHERE res = 0 AND t < ?", (cutoff,))
    dropped = conn.execute("DELETE FROM samples WHERE t < ?", (now - MINUTE_KEEP_S,)).rowcount
    return len(rows), dropped


# ----------------------------------------------------------------------------- reading back


def history(conn: sqlite3.Connection, host: str, since: float, until: float | None = None) -> dict:
    """Series to restore sparklines and trends, oldest first, each point ``(t, ...)``:

    ``{"gpu_util": {idx: [(t, pct)]}, "gpu_mem": {idx: [(t, pct)]},
       "disk": {mount: [(t, used, size, iused, itotal)]}, "memory": [(t, used, limit)]}``

    Minute means and raw rows interleave by time (means for the older part). Bounded to the
    newest HISTORY_ROW_CAP rows per probe.
    """
    until = float("inf") if until is None else until
    out: dict = {"gpu_util": {}, "gpu_mem": {}, "disk": {}, "memory": []}
    for probe in ("gpu", "disk", "memory"):
        rows = conn.execute(
            "SELECT t, v FROM (SELECT t, v FROM samples WHERE host = ? AND probe = ? AND t >= ? "
            "AND t <= ? ORDER BY t DESC LIMIT ?) ORDER BY t",
            (host, probe, since, until if until != float("inf") else 1e300, HISTORY_ROW_CAP),
        ).fetchall()
        for t, raw in rows:
            try:
                v = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(v, dict):
                continue
            if probe == "gpu":
                for idx, pair in v.items():
                    pair = _pad(pair, 2)
                    key = int(idx) if str(idx).isdigit() else idx
                    out["gpu_util"].setdefault(key, []).append((t, pair[0]))
                    out["gpu_mem"].setdefault(key, []).append((t, pair[1]))
            elif probe == "disk":
                for mount, vals in v.items():
                    out["disk"].setdefault(mount, []).append((t, *_pad(vals, 4)))
            else:
                out["memory"].append((t, *_pad(v.get("m"), 2)))
    return out


def _pad(vals, size: int) -> list:
    vals = list(vals) if isinstance(vals, list) else []
    return (vals + [None] * size)[:size]
