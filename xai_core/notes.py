"""What a user should be told that the numbers alone do not say: one short note each, with what
happened and why (shown by the app beside the result, printed by the command line).

* ``clip_notes``: the loader's notes (a file that claimed more frames than decoded, ...) and a
  zoo model trained on Moving Shapes shown a clip that is not Moving Shapes;
* ``explanation_notes``: a map that is zero on every frame, a frame curve that is flat (a 3D
  CNN's conv layer with one time step gives Grad-CAM one map for the whole clip).
"""

from __future__ import annotations

import numpy as np

from .explanation import Explanation
from .models.base import VideoModel
from .video import Clip

SHAPES_TASKS = {"sides": "how many sides the moving shape has", "angle": "where it moves", "pause": "whether it pauses"}


def shapes_task(model: VideoModel) -> str | None:
    """The Moving Shapes task a zoo model was trained on (from its card), or None for a model of
    another origin (a user's own, a checkpoint trained on other data)."""
    training = (getattr(model, "info", None) and model.info.card.get("training")) or {}
    task = (training.get("settings") or {}).get("task")
    return task if task in SHAPES_TASKS else None


def clip_notes(model: VideoModel, clip: Clip) -> list[str]:
    """Notes on the clip as loaded for ``model``."""
    synthetic = str(clip.source).startswith("shapes:")
    # a file's or folder's loader notes (frames that did not decode, ...); Moving Shapes' own notes
    # are about its ground truth, for the evaluation suites
    notes = [] if synthetic else [note[:1].upper() + note[1:] + "." for note in clip.meta.get("notes", [])]
    task = shapes_task(model)
    if task is not None and not synthetic:
        settings = model.info.card.get("training", {}).get("settings") or {}
        only = "" if settings.get("backbone_weights") or settings.get("init_from") else " only"
        notes.append(
            f"{model.name} was trained{only} on synthetic Moving Shapes clips ({SHAPES_TASKS[task]}): on this clip "
            "its prediction and maps show how the network reacts to it, not what the footage holds."
        )
    return notes


def _flat(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    return values.size > 1 and float(values.max() - values.min()) <= 1e-9 * max(1e-30, float(np.abs(values).max()))


def explanation_notes(expl: Explanation, padded: np.ndarray | None = None) -> list[str]:
    """Notes on one explanation (``padded`` [T] bool: the black frames that pad a short clip,
    left out of the flat-curve check)."""
    notes = []
    method = expl.method
    if expl.spatial is not None and not np.any(expl.spatial):
        why = ""
        if "cam_lowres" in expl.extras:
            why = (
                f" the weighted activations of layer {expl.params.get('layer')} are zero or negative everywhere for "
                "this target (the ReLU of Grad-CAM keeps nothing); saliency or integrated gradients may still show "
                "where the score is sensitive"
            )
        notes.append(f"{method}'s map is zero on every frame:{why or ' nothing of the input moved the score'}.")
        return notes
    if expl.temporal is not None and len(expl.temporal) > 1:
        temporal = np.asarray(expl.temporal, dtype=np.float64)
        shown = temporal[~np.asarray(padded, bool)] if padded is not None and len(padded) == len(temporal) else temporal
        if _flat(shown):
            lowres = expl.extras.get("cam_lowres")
            if lowres is not None and np.ndim(lowres) == 3 and lowres.shape[0] == 1:
                notes.append(
                    f"Layer {expl.params.get('layer')} has 1 time step: {method} gives one map for the whole clip, so "
                    "its frame curve is flat; choose an earlier layer, or saliency or LRP, for a curve over time."
                )
            else:
                notes.append(f"{method}'s frame curve is flat: every frame scores {shown[0]:.3g}.")
    return notes
