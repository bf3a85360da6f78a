"""From the Models page's upload form to a ``load_model`` call (no Streamlit here).

The form gives file names and bytes and text fields; ``load_request`` stores the files in a
folder of their own and turns the fields into ``(spec, keyword arguments)`` for
``xai_core.load_model(spec, **kwargs)``, or raises ModelError with one message naming what is
missing or malformed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from xai_core.channels import parse_channels
from xai_core.models.base import ModelError
from xai_core.models.conv3d import TORCHVISION_VIDEO
from xai_core.models.external import is_torchscript

SOURCES = {
    "TorchScript file": "torchscript",
    "Python file + factory": "factory",
    "torchvision architecture + weights": "torchvision",
}
LAYOUT_CHOICES = ("auto", "BTCHW", "BCTHW")
TORCHVISION_ARCHS = TORCHVISION_VIDEO


@dataclass(frozen=True)
class UploadedFile:
    """A file the user gave: its name as they named it, and its bytes."""

    name: str
    data: bytes


def safe_filename(name: str) -> str:
    """A file name with only letters, digits and '._-' (the rest become '_'); never empty or hidden."""
    base = Path(name).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "upload"
    return cleaned


def store(folder: str | Path, file: UploadedFile) -> Path:
    """Write ``file`` into ``folder`` under its (cleaned) name; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_filename(file.name)
    path.write_bytes(file.data)
    return path


def parse_labels(text: str | None) -> list[str] | None:
    """Class names, one a line, or on one line separated by commas; '' -> None."""
    if text is None or not text.strip():
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) == 1 and "," in lines[0]:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    return lines


def default_name(kind: str, model: UploadedFile | None, factory: str, arch: str) -> str:
    """The name a loaded model gets when the user gives none: the file's stem, the factory, the architecture."""
    if kind == "torchscript" and model is not None:
        return Path(safe_filename(model.name)).stem
    if kind == "factory":
        return factory or (Path(safe_filename(model.name)).stem if model else "model")
    return arch


def load_request(
    kind: str,
    folder: str | Path,
    *,
    model_file: UploadedFile | None = None,
    weights_file: UploadedFile | None = None,
    labels_file: UploadedFile | None = None,
    factory: str = "",
    arch: str = "",
    task: str = "classification",
    labels_text: str = "",
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    mean_text: str = "",
    std_text: str = "",
    layout: str = "auto",
    cam_layer: str = "",
) -> tuple[str, dict]:
    """Store the files in a new subfolder of ``folder`` and return ``(spec, kwargs)`` for
    ``load_model``.  ``kind``: "torchscript", "factory" or "torchvision"."""
    if kind not in SOURCES.values():
        raise ModelError(f"unknown kind of model {kind!r}; choose one of {', '.join(SOURCES.values())}")
    labels = parse_labels(labels_text)
    if labels is not None and labels_file is not None:
        raise ModelError("give the labels either as text or as a file, not both")
    kwargs: dict = {
        "task": task,
        "frames": frames,
        "height": height,
        "width": width,
        "mean": parse_channels(mean_text, "mean", error=ModelError),
        "std": parse_channels(std_text, "std", positive=True, error=ModelError),
        "layout": None if layout in ("auto", "", None) else layout,
        "cam_layer": cam_layer.strip() or None,
        "labels": labels,
    }
    target = Path(folder) / uuid.uuid4().hex[:12]  # one folder per submission: cached models keep their files
    if labels_file is not None:
        kwargs["labels_file"] = str(store(target, labels_file))
    if kind == "torchscript":
        if model_file is None:
            raise ModelError("upload the TorchScript file (saved with torch.jit.save)")
        path = store(target, model_file)
        if not is_torchscript(path):
            raise ModelError(
                f"{model_file.name} is not a TorchScript file (a torch.jit.save archive with its code); "
                "for a state_dict, give the Python file that builds the model, or a torchvision architecture"
            )
        spec = str(path)
    elif kind == "factory":
        if model_file is None or not model_file.name.endswith(".py"):
            raise ModelError("upload the Python file (.py) that defines the model")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", factory.strip()):
            raise ModelError(
                f"name the function or class in {model_file.name} that builds the model (a Python name), "
                f"got {factory!r}"
            )
        spec = f"{store(target, model_file)}:{factory.strip()}"
    else:
        if arch not in TORCHVISION_ARCHS:
            raise ModelError(f"choose one of {', '.join(TORCHVISION_ARCHS)}, not {arch!r}")
        spec = arch
    if kind != "torchscript":
        if weights_file is None:
            raise ModelError("upload the weights file (.safetensors, or a .pt/.pth state_dict)")
        kwargs["weights"] = str(store(target, weights_file))
    return spec, {k: v for k, v in kwargs.items() if v is not None}
