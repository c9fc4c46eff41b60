"""The one place where remote bytes become displayable text.

Everything that came from a box (log lines, process names, command lines, tmux session names,
GPU names, mount points, Slurm job names, error messages) passes through here before any widget,
terminal or JSON consumer sees it. Textual lets ESC, C1 controls, DEL and bidi overrides through to
the terminal (domain.md), so the neutralising must happen on our side:

- bytes are decoded as UTF-8 with replacement (never strict: binary junk must not raise);
- ANSI/VT escape sequences (CSI, OSC, DCS, single ESC) are removed whole;
- every other C0/C1 control and DEL becomes a visible replacement (U+FFFD, or a space for TAB);
- bidi overrides/isolates and other invisible format characters are removed;
- lines are cut at a bound with a visible marker.

Markup is the other hazard: we never hand remote text to a markup parser. UI code builds
``rich.text.Text``/``textual.content.Content`` objects from the sanitised string; this module has
no Textual import so the data path stays UI-free.
"""

from __future__ import annotations

import re

ELLIPSIS_MARK = " …[cut]"
DEFAULT_MAX_LINE = 2000

# CSI: ESC [ params intermediates final; OSC: ESC ] ... (BEL | ESC \); DCS/SOS/PM/APC: ESC P|X|^|_ ... ST;
# plus their 8-bit C1 forms (0x9b CSI, 0x9d OSC, 0x90 DCS, 0x98 SOS, 0x9e PM, 0x9f APC).
_ESCAPE_SEQ = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?        # CSI (final byte optional: a cut-off sequence dies too)
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])   # OSC / DCS / SOS / PM / APC ...
        [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)? #   ... up to its terminator (or the end)
  | \x1b[ -/]*[0-~]?                         # any other ESC sequence (charset, keypad, RIS)
    """,
    re.VERBOSE,
)

# Cheap pre-check for the regex above (a per-character Python loop cost ~70% of assembling lines).
_ESC_OR_C1 = re.compile(r"[\x1b\x80-\x9f]")

# C0 (except TAB, LF), DEL, C1. CR is handled by the caller's line logic (progress bars) and
# removed here if it survives.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Bidi embeddings/overrides/isolates, zero-width and other invisible format characters that can
# reorder or hide text on screen (Trojan Source).
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u061c]")


def decode(data: bytes) -> str:
    """Bytes from a box → str, never raising."""
    return data.decode("utf-8", errors="replace")


def clean_text(text: str, *, max_len: int | None = DEFAULT_MAX_LINE) -> str:
    """Neutralise one line (or short field) of remote text for display."""
    if _ESC_OR_C1.search(text):
        text = _ESCAPE_SEQ.sub("", text)
    text = text.replace("\t", "    ")
    text = _CONTROL.sub("\ufffd", text)
    text = _INVISIBLE.sub("", text)
    if max_len is not None and len(text) > max_len:
        text = text[:max_len] + ELLIPSIS_MARK
    return text


def cleaning_deletes(text: str) -> bool:
    """Whether :func:`clean_text` could delete characters of ``text`` (escape sequences,
    invisible characters) and so join letters that are apart in the raw text. When it cannot,
    a substring absent from ``text.lower()`` is absent after cleaning too: a parser may skip
    cleaning text that holds none of its keywords."""
    return bool(_ESC_OR_C1.search(text) or _INVISIBLE.search(text))


def clean_line(data: bytes | str, *, max_len: int | None = DEFAULT_MAX_LINE) -> str:
    """One remote line (bytes or str) → safe text. A `\\r`-rewritten progress line shows its
    last state, as the terminal would have."""
    text = decode(data) if isinstance(data, (bytes, bytearray)) else data
    text = text.rstrip("\r\n")
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return clean_text(text, max_len=max_len)


def clean_field(data: bytes | str, *, max_len: int = 256) -> str:
    """A short single-line field (a GPU name, a mount point, a session name)."""
    text = decode(data) if isinstance(data, (bytes, bytearray)) else data
    return clean_text(text.replace("\n", " ").replace("\r", " "), max_len=max_len)


def clean_lines(data: bytes | str, *, max_len: int | None = DEFAULT_MAX_LINE) -> list[str]:
    text = decode(data) if isinstance(data, (bytes, bytearray)) else data
    return [clean_line(line, max_len=max_len) for line in text.split("\n")]


def is_inert(text: str) -> bool:
    """True when a string holds nothing a terminal would act on (used by tests and audits)."""
    return not (_CONTROL.search(text) or _INVISIBLE.search(text) or "\x1b" in text)
