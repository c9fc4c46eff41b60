"""Marker files, checkpoint folders and their hashes: counts, sizes and mtimes, never `test -d`.

"Done" is a claim; a marker file, the checkpoint's mtime and a file count are ground truth
(domain.md). A folder left by a killed transfer passes an existence check forever, so a checkpoint
folder is reported as the files in it, with sizes and mtimes.

Output formats are NUL-separated records: a remote file name may hold tabs, newlines, quotes or
escape sequences, and NUL is the one byte no path can contain. Every name that comes back is
decoded with replacement and sanitised (``clean_field``): it is for display, never fed back into a
command. The commands are always rebuilt from the user's own configured paths.

Paths go into the scripts through :func:`glob_word`, which quotes every literal part and leaves
only the glob operators (``*``, ``?``, simple ``[...]`` classes) for the shell to expand. Nothing
is ever `eval`-ed, so a configured path like ``run; $(touch pwned)`` is just an odd file name.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from gpudash.model import DirListing, FileInfo, ProbeError, Reason
from gpudash.sanitize import clean_field, decode
from gpudash.transport.base import Step

__all__ = [
    "glob_word",
    "literal_word",
    "has_glob",
    "files_step",
    "parse_files",
    "dir_step",
    "parse_dir",
    "sha256_step",
    "parse_sha256",
    "STAT_FUNCS",
]

# A bracket class is left to the shell only when its content is plainly harmless; anything else
# makes the `[` a literal character (quoted).
_BRACKET = re.compile(r"\[!?[A-Za-z0-9_.,:+=@%-]+\]")
_NAME_MAX = 4096


def has_glob(pattern: str) -> bool:
    """True when the shell would expand this pattern (``*``, ``?`` or a simple ``[...]``)."""
    return "*" in pattern or "?" in pattern or bool(_BRACKET.search(pattern))


def literal_word(path: str) -> str:
    """One shell word for a literal path (no glob expansion), ``~/`` honoured."""
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + (shlex.quote(path[1:]) if path[1:] else "")
    return shlex.quote(path)


def glob_parts(pattern: str) -> list[tuple[bool, str]]:
    """``pattern`` as (is_operator, text) runs: the glob operators a box may expand (``*``,
    ``?``, a plainly harmless ``[...]``) and the literal text between them. The one reading of a
    pattern, for the shell (:func:`glob_word`) and for the log follower's Python glob."""
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            parts.append((False, "".join(literal)))
            literal.clear()

    i = 0
    while i < len(pattern):
        c = pattern[i]
        m = _BRACKET.match(pattern, i) if c == "[" else None
        if c in "*?" or m:
            flush()
            op = m.group(0) if m else c
            parts.append((True, op))
            i += len(op)
            continue
        literal.append(c)
        i += 1
    flush()
    return parts


def glob_word(pattern: str) -> str:
    """One shell word for ``pattern``: literal parts single-quoted, glob operators bare.

    ``/data/run 1/*.log`` becomes ``'/data/run 1/'*'.log'``: the shell expands the ``*`` and
    nothing else. A leading ``~/`` becomes ``"$HOME"/`` (tilde expansion does not happen inside
    quotes). A pattern without glob characters is simply quoted.
    """
    prefix = ""
    if pattern == "~" or pattern.startswith("~/"):
        prefix, pattern = '"$HOME"', pattern[1:]
    if not pattern:
        return prefix or "''"
    return prefix + "".join(text if op else shlex.quote(text) for op, text in glob_parts(pattern))


