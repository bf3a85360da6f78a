"""The Explain page's teaching notes: on Moving Shapes, whether each map's peak is on the true
shape frame by frame (the pointing game), and what the sanity check measured for the method."""

from __future__ import annotations

import numpy as np

from xai_core.evaluate.scores import pointing_game, read_map

from .sanity import Survival


def pointing(spatial: np.ndarray, reading: str, truth: np.ndarray) -> dict:
    """The pointing game of maps [T,H,W] (read as the method reads them) against the target's
    masks bool [T,H,W]: per-frame ``pointing`` (hit) and ``pointing_chance`` [T]."""
    return pointing_game(read_map(spatial, reading), truth)


def pointing_summary(name: str, hits: dict, padded: np.ndarray) -> str:
    """'gradcam: the peak is on the shape in 25 of 32 frames (78%; chance 9%).'  Padding frames
    are left out."""
    real = ~np.asarray(padded, bool)
    count, total = int(hits["pointing"][real].sum()), int(real.sum())
    chance = float(hits["pointing_chance"][real].mean()) if total else 0.0
    share = count / total if total else 0.0
    return (
        f"**{name}**: the peak is on the shape (within the pointing game's tolerance) in {count} of {total} "
        f"frames ({share:.0%}; a peak at random would be {chance:.0%})."
    )


def sanity_summary(name: str, survival: Survival | None, threshold: float) -> str:
    """What the sanity check says of ``name`` on this model: its maps' Spearman correlation with a
    fully randomised copy's, and whether that passes; or that none was measured."""
    if survival is None or not np.isfinite(survival.clip):
        return f"{name}: no sanity result for this model yet (the Evaluate page measures it)."
    verdict = (
        f"above {threshold:g}: the maps survive randomising the weights, so they say little about what this "
        "model learned"
        if survival.survives(threshold)
        else f"at most {threshold:g}: the maps change when the weights are randomised, as they should"
    )
    return f"{name}: Spearman {survival.clip:.2f} between its maps and a randomised copy's, {verdict}."
