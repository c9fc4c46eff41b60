"""The data path never imports Textual, and `gpudash --help` imports nothing heavy."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import gpudash

ROOT = Path(__file__).resolve().parents[2]


def data_path_modules() -> list[str]:
    names = []
    for mod in pkgutil.walk_packages(gpudash.__path__, "gpudash."):
        if mod.name.startswith("gpudash.ui") or mod.name == "gpudash.__main__":
            continue
        names.append(mod.name)
    return names


def test_there_is_a_data_path_to_check():
    names = data_path_modules()
    for expected in ("gpudash.transport.ssh", "gpudash.watch.host", "gpudash.health.engine",
                     "gpudash.triage.classifier", "gpudash.probes.gpu", "gpudash.store.store"):
        assert expected in names


def test_data_path_never_imports_textual():
    code = (
        "import importlib, sys\n"
        f"for name in {data_path_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_help_imports_neither_asyncssh_nor_textual():
    code = (
        "import sys, contextlib, io\n"
        "from gpudash.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('asyncssh', 'textual', 'plotext', 'sqlite3')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
