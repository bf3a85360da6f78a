"""Decoupled video models: a per-frame encoder followed by a temporal head.

* ``CNNTransformer`` (endoscopy paper, 000): frame features projected to 128, a learned CLS
  token, learned positional embeddings, 4 pre-norm encoder layers with 4 heads, an MLP head on
  the CLS output.  The CLS token's attention to the frames is exposed.
* ``CNNLSTM``: the same encoder, an LSTM, the last hidden state into the MLP head; with
  ``attention_pool`` (003) a learned attention over the LSTM outputs pools them instead, and
  its weights are exposed.
* ``ICALSTM`` (002; Ismail et al. 2019): input-cell attention; at step t the LSTM reads an
  r-head attention summary of all inputs up to t, not only x_t.

Both LSTMs take ``forget_bias``, the initial bias of the forget gate (an initialisation, not a
prior: training changes it).  PyTorch starts it near 0, so the gate keeps about half the cell
state a step and an event 20 frames before the last step reaches it 10^-6 weaker; a forget bias
of 1 or more (Gers et al. 2000; Jozefowicz et al. 2015) lets a model read at its last step learn
from the whole clip.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from .backbones import FrameEncoder, OutputScale, output_layer


def lstm(inputs: int, hidden: int, forget_bias: float | None = None) -> nn.LSTM:
    """A one-layer batch-first LSTM; with ``forget_bias`` its forget gate's bias starts at that
    value (PyTorch's gate order is input, forget, cell, output; the two bias vectors add up)."""
    layer = nn.LSTM(inputs, hidden, batch_first=True)
    if forget_bias is not None:
        with torch.no_grad():
            layer.bias_ih_l0[hidden : 2 * hidden].fill_(float(forget_bias))
            layer.bias_hh_l0[hidden : 2 * hidden].zero_()
    return layer


class DecoupledVideoNet(nn.Module, ABC):
    """Shared plumbing: ``encode_frames`` runs the frame encoder; subclasses define
    ``temporal_head(feats [B,T,D]) -> [B,K]``.  ``encoder`` holds ``FrameEncoder``'s options
    (backbone, motion_input, motion_gate, readout, widths, strides, ...), with its defaults."""

    def __init__(self, num_outputs: int, output_offset: float = 0.0, output_scale: float = 1.0, **encoder) -> None:
        super().__init__()
        self.frame_encoder = FrameEncoder(**encoder)
        self.output_scale = OutputScale(output_offset, output_scale)
        self.cam_layer_name = "frame_encoder." + self.frame_encoder.cam_layer_name
        self.num_outputs = num_outputs

    @property
    def frame_context(self) -> int:
        return self.frame_encoder.frame_context

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,C,H,W] -> feats [B,T,D]."""
        return self.frame_encoder(x)

    def features_from_front(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One frame's features from the encoder's front part (``FrameEncoder.front``): [N,D]."""
        return self.frame_encoder.back(inputs, mask)

    @abstractmethod
    def temporal_head(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B,T,D] -> [B,K]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_head(self.encode_frames(x))


class EncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer that can return its attention weights."""

    def __init__(self, width: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B,L,W] -> (x [B,L,W], attention [B,heads,L,L] or None)."""
        h = self.norm1(x)
        out, weights = self.attn(h, h, h, need_weights=need_weights, average_attn_weights=False)
        x = x + self.drop(out)
        x = x + self.drop(self.ff(self.norm2(x)))
        return x, weights


