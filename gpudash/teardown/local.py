"""The local side of the teardown: the pull dir's listing and hashes, and the verify command.

The listing mirrors :func:`gpudash.probes.files.parse_dir` exactly, so the two sides compare
name for name: entries directly in the folder that match the pattern; a regular file keeps its
name, a subfolder becomes ``NAME/`` with the total size of the regular files under it (up to 3
levels, as the remote ``find -maxdepth 4``); symlinks and other entries are left out. Names go
through the same sanitiser as the remote ones.

The verify command is the user's own (config or ``--verify``), run with ``/bin/sh -c`` in the pull
dir, in its own session so a timeout kills everything it started, with its output bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
import signal
import stat
from pathlib import Path

from gpudash.model import DirListing, FileInfo
from gpudash.sanitize import clean_field, clean_line, decode
from gpudash.teardown.checks import VerifyResult

_NAME_MAX = 4096
_MAX_DEPTH = 3
VERIFY_OUTPUT_BYTES = 64 * 1024
VERIFY_LINES = 12


def _folder_total(path: str) -> tuple[int, float | None]:
    total, newest = 0, None
    base_depth = path.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(path, followlinks=False):
        if root.count(os.sep) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
                newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
    return total, newest


def list_local(path: Path | str, pattern: str = "*") -> DirListing | str:
    """The pull dir as a :class:`DirListing` (``exists=False`` when absent), or an error text."""
    path = Path(path).expanduser()
    shown = clean_field(str(path), max_len=_NAME_MAX)
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return DirListing(path=shown, exists=False)
    except NotADirectoryError:
        return f"{shown} is not a directory"
    except OSError as exc:
        return f"cannot read {shown}: {exc.strerror or exc}"
    files = []
    for e in entries:
        if not fnmatch.fnmatchcase(e.name, pattern):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        name = clean_field(decode(os.fsencode(e.name)), max_len=_NAME_MAX)
        if stat.S_ISREG(st.st_mode):
            files.append(FileInfo(path=name, exists=True, size=st.st_size, mtime=st.st_mtime))
        elif stat.S_ISDIR(st.st_mode):
            total, newest = _folder_total(e.path)
            files.append(FileInfo(path=name + "/", exists=True, size=total,
                                  mtime=newest if newest is not None else st.st_mtime))
    files.sort(key=lambda f: f.path)
    return DirListing(path=shown, exists=True, files=tuple(files))


def hash_local(path: Path | str, names: list[str] | None = None, *,
               chunk: int = 1 << 20) -> dict[str, str]:
    """sha256 of the regular files directly in ``path`` (only ``names`` when given), keyed like
    the remote :func:`gpudash.probes.files.parse_sha256` (sanitised names)."""
    path = Path(path).expanduser()
    wanted = set(names) if names is not None else None
    out: dict[str, str] = {}
    try:
        entries = list(os.scandir(path))
    except OSError:
        return out
    for e in entries:
        name = clean_field(decode(os.fsencode(e.name)), max_len=_NAME_MAX)
        if wanted is not None and name not in wanted:
            continue
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            h = hashlib.sha256()
            with open(e.path, "rb") as fh:
                while block := fh.read(chunk):
                    h.update(block)
        except OSError:
            continue
        out[name] = h.hexdigest()
    return out


async def run_verify(command: str, *, cwd: Path | str | None, timeout: float,
                     env: dict[str, str] | None = None) -> VerifyResult:
    """Run the verify command locally, bounded by ``timeout``; keep the last lines of its output
    (stdout and stderr together, sanitised)."""
    workdir = Path(cwd).expanduser() if cwd is not None else None
    if workdir is not None and not workdir.is_dir():
        workdir = None
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, cwd=workdir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
    except OSError as exc:
        return VerifyResult(command=command, exit_code=None, output=(), timeout=timeout,
                            error=f"could not start: {exc.strerror or exc}")
    buf = bytearray()

    async def pump() -> None:
        while chunk := await proc.stdout.read(65536):
            buf.extend(chunk)
            if len(buf) > VERIFY_OUTPUT_BYTES:
                del buf[: len(buf) - VERIFY_OUTPUT_BYTES]  # keep the newest bytes

    code: int | None
    try:
        await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout)
        code = proc.returncode
    except asyncio.TimeoutError:
        code = None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
    lines = [clean_line(x, max_len=300) for x in decode(bytes(buf)).splitlines() if x.strip()]
    return VerifyResult(command=command, exit_code=code, output=tuple(lines[-VERIFY_LINES:]),
                        timeout=timeout)
