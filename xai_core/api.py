"""The Python API: ``prepare`` (the clip preprocessed, one forward pass, the target resolved),
``predict``, and ``explain``, which runs a registered method on a prepared clip and fills in the
context of its Explanation."""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from ._version import __version__
from .explanation import Explanation, Target, describe_prediction, resolve_target
from .methods.machinery.registry import MethodError, get_method
from .models.base import ModelError, VideoModel
from .models.modes import eval_mode
from .runs import RunRequest, RunStore, tensor_hash, weights_hash
from .runs import request as run_request
from .video import Clip


def model_input(model: VideoModel, clip) -> tuple[torch.Tensor, dict]:
    """A Clip or a tensor [1,T,C,H,W] (or [T,C,H,W]) -> the input on the model's device, and
    facts about the clip for the explanation's record."""
    if isinstance(clip, Clip):
        x = model.preprocess(clip)
        facts = {
            "source": clip.source,
            "clip_hash": clip.content_hash(),
            "frame_indices": [int(i) for i in clip.frame_indices],
        }
        return x, facts
    if isinstance(clip, torch.Tensor):
        x = clip if clip.dim() == 5 else clip.unsqueeze(0)
        spec = model.input_spec
        if x.shape[0] != 1 or x.shape[2] != 3:
            raise ModelError(f"expected a tensor [1,T,3,H,W], got {tuple(clip.shape)}")
        if x.shape[3:] != (spec.height, spec.width):
            raise ModelError(f"model {model.name!r} takes {spec.height}x{spec.width} frames, got {tuple(x.shape[3:])}")
        return x.to(model.device, model.dtype), {"source": "tensor", "frame_indices": None}
    if isinstance(clip, np.ndarray):
        return model.preprocess(clip), {"source": "array", "frame_indices": None}
    raise TypeError(f"explain() takes a Clip, a tensor or an array, not {type(clip).__name__}")


@dataclass(frozen=True)
class Prepared:
    """A clip made ready for a method: ``x`` [1,T,C,H,W] on the model's device, the model's
    ``output`` [1,K] on it, the resolved ``target``, the ``prediction`` (label, index and
    probabilities, or the value) and ``facts`` about the clip (source, clip_hash, frame_indices)."""

    x: torch.Tensor
    output: torch.Tensor
    target: Target
    prediction: dict
    facts: dict


def prepare(model: VideoModel, clip, target=None) -> Prepared:
    """The prologue of every explanation: preprocess ``clip`` (a Clip, a tensor or an array), run
    the model once (eval mode, checked to be finite) and resolve ``target`` against its output.

    target: None (the predicted class / the regression output), a class index or label, or for
    regression "output" / "ref=VALUE"."""
    x, facts = model_input(model, clip)
    output = model_output(model, x)
    resolved = resolve_target(model.task, model.labels, target, output)
    return Prepared(x, output, resolved, describe_prediction(model.task, model.labels, output), facts)


def predict(model: VideoModel, clip) -> dict:
    """The model's prediction for a clip: label, index and probabilities (or the value)."""
    return prepare(model, clip).prediction


def frame_probabilities(model: VideoModel, clip) -> np.ndarray | None:
    """Each frame's class probabilities [T,K] for a model that classifies frame by frame
    (``frames:SPEC``: its clip logits are the mean of the frames'), else None."""
    frame_logits = getattr(model.net, "frame_logits", None)
    if not callable(frame_logits) or model.task != "classification":
        return None
    x, _ = model_input(model, clip)
    with eval_mode(model), torch.inference_mode():
        logits = frame_logits(x)[0]
    return torch.softmax(logits.float(), -1).cpu().numpy()


def model_output(model: VideoModel, x: torch.Tensor) -> torch.Tensor:
    """The model's output [1,K] for x [1,T,C,H,W], in eval mode (the model's modes handed back as
    found), checked to be finite."""
    with eval_mode(model), torch.inference_mode():
        output = model(x)
    _check_finite(output, model)
    return output


def plan(model: VideoModel, clip, method: str, target=None, **params):
    """Before a long method (frame_mask, occlusion, tsr_onestep, tsr) runs: how many model
    evaluations it needs and about how long it takes on this machine, from timing a sample
    (``planning.Plan``: ``evaluations``, ``seconds``, ``note``; ``str()`` says it in a line)."""
    from .methods.machinery.planning import LONG_METHODS
    from .methods.machinery.planning import plan as plan_of

    spec = get_method(method)
    if spec.name not in LONG_METHODS:
        raise MethodError(f"no plan for {spec.name}: plans are made for {', '.join(LONG_METHODS)}")
    reason = spec.unavailable_reason(model)
    if reason:
        raise MethodError(reason)
    prepared = prepare(model, clip, target)
    return plan_of(model, prepared.x, prepared.target, spec.name, spec.resolve_params(params))


