"""Skip a test when a system service is absent — except under CI, where that is a failure."""

from __future__ import annotations

import os
import shutil

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip (outside CI) or fail (under CI=true) when ``condition`` is false."""
    if condition:
        return
    if under_ci():
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_binary(name: str, why: str = "") -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    require(path is not None, f"{name} is not installed{': ' + why if why else ''}")
    return path  # type: ignore[return-value]
