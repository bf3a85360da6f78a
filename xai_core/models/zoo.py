"""The model zoo (trained checkpoints in ``checkpoints/``) and ``load_model``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .base import ModelError, VideoModel
from .checkpoint import card_config, checkpoint_stem, load_checkpoint, read_card
from .external import Statements, load_user_model, with_checkpoint_statements
from .priors import check_priors
from .weights import TORCH_SUFFIXES, refused_pickle

REPO_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def checkpoints_dir() -> Path:
    """Where the zoo lives: $XAI_CHECKPOINTS, else the repository's checkpoints/ folder."""
    return Path(os.environ.get("XAI_CHECKPOINTS", REPO_CHECKPOINTS))


def zoo_names() -> list[str]:
    """Names of the complete checkpoints (weights and card) in the zoo, sorted."""
    folder = checkpoints_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p.name[: -len(".safetensors")]
        for p in folder.glob("*.safetensors")
        if (folder / (p.name[: -len(".safetensors")] + ".json")).exists() and not p.name.endswith("-best.safetensors")
    )


def zoo_cards() -> list[dict]:
    """The card of every zoo model, with its file size in bytes added."""
    cards = []
    for name in zoo_names():
        card = read_card(checkpoints_dir() / name)
        card["name"] = name
        card["file_bytes"] = (checkpoints_dir() / f"{name}.safetensors").stat().st_size
        cards.append(card)
    return cards


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was asked for, but no CUDA device is available on this machine")
    return device


def load_model(
    spec: str | Path,
    device: str | torch.device | None = "auto",
    *,
    weights: str | Path | None = None,
    task: str | None = None,
    labels: list[str] | None = None,
    labels_file: str | Path | None = None,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    mean: tuple[float, float, float] | list[float] | None = None,
    std: tuple[float, float, float] | list[float] | None = None,
    layout: str | None = None,
    cam_layer: str | None = None,
    config: dict | None = None,
    backbone_weights: str | Path | None = None,
) -> VideoModel:
    """A VideoModel with every module in eval mode, from

    * a zoo name (``cnn_transformer-sides``) or a checkpoint path (``dir/NAME``,
      ``dir/NAME.safetensors``, ``dir/NAME.json``, or ``dir/NAME.pt``/``.pth`` with ``dir/NAME.json``
      beside it): the card states the model (only ``cam_layer`` may be chosen).  A zoo name whose
      card computes where to look by formula (an architecture prior) is refused unless the name
      ends in ``-gated``; a checkpoint loaded by its path is the user's own, and its card says so;
    * your own model (``models.external``): a TorchScript file, ``path/to/file.py:factory`` with
      ``weights``, or an architecture name (``r3d_18``, ``s3d``, ``cnn_lstm`` with ``config`` and
      ``backbone_weights``, ...) with ``weights``.  The statements (task, labels or labels_file,
      frames/height/width/mean/std, layout, cam_layer, config) say what the network does not;
      the layout and the Grad-CAM layer are inferred when not stated."""
    statements = Statements(
        weights=weights,
        task=task,
        labels=labels,
        labels_file=labels_file,
        frames=frames,
        height=height,
        width=width,
        mean=mean,
        std=std,
        layout=layout,
        cam_layer=cam_layer,
        config=config,
        backbone_weights=backbone_weights,
    )
    return _load(spec, resolve_device(device), statements).eval()


def load_zoo_checkpoint(name: str, device: str | torch.device = "cpu") -> VideoModel:
    """The zoo model ``name``; refused (ModelError) when its card computes where to look by a
    formula (an architecture prior) and its name does not end in ``-gated``: a zoo model's
    explanations must be earned by its weights (issue 16)."""
    card = read_card(checkpoints_dir() / name)
    try:
        check_priors(name, str(card.get("arch", "")), card_config(card))
    except ValueError as exc:
        raise ModelError(f"zoo model {exc}") from None
    return load_checkpoint(checkpoints_dir() / name, device=device)


def _load(spec: str | Path, target: torch.device, statements: Statements) -> VideoModel:
    """``load_model``'s sources in turn (the modes left as the loader made them)."""
    text = str(spec)
    if text in zoo_names():
        model = load_zoo_checkpoint(text, target)
        return with_checkpoint_statements(model, statements, text)
    user = load_user_model(text, statements, target)
    if user is not None:
        return user
    path = Path(text)
    if path.suffix in (".pkl", ".ckpt", ".pickle"):
        raise refused_pickle(path.name, "a pickle, which can run code when loaded")
    stem = checkpoint_stem(path)
    if path.suffix in TORCH_SUFFIXES and path.exists():
        return with_checkpoint_statements(load_checkpoint(path, device=target), statements, text)
    if Path(f"{stem}.safetensors").exists() or Path(f"{stem}.json").exists():
        return with_checkpoint_statements(load_checkpoint(stem, device=target), statements, text)
    known = ", ".join(zoo_names()) or "none (the checkpoints folder is empty)"
    raise ModelError(
        f"unknown model {text!r}: not a zoo name ({known}), a checkpoint file, a TorchScript file, "
        "file.py:factory, nor an architecture name"
    )
