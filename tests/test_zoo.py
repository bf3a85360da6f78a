"""The trained zoo: its cards' figures, and the models re-checked on clips from a second,
independent Moving Shapes implementation (tests/independent_shapes.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
from independent_shapes import make_clip

import xai_core
from xai_core.models.zoo import checkpoints_dir, zoo_cards

REQUIRED = ["cnn_transformer-sides", "r3d-sides"]
SHAPE_NAMES = {3: "triangle", 4: "square", 5: "pentagon"}


@cache
def model(name: str):
    return xai_core.load_model(name, device="cpu")


def peak_inside(expl, masks: np.ndarray) -> np.ndarray:
    """Per frame: does the map's maximum fall on the true shape?  [T] bool"""
    flat = expl.spatial.reshape(len(masks), -1).argmax(1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), flat]


def test_required_models_are_in_the_zoo_with_their_figures():
    cards = {c["name"]: c for c in zoo_cards()}
    for name in REQUIRED:
        card = cards[name]
        test = card["metrics"]["test"]["noise8_distractors2"]
        assert test["clips"] == 500 and test["accuracy"] >= 0.95, (name, test)
        assert test["options"] == {"noise": 8.0, "distractors": 2}
        training = card["training"]
        assert training["command"].startswith("python -m xai_core train ")
        assert f"--out checkpoints/{name}" in training["command"]
        assert training["wall_clock_seconds"] > 0 and len(training["curve"]) >= 4
        assert card["input_spec"]["frames"] == 32 and card["input_spec"]["height"] == 112
        assert card["file_bytes"] < 5_000_000
    assert (checkpoints_dir() / "cnn_transformer-sides.safetensors").exists()


@pytest.mark.parametrize("name", REQUIRED)
def test_accuracy_holds_on_an_independent_implementation(name):
    m = model(name)
    clips = [make_clip(seed, noise=8, distractors=2) for seed in range(1000, 1060)]
    predicted = [xai_core.predict(m, xai_core.load_video(c.video, model=m))["label"] for c in clips]
    accuracy = np.mean([p == SHAPE_NAMES[c.sides] for p, c in zip(predicted, clips, strict=True)])
    assert accuracy >= 0.88, accuracy


@pytest.mark.parametrize("name, least", [("cnn_transformer-sides", 0.6), ("r3d-sides", 0.3)])
def test_gradcam_peaks_on_the_moving_shape(name, least):
    """Over frames of independent clips, the Grad-CAM maximum lies on the moving shape (not on a
    static distractor or the background) at least this often; a map that ignored the evidence
    would hit the shape on about its area share, under 5% of the frame."""
    m = model(name)
    hits = []
    for seed in range(2000, 2012):
        clip = make_clip(seed, noise=8, distractors=2)
        hits.append(peak_inside(xai_core.explain(m, clip.video, "gradcam"), clip.target_masks))
    rate = float(np.mean(hits))
    area_share = float(np.mean([make_clip(s).target_masks.mean() for s in range(2000, 2012)]))
    assert rate >= least and rate > 10 * area_share, (rate, area_share)


def test_cli_explain_on_independent_npy(tmp_path):
    """The issue's own check: `xai_core explain` on a .npy clip from another implementation."""
    clip = make_clip(31337, noise=8, distractors=2)
    np.save(tmp_path / "clip.npy", clip.video)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xai_core",
            "explain",
            "--model",
            "cnn_transformer-sides",
            "--video",
            str(tmp_path / "clip.npy"),
            "--method",
            "gradcam",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert record["frame_indices"] == list(range(32))
    with np.load(tmp_path / "out" / "explanation.npz") as npz:
        spatial = npz["spatial"]
    flat = spatial.reshape(32, -1).argmax(1)
    inside = clip.target_masks.reshape(32, -1)[np.arange(32), flat]
    assert inside.mean() > 0.5, inside.mean()
