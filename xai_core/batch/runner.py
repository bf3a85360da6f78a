"""One work item run inside a worker: the model loaded once per worker (and its randomised copies
once, for the sanity suite), the clip read by the worker, ``explain`` through the run store, and
the result as one row of the results table.  An item that raises becomes a row with its error."""

from __future__ import annotations

import os
import socket
import time
import traceback
from types import SimpleNamespace

import numpy as np
import torch

from ..api import explain
from ..data.moving_shapes import SIDES
from ..evaluate.randomize import randomized_copy
from ..evaluate.scores import read_map
from ..evaluate.suites import FIRST_SEED, clip_scores, sanity_scores, shapes_task
from ..methods.machinery.registry import get_method
from ..models.base import VideoModel
from ..models.zoo import load_model
from ..runs import RunStore
from ..video import Clip, load_video
from .config import RunnerConfig
from .items import WorkItem, item_columns

TOP_FRAMES = 3
GROUND_TRUTH = ("target_masks", "distractor_masks")


class ItemRunner:
    """Runs items in one process, keeping each model (or the error that loading it raised)."""

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self.models: dict[str, VideoModel | Exception] = {}
        self.copies: dict[tuple[str, str], VideoModel] = {}
        self.last_clip: tuple[tuple, Clip] | None = None  # the items of one clip come together
        self.store = RunStore(config.runs) if config.runs else None
        if config.threads:
            torch.set_num_threads(config.threads)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def model(self, name: str) -> VideoModel:
        if name not in self.models:
            try:
                self.models[name] = load_model(name, device=self.config.device)
            except (MemoryError, torch.cuda.OutOfMemoryError):  # may pass (other workers loading): tried again
                raise
            except Exception as err:  # every item of this model gets the same message, without reloading
                self.models[name] = err
        found = self.models[name]
        if isinstance(found, Exception):
            raise found
        return found

    def copy(self, name: str, scope: str) -> VideoModel:
        if (name, scope) not in self.copies:
            seed = FIRST_SEED if self.config.random_seed is None else self.config.random_seed
            self.copies[(name, scope)] = randomized_copy(self.model(name), scope, seed)
        return self.copies[(name, scope)]

    def clip(self, item: WorkItem, model: VideoModel) -> Clip:
        """The item's clip at the model's input, read once for consecutive items of that clip."""
        spec = model.input_spec
        key = (item.clip.source, item.clip.window, spec.frames, spec.height, spec.width)
        if self.last_clip is None or self.last_clip[0] != key:
            self.last_clip = None  # a clip that does not read is not kept
            self.last_clip = (key, load_video(item.clip.source, model=model, window=item.clip.window))
        return self.last_clip[1]

    def run(self, item: WorkItem) -> dict:
        """The item's row: ids, prediction, score, seconds, device, the curve's summary, the
        suite's scores, or ``status`` "failed" with ``error`` (one line; an item explained whose
        scores failed keeps its explanation's columns)."""
        start = time.perf_counter()
        row = item_columns(item)
        try:
            self._explained(item, row)
            row["status"] = "ok"
        except Exception as err:
            row |= {"status": "failed", "error": one_line(err)}
            row["traceback"] = "".join(traceback.format_exception(err)[-3:])[-2000:]
        row["item_seconds"] = round(time.perf_counter() - start, 4)
        row["worker"] = self.worker
        row["finished"] = time.time()
        return row

    def _explained(self, item: WorkItem, row: dict) -> None:
        """Fill ``row`` with the explanation's columns, then the suite's scores."""
        model = self.model(item.model)
        spec = get_method(item.method)
        reason = spec.unavailable_reason(model)
        if reason:
            raise ValueError(f"{spec.name} cannot explain {model.name}: {reason}")
        clip = self.clip(item, model)
        truth = true_label(model, clip, item.clip.label)
        expl = explain(model, clip, spec.name, target=resolve(item.target, truth, model), store=self.store,
                       **item.params)  # fmt: skip
        row |= explanation_columns(expl, model, truth)
        if item.suite is not None:
            scores = self._scores(item, model, spec, clip, same_target(expl), expl)
            row |= {f"{item.suite}.{k}": v for k, v in scores.items()}

    def _scores(self, item: WorkItem, model: VideoModel, spec, clip: Clip, target, expl) -> dict[str, float]:
        """The suite's scores of one explained item; ``target``: the one the trained model's
        explanation explained, which the randomised copies explain too."""
        has_truth = all(k in clip.ground_truth for k in GROUND_TRUTH)
        if item.suite in ("localization", "temporal") and not has_truth:
            raise ValueError(f"the {item.suite} suite needs Moving Shapes ground truth (a shapes: source)")
        explanations = {"trained": expl}
        scopes = ("logits", "all") if item.suite == "sanity" else ()
        for scope in scopes:
            copy = self.copy(item.model, scope)
            explanations[scope] = explain(copy, clip, spec.name, target=target, **item.params)
        if item.suite == "sanity" and not has_truth:  # a real clip: the correlations only
            row: dict = {}
            for scope in scopes:
                row |= sanity_scores(spec, [expl], [explanations[scope]], scope)
            return {k: v for k, v in row.items() if not k.endswith(("_se", "_n"))}
        gt = clip.ground_truth
        pause = gt.get("pause_frames", np.zeros(clip.num_frames, bool))
        sample = SimpleNamespace(video=clip.frames, target_masks=gt["target_masks"].astype(bool),
                                 distractor_masks=gt["distractor_masks"].astype(bool),
                                 pause_frames=np.asarray(pause, dtype=bool))  # fmt: skip
        return clip_scores(model, item.suite, spec, explanations, sample)


