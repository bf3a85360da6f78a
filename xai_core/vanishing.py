"""Vanishing saliency (002, after Ismail et al. 2019): how much of the score's gradient reaches each frame.

A plain LSTM's gradient with respect to early frames shrinks with their distance from the
output, so its saliency piles up on the last frames whatever the evidence; the input-cell
attention LSTM (``ica_lstm``) was proposed to keep early frames visible.  The profile of one clip
is, per frame t, the mean over channels and pixels of |d score / d x_t| (Captum's ``Saliency``
with ``abs=True``).  ``peer_model`` finds the model to compare with: the zoo's model of the other
architecture trained on the same task.
"""

from __future__ import annotations

import numpy as np

from .api import prepare
from .methods.machinery.scoring import TargetScore, gradient_input
from .models.base import VideoModel
from .models.modes import eval_mode

PEERS = {"cnn_lstm": "ica_lstm", "ica_lstm": "cnn_lstm"}


def gradient_profile(model: VideoModel, clip, target=None) -> np.ndarray:
    """Mean |d score / d x| per frame [T] (float64) for a Clip or a tensor [1,T,C,H,W].

    target: as in ``xai_core.explain`` (None: the predicted class / the regression output)."""
    from captum.attr import Saliency  # captum imports matplotlib (0.7 s): only when a method that uses it runs

    prepared = prepare(model, clip, target)
    with eval_mode(model):
        forward = TargetScore(model, prepared.target)
        grad = Saliency(forward).attribute(gradient_input(prepared.x), target=forward.captum_target, abs=True)
    return grad.detach()[0].double().mean((1, 2, 3)).cpu().numpy()


def early_late_ratio(profile: np.ndarray, padded: np.ndarray | None = None, share: float = 0.25) -> float:
    """Mean of the profile over the first ``share`` of the real (not padding) frames divided by its
    mean over the last ``share``: far below 1 when the gradient vanishes towards the start."""
    real = np.asarray(profile, dtype=float)
    if padded is not None:
        real = real[~np.asarray(padded, dtype=bool)]
    if len(real) < 2:
        raise ValueError("a profile needs at least two real frames")
    count = max(1, int(round(share * len(real))))
    late = real[-count:].mean()
    return float(real[:count].mean() / late) if late > 0 else float("nan")


def peer_model(model_name: str, arch: str, names: list[str]) -> str | None:
    """The zoo model to compare ``model_name`` with: the other architecture of the pair
    cnn_lstm / ica_lstm on the same task (``ARCH-TASK`` naming), or None."""
    other = PEERS.get(arch)
    if other is None or not model_name.startswith(arch + "-"):
        return None
    candidate = other + model_name[len(arch) :]
    return candidate if candidate in names else None
