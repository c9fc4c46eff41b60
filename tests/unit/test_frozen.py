"""``@frozen`` builds the same objects as dataclasses' own generated constructor, for every value
type that uses it: positional and keyword arguments, defaults, fresh default factories, the same
errors, and still frozen."""

from __future__ import annotations

import dataclasses

import pytest

import gpudash.model
import gpudash.transport.base
import gpudash.triage.fusion
import gpudash.triage.result
import gpudash.watch.view
from gpudash.frozen import GENERATED_INIT, frozen

# each module above registers its value types
assert gpudash.model and gpudash.transport.base and gpudash.triage.fusion and gpudash.watch.view
CLASSES = sorted(GENERATED_INIT, key=lambda c: c.__qualname__)


def _slow(klass, /, *args, **kwargs):
    obj = object.__new__(klass)
    GENERATED_INIT[klass](obj, *args, **kwargs)
    return obj


def _values(cls):
    """A distinct object per field, so a field written into the wrong slot shows."""
    return {f.name: object() for f in dataclasses.fields(cls)}


def test_the_hot_value_types_use_it():
    names = {c.__name__ for c in CLASSES}
    assert {"CheckResult", "HostSnapshot", "HostView", "GpuSample", "LiveFacts", "TriageResult",
            "StepResult", "Event", "LinkStatus"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_same_object_as_the_generated_constructor(cls):
    fields = dataclasses.fields(cls)
    values = _values(cls)
    assert vars(cls(**values)) == vars(_slow(cls, **values))
    positional = [values[f.name] for f in fields]
    assert vars(cls(*positional)) == vars(_slow(cls, *positional))
    required = {f.name: values[f.name] for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    fast, slow = cls(**required), _slow(cls, **required)
    assert vars(fast) == vars(slow)
    for f in fields:
        if f.default_factory is not dataclasses.MISSING:
            # a fresh one each time, never one shared between instances
            other = cls(**required)
            made = getattr(fast, f.name)
            assert made == f.default_factory()
            if isinstance(made, (list, dict, set)):
                assert made is not getattr(other, f.name)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_same_errors_and_still_frozen(cls):
    fields = dataclasses.fields(cls)
    values = _values(cls)
    with pytest.raises(TypeError):
        cls(**values, no_such_field=1)
    with pytest.raises(TypeError):
        cls(*[values[f.name] for f in fields], object())  # one positional too many
    required = [f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if required:
        with pytest.raises(TypeError):
            cls(**{k: v for k, v in values.items() if k != required[0]})
    obj = cls(**values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, fields[0].name, 1)


def test_equality_hash_repr_and_replace_are_dataclasses_own():
    from gpudash.model import CheckResult, State

    a = CheckResult("k", State.WARN, "s", detail={"x": 1})
    b = CheckResult(key="k", state=State.WARN, summary="s", detail={"x": 2})
    assert a == b and hash(a) == hash(b)  # detail: compare=False, hash=False
    assert repr(a).startswith("CheckResult(key='k', state=")
    c = dataclasses.replace(a, summary="t")
    assert c.summary == "t" and c.detail == {"x": 1} and c.state is State.WARN


def test_what_it_cannot_mirror_keeps_the_generated_constructor():
    @frozen
    class Post:
        a: int

        def __post_init__(self):
            object.__setattr__(self, "a", self.a + 1)

    @frozen
    class KwOnly:
        a: int = dataclasses.field(kw_only=True, default=0)

    @frozen
    class NoInit:
        a: int = dataclasses.field(init=False, default=5)

    assert Post(1).a == 2
    assert KwOnly(a=3).a == 3
    assert NoInit().a == 5
    assert not {Post, KwOnly, NoInit} & set(GENERATED_INIT)


def test_an_empty_value_type():
    @frozen
    class Empty:
        pass

    assert vars(Empty()) == {} and Empty() == Empty()
