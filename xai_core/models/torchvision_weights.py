"""torchvision's pretrained weights by name (``KINETICS400_V1``, ``IMAGENET1K_V1``, ``DEFAULT``):
the labels, normalisation and frame size from the weights' metadata, the file from torchvision's
own cache (``$TORCH_HOME/hub/checkpoints``), downloaded there when it is missing and the network
allows; otherwise one line that names the file and the folder to put it in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from .base import ModelError

WEIGHTS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # KINETICS400_V1, IMAGENET1K_V2, DEFAULT


def is_weights_name(value) -> bool:
    """Whether ``value`` names torchvision weights (an upper-case enum name) rather than a file."""
    return isinstance(value, str) and bool(WEIGHTS_NAME.match(value)) and not Path(value).exists()


@dataclass(frozen=True)
class NamedWeights:
    """torchvision weights of ``arch`` by ``name``, with what their metadata says: the class
    ``labels``, the normalisation ``mean`` / ``std`` and the crop ``size`` (height, width); the
    ``file`` in torchvision's cache ``folder`` and the ``url`` it comes from."""

    arch: str
    name: str
    enum: str
    labels: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size: tuple[int, int]
    url: str
    file: str
    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / self.file


def weight_names(arch: str) -> list[str]:
    """The names of torchvision's weights for ``arch`` (``DEFAULT`` first); none for another model."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        return []
    return ["DEFAULT", *(n for n in enum.__members__ if n != "DEFAULT")]


def named_weights(arch: str, name: str) -> NamedWeights:
    """The weights ``name`` (or ``DEFAULT``) of torchvision's ``arch``, from their metadata alone
    (nothing is read or downloaded)."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise ModelError(f"{arch} is not a torchvision model with named weights") from None
    names = [n for n in enum.__members__ if n != "DEFAULT"]
    try:
        weights = enum[name]
    except KeyError:
        raise ModelError(f"{arch} has no weights {name!r}; torchvision has {', '.join(names)} (or DEFAULT)") from None
    transforms = weights.transforms()
    crop = list(transforms.crop_size)
    size = (int(crop[0]), int(crop[-1]))
    url = weights.url
    return NamedWeights(
        arch=arch,
        name=weights.name,
        enum=f"{type(weights).__name__}.{weights.name}",
        labels=[str(c) for c in weights.meta["categories"]],
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        size=size,
        url=url,
        file=Path(urlparse(url).path).name,
        folder=Path(torch.hub.get_dir()) / "checkpoints",
    )


def cached_file(weights: NamedWeights) -> Path:
    """The weights' file in torchvision's cache, downloaded there first when it is missing;
    ModelError (one line: the file, where it comes from and the folder) when it cannot be."""
    if weights.path.is_file():
        return weights.path
    try:
        weights.folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(weights.path), progress=False)
    except (URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ModelError(
            f"{weights.enum} is not in torchvision's cache and could not be downloaded ({why}): put {weights.file} "
            f"(from {weights.url}) in {weights.folder}"
        ) from None
    return weights.path


def load_named(weights: NamedWeights) -> dict[str, torch.Tensor]:
    """The state dict of the weights (read with ``weights_only=True``)."""
    path = cached_file(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (a truncated or foreign file: said in one line)
        raise ModelError(f"{path} could not be read as {weights.enum}'s weights: {exc}") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds no state dict")
    return state
