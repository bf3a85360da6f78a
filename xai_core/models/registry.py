"""Architectures buildable by name, with the task head and input spec they need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .base import InputSpec, ModelError, ModelInfo, VideoModel
from .conv3d import TORCHVISION_VIDEO, SmallR3D, torchvision_video
from .convlstm import ConvLSTMNet
from .temporal import CNNLSTM, ICALSTM, CNNTransformer

KINETICS_SPEC = InputSpec(
    frames=16, height=112, width=112, mean=(0.43216, 0.394666, 0.37645), std=(0.22803, 0.22145, 0.216989)
)


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]  # (num_outputs, **config) -> net
    layout: str
    description: str
    default_spec: InputSpec = InputSpec()


def _cnn_lstm_attn(num_outputs: int, **config) -> nn.Module:
    return CNNLSTM(num_outputs, attention_pool=True, **config)


def _torchvision(name: str) -> Callable[..., nn.Module]:
    def build(num_outputs: int, **config) -> nn.Module:
        if config:
            raise ModelError(f"{name} takes no configuration, got {sorted(config)}")
        return torchvision_video(name, num_outputs)

    return build


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture(
            "cnn_transformer", CNNTransformer, "BTCHW", "per-frame CNN + CLS Transformer (4 layers, 4 heads, 128)"
        ),
        Architecture("cnn_lstm", CNNLSTM, "BTCHW", "per-frame CNN + LSTM"),
        Architecture("cnn_lstm_attn", _cnn_lstm_attn, "BTCHW", "per-frame CNN + LSTM with temporal attention pooling"),
        Architecture("ica_lstm", ICALSTM, "BTCHW", "per-frame CNN + input-cell attention LSTM"),
        Architecture("r3d", SmallR3D, "BCTHW", "small 3D ResNet"),
        Architecture("convlstm", ConvLSTMNet, "BTCHW", "per-frame CNN maps + ConvLSTM"),
        *[
            Architecture(n, _torchvision(n), "BCTHW", f"torchvision {n} (random or user weights)", KINETICS_SPEC)
            for n in TORCHVISION_VIDEO
        ],
    ]
}


def build_model(
    arch: str,
    *,
    task: str = "classification",
    labels: list[str] | None = None,
    input_spec: InputSpec | None = None,
    config: dict | None = None,
    name: str | None = None,
) -> VideoModel:
    """Build architecture ``arch`` with random weights, wrapped in a VideoModel.

    ``labels`` sets the number of outputs (one label for regression)."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    labels = list(labels or (["output"] if task == "regression" else ["class 0", "class 1"]))
    if task == "regression" and len(labels) != 1:
        raise ModelError("a regression model has exactly one output label")
    config = dict(config or {})
    try:
        net = spec.build(len(labels), **config)
    except TypeError as exc:
        raise ModelError(f"bad configuration for {arch}: {exc}") from None
    info = ModelInfo(name=name or arch, arch=arch, config=config)
    return VideoModel(
        net, task=task, labels=labels, input_spec=input_spec or spec.default_spec, layout=spec.layout, info=info
    )
