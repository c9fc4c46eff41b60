"""The load generator (benchmarks/loadgen.py) reads what gpudash asks for: the NVML sampler's
interval from its stream request as a shell would (shlex), without shlex's cost."""

from __future__ import annotations

import shlex

import pytest

from benchmarks.loadgen import _STREAM, nvml_interval
from gpudash.probes.gpu import gpu_stream_step
from gpudash.probes.nvml_stream import nvml_stream_step
from gpudash.transport.framing import render_stream


def _body(step) -> bytes:
    req = render_stream(step, "0123456789abcdef", 3600)
    return req[_STREAM.search(req).end():]


@pytest.mark.parametrize("ms", [50, 250, 1000, 2000, 15000])
def test_the_nvml_interval_is_what_a_shell_would_pass(ms):
    body = _body(nvml_stream_step(ms))
    words = shlex.split(body.decode())
    as_shell = float(shlex.split(words[words.index("-c") + 1])[-1])
    assert nvml_interval(body) == as_shell == ms / 1000


def test_other_streams_are_not_the_sampler():
    assert nvml_interval(_body(gpu_stream_step(2.0))) is None