# Shared sh helpers. `_st FILE` sets size, ino, mt (GNU/BusyBox `stat -c`; else `wc -c`, `ls -di`,
# `date -r`; a value nobody could tell stays empty). Numbers only ever reach arithmetic after a
# digits-only check.
STAT_FUNCS = r"""_first() { printf '%s' "$1"; }
_num() { case $1 in ''|*[!0-9]*) return 1;; esac; return 0; }
_st() {
  _f=$1 size= ino= mt=
  _s=$(stat -c '%s %i %Y' -- "$_f" 2>/dev/null) && set -f && set -- $_s && set +f \
    && size=$1 ino=$2 mt=$3
  if ! _num "$size"; then
    size=$(_first $(wc -c <"$_f" 2>/dev/null))
    ino=$(_first $(ls -di -- "$_f" 2>/dev/null))
    mt=$(date -r "$_f" +%s 2>/dev/null)
  fi
  _num "$ino" || ino=
  _num "$mt" || mt=
}
"""


def _mtime(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _error(stdout: bytes, stderr: bytes, exit_code: int | None, what: str) -> ProbeError:
    if exit_code in (124, 137) or exit_code is None:
        return ProbeError(Reason.TIMEOUT, f"{what}: no answer before the deadline", exit_code)
    msg = clean_field(stderr or stdout, max_len=300).strip()
    return ProbeError(Reason.PROBE_ERROR, f"{what}: {msg or 'unreadable output'}", exit_code)


def _b(data: bytes | str) -> bytes:
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data or b"")


# ----------------------------------------------------------------------------- markers


def files_step(paths: Sequence[str], key: str = "files", timeout: float = 8.0) -> Step:
    """Existence, size and mtime of each configured path (globs allowed: one record per match).

    Record (NUL-terminated): ``KIND\\tINDEX\\tSIZE\\tMTIME\\tPATH`` where KIND is ``F`` (regular
    file), ``D`` (directory), ``O`` (something else) or ``M`` (missing: nothing matched), and INDEX
    is the position of the configured path it answers.
    """
    body = [STAT_FUNCS]
    for i, p in enumerate(paths):
        body.append(
            f"_n=0; for f in {glob_word(p)}; do\n"
            f'  if [ -f "$f" ]; then k=F; elif [ -d "$f" ]; then k=D; '
            f'elif [ -e "$f" ] || [ -h "$f" ]; then k=O; else continue; fi\n'
            f'  _n=1; _st "$f"; printf \'%s\\t{i}\\t%s\\t%s\\t%s\\000\' "$k" "$size" "$mt" "$f"\n'
            f"done\n"
            f"[ $_n = 1 ] || printf 'M\\t{i}\\t\\t\\t%s\\000' {shlex.quote(p)}\n"
        )
    return Step(key=key, script="".join(body), timeout=timeout, params={"paths": list(paths)})


def parse_files(stdout, stderr=b"", exit_code=0) -> tuple[FileInfo, ...] | ProbeError:
    """Records → FileInfo (directories and missing paths included, ``exists`` tells them apart).

    A directory's ``size`` is None: its own inode size says nothing about its content; use
    :func:`dir_step` for folders.
    """
    try:
        out = _b(stdout)
        if exit_code not in (0,) and not out:
            return _error(out, _b(stderr), exit_code, "files")
        infos: list[FileInfo] = []
        for rec in out.split(b"\0"):
            if not rec:
                continue
            fields = rec.split(b"\t", 4)
            if len(fields) != 5 or fields[0] not in (b"F", b"D", b"O", b"M"):
                continue
            kind = fields[0]
            path = clean_field(decode(fields[4]), max_len=_NAME_MAX)
            if kind == b"M":
                infos.append(FileInfo(path=path, exists=False))
                continue
            size = _int(decode(fields[2])) if kind == b"F" else None
            infos.append(FileInfo(path=path, exists=True, size=size, mtime=_mtime(decode(fields[3]))))
        if not infos and exit_code != 0:
            return _error(out, _b(stderr), exit_code, "files")
        return tuple(infos)
    except Exception as exc:  # a parser never raises: hostile output is a probe error
        return ProbeError(Reason.PROBE_ERROR, f"files: {type(exc).__name__}")


# ----------------------------------------------------------------------------- directories

