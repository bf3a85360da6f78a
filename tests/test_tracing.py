"""torch.fx patches nn.Module for the whole process while it traces: a model another thread runs
then (a second session of the app) must not go through the trace."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import fx, nn

from xai_core.methods.machinery.tracing import OwnThreadTracer


def _trace_paused_midway(tracer: fx.Tracer, run_meanwhile):
    """Trace a small network in a thread, paused inside its forward (fx's patches installed), and
    call ``run_meanwhile()`` from this thread then; returns (its result or exception, the graph)."""
    started, release = threading.Event(), threading.Event()

    class Paused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(3, 4, 3)

        def forward(self, x):
            started.set()
            release.wait(30)
            return self.conv(x).relu()

    traced: dict = {}
    thread = threading.Thread(target=lambda: traced.setdefault("graph", tracer.trace(Paused())))
    thread.start()
    assert started.wait(30)
    try:
        outcome = run_meanwhile()
    except Exception as error:  # noqa: BLE001  (what fx's own tracer raises is the point)
        outcome = error
    finally:
        release.set()
        thread.join(30)
    return outcome, traced["graph"]


def test_a_model_run_in_another_thread_during_a_trace_runs_as_usual():
    torch.manual_seed(0)
    other = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(1, 3, 8, 8)
    expected = other(x)
    got, graph = _trace_paused_midway(OwnThreadTracer(), lambda: other(x))
    assert isinstance(got, torch.Tensor) and torch.equal(got, expected)
    assert [n.target for n in graph.nodes if n.op == "call_module"] == ["conv"]  # the trace is whole
    # fx's own tracer sends the other thread's model through the trace: what OwnThreadTracer is for
    failed, _ = _trace_paused_midway(fx.Tracer(), lambda: other(x))
    assert isinstance(failed, NameError) and "not installed as a submodule" in str(failed)


def test_two_traces_at_once_take_turns():
    nets = [nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU()) for _ in range(4)]
    graphs: list = []
    threads = [threading.Thread(target=lambda n=n: graphs.append(OwnThreadTracer().trace(n))) for n in nets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(graphs) == 4
    assert all([n.target for n in g.nodes if n.op == "call_module"] == ["0", "1"] for g in graphs)


@pytest.mark.parametrize("module", ["xai_core.methods.machinery.incremental", "xai_core.methods.lrp.graph"])
def test_the_engines_trace_with_it(module):
    import importlib

    assert issubclass(importlib.import_module(module)._Tracer, OwnThreadTracer)
