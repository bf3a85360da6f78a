"""Randomised copies of a model for the sanity checks of Adebayo et al. (2018), as report 001 runs
them: the output layer re-initialised ("logits"), or every weight ("all")."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.base import VideoModel

SCOPES = ("logits", "all")


def output_layer(net: nn.Module) -> nn.Module:
    """The last Linear (or conv, for nets that end in one) in registration order: the layer that
    produces the logits or the regression output."""
    last = None
    for module in net.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            last = module
    if last is None:
        raise ValueError("this network has no Linear or conv layer to re-initialise")
    return last


def _reset(module: nn.Module) -> bool:
    for name in ("reset_parameters", "_reset_parameters"):
        fn = getattr(module, name, None)
        if callable(fn):
            fn()
            return True
    return False


def randomized_copy(model: VideoModel, scope: str, seed: int = 0) -> VideoModel:
    """A deep copy of ``model`` (in eval mode) with its ``scope`` re-initialised from ``seed``:
    "logits": the output layer; "all": every module's own initialisation (batch norms back to the
    identity with fresh running statistics), and parameters no module initialises (a CLS token,
    positional embeddings) drawn from N(0, 0.02^2).  The model itself is not touched."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    clone = copy.deepcopy(model)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            if scope == "logits":
                _reset(output_layer(clone.net))
            else:
                for module in clone.net.modules():
                    if not _reset(module):
                        for param in module.parameters(recurse=False):
                            param.normal_(0.0, 0.02)
    finally:
        torch.random.set_rng_state(generator_state)
    return clone.eval()
