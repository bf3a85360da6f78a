"""The Models page's tables and figures, built from model cards: the zoo table, a card's
held-out figures, its validation curve, and a training run's live loss curve (pandas and plotly;
the cards' text is ``xai_core.zoo_report``'s).

Cards of uploaded models may lack the training and metrics sections, and every function here
copes with that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from xai_core.models.training_runs import Progress
from xai_core.zoo_report import (
    condition_text,
    format_bytes,
    format_count,
    format_duration,
    format_metric,
    headline_metric,
    task_text,
)

TABLE_COLUMNS = [
    "name",
    "architecture",
    "task",
    "held-out",
    "training time",
    "file size",
    "parameters",
    "capabilities",
]
METRIC_NAMES = {"accuracy": "accuracy", "mae_degrees": "angle error (MAE, degrees)"}


def zoo_table(cards: list[dict], capabilities: dict[str, list[str] | str]) -> pd.DataFrame:
    """One row per card: name, architecture, task, held-out figure, training time, file size,
    parameters, capabilities (``capabilities[name]``: a list from the loaded model, or a
    message saying why it could not be loaded)."""
    rows = []
    for card in cards:
        name = card.get("name", "?")
        caps = capabilities.get(name, [])
        training = card.get("training") or {}
        wall = training.get("wall_clock_seconds")
        rows.append(
            {
                "name": name,
                "architecture": card.get("arch", "?"),
                "task": task_text(card),
                "held-out": headline_metric(card),
                "training time": format_duration(wall) + (" (stopped early)" if training.get("stopped_early") else ""),
                "file size": format_bytes(card.get("file_bytes")),
                "parameters": format_count(card.get("parameters")),
                "capabilities": caps if isinstance(caps, str) else ", ".join(sorted(caps)) or "none",
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def metrics_frame(card: dict) -> pd.DataFrame:
    """The held-out figures: one row per test and robustness condition (set, clips, value)."""
    metrics = card.get("metrics") or {}
    rows = []
    for group, label in (("test", "test"), ("robustness", "robustness")):
        for name, result in (metrics.get(group) or {}).items():
            if not isinstance(result, dict):
                continue
            rows.append(
                {
                    "set": label,
                    "clips": condition_text(name, result),
                    "result": format_metric(result),
                    "n": result.get("clips"),
                }
            )
    return pd.DataFrame(rows, columns=["set", "clips", "result", "n"])


def _metric_key(points: list[dict]) -> str | None:
    """The validation figure the points have ("accuracy" or "mae_degrees"), if any."""
    for key in METRIC_NAMES:
        if any(key in p for p in points):
            return key
    return None


def _metric_values(points: list[dict], key: str) -> list[float]:
    """The points' figures as plotted: accuracy in %, angle errors in degrees."""
    scale = 100.0 if key == "accuracy" else 1.0
    return [p[key] * scale for p in points]


