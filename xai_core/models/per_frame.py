"""An image classifier over video: ``frames:SPEC`` wraps any image network (a torchvision
classification architecture by name, ``file.py:factory``, or a TorchScript file) as a per-frame
video model.  Each frame is classified on its own; the clip's logits are the mean of the frames'
logits, and ``frame_logits`` gives each frame's, for a per-frame prediction strip.  Every spatial
method then explains the frames through the image network (Grad-CAM on its last convolutional
layer with spatial extent, found by probing)."""

from __future__ import annotations

import torch
from torch import nn

from .base import InputSpec, ModelError

PREFIX = "frames:"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SPEC = InputSpec(frames=16, height=224, width=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)


class PerFrame(nn.Module):
    """x [B,T,3,H,W] -> the mean over the T frames of ``image_net``'s logits [B,K]."""

    def __init__(self, image_net: nn.Module) -> None:
        super().__init__()
        self.image_net = image_net

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,3,H,W] -> each frame's logits [B,T,K]."""
        if x.dim() != 5:
            raise ModelError(f"a per-frame model takes clips [B,T,3,H,W], got {tuple(x.shape)}")
        batch, frames = x.shape[:2]
        return self.image_net(x.reshape(batch * frames, *x.shape[2:])).reshape(batch, frames, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).mean(1)


def image_architectures() -> list[str]:
    """torchvision's image classification architectures (``resnet18``, ``mobilenet_v2``, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_image_net(name: str, classes: int) -> nn.Module:
    """torchvision's image classifier ``name`` with random weights and ``classes`` outputs."""
    import torchvision

    if name not in image_architectures():
        raise ModelError(
            f"frames:{name}: not a torchvision image classifier (e.g. mobilenet_v2, resnet18, efficientnet_b0), "
            "a file.py:factory or a TorchScript file"
        )
    return torchvision.models.get_model(name, weights=None, num_classes=classes)