def explanation_columns(expl, model: VideoModel, truth: str | int | None) -> dict:
    """An explanation's columns: prediction, the explained target and its output (``score``: the
    class's logit, or the regression output), the method's seconds and device, its run, and the
    frame curve's summary (``curve`` [T], its ``peak_frame`` and ``top_frames``)."""
    prediction, target = expl.prediction, expl.target
    row = {
        "prediction": prediction["label"],
        "predicted_index": prediction.get("index"),
        "target": expl.meta.get("target_description"),
        "target_index": target.get("index"),
        "seconds": round(float(expl.seconds), 4),
        "device": expl.meta.get("device"),
        "run": expl.meta.get("run"),
        "served": "saved_at" in expl.meta,
    }
    if "index" in prediction:
        index = prediction["index"] if target.get("index") is None else target["index"]
        row["score"] = float(prediction["logits"][index])
        row["probability"] = float(prediction["probabilities"][index])
    else:
        row["score"] = float(prediction["value"])
        row["probability"] = None
    known = None if truth is None else known_label(model, truth)
    row["label"] = known if known is not None else (None if truth is None else str(truth))
    row["correct"] = None if known is None else known == prediction["label"]
    curve = frame_curve(expl)
    row["frames"] = int(len(curve))
    row["curve"] = [float(v) for v in curve]
    finite = np.where(np.isfinite(curve), curve, -np.inf)
    order = np.argsort(-finite, kind="stable")
    row["peak_frame"] = int(order[0]) if len(curve) else None
    row["top_frames"] = [int(i) for i in order[:TOP_FRAMES]]
    total = float(np.abs(curve).sum())
    row["peak_share"] = float(np.abs(curve).max() / total) if total > 0 else None
    return row


def frame_curve(expl) -> np.ndarray:
    """The explanation's frame curve [T]: its temporal map, else each frame's mean evidence."""
    if expl.temporal is not None:
        return np.asarray(expl.temporal, dtype=np.float64)
    spec = get_method(expl.method)
    return read_map(expl.spatial, spec.reading).astype(np.float64).mean(axis=(1, 2))


def same_target(expl):
    """What ``explain`` takes to explain exactly the target ``expl`` explained (the randomised
    copies of the sanity suite explain the trained model's class, as ``xai evaluate`` does)."""
    target = expl.target
    if target["kind"] == "class":
        return int(target["index"])
    if target["kind"] == "output":
        return "output"
    return f"ref={target['value']}"


def true_label(model: VideoModel, clip: Clip, given: str | None) -> str | int | None:
    """The clip's true class: the manifest's label, else for a Moving Shapes clip and model of a
    classification task the generator's class index; None when unknown (and for regression)."""
    if model.task != "classification":
        return None
    if given is not None:
        return given
    if not clip.source.startswith("shapes:"):
        return None
    task = shapes_task(model)
    if task == "sides" and "sides" in clip.meta:
        return SIDES.index(int(clip.meta["sides"]))
    if task == "pause" and "has_pause" in clip.meta:
        return int(bool(clip.meta["has_pause"]))
    return None


def label_text(model: VideoModel, truth: str | int) -> str:
    """A true class (an index, its digits, or a label) as the model's label."""
    text = str(truth)
    if text.lstrip("-").isdigit() and text not in model.labels:
        index = int(text)
        if not 0 <= index < len(model.labels):
            raise ValueError(f"label {text} is out of range: {model.name} has {len(model.labels)} classes")
        return model.labels[index]
    if text not in model.labels:
        raise ValueError(f"label {text!r} is not one of {model.name}'s classes ({', '.join(model.labels)})")
    return text


def known_label(model: VideoModel, truth: str | int) -> str | None:
    """``label_text``, or None for a label that is not one of the model's classes."""
    try:
        return label_text(model, truth)
    except ValueError:
        return None


def resolve(asked: str, truth, model: VideoModel):
    """The target passed to ``explain`` for what the batch asked ("predicted", "label", or as explain takes)."""
    if asked == "predicted":
        return None
    if asked == "label":
        if truth is None:
            raise ValueError("--target label: this clip has no label (a manifest's label column, or a Moving Shapes "
                             "clip of the model's task)")  # fmt: skip
        return label_text(model, truth)
    return asked


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:1000]
