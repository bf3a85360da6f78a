"""Train / eval modes of a model the workbench explains: set for a computation, handed back as found.

Explanations are computed in eval mode: batch norm uses its running statistics and dropout is off,
so two passes over the same clip agree (and a pass in training mode would also move the running
statistics).  ``nn.Module.train(flag)`` writes one flag into every module, so saving
``model.training`` and calling ``model.train(saved)`` afterwards does not hand a model back as it
was found: a wrapper in training mode around a network in eval mode comes back with every batch
norm and dropout training, and a network whose batch norms were frozen by their owner comes back
with them unfrozen.  ``eval_mode`` saves each module's own flag and writes it back.  It sets the
flags themselves, as ``nn.Module.train`` does, and calls no ``train()`` a user's class overrides:
what it sets on entry is exactly what it undoes on exit.

Only cuDNN's recurrent layers need another mode: their backward pass runs in training mode only.
On a CUDA device ``eval_mode`` puts recurrent layers (``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``, also
compiled by TorchScript) in training mode where that computes what eval mode computes: torch's own
layers with their dropout set to 0 meanwhile; TorchScript layers, whose dropout is a constant, only
when it has no effect (one layer, or dropout 0).  Subclasses are left alone (their flag may mean
more).

Blocks may nest, overlap in any order and run at once in several threads, on one model or on
models that share modules (an adapter and its network; the app shares cached models between
sessions): each module is held by a count, the first block to take it saves its mode and the last
to let it go restores it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)
RECURRENT_NAMES = tuple(kind.__name__ for kind in RECURRENT)


@dataclass
class _Held:
    """A module inside ``eval_mode`` blocks: its mode found on entry, and how many blocks hold it."""

    training: bool
    dropout: float | None  # a torch recurrent layer's own dropout, set to 0 while held on CUDA
    blocks: int = 1


_HELD: dict[nn.Module, _Held] = {}
_LOCK = threading.Lock()


def training_modules(model: nn.Module) -> list[str]:
    """Qualified names of the modules of ``model`` in training mode ("" is the model itself)."""
    return [name for name, module in model.named_modules() if module.training]


def is_recurrent(module: nn.Module) -> bool:
    """torch's own LSTM / GRU / RNN, eager or compiled by TorchScript (not a subclass)."""
    if isinstance(module, torch.jit.RecursiveScriptModule):
        return getattr(module, "original_name", None) in RECURRENT_NAMES
    return type(module) in RECURRENT


def cudnn_recurrent_layers(model: nn.Module) -> list[nn.Module]:
    """The recurrent layers of ``model`` (``is_recurrent``) whose weights are on a CUDA device."""
    return [m for m in model.modules() if is_recurrent(m) and any(p.is_cuda for p in m.parameters(recurse=False))]


def _backward_ready(module: nn.Module) -> bool:
    """Whether the recurrent ``module`` can be put in training mode without changing what it computes."""
    if not isinstance(module, torch.jit.RecursiveScriptModule):
        return True  # its dropout is set to 0 meanwhile
    return module.num_layers == 1 or module.dropout == 0


def _enter(model: nn.Module) -> list[nn.Module]:
    modules = list(model.modules())
    recurrent = {m for m in cudnn_recurrent_layers(model) if _backward_ready(m)}
    with _LOCK:
        for m in modules:
            held = _HELD.get(m)
            if held is not None:
                held.blocks += 1
                continue
            own_dropout = m in recurrent and not isinstance(m, torch.jit.RecursiveScriptModule)
            _HELD[m] = _Held(m.training, m.dropout if own_dropout else None)
            if own_dropout:
                m.dropout = 0.0
            m.training = m in recurrent  # cuDNN's RNN backward runs in training mode only; without dropout it is eval
    return modules


def _leave(modules: list[nn.Module]) -> None:
    with _LOCK:
        for m in modules:
            held = _HELD[m]
            held.blocks -= 1
            if held.blocks:
                continue
            del _HELD[m]
            if held.dropout is not None:
                m.dropout = held.dropout
            m.training = held.training


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module of ``model`` in eval mode inside the block (cuDNN recurrent layers: see the
    module's docstring); each module's own flag, found on entry, back on exit."""
    modules = _enter(model)
    try:
        yield model
    finally:
        _leave(modules)
