"""The run's Weights & Biases URL, captured from its own log once per run.

wandb prints `wandb: 🚀 View run at https://wandb.ai/ENTITY/PROJECT/runs/RUN_ID` (older versions:
`wandb: 🚀 View run NAME at: …` / `Syncing run NAME … https://…`); self-hosted servers use their
own host. Only URLs on a `wandb:` line, or on wandb.ai, are taken.
"""

from __future__ import annotations

import re

from gpudash.sanitize import clean_field

_URL = re.compile(r"https?://[A-Za-z0-9.:-]+/[\w.-]+/[\w.-]+/runs/[\w-]+")


def find_wandb_url(text: str | bytes) -> str | None:
    """The newest W&B run URL in `text`, sanitised, or None."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", errors="replace")
    if "/runs/" not in text:
        return None
    found = None
    for line in text.split("\n"):
        if "/runs/" not in line:
            continue
        for m in _URL.finditer(line):
            url = m.group(0)
            if "wandb" in line.lower() or "wandb.ai/" in url:
                found = url
    return clean_field(found) if found else None
