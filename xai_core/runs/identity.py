"""What identifies a run's inputs: the model's weights and a tensor clip, each as a content hash.

A saved run is served again only for the same weights and the same clip content, so a retrained
model or an edited clip file under the same name is never answered with an old run."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

_MEMO = "_xai_weights_hash"


def weights_hash(module: nn.Module, fresh: bool = False) -> str:
    """sha256 (24 hex digits) of ``module``'s state: every parameter's and buffer's name, dtype,
    shape and values, and the network's class.  The hash is kept on the module with the storage
    and version of each tensor and computed again when one of them changed (an in-place update or
    ``load_state_dict``); ``fresh``: compute it whatever is kept (writes through ``.data`` do not
    bump a tensor's version)."""
    state = module.state_dict(keep_vars=True)
    stamp = tuple((name, t.data_ptr(), t._version, tuple(t.shape)) for name, t in state.items())
    kept = getattr(module, _MEMO, None)
    if not fresh and kept is not None and kept[0] == stamp:
        return kept[1]
    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in state.items():
        value = tensor.detach()
        digest.update(f"\0{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
        digest.update(_tensor_bytes(value))
    result = digest.hexdigest()[:24]
    try:
        object.__setattr__(module, _MEMO, (stamp, result))
    except AttributeError:  # a scripted module that takes no new attributes: computed every time
        pass
    return result


def tensor_hash(x: torch.Tensor | np.ndarray) -> str:
    """sha256 (16 hex digits) of an input tensor or array: dtype, shape and values."""
    value = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    digest = hashlib.sha256(f"{value.dtype}\0{tuple(value.shape)}\0".encode())
    digest.update(_tensor_bytes(value))
    return digest.hexdigest()[:16]


def _tensor_bytes(value: torch.Tensor) -> bytes:
    value = value.cpu().contiguous()
    if value.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
        value = value.view(torch.int16)
    return value.numpy().tobytes()
