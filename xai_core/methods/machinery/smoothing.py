"""What the methods that average over noise or over a path share: a seeded random generator,
SmoothGrad's parameters, and how many clips go through the model in one pass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .registry import Param

# Noisy clips (SmoothGrad) and interpolation steps (integrated gradients) per forward/backward pass.
# Measured on the 2-core CPU (cnn_transformer-sides, 32x112x112, one thread, 8 clips, medians of 5
# interleaved runs): SmoothGrad 1.61 / 1.59 / 2.02 s and integrated gradients 1.23 / 1.21 / 1.44 s
# at batches of 1 / 2 / 4.  Two at a time is as fast as one (faster when the cores are shared:
# fewer thread synchronisations), four is slower; each clip in a batch holds its own activations.
# A GPU takes 8 at once.
CPU_BATCH, GPU_BATCH = 2, 8


def clips_per_pass(device: torch.device) -> int:
    """How many noisy clips / interpolation steps go through the model together on ``device``."""
    return GPU_BATCH if device.type == "cuda" else CPU_BATCH


def smoothing_params(copies_of: str, range_of: str) -> tuple[Param, Param, Param]:
    """SmoothGrad's samples, sigma and seed, for noisy copies of ``copies_of`` with the noise scaled
    to the value range of ``range_of`` (smoothgrad: the clip; smoothflow: the decomposition)."""
    return (
        Param("samples", "int", 16, minimum=1, maximum=256, help=f"noisy copies of {copies_of}"),
        Param(
            "sigma",
            "float",
            0.15,
            minimum=0.0,
            maximum=1.0,
            help=f"noise standard deviation as a share of {range_of} value range (max - min)",
        ),
        Param("seed", "int", 0, minimum=0, help="seed of the noise (same seed, same maps)"),
    )


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG seeded inside the block (CPU and ``device``), restored after it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
