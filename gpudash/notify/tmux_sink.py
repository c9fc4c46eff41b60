"""`tmux display-message` inside tmux: works in every tmux, needs no passthrough.

display-message treats its text as a *format*: ``#{…}`` expands and ``#(cmd)`` RUNS A SHELL
COMMAND. Alert text carries remote words, so every ``#`` is doubled (``##`` is a literal ``#``)
and the text is sanitised; it goes as one argv element after ``--`` — no shell anywhere.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from gpudash.sanitize import clean_field

MESSAGE_MAX = 300


def tmux_literal(text: str, max_len: int = MESSAGE_MAX) -> str:
    """Text that display-message shows literally (no format expansion, no command)."""
    return clean_field(str(text), max_len=max_len).replace("#", "##")


def display_argv(text: str, tmux: str = "tmux") -> list[str]:
    return [tmux, "display-message", "--", tmux_literal(text)]


async def display_message(text: str, *, env: Mapping[str, str] | None = None, tmux: str = "tmux",
                          timeout: float = 3.0) -> bool:
    """Show ``text`` in the tmux status line of the client we run under. False when it could
    not (not inside tmux, tmux missing, an error, or past ``timeout``)."""
    env = dict(os.environ if env is None else env)
    if not env.get("TMUX"):
        return False
    try:
        proc = await asyncio.create_subprocess_exec(
            *display_argv(text, tmux), env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return False
    try:
        async with asyncio.timeout(timeout):
            return await proc.wait() == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False
