"""Models a user might bring (loaded by tests/test_external.py as ``tests/byo_models.py:NAME``).

Plain PyTorch, nothing from xai_core: the shape of what users arrive with.
"""

from __future__ import annotations

import torch
from torch import nn


class CifarCNN(nn.Module):
    """A small CIFAR-10 style image classifier: [N,3,H,W] -> [N,K]."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


class PerFrame(nn.Module):
    """An image classifier run on every frame, logits averaged: [B,T,C,H,W] -> [B,K]."""

    def __init__(self, frame_net: nn.Module) -> None:
        super().__init__()
        self.frame_net = frame_net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return self.frame_net(x.flatten(0, 1)).view(b, t, -1).mean(1)


def frame_cnn(num_classes: int = 10) -> nn.Module:
    """The CIFAR-10 CNN wrapped as a per-frame video model (takes [B,T,C,H,W])."""
    return PerFrame(CifarCNN(num_classes))


class Tiny3D(nn.Module):
    """A tiny 3D CNN: [B,C,T,H,W] -> [B,K]."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv3d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3, 4)))


def tiny_3d(num_classes: int = 3) -> nn.Module:
    return Tiny3D(num_classes)


def flat_linear() -> nn.Module:
    """Flatten + Linear on 4 frames of 8x8: runs on either layout (ambiguous)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(4 * 3 * 8 * 8, 2))


class ConvHead(nn.Module):
    """A per-frame CNN whose classifier is a 1x1 conv after global pooling: its last conv's
    activations are [B*T,K,1,1], which Grad-CAM cannot use; ``conv2`` can be named instead."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        f = torch.relu(self.conv2(torch.relu(self.conv1(x.flatten(0, 1)))))
        return self.head(f.mean((2, 3), keepdim=True)).view(b, t, -1).mean(1)
