"""Whatever the file holds, loading gives a Config or a ConfigError — never another exception —
and every reported line is inside the file."""

from __future__ import annotations

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudash.config import Config, ConfigError, parse_config
from gpudash.config import schema

SETTINGS = settings(deadline=None, max_examples=300,
                    suppress_health_check=[HealthCheck.too_slow])


def _load(data):
    try:
        result = parse_config(data, file="f.toml")
    except ConfigError as exc:
        assert exc.problems
        return exc
    assert isinstance(result, Config) and result.hosts
    return result


def _lines(data) -> int:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.count("\n") + 1


@SETTINGS
@given(st.text())
def test_arbitrary_text(text):
    out = _load(text)
    if isinstance(out, ConfigError):
        assert all(0 <= p.line <= _lines(text) for p in out.problems)


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data):
    out = _load(data)
    if isinstance(out, ConfigError):
        assert all(0 <= p.line <= _lines(data) for p in out.problems)


# Structured input: real keys with values of every TOML type, so validation (not only the
# TOML parser) is exercised.
_KEYS = sorted(set(schema.TIMING_SPEC) | set(schema.THRESHOLD_SPEC)
               | {k for k, v in schema.host_spec(False).items() if v} | set(schema.TEARDOWN_SPEC)
               | set(schema.ALERTS_SPEC) | set(schema.PROMETHEUS_SPEC) | set(schema.UI_SPEC)
               | {"bogus", "key", "webhook_url", "token", "user"})
_scalar = st.one_of(
    st.booleans(), st.integers(-10**6, 10**6), st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["/", "/workspace", "6h", "90m", "runpod", "ssh", "local", "webhook",
                     "root@1.2.3.4:22", "-----BEGIN KEY", "http://u:p@h", "~/x", "*_DONE",
                     "~nosuchuser_gpudash/x", "http://[::1", "1" + "0" * 400 + "d"]),
)
_value = st.one_of(_scalar, st.lists(_scalar, max_size=4))
_table = st.dictionaries(st.sampled_from(_KEYS), _value, max_size=6)
_host = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["a", "b", "a100"]), st.text(max_size=8))},
    optional={"thresholds": _table, "teardown": _table},
).flatmap(lambda h: _table.map(lambda extra: {**extra, **h}))
_doc = st.fixed_dictionaries({}, optional={
    "defaults": _table.flatmap(lambda d: _table.map(lambda t: {**d, "thresholds": t})),
    "host": st.lists(_host, max_size=3),
    "alerts": _table, "prometheus": _table, "ui": _table,
    "keymap": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    "bogus": _table,
})


@SETTINGS
@given(_doc)
def test_structured_configs(doc):
    text = tomli_w.dumps(doc)
    out = _load(text)
    if isinstance(out, ConfigError):
        lines = text.split("\n")  # TOML lines; str.splitlines() would also split on U+0085
        for p in out.problems:
            assert 1 <= p.line <= len(lines), p
            if p.message.startswith("unknown key"):  # always an exact path: its line names it
                last = p.key.rsplit(".", 1)[-1]
                if last.isidentifier():
                    assert last in lines[p.line - 1], (p, lines[p.line - 1])
        assert "-----BEGIN" not in str(out)


@SETTINGS
@given(st.data())
def test_mutated_documented_example(data):
    from tests.unit.test_config import docs_example

    text = docs_example()
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 20)))
    insert = data.draw(st.text(max_size=10))
    _load(text[:i] + insert + text[j:])
