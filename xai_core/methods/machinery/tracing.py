"""A torch.fx tracer that other threads can run models beside.

While fx traces a network it replaces ``nn.Module.__call__`` and ``nn.Module.__getattr__`` on the
class, for the whole process.  A model that another thread runs at that moment (a second session
of the app, a batch worker's thread) then goes through the tracer: its modules are not the traced
network's, and fx raises "module is not installed as a submodule", or hands out the traced
network's proxies.  ``OwnThreadTracer`` lets every call from another thread through unchanged, and
one lock keeps two traces from nesting their patches."""

from __future__ import annotations

import threading

from torch import fx, nn

TRACING = threading.Lock()  # one fx trace at a time in this process: their class patches would nest


class OwnThreadTracer(fx.Tracer):
    """fx's tracer, recording only the thread that traces: a module call or attribute read from
    any other thread runs as if no trace were going on."""

    _thread: int | None = None

    def trace(self, root, concrete_args=None) -> fx.Graph:
        with TRACING:
            self._thread = threading.get_ident()
            try:
                return super().trace(root, concrete_args)
            finally:
                self._thread = None

    def _ours(self) -> bool:
        return threading.get_ident() == self._thread

    def call_module(self, m: nn.Module, forward, args, kwargs):
        if not self._ours():
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val, parameter_proxy_cache: dict):
        if not self._ours():
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)
