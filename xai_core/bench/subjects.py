"""What is measured: a zoo model with its clip (Moving Shapes ``shapes:1``), preprocessed input and
predicted target; and the models' own speed, a forward pass and one input gradient per clip."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..api import prepare
from ..explanation import Target
from ..models.zoo import load_model
from ..video import load_video
from .peers import leaf
from .timing import median_seconds

DEFAULT_MODEL = "cnn_transformer-sides"


class Subject(NamedTuple):
    """A model under measurement, its clip, preprocessed input and resolved (predicted) target."""

    name: str
    model: object
    clip: object
    x: torch.Tensor
    target: Target


def subject(name: str, model=None) -> Subject:
    model = model if model is not None else load_model(name, device="cpu")
    clip = load_video("shapes:1", model=model)
    prepared = prepare(model, clip)
    return Subject(name, model, clip, prepared.x, prepared.target)


def bench_model(s: Subject, repeats: int) -> dict:
    """Forward pass (prediction) and one input gradient of the target score on one clip."""
    model, x = s.model, s.x

    def forward():
        with torch.inference_mode():
            model(x)

    def gradient():
        xx = leaf(x)
        torch.autograd.grad(s.target.score(model(xx)).sum(), xx)

    return {
        "model": s.name,
        "arch": model.info.arch,
        "input": list(x.shape),
        "predict": median_seconds(forward, repeats),
        "input_gradient": median_seconds(gradient, repeats),
    }
