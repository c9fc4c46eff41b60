"""UI test set-up: a fake fleet from real fixture numbers, a fixed clock and UTC, so every
screen is the same on every run."""

from __future__ import annotations

import pytest

from gpudash.ui.app import GpudashApp
from tests.ui.fake_fleet import T0, UTC, FakeFleet

SMALL = (80, 24)
LARGE = (160, 48)


def make_app(fleet: FakeFleet | None = None, **kwargs) -> GpudashApp:
    return GpudashApp(fleet if fleet is not None else FakeFleet(), clock=lambda: T0, tz=UTC,
                      themes_dirs=kwargs.pop("themes_dirs", None), **kwargs)


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet()


@pytest.fixture(autouse=True)
def _no_user_themes(tmp_path, monkeypatch):
    """Never read the developer's own ~/.config/gpudash/themes in tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
