"""What a method computes (``Attribution``), what ``explain`` returns (``Explanation``: the
attribution with its context) and what is explained (``Target``).

Maps are raw and signed as the method computed them (never min-max scaled here); rendering
decides how to show them.  An Explanation is saved as ``explanation.npz`` (arrays) +
``explanation.json`` (the rest) in one folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

NPZ_NAME, JSON_NAME = "explanation.npz", "explanation.json"


class TargetError(ValueError):
    """A target that does not make sense for the model."""


@dataclass(frozen=True)
class Target:
    """What is explained.

    kind "class": the logit of class ``index`` (classification);
    kind "output": the regression output itself;
    kind "reference": the negative squared error -(y - value)^2 of the regression output
    against a reference value (Grad-CAM for regression, 003)."""

    kind: str
    index: int | None = None
    value: float | None = None
    label: str | None = None

    def score(self, output: torch.Tensor) -> torch.Tensor:
        """output [B,K] -> the scalar being explained, per clip [B]."""
        if self.kind == "class":
            return output[:, self.index]
        if self.kind == "output":
            return output[:, 0]
        if self.kind == "reference":
            return -((output[:, 0] - self.value) ** 2)
        raise TargetError(f"unknown target kind {self.kind!r}")

    def describe(self) -> str:
        if self.kind == "class":
            return f"class {self.index} ({self.label})"
        if self.kind == "output":
            return "regression output"
        return f"-(output - {self.value:g})^2"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "index": self.index, "value": self.value, "label": self.label}

    @classmethod
    def from_dict(cls, data: dict) -> Target:
        return cls(data["kind"], data.get("index"), data.get("value"), data.get("label"))


def resolve_target(task: str, labels: list[str], target, output: torch.Tensor | None = None) -> Target:
    """Turn what a user says into a Target.

    Classification: None (the predicted class, needs ``output``), a class index, a label, or a
    digit string.  Regression: None or "output" (the output), a number or "ref=VALUE" (the
    negative squared error against VALUE)."""
    if isinstance(target, Target):
        return target
    if task == "classification":
        if target is None:
            if output is None:
                raise TargetError("the predicted class is needed to explain it; pass the model output")
            index = int(output[0].argmax())
        elif isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            index = int(target)
        elif isinstance(target, str) and target.strip().lstrip("-").isdigit():
            index = int(target)
        elif isinstance(target, str) and target in labels:
            index = labels.index(target)
        else:
            raise TargetError(
                f"target {target!r} is neither a class index (0..{len(labels) - 1}) nor a label ({', '.join(labels)})"
            )
        if not 0 <= index < len(labels):
            raise TargetError(
                f"class index {index} is out of range: the model has {len(labels)} classes (0..{len(labels) - 1})"
            )
        return Target("class", index=index, label=labels[index])
    if target is None or target == "output":
        return Target("output", label=labels[0] if labels else "output")
    text = target
    if isinstance(text, str) and text.startswith(("ref=", "reference=")):
        text = text.split("=", 1)[1]
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise TargetError(
            f"target {target!r} is not valid for a regression model: use 'output' or 'ref=VALUE' (a reference value)"
        ) from None
    if not math.isfinite(value):
        raise TargetError("the reference value must be a finite number")
    return Target("reference", value=value, label=labels[0] if labels else "output")


def describe_prediction(task: str, labels: list[str], output: torch.Tensor) -> dict:
    """output [1,K] -> JSON-able prediction: label, index, probabilities (or the value)."""
    out = output.detach().float().cpu()[0]
    if task == "classification":
        probs = out.softmax(-1)
        index = int(probs.argmax())
        return {
            "index": index,
            "label": labels[index],
            "probabilities": [float(p) for p in probs],
            "logits": [float(v) for v in out],
        }
    return {"value": float(out[0]), "label": labels[0]}


def prediction_text(prediction: dict) -> str:
    """A prediction (``describe_prediction``'s dict) in words, as the command line and the app state
    it: 'square (97.2%)' (a class and its probability) or 'angle (degrees) = 123.5' (a regression)."""
    if "index" in prediction:
        return f"{prediction['label']} ({prediction['probabilities'][prediction['index']]:.1%})"
    return f"{prediction['label']} = {prediction['value']:.4g}"


def checked_maps(spatial, temporal, extras: dict) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, np.ndarray]]:
    """The maps as float32 arrays, spatial [T,H,W] and temporal [T] (either may be None), and the
    extras as arrays; a map of another rank is an error."""
    if spatial is not None:
        spatial = np.asarray(spatial, dtype=np.float32)
        if spatial.ndim != 3:
            raise ValueError(f"spatial must be [T,H,W], got shape {spatial.shape}")
    if temporal is not None:
        temporal = np.asarray(temporal, dtype=np.float32)
        if temporal.ndim != 1:
            raise ValueError(f"temporal must be [T], got shape {temporal.shape}")
    return spatial, temporal, {k: np.asarray(v) for k, v in extras.items()}


@dataclass
class Attribution:
    """What a method returns: its maps, extras and facts, before ``explain`` adds what was explained.

    spatial: float32 [T,H,W] at the model's input resolution (raw, signed) or None; temporal:
    float32 [T] frame importance or None; extras: named arrays (method-specific); meta: facts
    about the run (scores, evaluations, engine); params: the parameters as the method settled
    them where they differ from what it was given (e.g. the default layer's name)."""

    spatial: np.ndarray | None = None
    temporal: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spatial, self.temporal, self.extras = checked_maps(self.spatial, self.temporal, self.extras)


@dataclass
class Explanation:
    """One method's answer for one clip and one target.

    spatial: float32 [T,H,W] at the model's input resolution (raw, signed) or None;
    temporal: float32 [T] frame importance or None; extras: named arrays (method-specific)."""

    method: str
    params: dict
    target: dict
    task: str
    prediction: dict
    spatial: np.ndarray | None = None
    temporal: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    model: str = ""
    frame_indices: list[int] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spatial, self.temporal, self.extras = checked_maps(self.spatial, self.temporal, self.extras)

    @property
    def num_frames(self) -> int:
        if self.temporal is not None:
            return len(self.temporal)
        return 0 if self.spatial is None else self.spatial.shape[0]

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "params": self.params,
            "target": self.target,
            "task": self.task,
            "prediction": self.prediction,
            "seconds": self.seconds,
            "model": self.model,
            "frame_indices": self.frame_indices,
            "meta": self.meta,
            "arrays": {name: list(arr.shape) for name, arr in self._arrays().items()},
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {}
        if self.spatial is not None:
            arrays["spatial"] = self.spatial
        if self.temporal is not None:
            arrays["temporal"] = self.temporal
        for name, arr in self.extras.items():
            if name in ("spatial", "temporal"):
                raise ValueError(f"extra {name!r} would shadow the main arrays")
            arrays[name] = arr
        return arrays

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/explanation.npz`` and ``folder/explanation.json``; returns the folder.  The
        maps are stored uncompressed: float32 maps shrink by about a tenth under zlib, which took
        longer than most methods (measured for issue 21)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / NPZ_NAME, **self._arrays())
        (folder / JSON_NAME).write_text(json.dumps(self.to_json(), indent=2, default=_json_default) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Explanation:
        folder = Path(folder)
        data = json.loads((folder / JSON_NAME).read_text())
        with np.load(folder / NPZ_NAME, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls(
            method=data["method"],
            params=data["params"],
            target=data["target"],
            task=data["task"],
            prediction=data["prediction"],
            spatial=arrays.pop("spatial", None),
            temporal=arrays.pop("temporal", None),
            extras=arrays,
            seconds=data.get("seconds", 0.0),
            model=data.get("model", ""),
            frame_indices=data.get("frame_indices"),
            meta=data.get("meta", {}),
        )


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")
