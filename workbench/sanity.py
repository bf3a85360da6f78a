"""Which methods' maps survive randomising a model's weights (the sanity check), for the Explain
page's warning: from the zoo's committed evaluation and from this session's Evaluate runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st

from xai_core.models.base import VideoModel
from xai_core.models.zoo import checkpoints_dir, zoo_names

from .caches import model_key
from .jobs import results


class Survival(NamedTuple):
    """How far a method's maps survive randomising every weight: the largest Spearman correlation
    over the whole clip, and frame by frame (NaN for a method without spatial maps, or measured
    before the suite took it)."""

    clip: float
    frames: float

    def survives(self, threshold: float) -> bool:
        return bool(self.clip > threshold)

    def text(self, name: str, threshold: float) -> str:
        """The Explain page's warning for a method whose maps survive (``survives``)."""
        if np.isfinite(self.frames) and self.frames <= threshold:
            return (
                f"{name}: the maps' size from frame to frame survives randomisation (Spearman {self.clip:.2f} "
                f"over the clip); within each frame they change ({self.frames:.2f})"
            )
        return f"{name}: maps survive randomisation (Spearman {self.clip:.2f})"


def _survival(row: dict) -> Survival:
    from xai_core.evaluate.suites import frame_correlation, survival

    return Survival(survival(row), frame_correlation(row, "all"))


@st.cache_data(show_spinner=False, max_entries=64)
def _zoo_survival(name: str, folder: str, stamp: tuple) -> dict[str, tuple[int, Survival]]:
    """The committed sanity results of zoo model ``name``: method -> (clips, survival)
    (``stamp``: the files' sizes and times, so that a new file is read again)."""
    from xai_core.evaluate.report import stored_entry, weights_sha256

    entry = stored_entry(name, weights_sha256(Path(folder) / f"{name}.safetensors"), Path(folder))
    if entry is None:
        return {}
    clips = int(entry["sanity"].get("clips", 0))  # a method run on fewer clips (TSR, --slow-n) says how many
    return {row["method"]: (int(row.get("spearman_all_n", clips)), _survival(row)) for row in entry["sanity"]["rows"]}


def sanity_survival(model: VideoModel, device: str) -> dict[str, Survival]:
    """method -> how far its maps on ``model`` survive randomising every weight, where a sanity
    result exists: the zoo's committed evaluation (for exactly these weights) and this session's
    Evaluate runs on the same model; the result over more clips wins (the newer one between
    equals)."""
    from xai_core.evaluate.report import RESULTS_FILE

    found: dict[str, tuple[int, Survival]] = {}  # method -> (clips, survival)
    if getattr(model, "xai_user_key", None) is None and model.name in zoo_names():
        folder = checkpoints_dir()
        files = [folder / f"{model.name}.safetensors", folder / RESULTS_FILE]
        stamp = tuple((f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None for f in files)
        found |= _zoo_survival(model.name, str(folder), stamp)
    key = model_key(model, device)
    for run_key, result in results("evaluate").items():
        if not result.get("randomised") or json.loads(run_key)[0] != key:
            continue
        for row in result["rows"]:
            clips, value = int(result.get("clips", 0)), _survival(row)
            if np.isfinite(value.clip) and clips >= found.get(row["method"], (0, None))[0]:
                found[row["method"]] = (clips, value)
    return {method: value for method, (_, value) in found.items() if np.isfinite(value.clip)}
