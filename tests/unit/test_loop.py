"""gpudash/loop.py: which loop the TUI runs on, and that `run` behaves as `asyncio.run`."""

from __future__ import annotations

import asyncio
import sys

import pytest

from gpudash import loop as gl
from tests.services.require import require


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def test_uvloop_when_installed(monkeypatch):
    monkeypatch.delenv(gl.ENV, raising=False)
    require(_uvloop_installed(), "uvloop is not installed (a dependency on Linux: pip install -e .)")
    import uvloop

    assert gl.loop_factory() is uvloop.new_event_loop
    assert gl.run(_loop_name()) == "uvloop"


@pytest.mark.parametrize("value", ["asyncio", " AsyncIO "])
def test_env_forces_the_standard_loop(monkeypatch, value):
    monkeypatch.setenv(gl.ENV, value)
    assert gl.loop_factory() is asyncio.new_event_loop
    assert gl.run(_loop_name()) == "asyncio"


def test_standard_loop_without_uvloop(monkeypatch):
    monkeypatch.delenv(gl.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert gl.loop_factory() is asyncio.new_event_loop
    assert gl.run(_loop_name()) == "asyncio"


def test_run_returns_and_cleans_up_like_asyncio_run():
    """The result comes back, a task left running is cancelled (not left pending), async
    generators are finalised, and the loop is closed."""
    seen: dict = {}

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            seen["agen_closed"] = True

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    async def main():
        seen["loop"] = asyncio.get_running_loop()
        asyncio.get_running_loop().create_task(forever())
        g = agen()
        await g.__anext__()  # left suspended: finalised on shutdown
        await asyncio.sleep(0)
        return 42

    assert gl.run(main()) == 42
    assert seen["cancelled"] and seen["agen_closed"]
    assert seen["loop"].is_closed()


def test_run_propagates_exceptions():
    async def boom():
        raise ValueError("x")

    with pytest.raises(ValueError):
        gl.run(boom())


async def _loop_name() -> str:
    return gl.loop_name(asyncio.get_running_loop())


async def _threshold() -> tuple[int, int, int]:
    return __import__("gc").get_threshold()


def test_run_spaces_out_the_collector_and_restores_it(monkeypatch):
    import gc

    monkeypatch.delenv(gl.GC_ENV, raising=False)
    before = gc.get_threshold()
    assert before != gl.GC_THRESHOLDS  # else this test proves nothing
    assert gl.run(_threshold()) == gl.GC_THRESHOLDS
    assert gc.get_threshold() == before

    async def boom():
        raise ValueError("x")

    with pytest.raises(ValueError):
        gl.run(boom())
    assert gc.get_threshold() == before  # restored on the way out of a failure too


@pytest.mark.parametrize("value", ["default", " Default "])
def test_env_keeps_cpythons_collector(monkeypatch, value):
    import gc

    monkeypatch.setenv(gl.GC_ENV, value)
    assert gl.run(_threshold()) == gc.get_threshold()


def test_env_sets_thresholds_of_ones_own(monkeypatch):
    monkeypatch.setenv(gl.GC_ENV, " 5000, 7,9 ")
    assert gl.run(_threshold()) == (5000, 7, 9)


@pytest.mark.parametrize("value", ["1,2", "a,b,c", "0,10,10", "1,2,3,4", "-1,2,3", "bogus"])
def test_a_bad_gc_setting_falls_back_to_gpudashs(monkeypatch, value):
    monkeypatch.setenv(gl.GC_ENV, value)
    assert gl.run(_threshold()) == gl.GC_THRESHOLDS
