"""A key path → line number index for a TOML document.

tomllib reports positions only for syntax errors; an unknown key or a wrong type in a valid file
would be reported without a line. This scanner walks the text once, the way a TOML parser does,
but keeps only structure: which key (or array element) starts on which line. Paths use the same
shape as the parsed data: ``("host", 1, "teardown", "preset")`` for the second ``[[host]]``'s
``[host.teardown]`` table, ``("host", 0, "mounts", 2)`` for the third element of a multi-line
array. Strings (including multi-line ones), comments, arrays and inline tables are skipped
correctly, so a ``[`` or ``=`` inside them never confuses it.

It is only run on text that tomllib accepted, but it never raises: on anything it does not
understand it stops and keeps what it had.
"""

from __future__ import annotations

import bisect
import re
import tomllib

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_WS = " \t"


class LineIndex:
    """Answers "which line is this key on?", falling back to the nearest enclosing key."""

    def __init__(self, lines: dict[tuple, int], n_lines: int):
        self._lines = lines
        self.n_lines = n_lines

    @classmethod
    def build(cls, text: str) -> "LineIndex":
        scanner = _Scanner(text)
        try:
            scanner.scan()
        except Exception:  # noqa: BLE001 - a partial index is still useful; never fail loading
            pass
        return cls(scanner.index, text.count("\n") + 1)

    def exact(self, path: tuple) -> int | None:
        return self._lines.get(tuple(path))

    def line(self, path: tuple) -> int:
        """The line of ``path``, else of its nearest ancestor that has one, else 0 (whole file)."""
        path = tuple(path)
        while path:
            found = self._lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return 0


