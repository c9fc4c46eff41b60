"""Themes are data files: `themes/*.toml` shipped with gpudash, plus the user's own.

Where they are looked for, later ones overriding earlier ones of the same name:

1. `gpudash/_themes/` — where the wheel puts the top-level `themes/` (pyproject force-include);
2. `<checkout>/themes/` — running from a source checkout or an editable install;
3. `<user config dir>/gpudash/themes/` — the user's themes (platformdirs).

A broken file never stops the app: it is skipped and reported.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "gpudash-dark"
_COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
               "background", "surface", "panel", "boost")
_ALLOWED = {f.name for f in fields(Theme)}


@dataclass(frozen=True)
class ThemeError:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def user_themes_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("gpudash")) / "themes"


def theme_dirs(user_dir: Path | None = None) -> list[Path]:
    pkg = Path(__file__).resolve().parent.parent  # gpudash/
    return [pkg / "_themes", pkg.parent / "themes", user_dir if user_dir is not None else user_themes_dir()]


def load_theme_file(path: Path) -> Theme | ThemeError:
    """One TOML file → a Theme, or the reason it is not one."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return ThemeError(path, f"cannot read: {exc}")
    unknown = sorted(set(data) - _ALLOWED)
    if unknown:
        return ThemeError(path, f"unknown key(s): {', '.join(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        return ThemeError(path, "`name` (a string) is required")
    if not isinstance(data.get("primary"), str):
        return ThemeError(path, "`primary` (a colour) is required")
    for key in _COLOR_KEYS:
        if key in data:
            if not isinstance(data[key], str):
                return ThemeError(path, f"`{key}` must be a colour string")
            try:
                Color.parse(data[key])
            except ColorParseError:
                return ThemeError(path, f"`{key}`: not a colour: {data[key]!r}")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        return ThemeError(path, "`variables` must be a table of strings")
    for key, kind in (("dark", bool), ("ansi", bool), ("luminosity_spread", (int, float)),
                      ("text_alpha", (int, float))):
        if key in data and not isinstance(data[key], kind):
            return ThemeError(path, f"`{key}` has the wrong type")
    try:
        return Theme(**data)
    except (TypeError, ValueError) as exc:  # pragma: no cover - guarded above
        return ThemeError(path, str(exc))


def load_themes(dirs: list[Path] | None = None) -> tuple[dict[str, Theme], list[ThemeError]]:
    """Every theme found, by name (later directories win), and the files that failed."""
    themes: dict[str, Theme] = {}
    errors: list[ThemeError] = []
    for d in dirs if dirs is not None else theme_dirs():
        try:
            files = sorted(d.glob("*.toml")) if d.is_dir() else []
        except OSError:
            continue
        for path in files:
            result = load_theme_file(path)
            if isinstance(result, ThemeError):
                errors.append(result)
            else:
                themes[result.name] = result
    return themes, errors
