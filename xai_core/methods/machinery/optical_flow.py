"""Optical flow of a clip for the motion methods: OpenCV's Farneback flow between consecutive
frames (its options as method parameters), and pixel positions as ``grid_sample`` coordinates."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .registry import Param

# Farneback's options (cv2.calcOpticalFlowFarneback), OpenCV's usual values for small frames.
FARNEBACK_DEFAULTS = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2}

FARNEBACK_PARAMS = (
    Param("pyr_scale", "float", 0.5, minimum=0.1, maximum=0.9, help="Farneback: scale between pyramid levels"),
    Param("levels", "int", 3, minimum=1, maximum=8, help="Farneback: pyramid levels"),
    Param("winsize", "int", 15, minimum=3, maximum=63, help="Farneback: averaging window (pixels)"),
    Param("iterations", "int", 3, minimum=1, maximum=20, help="Farneback: iterations per level"),
    Param("poly_n", "int", 5, minimum=3, maximum=9, help="Farneback: neighbourhood of the polynomial fit (5 or 7)"),
    Param("poly_sigma", "float", 1.2, minimum=0.5, maximum=3.0, help="Farneback: Gaussian sigma of the fit"),
)


def farneback_flows(frames: np.ndarray, **options) -> torch.Tensor:
    """uint8 frames [T,H,W,3] -> flows [T-1,2,H,W] float32 (x then y, pixels): f_i with
    I_i(p) ~ I_{i-1}(p - f_i(p)).  OpenCV's flow from frame i to frame i-1 (I_i(p) ~
    I_{i-1}(p + b(p))), negated."""
    opts = {**FARNEBACK_DEFAULTS, **options}
    if len(frames) < 2:
        raise ValueError("a flow decomposition needs at least two frames")
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    flows = [
        -cv2.calcOpticalFlowFarneback(
            cur,
            prev,
            None,
            opts["pyr_scale"],
            int(opts["levels"]),
            int(opts["winsize"]),
            int(opts["iterations"]),
            int(opts["poly_n"]),
            opts["poly_sigma"],
            0,
        )
        for prev, cur in zip(grey[:-1], grey[1:], strict=True)
    ]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).contiguous()


def sampling_grid(x: torch.Tensor, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel positions x, y (same shape S) -> ``grid_sample``'s grid [S,2] for align_corners=True,
    where -1 and 1 are the centres of the first and last pixels."""
    return torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)


def clip_flows(model, x: torch.Tensor, **options) -> torch.Tensor:
    """Farneback flows of a preprocessed clip x [1,T,C,H,W] (on its 8-bit frames) -> [1,T-1,2,H,W]
    on x's device."""
    return farneback_flows(model.frames_of(x), **options)[None].to(x.device)