class CNNTransformer(DecoupledVideoNet):
    def __init__(
        self,
        num_outputs: int,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
        ff: int = 256,
        dropout: float = 0.1,
        max_frames: int = 128,
        **encoder,
    ) -> None:
        super().__init__(num_outputs, **encoder)
        self.proj = nn.Linear(self.frame_encoder.out_dim, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, max_frames + 1, width) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(width, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = output_layer(width, num_outputs, hidden=width, dropout=dropout)

    def _tokens(self, feats: torch.Tensor) -> torch.Tensor:
        b, t, _ = feats.shape
        if t + 1 > self.pos.shape[1]:
            raise ValueError(f"this model takes at most {self.pos.shape[1] - 1} frames, got {t}")
        tokens = torch.cat([self.cls.expand(b, -1, -1), self.proj(feats)], dim=1)
        return tokens + self.pos[:, : t + 1]

    def temporal_head(self, feats: torch.Tensor) -> torch.Tensor:
        x = self._tokens(feats)
        for layer in self.layers:
            x, _ = layer(x)
        return self.output_scale(self.head(self.norm(x[:, 0])))

    def attention_maps(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """Attention of every layer, [B,heads,T+1,T+1] each (token 0 is CLS)."""
        x = self._tokens(feats)
        maps = []
        for layer in self.layers:
            x, w = layer(x, need_weights=True)
            maps.append(w)
        return maps

    def temporal_attention(self, x: torch.Tensor) -> torch.Tensor:
        """CLS attention of the last layer to each frame, mean over heads: [B,T], sums to 1."""
        cls_to_frames = self.attention_maps(self.encode_frames(x))[-1][:, :, 0, 1:].mean(1)
        return cls_to_frames / cls_to_frames.sum(-1, keepdim=True)


class CNNLSTM(DecoupledVideoNet):
    def __init__(
        self,
        num_outputs: int,
        width: int = 128,
        hidden: int = 128,
        dropout: float = 0.1,
        attention_pool: bool = False,
        forget_bias: float | None = None,
        **encoder,
    ) -> None:
        super().__init__(num_outputs, **encoder)
        self.proj = nn.Sequential(nn.Linear(self.frame_encoder.out_dim, width), nn.ReLU())
        self.lstm = lstm(width, hidden, forget_bias)
        self.attention_pool = attention_pool
        self.has_temporal_attention = attention_pool
        if attention_pool:
            self.attn_score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.head = output_layer(hidden, num_outputs, hidden=hidden, dropout=dropout)

    def _pool_weights(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.attn_score(outputs).squeeze(-1).softmax(-1)  # [B,T]

    def temporal_head(self, feats: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(self.proj(feats))  # [B,T,H]
        if self.attention_pool:
            pooled = (self._pool_weights(outputs).unsqueeze(-1) * outputs).sum(1)
        else:
            pooled = outputs[:, -1]
        return self.output_scale(self.head(pooled))

    def temporal_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention-pooling weights over frames [B,T] (only with ``attention_pool``)."""
        if not self.attention_pool:
            raise AttributeError("this CNN-LSTM has no attention pooling")
        outputs, _ = self.lstm(self.proj(self.encode_frames(x)))
        return self._pool_weights(outputs)


class ICALSTM(DecoupledVideoNet):
    """Input-cell attention LSTM: the cell input at step t is M_t = A_t X_{1:t} flattened, where
    A_t = softmax over s <= t of W2 tanh(W1 x_s) (r heads)."""

    def __init__(
        self,
        num_outputs: int,
        width: int = 64,
        hidden: int = 128,
        attention_width: int = 32,
        attention_heads: int = 4,
        dropout: float = 0.1,
        forget_bias: float | None = None,
        **encoder,
    ) -> None:
        super().__init__(num_outputs, **encoder)
        self.proj = nn.Sequential(nn.Linear(self.frame_encoder.out_dim, width), nn.ReLU())
        self.w1 = nn.Linear(width, attention_width, bias=False)
        self.w2 = nn.Linear(attention_width, attention_heads, bias=False)
        self.lstm = lstm(width * attention_heads, hidden, forget_bias)
        self.head = output_layer(hidden, num_outputs, hidden=hidden, dropout=dropout)

    def input_cell_attention(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [B,T,N] -> A [B,T,r,T]: row t attends over steps s <= t."""
        t = inputs.shape[1]
        scores = self.w2(torch.tanh(self.w1(inputs)))  # [B,T(s),r]
        scores = scores.transpose(1, 2).unsqueeze(1).expand(-1, t, -1, -1)  # [B,T(t),r,T(s)]
        causal = torch.ones(t, t, dtype=torch.bool, device=inputs.device).tril()
        scores = scores.masked_fill(~causal[None, :, None, :], float("-inf"))
        return scores.softmax(-1)

    def temporal_head(self, feats: torch.Tensor) -> torch.Tensor:
        inputs = self.proj(feats)  # [B,T,N]
        attention = self.input_cell_attention(inputs)
        summaries = torch.einsum("btrs,bsn->btrn", attention, inputs).flatten(2)  # [B,T,r*N]
        outputs, _ = self.lstm(summaries)
        return self.output_scale(self.head(outputs[:, -1]))
