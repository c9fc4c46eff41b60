"""Disk probe: `df -P -B1` (bytes) and `df -Pi` (inodes), step builders and pure parsers.

Inodes die before bytes on many-small-files outputs, so both are read and joined by mount
(:func:`merge_disks`). A mount that vanished is an error for that mount only: df exits 1 but
still prints the others, and :func:`missing_mounts` lifts the per-mount messages from stderr.

With no mounts configured the steps list all *local* filesystems (``-l``: a hung NFS/Lustre
mount would block df in uninterruptible sleep; name network mounts explicitly to watch them)
and leave out the pseudo and read-only types that are always full or meaningless:
tmpfs, devtmpfs, ramfs, squashfs (snaps: always 100%), iso9660, efivarfs. ``/dev/shm`` (a
tmpfs) is added back with a second df because DataLoader workers exhaust it. ``overlay`` is
kept on purpose: it is a container's root filesystem (RunPod, vast.ai).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import replace

from gpudash.model import DiskUsage, ProbeError, Reason
from gpudash.sanitize import clean_field, decode
from gpudash.transport.base import Step

EXCLUDED_TYPES: tuple[str, ...] = ("tmpfs", "devtmpfs", "ramfs", "squashfs", "iso9660", "efivarfs")
SHM = "/dev/shm"
DEFAULT_TIMEOUT = 8.0

# ----------------------------------------------------------------------------- step builders


def _df_script(opts: str, mounts: Sequence[str] | str | None) -> str:
    if isinstance(mounts, str):  # a lone path, not an iterable of characters
        mounts = [mounts]
    mounts = [str(m) for m in (mounts or ())]
    if mounts:
        return f"df {opts} -- " + " ".join(shlex.quote(m) for m in mounts)
    excl = " ".join(f"-x {t}" for t in EXCLUDED_TYPES)
    return (
        f"rc=0; df {opts} -l {excl} || rc=$?; "
        f"if [ -d {SHM} ]; then df {opts} -- {SHM} || rc=$?; fi; exit $rc"
    )


def df_bytes_step(mounts: Sequence[str] | None = (), *, timeout: float = DEFAULT_TIMEOUT) -> Step:
    """`df -P -B1 -- MOUNT…` (key ``df_bytes``); no mounts: every local filesystem."""
    mounts = [mounts] if isinstance(mounts, str) else list(mounts or ())
    return Step(key="df_bytes", script=_df_script("-P -B1", mounts), timeout=timeout,
                params={"mounts": tuple(mounts)})


def df_inodes_step(mounts: Sequence[str] | None = (), *, timeout: float = DEFAULT_TIMEOUT) -> Step:
    """`df -Pi -- MOUNT…` (key ``df_inodes``); no mounts: every local filesystem."""
    mounts = [mounts] if isinstance(mounts, str) else list(mounts or ())
    return Step(key="df_inodes", script=_df_script("-Pi", mounts), timeout=timeout,
                params={"mounts": tuple(mounts)})


# ----------------------------------------------------------------------------- parsers

# filesystem, 4 numeric columns ("-" where a filesystem has no such figure, e.g. btrfs inodes),
# then the mount point: the rest of the line, spaces included.
_ROW = re.compile(
    r"^(?P<fs>\S.*?)\s+(?P<a>[0-9]+|-)\s+(?P<b>[0-9]+|-)\s+(?P<c>[0-9]+|-)"
    r"\s+(?P<pct>[0-9]+%|-)\s+(?P<mount>\S.*)$"
)
_MAX_LINE = 8192  # PATH_MAX is 4096: a longer "row" is junk, and bounds the regex's work
_MISSING = re.compile(r"^df: (?P<path>.+): (?P<msg>[^:]+)$")


def _text(data: bytes | str) -> str:
    if isinstance(data, (bytes, bytearray)):
        return decode(bytes(data))
    return data if isinstance(data, str) else ""


def _num(s: str) -> int | None:
    return int(s) if s.isdigit() and s.isascii() and len(s) <= 30 else None


def _rows(stdout: bytes | str) -> list[tuple[str, int | None, int | None, int | None, str]]:
    """(filesystem, a, b, c, mount) per data row, tolerant of a device name wrapped onto its own
    line (df without -P does that for long names)."""
    out = []
    pending: str | None = None
    for raw in _text(stdout).split("\n"):
        line = raw.rstrip("\r")[:_MAX_LINE]
        if not line.strip():
            pending = None
            continue
        m = _ROW.match(line)
        if m is None and pending is not None and line[:1].isspace():
            m = _ROW.match(pending + " " + line.strip())
        if m is None:
            # a lone token may be a wrapped device name; anything else (the header) is skipped
            stripped = line.strip()
            pending = stripped if len(stripped.split()) == 1 else None
            continue
        pending = None
        out.append((m["fs"], _num(m["a"]), _num(m["b"]), _num(m["c"]), m["mount"]))
    return out


def _failure(stdout, stderr, exit_code, what: str) -> ProbeError | None:
    """The whole df failed (no row came back): why, in words."""
    err = [ln.strip() for ln in _text(stderr).split("\n") if ln.strip()]
    if exit_code is None or exit_code in (124, 137):
        return ProbeError(Reason.TIMEOUT, f"{what} did not finish before its deadline "
                          "(a hung network mount?)", exit_code)
    if exit_code == 127:
        return ProbeError(Reason.NOT_FOUND, "no df on this box", exit_code)
    if missing_mounts(stderr):
        return None  # every requested mount vanished: reported per mount, not as a df failure
    first = clean_field(err[0], max_len=300) if err else ""
    if exit_code != 0 or first:
        return ProbeError(Reason.PROBE_ERROR, f"{what} failed" + (f": {first}" if first else
                          f" (exit {exit_code})"), exit_code)
    if _text(stdout).strip():
        return ProbeError(Reason.PROBE_ERROR, f"unreadable {what} output", exit_code)
    return None


def _dedupe(items: Iterable[DiskUsage]) -> tuple[DiskUsage, ...]:
    seen: dict[str, DiskUsage] = {}
    for d in items:
        seen.setdefault(d.mount, d)
    return tuple(seen.values())


def parse_df_bytes(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0
                   ) -> tuple[DiskUsage, ...] | ProbeError:
    """`df -P -B1` → DiskUsage with byte figures, one per mount (duplicates dropped)."""
    if exit_code is None or exit_code in (124, 137):
        return _failure(stdout, stderr, exit_code, "df") or ()
    rows = _rows(stdout)
    if not rows:
        return _failure(stdout, stderr, exit_code, "df") or ()
    return _dedupe(
        DiskUsage(mount=clean_field(mount, max_len=1024), filesystem=clean_field(fs),
                  size_bytes=size, used_bytes=used, avail_bytes=avail)
        for fs, size, used, avail, mount in rows
    )


def parse_df_inodes(stdout: bytes | str, stderr: bytes | str = b"", exit_code: int | None = 0
                    ) -> tuple[DiskUsage, ...] | ProbeError:
    """`df -Pi` → DiskUsage with inode figures only. A filesystem without a fixed inode table
    (btrfs, some FUSE: total 0 or "-") has None, not 0."""
    if exit_code is None or exit_code in (124, 137):
        return _failure(stdout, stderr, exit_code, "df -i") or ()
    rows = _rows(stdout)
    if not rows:
        return _failure(stdout, stderr, exit_code, "df -i") or ()
    out = []
    for fs, total, used, free, mount in rows:
        if not total:
            total = used = free = None
        out.append(DiskUsage(mount=clean_field(mount, max_len=1024), filesystem=clean_field(fs),
                             inodes_total=total, inodes_used=used, inodes_free=free))
    return _dedupe(out)


def merge_disks(bytes_part: Sequence[DiskUsage] | ProbeError | None,
                inodes_part: Sequence[DiskUsage] | ProbeError | None) -> tuple[DiskUsage, ...]:
    """Join byte and inode rows by mount: byte order first, inode-only mounts after. Either side
    may be missing (a ProbeError or None): the other side's figures still come through."""
    b = () if bytes_part is None or isinstance(bytes_part, ProbeError) else tuple(bytes_part)
    i = () if inodes_part is None or isinstance(inodes_part, ProbeError) else tuple(inodes_part)
    by_mount = {d.mount: d for d in i}
    out = []
    for d in b:
        ino = by_mount.pop(d.mount, None)
        if ino is not None:
            d = replace(d, filesystem=d.filesystem or ino.filesystem,
                        inodes_total=ino.inodes_total, inodes_used=ino.inodes_used,
                        inodes_free=ino.inodes_free)
        out.append(d)
    out.extend(by_mount.values())
    return _dedupe(out)


def _unquote(path: str) -> str:
    """GNU df quotes odd paths shell-style in diagnostics: `'/a b'`."""
    if len(path) >= 2 and path[0] == path[-1] == "'":
        try:
            parts = shlex.split(path)
        except ValueError:
            return path
        if len(parts) == 1:
            return parts[0]
    return path


def missing_mounts(stderr: bytes | str) -> tuple[tuple[str, str], ...]:
    """(mount, message) for each `df: /x: No such file or directory` (or Permission denied,
    Transport endpoint is not connected, Stale file handle…) on stderr."""
    out = []
    for raw in _text(stderr).split("\n"):
        m = _MISSING.match(raw.rstrip("\r"))
        if m is None:
            continue
        out.append((clean_field(_unquote(m["path"]), max_len=1024),
                    clean_field(m["msg"].strip(), max_len=300)))
    return tuple(out)
