"""Checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (the model card).

The card holds everything needed to rebuild the network (architecture, config, task, labels,
input spec) plus how it was trained and how well it does.  Loading rebuilds the architecture
from the card and refuses weights that do not fit it, with a message that says what differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .base import InputSpec, ModelError, VideoModel
from .priors import architecture_priors, resolved_config
from .registry import ARCHITECTURES, build_model
from .weights import TORCH_SUFFIXES, read_state_dict

CARD_VERSION = 2  # 2: the per-frame CNN's defaults learn where to look (no object gate or readout)
REQUIRED_CARD_FIELDS = ("arch", "task", "labels", "input_spec")


def card_path(stem: str | Path) -> Path:
    return Path(f"{stem}.json")


def weights_path(stem: str | Path) -> Path:
    return Path(f"{stem}.safetensors")


def checkpoint_stem(path: str | Path) -> Path:
    """'dir/NAME', 'dir/NAME.json', 'dir/NAME.safetensors' or 'dir/NAME.pt' -> 'dir/NAME'."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors", *TORCH_SUFFIXES) else path


def make_card(model: VideoModel, **extra) -> dict:
    """The card fields that describe ``model`` itself; ``extra`` adds training facts, metrics."""
    card = {
        "card_version": CARD_VERSION,
        "name": model.name,
        "arch": model.info.arch,
        "config": model.info.config,
        "task": model.task,
        "labels": model.labels,
        "input_spec": model.input_spec.to_dict(),
        "layout": model.layout,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    priors = architecture_priors(model.info.arch, model.info.config or {})
    if priors:  # where to look is computed by formula: the card says so (only ``-gated`` models may)
        card["architecture_priors"] = priors
    card.update(extra)
    return card


def save_checkpoint(model: VideoModel, stem: str | Path, card: dict | None = None) -> tuple[Path, Path]:
    """Write the weights and the card next to each other; returns their paths."""
    stem = checkpoint_stem(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    card = card if card is not None else make_card(model)
    state = {k: v.detach().contiguous().cpu() for k, v in model.net.state_dict().items()}
    w_path, c_path = weights_path(stem), card_path(stem)
    tmp_w, tmp_c = Path(f"{w_path}.partial"), Path(f"{c_path}.partial")
    save_file(state, str(tmp_w), metadata={"arch": str(card.get("arch")), "task": str(card.get("task"))})
    tmp_c.write_text(json.dumps(card, indent=2) + "\n")
    tmp_w.replace(w_path)
    tmp_c.replace(c_path)
    return w_path, c_path


def read_card(stem: str | Path) -> dict:
    """The model card of a checkpoint, checked for the fields loading needs."""
    path = card_path(checkpoint_stem(stem))
    if not path.exists():
        raise ModelError(f"no model card {path.name} beside the weights (a checkpoint is NAME.safetensors + NAME.json)")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model card {path} is not valid JSON: {exc}") from None
    missing = [f for f in REQUIRED_CARD_FIELDS if f not in card]
    if missing:
        raise ModelError(f"model card {path.name} lacks {', '.join(missing)}")
    if card.get("source") == "factory":
        factory = card.get("factory") or "FILE.py:NAME"
        raise ModelError(
            f"model card {path.name} describes a model built by your own code; load it by naming that code with "
            f"these weights: load_model('{factory}', weights='{path.stem}.safetensors') "
            f"(--model {factory} --weights {path.stem}.safetensors)"
        )
    if card["arch"] not in ARCHITECTURES:
        raise ModelError(
            f"model card {path.name} names architecture {card['arch']!r}, "
            f"which is not one of {', '.join(ARCHITECTURES)}"
        )
    return card


def card_config(card: dict) -> dict:
    """The card's architecture configuration with the defaults of its card version filled in."""
    return resolved_config(card.get("arch", ""), card.get("config") or {}, int(card.get("card_version", 1)))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> VideoModel:
    """Rebuild the card's architecture and load the weights into it (strictly).

    ``path`` is the stem or either file; the weights are NAME.safetensors, or NAME.pt / NAME.pth
    (e.g. torchvision's own r3d_18 weights) when that is the file named."""
    path = Path(path)
    stem = checkpoint_stem(path)
    card = read_card(stem)
    w_path = path if path.suffix in TORCH_SUFFIXES else weights_path(stem)
    if not w_path.exists():
        raise ModelError(f"weights file {w_path} not found")
    state = read_state_dict(w_path)
    try:
        spec = InputSpec.from_dict(card["input_spec"])
        model = build_model(
            card["arch"],
            task=card["task"],
            labels=card["labels"],
            input_spec=spec,
            config=card_config(card),
            name=card.get("name", stem.name),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model card {stem.name}.json cannot build its model: {exc}") from None
    _check_state(model, state, w_path.name)
    model.net.load_state_dict(state, strict=True)
    model.info.card = card
    return model.to(device).eval()


def state_differences(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading strictly where ``expected`` is: phrases naming the
    missing keys, the unexpected keys and the keys of another shape (empty when it fits)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} with other shapes (e.g. {k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        )
    return parts


def _check_state(model: VideoModel, state: dict[str, torch.Tensor], name: str) -> None:
    parts = state_differences(model.net.state_dict(), state)
    if parts:
        raise ModelError(f"weights {name} do not fit architecture {model.info.arch!r} of its card: " + "; ".join(parts))
