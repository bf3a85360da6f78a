"""ConvLSTM (004): a convolutional LSTM over per-frame feature maps.

The zoo's small CNN turns each frame (with its signed difference to the previous one, as in
``FrameEncoder``) into a 14x14 map; a 1x1 conv narrows it; a ConvLSTM cell
(3x3 gate convolutions) runs over time; the last hidden state is pooled into the MLP head: its
mean and its maximum over positions (``readout="meanmax"``, the default), or the mean alone.  The
object covers a few of the 196 cells, so the mean alone dilutes it: in a 500-step run with the
mean readout the training loss stayed at chance (ln 3) for 350 steps.
``encode_frames`` returns the flattened maps, so the model is decoupled like the others.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import FrameEncoder, OutputScale, output_layer


class ConvLSTMCell(nn.Module):
    """Gates i, f, o, g from one 3x3 conv over [input, hidden]; c' = f*c + i*g; h' = o*tanh(c')."""

    def __init__(self, c_in: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(c_in + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMNet(nn.Module):
    def __init__(
        self,
        num_outputs: int,
        narrow: int = 16,
        hidden: int = 24,
        motion_input: bool = True,
        coord_channels: bool = False,
        motion_gate: bool | str = "difference",
        object_readout: bool = False,
        dropout: float = 0.1,
        output_offset: float = 0.0,
        output_scale: float = 1.0,
        readout: str = "meanmax",
    ) -> None:
        super().__init__()
        if readout not in ("meanmax", "mean"):
            raise ValueError(f"readout must be 'meanmax' or 'mean', not {readout!r}")
        self.readout = readout
        self.frame_encoder = FrameEncoder(
            "small", motion_input, coord_channels, motion_gate, strides=(2, 1, 2, 1), object_readout=object_readout
        )
        backbone = self.frame_encoder.backbone
        self.map_channels = backbone.features[-1][0].out_channels
        self.narrow = nn.Sequential(nn.Conv2d(self.map_channels, narrow, 1), nn.ReLU())
        self.cell = ConvLSTMCell(narrow, hidden)
        self.head = output_layer(hidden * (2 if readout == "meanmax" else 1), num_outputs, hidden=64, dropout=dropout)
        self.output_scale = OutputScale(output_offset, output_scale)
        self.cam_layer_name = "frame_encoder." + self.frame_encoder.cam_layer_name

    @property
    def frame_context(self) -> int:
        return self.frame_encoder.frame_context

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,C,H,W] -> flattened 14x14 maps [B,T,C*14*14]."""
        b, t = x.shape[:2]
        return self.frame_encoder.feature_maps(x).reshape(b, t, -1)

    def features_from_front(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One frame's flattened map from the encoder's front part (``FrameEncoder.front``): [N,C*h*w]."""
        return self.frame_encoder.backbone.feature_maps(inputs, mask).flatten(1)

    def temporal_head(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B,T,C*h*w] -> [B,K]."""
        b, t, d = feats.shape
        side = int(round((d / self.map_channels) ** 0.5))
        maps = feats.reshape(b * t, self.map_channels, side, side)
        inputs = self.narrow(maps).reshape(b, t, -1, side, side)
        h = inputs.new_zeros(b, self.cell.hidden, side, side)
        c = torch.zeros_like(h)
        for step in range(t):
            h, c = self.cell(inputs[:, step], (h, c))
        return self.output_scale(self.head(self.pool(h)))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """The last hidden state [B,H,h,w] -> [B,H] (mean) or [B,2H] (mean, then max)."""
        if self.readout == "mean":
            return h.mean((2, 3))
        return torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_head(self.encode_frames(x))