def curve_figure(card: dict) -> go.Figure | None:
    """The validation curve of a card (``training.curve``): the validation figure (accuracy in %
    or angle error in degrees) and the training loss against the step, the best step marked.
    None when the card has no curve."""
    training = card.get("training") or {}
    curve = [p for p in training.get("curve") or [] if "step" in p]
    key = _metric_key(curve)
    if not curve or key is None:
        return None
    points = [p for p in curve if key in p]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    steps = [p["step"] for p in points]
    fig.add_trace(
        go.Scatter(
            x=steps, y=_metric_values(points, key), mode="lines+markers", name=f"validation {METRIC_NAMES[key]}"
        ),
        secondary_y=False,
    )
    losses = [(p["step"], p["loss"]) for p in curve if p.get("loss") is not None]
    if losses:
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in losses],
                y=[v for _, v in losses],
                mode="lines",
                name="training loss",
                line=dict(dash="dot", color="gray"),
            ),
            secondary_y=True,
        )
    best = training.get("best_step")
    if best is not None:
        fig.add_vline(x=best, line_dash="dash", line_color="green", annotation_text="kept", annotation_position="top")
    fig.update_yaxes(title_text="accuracy (%)" if key == "accuracy" else "MAE (degrees)", secondary_y=False)
    fig.update_yaxes(title_text="training loss", secondary_y=True, showgrid=False)
    fig.update_layout(
        title=f"Validation ({points[-1].get('clips', '?')} clips)",
        xaxis_title="step",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def moving_average(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values [N] -> [N] (the first points average fewer)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return x
    sums = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (sums[idx] - sums[lo]) / (idx - lo)


def training_figure(progress: Progress, smooth: int = 20, whole_run: bool = True) -> go.Figure:
    """The live curve of a run: the loss of every step (faint), its trailing mean over
    ``smooth`` steps, and the validation points on a second axis.  The step axis spans the
    whole planned run (``whole_run``, while it goes) or the steps that ran."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=progress.steps, y=progress.losses, mode="lines", name="loss per step", line=dict(color="#9ecae1", width=1)
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=progress.steps,
            y=moving_average(progress.losses, smooth),
            mode="lines",
            name=f"mean of {smooth} steps",
            line=dict(color="#08519c", width=2),
        ),
        secondary_y=False,
    )
    key = _metric_key(progress.validation)
    if key is not None:
        points = [p for p in progress.validation if key in p]
        fig.add_trace(
            go.Scatter(
                x=[p["step"] for p in points],
                y=_metric_values(points, key),
                mode="lines+markers",
                name=f"validation {METRIC_NAMES[key]}",
                line=dict(color="#d62728"),
            ),
            secondary_y=True,
        )
        fig.update_yaxes(
            title_text="accuracy (%)" if key == "accuracy" else "MAE (degrees)", secondary_y=True, showgrid=False
        )
    last = progress.total_steps if whole_run else max(progress.steps, default=progress.step)
    fig.update_xaxes(title_text="step", range=[progress.start_step, max(last, progress.start_step + 1)])
    fig.update_yaxes(title_text="training loss", secondary_y=False)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


# ---------------------------------------------------------------------------- where a model errs
def confusion_figure(result: dict) -> go.Figure:
    """The confusion matrix of ``model_quality.classification_quality`` as a heatmap with counts
    (rows: true class, columns: predicted)."""
    labels, counts = result["labels"], np.asarray(result["confusion"])
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=labels,
            y=labels,
            colorscale="Blues",
            text=counts,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )  # fmt: skip
    )
    fig.update_layout(
        title=f"Confusion matrix ({result['clips']} clips, accuracy {result['accuracy']:.1%})",
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def roc_figure(result: dict) -> go.Figure:
    """One-vs-rest ROC curves with their AUC, and the chance diagonal."""
    fig = go.Figure()
    for name, curve in result["roc"].items():
        fig.add_trace(go.Scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=f"{name} (AUC {curve['auc']:.3f})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dash", color="gray")))
    fig.update_layout(
        title="ROC, each class against the rest",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def per_class_frame(result: dict) -> pd.DataFrame:
    """Precision, recall, F1, clips and ROC AUC per class."""
    rows = []
    for row in result["per_class"]:
        roc = result["roc"].get(row["label"])
        rows.append({**row, "roc_auc": roc["auc"] if roc else np.nan})
    return pd.DataFrame(rows).rename(columns={"label": "class", "support": "clips", "roc_auc": "ROC AUC"})


def regression_figures(result: dict) -> tuple[go.Figure, go.Figure]:
    """Predicted against true (with the identity line), and the histogram of the errors."""
    truth, predicted = np.asarray(result["truth"]), np.asarray(result["predicted"])
    unit = f" ({result['unit']})" if result["unit"] else ""
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    scatter = go.Figure(go.Scatter(x=truth, y=predicted, mode="markers", name="clips"))
    scatter.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="exact",
                                 line=dict(dash="dash", color="gray")))  # fmt: skip
    scatter.update_layout(title=f"Predicted against true (MAE {result['mae']:.3g}{unit})", xaxis_title=f"true{unit}",
                          yaxis_title=f"predicted{unit}", height=360, margin=dict(l=10, r=10, t=40, b=10))  # fmt: skip
    histogram = go.Figure(go.Histogram(x=result["errors"], nbinsx=30))
    histogram.update_layout(title=f"Errors (predicted − true; RMSE {result['rmse']:.3g}{unit})",
                            xaxis_title=f"error{unit}", yaxis_title="clips", height=360,
                            margin=dict(l=10, r=10, t=40, b=10))  # fmt: skip
    return scatter, histogram
