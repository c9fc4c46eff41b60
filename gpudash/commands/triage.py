"""`gpudash triage FILE | -` (`--json`): classify a training log and explain it.

Reads only the tail of big files (see gpudash.triage.classifier.classify_file). Human output is
the class, a one-line summary, the evidence with line numbers, the explanation and the fixed
remediation; `--json` prints `TriageResult.to_json()` (at least `class`, `category`, `summary`,
`remediation`, `evidence` as a list of `{line, text}`). Every string from the log has been
through gpudash.sanitize: no escape sequence reaches the terminal, and nothing is rendered as
markup (plain `print`, never a markup-aware console).

`--host HOST` runs one probe round on the watched host (its configured or discovered log, fused
with the live probes). `run(args, text_provider=…)` replaces that round with a callable taking the
host name and returning the run log's bytes/text (tests, other front ends).

Exit codes (documented contract, like `gpudash status`):
    0  none or completed: nothing failed
    1  cancelled: stopped by a person, not a failure of the run
    2  a failure class (including unknown_error: something failed, we cannot say what)
    3  the input could not be read (missing/unreadable file, unreachable host, no log found)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

EXIT_OK, EXIT_CANCELLED, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2, 3
STDIN_MAX_BYTES = 8 << 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="the run's log file, or - for stdin (only its tail is read)")
    p.add_argument("--host", metavar="HOST", help="triage the run log of a watched host")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument("--max-bytes", type=int, default=8 << 20, metavar="N",
                   help="read at most the last N bytes (default 8 MiB)")


def exit_code(cls: str) -> int:
    if cls in ("none", "completed"):
        return EXIT_OK
    if cls == "cancelled":
        return EXIT_CANCELLED
    return EXIT_FAILED


def run(args, text_provider: Callable[[str], bytes | str] | None = None) -> int:
    from gpudash.sanitize import clean_field
    from gpudash.triage.classifier import classify, classify_file

    out = sys.stdout
    max_bytes = getattr(args, "max_bytes", None) or (8 << 20)
    host = getattr(args, "host", None)
    path = getattr(args, "file", None)
    try:
        if host and text_provider is None:
            # The watched host: one probe round finds its log (config or discovery), reads the
            # newest bytes, classifies them and fuses the verdict with the live probes.
            result = _host_triage(args, host)
            if result is None:
                return EXIT_UNREADABLE
        elif host:
            data = text_provider(host)
            result = classify(data[-max_bytes:] if data else b"", source=clean_field(host))
        elif path in (None, "-"):
            if path is None and sys.stdin.isatty():
                print("gpudash triage: give a log FILE, - for stdin, or --host HOST", file=sys.stderr)
                return EXIT_UNREADABLE
            data = _read_stdin_tail(max_bytes)
            result = classify(data, source="<stdin>")
        else:
            result = classify_file(path, max_bytes=max_bytes)
    except OSError as e:
        print(f"gpudash triage: cannot read {clean_field(str(path or host))}: "
              f"{clean_field(e.strerror or str(e))}", file=sys.stderr)
        return EXIT_UNREADABLE
    if getattr(args, "json", False):
        import json

        out.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(render(result))
    out.flush()
    return exit_code(result.cls)


def _host_triage(args, host: str):
    import asyncio

    from gpudash.commands.hosts import load_specs
    from gpudash.watch.fleet import Fleet

    args.hosts = [host]
    specs = load_specs(args)
    if isinstance(specs, int):
        return None
    fleet = Fleet(specs)
    [view] = asyncio.run(fleet.one_round(deadline=getattr(args, "timeout", None) or 30.0))
    snap = view.snapshot
    if not snap.link.ok:
        print(f"gpudash triage: {host} is {view.reason.value if view.reason else 'unreachable'}: "
              f"{snap.link.message}", file=sys.stderr)
        return None
    if view.triage is None:
        why = snap.log_error or "no log found (set `log` for this host in the config)"
        print(f"gpudash triage: {host}: {why}", file=sys.stderr)
        return None
    return view.triage


def _read_stdin_tail(max_bytes: int) -> bytes:
    buf = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
    if buf is None:
        return sys.stdin.read().encode("utf-8", errors="replace")[-max_bytes:]
    tail = b""
    while True:
        chunk = buf.read(1 << 20)
        if not chunk:
            return tail
        tail = (tail + chunk)[-max_bytes:]


def render(result) -> str:
    """Plain text for a terminal; every field is already sanitised."""
    lines = [f"class:       {result.cls} ({result.category})", f"summary:     {result.summary}"]
    if result.cause:
        lines.append(f"cause:       {result.cause}")
    if result.evidence:
        lines.append("evidence:")
        width = max(len(str(e.line_no)) for e in result.evidence)
        lines += [f"  {e.line_no:>{width}}: {e.text}" for e in result.evidence]
    for note in result.diagnoses:
        lines.append(f"note:        {note}")
    lines.append(f"explanation: {result.explanation}")
    lines.append(f"remediation: {result.remediation}")
    for p in result.past:
        where = f" (line {p.evidence[0].line_no})" if p.evidence else ""
        lines.append(f"earlier:     {p.cls}{where}, followed by a fresh start that progressed")
    if result.truncated:
        lines.append("(only the tail of the log was read)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (tests, `python -m gpudash.commands.triage`) until the CLI wires it."""
    p = argparse.ArgumentParser(prog="gpudash triage", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
