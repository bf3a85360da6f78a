"""Where a model errs (paper 004's evaluation): its predictions on labelled clips, and for a
classifier the confusion matrix, per-class precision / recall / F1 and one-vs-rest ROC curves
with their AUC (scikit-learn's); for a regressor the predicted-vs-true pairs, the error
histogram, MAE and RMSE.

Labelled clips come from Moving Shapes (held-out seeds, labels from the generator for the task
the model was trained on) or from a folder with one subfolder per class, named as the model's
labels (classification only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import auc, confusion_matrix, precision_recall_fscore_support, roc_curve

from ..api import model_output
from ..data.moving_shapes import ShapesOptions, generate
from ..jobs import check
from ..models.base import VideoModel
from ..video import VIDEO_SUFFIXES, load_video
from .suites import Progress, shapes_task

# Training draws its seeds below 1e9, validation starts at 2e9 and the cards' test clips at 3e9:
# these seeds are held out from all of them.
QUALITY_SEED = 1_500_000_000


@dataclass(frozen=True)
class LabelledClip:
    """A clip source (``shapes:SEED?...`` or a file) and its true label: a class index or a value."""

    source: str
    label: float


def shapes_clips(model: VideoModel, n: int, seed: int = QUALITY_SEED, noise: float = 8.0,
                 distractors: int = 2) -> list[LabelledClip]:  # fmt: skip
    """``n`` held-out Moving Shapes clips labelled for the task the model was trained on (for
    the pause task every second clip pauses, so both classes are there)."""
    task = shapes_task(model)
    if task is None:
        raise ValueError(
            f"{model.name} is not a Moving Shapes model (its labels are none of the tasks'): give a folder of "
            "your labelled clips, one subfolder per class"
        )
    if n < 2:
        raise ValueError("the evaluation needs at least two clips")
    clips = []
    for i in range(n):
        pause = i % 2 == 1 if task == "pause" else False
        options = ShapesOptions(noise=noise, distractors=distractors, pause=pause)
        label = generate(seed + i, options, ground_truth=False).label(task)
        query = f"noise={noise:g}&distractors={distractors}&pause={int(pause)}"
        clips.append(LabelledClip(f"shapes:{seed + i}?{query}", float(label)))
    return clips


def folder_clips(model: VideoModel, folder: str | Path) -> list[LabelledClip]:
    """The videos under ``folder/CLASS/`` for each class folder named as one of the model's labels."""
    folder = Path(folder)
    if model.task != "classification":
        raise ValueError("a folder of clips by class labels a classifier; a regression model is evaluated on shapes")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder (expected one subfolder per class, named as the labels)")
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    unknown = [p.name for p in classes if p.name not in model.labels]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a label of {model.name} ({', '.join(model.labels)})")
    clips = [
        LabelledClip(str(path), float(model.labels.index(sub.name)))
        for sub in classes
        for path in sorted(sub.iterdir())
        if path.suffix.lower() in VIDEO_SUFFIXES or path.suffix.lower() in (".npy", ".npz")
    ]
    if len(clips) < 2:
        raise ValueError(f"{folder} holds {len(clips)} clips in class folders; the evaluation needs at least two")
    return clips


def predict_clips(model: VideoModel, clips: list[LabelledClip], progress: Progress | None = None) -> np.ndarray:
    """The model's outputs [N,K] (softmax probabilities for a classifier, values for a regressor)
    on each clip, sampled to its input; a cancel between clips is honoured (``jobs.check``)."""
    outputs = []
    for i, item in enumerate(clips):
        check()
        if progress is not None:
            progress(i, len(clips), Path(item.source).name if "/" in item.source else item.source.split("?")[0])
        out = model_output(model, model.preprocess(load_video(item.source, model=model)))[0].float().cpu()
        outputs.append(torch.softmax(out, 0) if model.task == "classification" else out)
    if progress is not None:
        progress(len(clips), len(clips), "done")
    return torch.stack(outputs).numpy()


def classification_quality(truth: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, the confusion matrix [K,K] (rows: true class, columns: predicted), per-class
    precision / recall / F1 / support, and one-vs-rest ROC curves with AUC (a class with no
    positive or no negative clip has no curve)."""
    truth = np.asarray(truth).astype(int)
    predicted = probabilities.argmax(1)
    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0)
    roc = {}
    for k, name in enumerate(labels):
        positive = truth == k
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probabilities[:, k])
        roc[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(auc(fpr, tpr))}
    return {
        "task": "classification",
        "labels": list(labels),
        "clips": int(len(truth)),
        "accuracy": float((predicted == truth).mean()),
        "confusion": confusion_matrix(truth, predicted, labels=classes).tolist(),
        "per_class": [
            {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        ],
        "macro_f1": float(np.mean(f1)),
        "roc": roc,
        "macro_auc": float(np.mean([c["auc"] for c in roc.values()])) if roc else float("nan"),
    }


def regression_quality(truth: np.ndarray, predicted: np.ndarray, unit: str = "") -> dict:
    """Predicted-vs-true pairs, the errors (predicted − true), MAE, RMSE and the largest error."""
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float).reshape(len(truth), -1)[:, 0]
    errors = predicted - truth
    return {
        "task": "regression",
        "unit": unit,
        "clips": int(len(truth)),
        "truth": truth.tolist(),
        "predicted": predicted.tolist(),
        "errors": errors.tolist(),
        "mae": float(np.abs(errors).mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "max_error": float(np.abs(errors).max()),
    }


def evaluate_model_quality(model: VideoModel, clips: list[LabelledClip], progress: Progress | None = None) -> dict:
    """The model's quality on ``clips``: ``classification_quality`` or ``regression_quality``,
    with the clips' sources."""
    outputs = predict_clips(model, clips, progress)
    truth = np.array([c.label for c in clips])
    if model.task == "classification":
        result = classification_quality(truth, outputs, list(model.labels))
    else:
        name = model.labels[0] if model.labels else ""
        unit = name[name.find("(") + 1 : name.rfind(")")] if "(" in name and name.endswith(")") else name
        result = regression_quality(truth, outputs, unit=unit)
    return {"model": model.name, "device": str(model.device), "sources": [c.source for c in clips], **result}


def quality_markdown(result: dict) -> str:
    """The result as Markdown: the headline, then the confusion matrix and per-class table (or
    the regression errors)."""
    lines = [f"# {result['model']} on {result['clips']} labelled clips", ""]
    if result["task"] == "regression":
        unit = f" {result['unit']}" if result["unit"] else ""
        lines += [f"MAE {result['mae']:.3g}{unit}, RMSE {result['rmse']:.3g}{unit}, "
                  f"largest error {result['max_error']:.3g}{unit}.", ""]  # fmt: skip
        return "\n".join(lines)
    labels = result["labels"]
    auc_text = "" if np.isnan(result["macro_auc"]) else f", macro ROC AUC {result['macro_auc']:.3f}"
    lines += [f"Accuracy {result['accuracy']:.1%}, macro F1 {result['macro_f1']:.3f}{auc_text}.", ""]
    lines += ["Confusion matrix (rows: true class, columns: predicted)", ""]
    lines += ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |" for name, row in
              zip(labels, result["confusion"], strict=True)]  # fmt: skip
    lines += ["", "| class | precision | recall | F1 | clips | ROC AUC |", "|---|---|---|---|---|---|"]
    for row in result["per_class"]:
        roc = result["roc"].get(row["label"])
        lines.append(
            f"| {row['label']} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} | "
            + (f"{roc['auc']:.3f}" if roc else "-")
            + " |"
        )
    return "\n".join(lines) + "\n"