# GNU find: one record per entry, depth 1 filtered by the pattern (others pruned), depth 2..4 for
# the content of matching subfolders (HF `checkpoint-N/`, DeepSpeed `checkpoint-N/global_stepN/`).
# Records are NUL-terminated; `tr` swaps NUL and newline so `head -n` can bound them by count.
_FIND_GNU = (
    "find . -mindepth 1 -maxdepth 4 \\( -path './*/*' -o -name \"$pat\" \\) "
    "-printf '%y\\t%s\\t%T@\\t%P\\000' -o -prune 2>/dev/null"
)

# POSIX fallback (BusyBox, BSD): a glob loop filtered by `case` (the pattern is matched, never
# evaluated), stat per entry, one level into subfolders.
_FALLBACK = r"""_c=0
for f in ./* ./.[!.]* ./..?*; do
  [ -e "$f" ] || [ -h "$f" ] || continue
  n=${f#./}
  case $n in $pat) ;; *) continue;; esac
  _c=$((_c + 1)); [ $_c -le $max ] || break
  if [ -h "$f" ]; then k=l; elif [ -f "$f" ]; then k=f; elif [ -d "$f" ]; then k=d; else k=o; fi
  _st "$f"; printf '%s\t%s\t%s\t%s\000' "$k" "$size" "$mt" "$n"
  [ $k = d ] || continue
  for g in "$f"/* "$f"/.[!.]* "$f"/..?*; do
    [ -f "$g" ] || continue
    _c=$((_c + 1)); [ $_c -le $max ] || break 2
    _st "$g"; printf 'f\t%s\t%s\t%s\000' "$size" "$mt" "${g#./}"
  done
done
"""


def dir_step(
    path: str,
    key: str = "dir",
    pattern: str = "*",
    max_entries: int = 10000,
    timeout: float = 10.0,
) -> Step:
    """The entries directly in ``path`` matching ``pattern`` (a glob on names), each with size and
    mtime; a matching subfolder also gets the files under it (up to 3 levels) so it can be
    reported as one entry with its total size and newest mtime. At most ``max_entries`` records
    come back (nested files count), and the box bounds the walk by ``timeout``.

    Output: ``EXISTS\\n``, the folder's path and a NUL, then records
    ``TYPE\\tSIZE\\tMTIME\\tRELPATH\\0`` (TYPE as find's ``%y``); ``MISSING\\n`` and the path
    when there is no such directory; ``NOTDIR\\n`` when it is a file.
    """
    max_entries = max(1, int(max_entries))
    script = (
        STAT_FUNCS
        + f"d={literal_word(path)}; "
        f"pat={shlex.quote(pattern)}; max={max_entries}\n"
        'if [ ! -e "$d" ]; then printf \'MISSING\\n%s\\000\' "$d"; exit 0; fi\n'
        'cd -- "$d" 2>/dev/null || { if [ -d "$d" ]; then echo "cannot enter directory" >&2; exit 3; '
        "fi; echo NOTDIR; exit 0; }\n"
        'printf \'EXISTS\\n%s\\000\' "$d"\n'
        "if find . -maxdepth 0 -printf '' >/dev/null 2>&1; then\n"
        f"  {_FIND_GNU} | tr '\\n\\000' '\\000\\n' | head -n \"$max\" | tr '\\n\\000' '\\000\\n'\n"
        "else\n"
        + _FALLBACK
        + "fi\n"
    )
    return Step(
        key=key,
        script=script,
        timeout=timeout,
        params={"path": path, "pattern": pattern, "max_entries": max_entries},
        max_bytes=max(1 << 20, max_entries * 512),
    )