class _Scanner:
    def __init__(self, text: str):
        self.s = text
        self.n = len(text)
        self.i = 0
        self._newlines = [m.start() for m in re.finditer("\n", text)]
        self.index: dict[tuple, int] = {}
        self._aot: dict[tuple, int] = {}  # array-of-tables path → how many elements so far

    # ------------------------------------------------------------------ helpers
    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < self.n else ""

    def skip_ws(self) -> None:
        while self.i < self.n and self.s[self.i] in _WS:
            self.i += 1

    def skip_ws_nl_comments(self) -> None:
        while self.i < self.n:
            c = self.s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                self.skip_to_eol()
            else:
                return

    def skip_to_eol(self) -> None:
        j = self.s.find("\n", self.i)
        self.i = self.n if j < 0 else j + 1

    def record(self, path: tuple, pos: int) -> None:
        self.index.setdefault(path, self.line_at(pos))

    # ------------------------------------------------------------------ document
    def scan(self) -> None:
        table: tuple = ()
        while True:
            self.skip_ws_nl_comments()
            if self.i >= self.n:
                return
            start = self.i
            if self.s.startswith("[[", self.i):
                self.i += 2
                keys = self.parse_key()
                parent = self.resolve(keys[:-1])
                full = parent + (keys[-1],)
                count = self._aot.get(full, 0)
                self._aot[full] = count + 1
                self.record_prefixes(full, start)
                table = full + (count,)
                self.record(table, start)
                self.skip_to_eol()
            elif self.peek() == "[":
                self.i += 1
                keys = self.parse_key()
                table = self.resolve(keys)
                self.record_prefixes(table, start)
                self.skip_to_eol()
            else:
                keys = self.parse_key()
                self.skip_ws()
                if self.peek() != "=":
                    return  # not a key/value line we understand: stop, keep what we have
                self.i += 1
                path = table + keys
                for k in range(len(table) + 1, len(path) + 1):
                    self.record(path[:k], start)
                self.skip_ws()
                self.parse_value(path)
                self.skip_ws()
                if self.peek() == "#" or self.peek() in "\r\n":
                    self.skip_to_eol()
            if self.i <= start:
                return  # no progress: give up rather than loop

    def resolve(self, keys: tuple) -> tuple:
        """A header's dotted key → a data path, entering the latest element of each array of tables."""
        out: tuple = ()
        for k in keys:
            out += (k,)
            if out in self._aot:
                out += (self._aot[out] - 1,)
        return out

    def record_prefixes(self, path: tuple, pos: int) -> None:
        for k in range(1, len(path) + 1):
            self.record(path[:k], pos)

    # ------------------------------------------------------------------ keys
    def parse_key(self) -> tuple:
        parts: list = []
        while True:
            self.skip_ws()
            c = self.peek()
            if c == '"':
                start = self.i
                self.skip_basic_string()
                parts.append(_decode_quoted(self.s[start : self.i]))
            elif c == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise ValueError("unterminated literal key")
                parts.append(self.s[self.i + 1 : end])
                self.i = end + 1
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if not m:
                    raise ValueError("bad key")
                parts.append(m.group())
                self.i = m.end()
            self.skip_ws()
            if self.peek() == ".":
                self.i += 1
                continue
            if self.peek() == "]":  # header end: "]" or "]]"
                self.i += 1
                if self.peek() == "]":
                    self.i += 1
            return tuple(parts)

    # ------------------------------------------------------------------ values
    def parse_value(self, path: tuple) -> None:
        s = self.s
        if s.startswith('"""', self.i):
            self.skip_multiline('"""', escapes=True)
        elif s.startswith("'''", self.i):
            self.skip_multiline("'''", escapes=False)
        elif self.peek() == '"':
            self.skip_basic_string()
        elif self.peek() == "'":
            end = s.find("'", self.i + 1)
            self.i = self.n if end < 0 else end + 1
        elif self.peek() == "[":
            self.parse_array(path)
        elif self.peek() == "{":
            self.parse_inline_table(path)
        else:  # number, bool, date/time (may hold a space): up to a delimiter
            while self.i < self.n and s[self.i] not in ",]}#\r\n":
                self.i += 1

    def skip_basic_string(self) -> None:
        j = self.i + 1
        while j < self.n and self.s[j] != '"':
            j += 2 if self.s[j] == "\\" else 1
        self.i = min(j + 1, self.n)

    def skip_multiline(self, quote: str, escapes: bool) -> None:
        j = self.i + 3
        while j < self.n:
            if escapes and self.s[j] == "\\":
                j += 2
            elif self.s.startswith(quote, j):
                # up to two quote characters may end the content right before the delimiter
                extra = 0
                while extra < 2 and self.s.startswith(quote, j + 1):
                    j += 1
                    extra += 1
                self.i = j + 3
                return
            else:
                j += 1
        self.i = self.n

    def parse_array(self, path: tuple) -> None:
        self.i += 1
        k = 0
        while self.i < self.n:
            self.skip_ws_nl_comments()
            if self.peek() == "]":
                self.i += 1
                return
            before = self.i
            self.record(path + (k,), self.i)
            self.parse_value(path + (k,))
            k += 1
            self.skip_ws_nl_comments()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() == "]":
                self.i += 1
                return
            elif self.i <= before:
                raise ValueError("array stuck")

    def parse_inline_table(self, path: tuple) -> None:
        self.i += 1
        while self.i < self.n:
            self.skip_ws_nl_comments()
            if self.peek() == "}":
                self.i += 1
                return
            start = self.i
            keys = self.parse_key()
            self.skip_ws()
            if self.peek() != "=":
                raise ValueError("inline table without '='")
            self.i += 1
            sub = path + keys
            for k in range(len(path) + 1, len(sub) + 1):
                self.record(sub[:k], start)
            self.skip_ws()
            self.parse_value(sub)
            self.skip_ws_nl_comments()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() == "}":
                self.i += 1
                return
            elif self.i <= start:
                raise ValueError("inline table stuck")


def _decode_quoted(raw: str) -> str:
    """A quoted key's real text (escapes and all), decoded by tomllib itself."""
    try:
        return tomllib.loads(f"k = {raw}")["k"]
    except (tomllib.TOMLDecodeError, KeyError):
        return raw.strip('"')
