"""The bad-config corpus: every file in tests/fixtures/bad_configs/ states, in its own header,
each problem the loader must report (`# expect: LINE KEY ~ part of the message`) and any secret
that must never appear in the output (`# secret: TEXT`). Exactly the expected problems are
reported: none missing, none extra, none twice.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpudash.config import Config, ConfigError, load_config, parse_config

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "bad_configs"
FILES = sorted(CORPUS.glob("*.toml"))
_EXPECT = re.compile(rb"^# expect: (\d+) (.*?) *~ (.+)$", re.M)
_SECRET = re.compile(rb"^# secret: (.+)$", re.M)


def _expectations(path: Path) -> tuple[list[tuple[int, str, str]], list[str]]:
    data = path.read_bytes()
    expects = [(int(m.group(1)), m.group(2).decode(), m.group(3).decode().strip())
               for m in _EXPECT.finditer(data)]
    secrets = [m.group(1).decode().strip() for m in _SECRET.finditer(data)]
    return expects, secrets


def test_corpus_is_not_empty():
    assert len(FILES) >= 30
    for path in FILES:
        assert _expectations(path)[0], f"{path.name} states no expected problem"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_config_reports_exactly_the_expected_problems(path: Path):
    expects, secrets = _expectations(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    got = [(p.line, p.key) for p in problems]
    assert len(problems) == len(expects), f"got {got}\n{info.value}"
    for line, key, fragment in expects:
        match = [p for p in problems if p.line == line and p.key == key]
        assert match, f"no problem at line {line} for key {key!r}; got {got}"
        assert fragment in match[0].message, f"{match[0]} lacks {fragment!r}"
        assert str(match[0]) == f"{path}:{line}: {key + ': ' if key else ''}{match[0].message}"
    text = str(info.value)
    for secret in secrets:
        assert secret not in text, f"secret {secret!r} leaked into: {text}"


def test_fixed_corpus_file_loads():
    """The corpus files fail for the stated reasons only: fixing those lines gives a config."""
    text = (CORPUS / "unknown_key_did_you_mean.toml").read_text()
    config = parse_config(text.replace("tmux_sesion", "tmux_session"))
    assert isinstance(config, Config)
    assert config.hosts[0].tmux_session == "train"
