"""Weight files: a state_dict read from ``.safetensors``, or from ``.pt`` / ``.pth`` with
``weights_only=True`` (a pickle that needs code to load is refused, with the reason).  Below both
the checkpoints (weights + card) and the backbones (a torchvision backbone's own weights)."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .base import ModelError

TORCH_SUFFIXES = (".pt", ".pth")


def needed_code(exc: Exception) -> str | None:
    """The first global a refused pickle asks for (e.g. "io.open"), from torch's message; None when
    the file was not refused for code (it is not a pickle torch can read)."""
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(exc))
    return found.group(1) if found else None


def _is_plain_pickle(path: Path) -> bool:
    """Whether the file starts like a pickle of protocol 2 or later (pickle.dump, not torch.save's zip)."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def refused_pickle(name: str, what: str) -> ModelError:
    """The one line for a pickle that is not loaded: which file, what it is, and what to give instead."""
    return ModelError(
        f"{name} is refused: it is {what}, not a safetensors checkpoint, and is not loaded. Convert it where you "
        "trust it: save its state_dict as NAME.safetensors (safetensors.torch.save_file), plus a NAME.json model "
        "card for a checkpoint"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from a .safetensors file, or from a .pt/.pth file loaded with weights_only=True
    (plain tensors only: a pickle that needs code to load is refused)."""
    path = Path(path)
    if path.suffix in TORCH_SUFFIXES:
        try:
            with warnings.catch_warnings():  # torch's warnings about the file say nothing a user can act on here
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            needed = needed_code(exc)
            if needed is not None:
                raise refused_pickle(path.name, f"a pickle that needs code to load (it calls {needed})") from None
            if _is_plain_pickle(path):
                what = "a plain pickle (pickle.dump, not torch.save), which can run code"
                raise refused_pickle(path.name, what) from None
            found = re.search(r"Unsupported operand (\S+)", str(exc))  # a damaged file, a web page, ...
            why = f" (unknown pickle operand {found.group(1)})" if found else ""
            raise ModelError(f"{path.name} is not a readable PyTorch weights file{why}") from None
        except (OSError, RuntimeError, EOFError, ValueError, KeyError, IndexError) as exc:
            raise ModelError(
                f"{path.name} is not a readable PyTorch weights file: {type(exc).__name__} {exc}"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ModelError(f"{path.name} does not hold a state_dict (a mapping of names to tensors)")
        return state
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path.name} is not a readable safetensors file: {exc}") from None