def parse_dir(stdout, stderr=b"", exit_code=0, *, path: str = "") -> DirListing | ProbeError:
    """Records → DirListing. Regular files directly in the folder keep their name; a subfolder
    is one entry named ``NAME/`` whose size is the total of the regular files under it and whose
    mtime is the newest of them (or the folder's own, when empty). Symlinks and other entries are
    left out. A missing folder is ``exists=False``, not an error.
    """
    try:
        out = _b(stdout)
        head, _, rest = out.partition(b"\n")
        if head in (b"EXISTS", b"MISSING") and b"\0" in rest:
            echoed, _, rest = rest.partition(b"\0")
            path = path or decode(echoed)
        shown = clean_field(path, max_len=_NAME_MAX) if path else ""
        if head == b"MISSING":
            return DirListing(path=shown, exists=False)
        if head == b"NOTDIR":
            return ProbeError(Reason.PROBE_ERROR, "not a directory", exit_code)
        if head != b"EXISTS":
            return _error(out, _b(stderr), exit_code, "dir")
        # name -> [kind, size, own mtime, newest file mtime under it]
        top: dict[bytes, list] = {}
        for rec in rest.split(b"\0"):
            fields = rec.split(b"\t", 3)
            if len(fields) != 4 or not fields[3]:
                continue
            kind, size_b, mt_b, rel = fields
            size = _int(decode(size_b))
            mt = _mtime(decode(mt_b))
            first, sep, _ = rel.partition(b"/")
            if not sep:
                if kind in (b"f", b"d") and first not in top:
                    top[first] = [kind, size if kind == b"f" else 0, mt, None]
                continue
            entry = top.get(first)
            if entry is None or entry[0] != b"d" or kind != b"f":
                continue
            entry[1] += size or 0
            if mt is not None and (entry[3] is None or mt > entry[3]):
                entry[3] = mt
        files = []
        for name, (kind, size, own_mt, newest) in top.items():
            shown_name = clean_field(decode(name), max_len=_NAME_MAX) + ("/" if kind == b"d" else "")
            mt = newest if newest is not None else own_mt
            files.append(FileInfo(path=shown_name, exists=True, size=size, mtime=mt))
        files.sort(key=lambda f: f.path)
        return DirListing(path=shown, exists=True, files=tuple(files))
    except Exception as exc:
        return ProbeError(Reason.PROBE_ERROR, f"dir: {type(exc).__name__}")


# ----------------------------------------------------------------------------- hashes


def sha256_step(path: str, key: str = "sha256", timeout: float = 300.0) -> Step:
    """sha256 of each regular file directly in ``path`` (names with any byte are safe: the name
    goes out NUL-terminated, the hash comes from stdin so sha256sum never prints or escapes it).
    Slow on big checkpoints: run on demand, never on a cadence."""
    script = (
        f"d={literal_word(path)}\n"
        'if [ ! -e "$d" ]; then echo MISSING; exit 0; fi\n'
        'cd -- "$d" || exit 3\n'
        "echo EXISTS\n"
        "for f in ./* ./.[!.]* ./..?*; do\n"
        '  [ -f "$f" ] || continue\n'
        '  h=$(sha256sum <"$f" 2>/dev/null || shasum -a 256 <"$f" 2>/dev/null) || h=ERROR\n'
        "  printf '%s\\t%s\\000' \"${h%% *}\" \"${f#./}\"\n"
        "done\n"
    )
    return Step(key=key, script=script, timeout=timeout, params={"path": path})


_HEX = re.compile(rb"[0-9a-f]{64}")


def parse_sha256(stdout, stderr=b"", exit_code=0) -> dict[str, str] | ProbeError:
    """name → lowercase hex digest. A missing folder is ``{}``; a file that could not be read
    is left out (compare counts with :func:`parse_dir` to notice)."""
    try:
        out = _b(stdout)
        head, _, rest = out.partition(b"\n")
        if head == b"MISSING":
            return {}
        if head != b"EXISTS":
            return _error(out, _b(stderr), exit_code, "sha256")
        hashes: dict[str, str] = {}
        for rec in rest.split(b"\0"):
            digest, sep, name = rec.partition(b"\t")
            if sep and name and _HEX.fullmatch(digest):
                hashes[clean_field(decode(name), max_len=_NAME_MAX)] = digest.decode("ascii")
        return hashes
    except Exception as exc:
        return ProbeError(Reason.PROBE_ERROR, f"sha256: {type(exc).__name__}")
