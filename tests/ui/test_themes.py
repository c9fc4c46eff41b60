"""Themes are data files, shipped in the wheel, registered at start; user themes are found;
TCSS holds no literal colours; NO_COLOR is honoured."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from gpudash.ui import themes as th
from tests.services.require import require
from tests.ui.conftest import SMALL, make_app
from tests.ui.helpers import segments

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "gpudash" / "ui"
HEX = re.compile(r"#[0-9a-fA-F]{3,8}\b")
OKABE_ITO = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}


def test_three_shipped_themes_load():
    themes, errors = th.load_themes([ROOT / "themes"])
    assert errors == []
    assert {"gpudash-dark", "gpudash-light", "gpudash-contrast"} <= set(themes)
    assert themes["gpudash-dark"].dark and not themes["gpudash-light"].dark


def test_contrast_theme_is_okabe_ito():
    t = th.load_theme_file(ROOT / "themes" / "gpudash-contrast.toml")
    states = {t.success.upper(), t.warning.upper(), t.error.upper()}
    assert states <= OKABE_ITO and len(states) == 3
    assert t.background.upper() == "#000000"


def test_broken_and_unknown_key_theme_files_are_reported_not_fatal(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "x"\nprimary = "not-a-colour"\n')
    (tmp_path / "typo.toml").write_text('name = "y"\nprimary = "#123456"\nprimery = "#000000"\n')
    (tmp_path / "junk.toml").write_text("this is [not toml")
    (tmp_path / "ok.toml").write_text('name = "mine"\nprimary = "#123456"\n')
    themes, errors = th.load_themes([tmp_path])
    assert list(themes) == ["mine"]
    msgs = sorted(str(e) for e in errors)
    assert len(msgs) == 3
    assert any("not a colour" in m for m in msgs) and any("primery" in m for m in msgs)


def test_user_themes_dir_is_under_the_platform_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert th.user_themes_dir() == tmp_path / "gpudash" / "themes"
    assert th.theme_dirs()[-1] == tmp_path / "gpudash" / "themes"


async def test_app_registers_shipped_and_user_themes(tmp_path, fleet):
    user = tmp_path / "user-themes"
    user.mkdir()
    (user / "mine.toml").write_text('name = "my-theme"\nprimary = "#AA5500"\ndark = true\n')
    app = make_app(fleet, themes_dirs=[ROOT / "themes", user], config={"theme": "my-theme"})
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert {"gpudash-dark", "gpudash-light", "gpudash-contrast", "my-theme"} <= set(app.available_themes)
        assert app.theme == "my-theme"
        app.theme = "gpudash-light"
        await pilot.pause()
        assert app.current_theme.name == "gpudash-light"


async def test_default_theme_is_gpudash_dark(fleet):
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.theme == "gpudash-dark"


def test_tcss_and_widget_css_use_theme_variables_only():
    tcss = (UI / "gpudash.tcss").read_text()
    assert not HEX.findall(tcss)
    for path in UI.rglob("*.py"):
        text = path.read_text()
        for css in re.findall(r'(?:DEFAULT_CSS|CSS)\s*=\s*"""(.*?)"""', text, re.S):
            assert not HEX.findall(css), path
        # styles built in code are theme variables too ("$success"), never literal colours
        assert not re.findall(r'["\'](?:[^"\']*\s)?#[0-9a-fA-F]{6}\b', text), path


async def test_no_color_is_honoured(fleet, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(fleet)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.no_color
        colours = set()
        for seg in segments(app):
            for c in (seg.style.color, seg.style.bgcolor) if seg.style else ():
                if c is not None and c.triplet is not None:
                    colours.add(tuple(c.triplet))
        assert colours, "nothing rendered"
        assert all(r == g == b for r, g, b in colours), colours  # greys only
        # ...and the states still read as words
        from tests.ui.helpers import screen_text

        text = screen_text(app)
        assert "CRIT" in text and "UNKNOWN" in text and "OK" in text


def test_wheel_ships_the_themes_and_they_load_from_there(tmp_path):
    require(importlib.util.find_spec("hatchling") is not None,
            "building the wheel offline needs the hatchling build backend installed")
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(out.glob("gpudash-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        shipped = sorted(n for n in names if n.startswith("gpudash/_themes/"))
        assert {"gpudash/_themes/gpudash-dark.toml", "gpudash/_themes/gpudash-light.toml",
                "gpudash/_themes/gpudash-contrast.toml"} <= set(shipped)
        assert "gpudash/ui/gpudash.tcss" in names
        z.extractall(tmp_path / "site")
    # an installed copy (no checkout around it) finds them through gpudash/_themes
    code = ("from gpudash.ui.themes import load_themes, theme_dirs; t, e = load_themes(); "
            "print(sorted(t), theme_dirs()[0])")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "XDG_CONFIG_HOME": str(tmp_path / "x"),
                              "PATH": "/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "'gpudash-contrast', 'gpudash-dark', 'gpudash-light'" in res.stdout
    assert str(tmp_path / "site" / "gpudash" / "_themes") in res.stdout
