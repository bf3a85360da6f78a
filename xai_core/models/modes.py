"""Train / eval modes of a model the workbench explains: set for a computation, handed back as found.

Explanations are computed in eval mode: batch norm uses its running statistics and dropout is off,
so two passes over the same clip agree.  ``nn.Module.train(flag)`` writes one flag into every
module, so saving ``model.training`` and calling ``model.train(saved)`` afterwards does not hand a
model back as it was found: a wrapper in training mode around a network in eval mode comes back
with every batch norm and dropout training, and a network whose batch norms were frozen by their
owner comes back with them unfrozen.  ``eval_mode`` saves each module's own flag and writes it back.

Only cuDNN's recurrent layers need another mode: their backward pass runs in training mode only.
On a CUDA device ``eval_mode`` puts torch's own ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` layers in
training mode with their dropout set to 0, which computes what eval mode computes, and restores
both afterwards.  Subclasses are left alone (their ``training`` flag may mean more).

Blocks may nest and may run at once in several threads on one model (the app shares a cached
model between sessions): the first block to enter saves the modes, the last to leave restores them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


@dataclass
class _Held:
    """A model inside ``eval_mode`` blocks: the modes found on entry, and how many blocks hold it."""

    flags: list[tuple[nn.Module, bool]]
    dropouts: list[tuple[nn.RNNBase, float]]
    blocks: int = 1


_HELD: weakref.WeakKeyDictionary[nn.Module, _Held] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def training_modules(model: nn.Module) -> list[str]:
    """Qualified names of the modules of ``model`` in training mode ("" is the model itself)."""
    return [name for name, module in model.named_modules() if module.training]


def cudnn_recurrent_layers(model: nn.Module) -> list[nn.RNNBase]:
    """torch's own recurrent layers of ``model`` whose weights are on a CUDA device."""
    return [m for m in model.modules() if type(m) in RECURRENT and any(p.is_cuda for p in m.parameters(recurse=False))]


def _enter(model: nn.Module) -> None:
    with _LOCK:
        held = _HELD.get(model)
        if held is not None:
            held.blocks += 1
            return
        flags = [(m, m.training) for m in model.modules()]
        recurrent = cudnn_recurrent_layers(model)
        dropouts = [(m, m.dropout) for m in recurrent]
        model.eval()
        for m in recurrent:
            m.dropout = 0.0
            m.training = True  # cuDNN's RNN backward runs in training mode only; without dropout it is eval
        _HELD[model] = _Held(flags, dropouts)


def _leave(model: nn.Module) -> None:
    with _LOCK:
        held = _HELD[model]
        held.blocks -= 1
        if held.blocks:
            return
        del _HELD[model]
        for m, dropout in held.dropouts:
            m.dropout = dropout
        for m, flag in held.flags:
            m.training = flag  # the flag alone: a module's own train() may do more than set it


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module of ``model`` in eval mode inside the block (cuDNN recurrent layers: see the
    module's docstring); each module's own flag, found on entry, back on exit."""
    _enter(model)
    try:
        yield model
    finally:
        _leave(model)
