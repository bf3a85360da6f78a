"""Reductions of a method's maps shared by several methods."""

from __future__ import annotations

import torch


def frame_importance(spatial: torch.Tensor) -> torch.Tensor:
    """[T,H,W] signed map -> [T] frame importance: the mean positive evidence in each frame."""
    return spatial.clamp(min=0).mean(dim=(1, 2))
