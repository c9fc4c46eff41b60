"""Where the history lives, how its files are created private, and whether the directory is on a
network filesystem (where SQLite's WAL mode must not be used).

WAL needs a shared-memory index (the ``-shm`` file, mmapped) that every process on every machine
must see coherently; NFS, SMB and sshfs do not give that, and a WAL database there can be
corrupted by two writers. A Slurm login node's home directory is commonly NFS, so the store falls
back to the rollback journal there (domain.md).
"""

from __future__ import annotations

import os
from pathlib import Path

#: fstype values in /proc/mounts on which WAL is unsafe.
NETWORK_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "ceph", "fuse.glusterfs",
    "glusterfs", "lustre", "gpfs", "beegfs",
})

DB_NAME = "history.sqlite3"
ALERT_LOG_NAME = "alerts.log"


def state_dir() -> Path:
    """The platform's user state dir for gpudash (``~/.local/state/gpudash`` on Linux), or
    ``$GPUDASH_STATE_DIR`` (a second, separate instance; the tests)."""
    import os

    if os.environ.get("GPUDASH_STATE_DIR"):
        return Path(os.environ["GPUDASH_STATE_DIR"])
    import platformdirs  # lazy: only the commands that keep history pay for it

    return Path(platformdirs.user_state_dir("gpudash", appauthor=False))


def default_db_path() -> Path:
    return state_dir() / DB_NAME


def default_alert_log_path() -> Path:
    return state_dir() / ALERT_LOG_NAME


def _unescape_mount(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal (\040 \011 \012 \134).
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
            continue
        out.append(field[i])
        i += 1
    return "".join(out)


def fs_type_for(path: str | os.PathLike, mounts_text: str | None = None) -> str | None:
    """The fstype of the mount that holds ``path`` (longest matching mount point wins; a later
    line for the same mount point — an over-mount — wins over an earlier one).

    ``mounts_text`` is the content of /proc/mounts (read here when None). None when unknown
    (no /proc/mounts: not Linux), never raises.
    """
    if mounts_text is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
                mounts_text = f.read()
        except OSError:
            return None
    target = os.path.abspath(os.fspath(path))
    best: tuple[int, str] | None = None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = _unescape_mount(parts[1])
        if mnt != "/":
            mnt = mnt.rstrip("/")
        if not (target == mnt or target.startswith(mnt + "/") or mnt == "/"):
            continue
        if best is None or len(mnt) >= best[0]:
            best = (len(mnt), parts[2])
    return best[1] if best else None


def is_network_fs(path: str | os.PathLike, mounts_text: str | None = None) -> bool:
    """True when ``path`` (or the nearest existing parent's mount) is NFS/SMB/sshfs-like."""
    fstype = fs_type_for(_existing(path), mounts_text)
    return fstype is not None and (fstype in NETWORK_FSTYPES or fstype.startswith("nfs"))


def _existing(path: str | os.PathLike) -> str:
    """Resolve symlinks on the part of the path that exists (a home dir symlinked onto NFS)."""
    p = Path(os.path.abspath(os.fspath(path)))
    for cand in (p, *p.parents):
        if cand.exists():
            rest = p.relative_to(cand)
            return str(cand.resolve() / rest)
    return str(p)


def ensure_private_file(path: Path) -> None:
    """Create ``path`` (and its directory, 0700) if missing, and make it 0600 either way.

    SQLite creates its ``-wal``/``-shm``/``-journal`` files with the main file's permission bits,
    so making the main file 0600 *before* SQLite opens it keeps all of them private.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def tighten_sidecars(path: Path) -> None:
    """Belt and braces: 0600 on the journal files that exist (a file made by an older version,
    or under an odd umask)."""
    for suffix in ("-wal", "-shm", "-journal"):
        side = Path(str(path) + suffix)
        try:
            if side.exists() and (side.stat().st_mode & 0o077):
                os.chmod(side, 0o600)
        except OSError:
            pass