def model_fingerprint(model: VideoModel) -> str:
    """sha256 (24 hex digits) of what a model computes with: its weights (``weights_hash``), input
    spec (frames, size, normalisation), task, labels, input layout, Grad-CAM layer, the network's
    class and its config, and a TorchScript network's code."""
    net = getattr(model, "net", model)
    code = getattr(net, "code", None) if isinstance(net, torch.jit.ScriptModule) else None
    facts = [
        weights_hash(model),
        repr(model.input_spec),
        model.task,
        list(model.labels),
        getattr(model, "layout", None),
        getattr(model, "cam_layer_name", None),
        f"{type(net).__module__}.{type(net).__qualname__}",
        json.dumps(getattr(model.info, "config", None), sort_keys=True, default=str),
        hashlib.sha256(code.encode()).hexdigest() if isinstance(code, str) else None,
    ]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:24]


def request_for(model: VideoModel, clip, method: str, target=None, **params) -> RunRequest:
    """The run store's request for explaining ``clip`` (a Clip, a tensor or an array) with
    ``method`` (its parameters resolved as ``explain`` resolves them)."""
    spec = get_method(method)
    clip_hash = clip.content_hash() if isinstance(clip, Clip) else tensor_hash(_as_tensor(clip))
    resolved = spec.resolve_params(params)
    return run_request(model.name, model_fingerprint(model), clip_hash, spec.name, target, resolved, str(model.device))


def open_store(store) -> RunStore | None:
    """``explain``'s ``store`` argument as a store: None / False (none), True (``$XAI_RUNS``, else
    ``runs/``), a folder, or a RunStore."""
    if store is None or store is False:
        return None
    if store is True:
        return RunStore()
    return store if isinstance(store, RunStore) else RunStore(store)


def explain(
    model: VideoModel, clip, method: str, target=None, *, store=None, recompute: bool = False, **params
) -> Explanation:
    """Explain ``model``'s output on ``clip`` with the registered ``method``.

    target: as in ``prepare``.  The method computes the maps; the context (method, parameters,
    target, task, prediction, timing, provenance) is filled in here.
    store: None (nothing kept), True (the run store at ``$XAI_RUNS``, else ``runs/``), a folder or a
    ``RunStore``: a run saved there for the same model weights, clip content, method, target,
    parameters and device is returned instead of computed (``meta["saved_at"]`` says when it was
    saved), and a computed one is saved (with the clip's frames, for a Clip); ``meta["run"]`` is the
    run's key either way.  ``recompute``: compute and save again even when a run is saved."""
    spec = get_method(method)
    reason = spec.unavailable_reason(model)
    if reason:
        raise MethodError(reason)
    resolved = spec.resolve_params(params)
    runs = open_store(store)
    wanted = None
    if runs is not None:
        wanted = request_for(model, clip, spec.name, target, **resolved)
        saved = None if recompute else runs.get(wanted)
        if saved is not None:
            return saved
    expl = _compute(model, clip, spec, target, resolved)
    if runs is not None:
        frames, padded = (clip.frames, clip.padded) if isinstance(clip, Clip) else (None, None)
        record = runs.put(expl, wanted, frames=frames, padded=padded)
        expl.meta["run"] = record.key
    return expl


def _as_tensor(clip) -> torch.Tensor:
    if isinstance(clip, torch.Tensor):
        return clip
    if isinstance(clip, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(clip))
    raise TypeError(f"explain() takes a Clip, a tensor or an array, not {type(clip).__name__}")


def _compute(model: VideoModel, clip, spec, target, resolved: dict) -> Explanation:
    """``explain`` without the store: the method run in eval mode, its maps checked, the context filled in."""
    method = spec.name
    prepared = prepare(model, clip, target)
    with eval_mode(model):  # every module's own mode comes back as it was found
        for name in spec.imports_for(resolved):  # a first import is not the method's time
            importlib.import_module(name)
        start = time.perf_counter()
        result = spec.fn(model, prepared.x, prepared.target, **resolved)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    for name, arr in [("spatial", result.spatial), ("temporal", result.temporal)]:
        if arr is not None and not np.isfinite(arr).all():
            raise MethodError(f"{method} produced non-finite values in its {name} map for this clip")
    facts = dict(prepared.facts)
    frame_indices = facts.pop("frame_indices")
    meta = {
        **result.meta,
        **facts,
        "device": str(model.device),
        "xai_core": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "target_description": prepared.target.describe(),
    }
    return Explanation(
        method=spec.name,
        params={**resolved, **result.params},
        target=prepared.target.to_dict(),
        task=model.task,
        prediction=prepared.prediction,
        spatial=result.spatial,
        temporal=result.temporal,
        extras=result.extras,
        seconds=seconds,
        model=model.name,
        frame_indices=frame_indices,
        meta=meta,
    )


def _check_finite(output: torch.Tensor, model: VideoModel) -> None:
    if not torch.isfinite(output).all():
        raise ModelError(f"model {model.name!r} returned NaN or infinite outputs for this clip")
