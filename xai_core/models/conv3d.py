"""3D CNNs (003): the zoo's small 3D ResNet and torchvision's video networks (r3d_18, mc3_18,
r2plus1d_18, s3d).

All take [B,C,T,H,W] (the adapter transposes).  Their last conv stage has a coarse time
resolution (T/8 for the small net), so Grad-CAM maps are upsampled in time as well as space.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import OutputScale, motion_kind, output_layer
from .motion import motion_channels

TORCHVISION_VIDEO = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d")


class Block3d(nn.Module):
    """Residual block: two 3x3x3 convs with batch norm, a 1x1x1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if c_in != c_out or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(nn.Conv3d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm3d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallR3D(nn.Module):
    """A small 3D ResNet for 32x112x112 clips.

    An average pool halves H and W; with ``motion_input`` three motion channels are stacked on
    the colour channels (``motion_gate`` picks them as for ``FrameEncoder``; the default is the
    signed difference to the previous frame).  Stem: 3x5x5 conv, stride (2,2,2) -> [16,28,28];
    three residual stages to [4,14,14] (the Grad-CAM layer); global average pool; MLP head."""

    def __init__(
        self,
        num_outputs: int,
        widths: tuple[int, int, int, int] = (16, 32, 48, 64),
        motion_input: bool = True,
        motion_gate: bool | str = False,
        dropout: float = 0.1,
        output_offset: float = 0.0,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.motion_input = motion_input
        self.motion_kind = motion_kind(motion_gate)
        c_in = 6 if motion_input else 3
        self.pool = nn.AvgPool3d((1, 2, 2))
        self.stem = nn.Sequential(
            nn.Conv3d(c_in, w0, (3, 5, 5), stride=(2, 2, 2), padding=(1, 2, 2), bias=False),
            nn.BatchNorm3d(w0),
            nn.ReLU(inplace=True),
        )
        self.layer1 = Block3d(w0, w1, (1, 2, 2))
        self.layer2 = Block3d(w1, w2, (2, 1, 1))
        self.layer3 = Block3d(w2, w3, (2, 1, 1))
        self.head = output_layer(w3, num_outputs, hidden=w3, dropout=dropout)
        self.output_scale = OutputScale(output_offset, output_scale)
        self.cam_layer_name = "layer3"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,C,T,H,W] -> [B,K]."""
        if self.motion_input:
            x = torch.cat([x, motion_channels(x.transpose(1, 2), self.motion_kind).transpose(1, 2)], dim=1)
        a = self.layer3(self.layer2(self.layer1(self.stem(self.pool(x)))))
        return self.output_scale(self.head(a.mean((2, 3, 4))))


class ClampedAvgPool3d(nn.Module):
    """S3D's average pool (kernel (2, 7, 7), stride 1) with the kernel clamped to the input's size:
    the same as torchvision's at 224x224 and 16 or more frames, and usable on smaller clips
    (torchvision's own fails below 224x224).  [B,C,t,h,w] -> [B,C,t',h',w']."""

    def __init__(self, kernel: tuple[int, int, int] = (2, 7, 7)) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = tuple(min(k, s) for k, s in zip(self.kernel, x.shape[2:], strict=True))
        return nn.functional.avg_pool3d(x, kernel, stride=1)


def torchvision_video(name: str, num_outputs: int) -> nn.Module:
    """torchvision's r3d_18 / mc3_18 / r2plus1d_18 / s3d with a final layer of ``num_outputs``,
    random weights.  Grad-CAM layer: the last conv block (``layer4``; S3D's last inception
    block ``features.15``, [B,1024,T/8,H/32,W/32])."""
    if name not in TORCHVISION_VIDEO:
        raise ValueError(f"unknown torchvision video model {name!r}; choose one of {', '.join(TORCHVISION_VIDEO)}")
    import torchvision  # a second to import: only for its networks

    net = getattr(torchvision.models.video, name)(weights=None, num_classes=num_outputs)
    if name == "s3d":
        net.avgpool = ClampedAvgPool3d()
        net.cam_layer_name = f"features.{len(net.features) - 1}"
    else:
        net.cam_layer_name = "layer4"
    return net
