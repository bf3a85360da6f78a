"""Models a user might bring (loaded by tests/test_external.py as ``tests/byo_models.py:NAME``).

Plain PyTorch, nothing from xai_core: the shape of what users arrive with.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
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


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B,C,T,H,W] -> the channels regrouped (ShuffleNet): group g's k-th channel moves to k * groups + g."""
    b, c, t, h, w = x.shape
    return x.view(b, groups, c // groups, t, h, w).transpose(1, 2).reshape(b, c, t, h, w)


class ShuffleUnit3D(nn.Module):
    """A ShuffleNet unit in 3D: grouped 1x1x1 conv, channel shuffle, depthwise 3x3x3 conv, grouped
    1x1x1 conv, each with batch norm, and a residual addition."""

    def __init__(self, channels: int, groups: int = 2) -> None:
        super().__init__()
        self.groups = groups
        self.reduce = nn.Sequential(
            nn.Conv3d(channels, channels, 1, groups=groups, bias=False), nn.BatchNorm3d(channels), nn.ReLU()
        )
        self.depthwise = nn.Sequential(
            nn.Conv3d(channels, channels, 3, padding=1, groups=channels, bias=False), nn.BatchNorm3d(channels)
        )
        self.expand = nn.Sequential(
            nn.Conv3d(channels, channels, 1, groups=groups, bias=False), nn.BatchNorm3d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.depthwise(channel_shuffle(self.reduce(x), self.groups)))
        return torch.relu(x + y)


class Shuffle3D(nn.Module):
    """A small ShuffleNet-style 3D CNN with batch norm and dropout, the shape of a gesture
    recogniser: [B,C,T,H,W] -> [B,K]."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1, bias=False), nn.BatchNorm3d(8), nn.ReLU()
        )
        self.stage = nn.Sequential(ShuffleUnit3D(8), ShuffleUnit3D(8))
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.stage(self.conv1(x)).mean((2, 3, 4))))


def shuffle_3d(num_classes: int = 4) -> nn.Module:
    return Shuffle3D(num_classes)


class NormedFrames(nn.Module):
    """A per-frame CNN with batch norm and dropout, logits averaged over frames: [B,T,C,H,W] -> [B,K]."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        feats = self.features(x.flatten(0, 1)).mean((2, 3))
        return self.fc(self.dropout(feats)).view(b, t, -1).mean(1)


def normed_frames(num_classes: int = 3) -> nn.Module:
    return NormedFrames(num_classes)


class FramewiseMobileNetV2(torchvision.models.MobileNetV2):
    """torchvision's MobileNetV2 (an ImageNet classifier) run on every frame, its logits averaged
    over frames: [B,T,C,H,W] -> [B,1000].  Its weights load as torchvision's own (same names)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return super().forward(x.flatten(0, 1)).view(b, t, -1).mean(1)


def framewise_mobilenet_v2() -> nn.Module:
    return FramewiseMobileNetV2()


class RecurrentFrames(nn.Module):
    """A per-frame CNN into a two-layer LSTM with dropout between its layers: [B,T,C,H,W] -> [B,K]."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.lstm = nn.LSTM(8, 6, num_layers=2, dropout=0.5, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        feats = self.features(x.flatten(0, 1)).mean((2, 3)).view(b, t, -1)
        return self.fc(self.dropout(self.lstm(feats)[0][:, -1]))


def recurrent_frames(num_classes: int = 3) -> nn.Module:
    return RecurrentFrames(num_classes)


# ---------------------------------------------------------------------------- as weights arrive
def with_running_statistics(net: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """``net`` with batch-norm statistics of its own, as a trained network has: a few batches of
    shape ``shape`` (off-centre) in training mode; returned in eval mode."""
    torch.manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(*shape) * 1.7 + 0.6)
    return net.eval()


def distinct_labels(names: list[str]) -> list[str]:
    """Class names made distinct by their index where a name repeats (ImageNet has two "crane"s)."""
    return [n if names.count(n) == 1 else f"{n} ({i})" for i, n in enumerate(names)]


IMAGENET = Path(__file__).resolve().parents[2] / "shared" / "models" / "mobilenet_v2_imagenet"


def load_imagenet_mobilenet(folder: Path, frames: int):
    """The real ImageNet MobileNetV2 (``../shared/models``) per frame, loaded as a user would:
    this file's ``framewise_mobilenet_v2`` + its weights + a labels file (written to ``folder``,
    the repeated names made distinct), ``frames`` frames of 112x112 with ImageNet's normalisation."""
    import xai_core

    names = distinct_labels((IMAGENET / "labels.txt").read_text().splitlines())
    (folder / "imagenet.txt").write_text("\n".join(names))
    return xai_core.load_model(
        f"{Path(__file__).resolve()}:framewise_mobilenet_v2", "cpu",
        weights=IMAGENET / "mobilenet_v2_imagenet.safetensors", labels_file=folder / "imagenet.txt",
        frames=frames, height=112, width=112, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    )  # fmt: skip
