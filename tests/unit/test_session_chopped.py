"""A shell session whose answer arrives in arbitrary pieces, down to a byte at a time.

The session wakes a batch's waiter only when the batch's end marker may have arrived (not for
every packet), so a marker cut across two reads must still be found. The box here is a real
``/bin/sh -s`` running the rendered batch; only the delivery is chopped, as a slow link or an
SSH channel's window would chop it.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudash.transport.base import Step
from gpudash.transport.session import ShellSession

STEPS = [
    Step("hello", "echo hello"),
    Step("both", "echo out; echo err >&2; exit 3"),
    Step("quiet", "true"),
    Step("long", "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done"),
]


class ChoppedShell:
    """A real ``/bin/sh -s`` that gets each batch when it is drained, and whose stdout and
    stderr reach the reader in pieces of the given sizes (cycled)."""

    def __init__(self, sizes: list[int]) -> None:
        self.stdin = self
        self.stdout = asyncio.StreamReader()
        self.stderr = asyncio.StreamReader()
        self._sizes = sizes
        self._prelude = b""
        self._pending = b""
        self._feeders: list[asyncio.Task] = []

    def write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        script, self._pending = self._pending, b""
        if not self._prelude:  # the session's first write is its prelude
            self._prelude = script
            return
        done = subprocess.run(
            ["/bin/sh", "-s"], input=self._prelude + script, capture_output=True, check=False
        )
        for reader, data in ((self.stdout, done.stdout), (self.stderr, done.stderr)):
            self._feeders.append(asyncio.create_task(self._feed(reader, data)))

    async def _feed(self, reader: asyncio.StreamReader, data: bytes) -> None:
        sizes = itertools.cycle(self._sizes)
        pos = 0
        while pos < len(data):
            n = next(sizes)
            reader.feed_data(data[pos : pos + n])
            pos += n
            await asyncio.sleep(0)  # let the session read each piece on its own

    async def close(self) -> None:
        for task in self._feeders:
            task.cancel()
        for reader in (self.stdout, self.stderr):
            reader.feed_eof()


async def run_chopped(sizes: list[int]) -> dict:
    shell = ChoppedShell(sizes)

    async def open_process(_command: str) -> ChoppedShell:
        return shell

    async def close(proc: ChoppedShell) -> None:
        await proc.close()

    session = await ShellSession.open(open_process, close, lifetime=600)
    try:
        first = await asyncio.wait_for(session.run(STEPS), 30)
        second = await asyncio.wait_for(session.run(STEPS[:2]), 30)  # the session is reused
    finally:
        await session.aclose()
    return {"first": first, "second": second}


def check(results: dict) -> None:
    first = results["first"]
    assert first["hello"].stdout == b"hello\n" and first["hello"].exit_code == 0
    assert first["both"].stdout == b"out\n" and first["both"].exit_code == 3
    assert first["both"].stderr == b"err\n"
    assert first["quiet"].stdout == b"" and first["quiet"].exit_code == 0
    assert first["long"].stdout == b"".join(b"line%d\n" % i for i in range(300))
    assert first["long"].exit_code == 0
    second = results["second"]
    assert second["hello"].stdout == b"hello\n" and second["both"].exit_code == 3


async def test_answer_a_byte_at_a_time():
    check(await run_chopped([1]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=12))
def test_answer_in_any_pieces(sizes):
    check(asyncio.run(run_chopped(sizes)))
