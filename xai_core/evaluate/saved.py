"""Evaluations as saved runs: a suite's or a model's quality result kept in the run store under
a key of the model (name and fingerprint), what was evaluated and how (the settings), and the
device, so that the same request is served again and a retrained model is evaluated anew."""

from __future__ import annotations

import hashlib
import json
import platform

import torch

from .._version import __version__
from ..api import model_fingerprint
from ..models.base import VideoModel
from ..runs import RunRecord, RunRequest, RunStore, request

# What a suite's rows hold; raised when a suite measures new figures, so that a result saved
# before them is measured again rather than served without them (2: the sanity suite's two random
# output layers and the input methods' maps against the input; 4: the flow gradients' maps against
# the warp's derivative; 5: three random output layers, and the maps against nearness to the
# shapes and across clips; 6: five more random output layers where three leave the test open; 7: the
# trained model against each random output layer, and a second copy with every weight randomised).
FIGURES = 7


def evaluation_request(model: VideoModel, what: str, settings: dict) -> RunRequest:
    """The store's request for evaluating ``model`` by ``what`` ("sanity suite", "model quality",
    ...) with ``settings`` (clips, seed, methods, ...: JSON-able)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    settings_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
    return request(model.name, model_fingerprint(model), settings_hash, what, None, settings, str(model.device))


def save_evaluation(store: RunStore, model: VideoModel, what: str, settings: dict, result: dict, seconds: float,
                    summary: str, source: str) -> RunRecord:  # fmt: skip
    """Keep ``result`` as a run of kind "evaluation"; ``summary``: its headline in a line;
    ``source``: the clips it was measured on, in words."""
    versions = {"xai_core": __version__, "torch": torch.__version__, "python": platform.python_version()}
    return store.put_document(result, evaluation_request(model, what, settings), "evaluation", seconds=seconds,
                              summary=summary, source=source, versions=versions)  # fmt: skip


def saved_evaluation(store: RunStore, model: VideoModel, what: str, settings: dict) -> tuple[RunRecord, dict] | None:
    """The saved result of this evaluation request and its record, or None."""
    return store.get_document(evaluation_request(model, what, settings))


def suite_settings(suite: str, methods: list[str], n: int, seed: int, noise: float, distractors: int,
                   randomised: bool, params: dict | None = None, slow_clips: int | None = None) -> dict:  # fmt: skip
    """What determines a suite's result, the same from the Evaluate page, the command line and
    ``run_suite(store=...)``: the methods evaluated (names, in any order), clips, seed, noise,
    distractors, the randomised copy, parameters and TSR's clips."""
    return {
        "figures": FIGURES,
        "methods": sorted(methods),
        "n": int(n),
        "seed": int(seed),
        "noise": float(noise),
        "distractors": int(distractors),
        "randomised": bool(randomised or suite == "sanity"),
        "params": params or {},
        "slow_clips": slow_clips if slow_clips is not None and slow_clips < n else None,
    }


def clips_text(n: int, seed: int) -> str:
    """'12 Moving Shapes clips from seed 50000'"""
    return f"{n} Moving Shapes clip{'s' * (n != 1)} from seed {seed}"
