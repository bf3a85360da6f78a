"""A frame's features recomputed only where a box of its pixels changed: the perturbation
engine's fast path for the zoo's frame encoder (``FrameEncoder`` with the small CNN).

Every frame of the clip is computed once and its intermediate values kept: the background
colour, the object evidence (seed and foreground), the readout mask, the network input, and the
activation of every layer of the small CNN.  For a frame whose pixels changed inside a box (or
whose previous frame's did):

1. The front part.  If the background colour (a median over the whole frame) is unchanged and
   so is the object evidence inside the box's 2x2 blocks (the foreground, and the seed where it
   is foreground), the object mask is the cached one (its reconstruction starts from the same
   seed in the same foreground), and the network input changes inside the box only.  Otherwise
   the whole front part runs again.
2. The CNN.  Each layer (the 2x2 average pool, then conv-BN-ReLU blocks) is recomputed on the
   output positions whose receptive field meets the changed region only, from the cached
   activations around them; the region grows by the kernel at every layer.
3. The readout (masked mean and max) on the last map with the new region spliced in.

The result equals the full computation up to float rounding: the same operations on the same
values.  Frames the shortcut does not apply to (another motion gate, a changed background or
mask that spreads) take the full path, which is always right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..models.backbones import FrameEncoder, SmallCNN
from ..models.motion import background_colour, gate_from_object_mask, geodesic_reconstruction, object_evidence

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)
REGIONAL_SHARE = 0.5  # a changed box larger than this share of the frame: the whole CNN is cheaper


def supports(net: nn.Module) -> bool:
    """Whether ``net``'s frame encoder is the small CNN with a gate this module follows."""
    enc = getattr(net, "frame_encoder", None)
    if not isinstance(enc, FrameEncoder) or not isinstance(enc.backbone, SmallCNN):
        return False
    if enc.motion_input and enc.motion_kind not in ("object", "difference"):
        return False
    return callable(getattr(net, "features_from_front", None)) and type(net).features_from_front in _READOUTS


@dataclass
class Item:
    """One frame to recompute: ``frame`` a; ``prev`` / ``cur`` its new previous frame and new frame
    [3,H,W] (None: unchanged); ``box``: where they differ from the clip (None: anywhere)."""

    frame: int
    prev: torch.Tensor | None
    cur: torch.Tensor | None
    box: Box | None


def _blocks_box(box: Box) -> Box:
    """A pixel box -> the 2x2 blocks it touches (half-resolution box)."""
    y0, y1, x0, x1 = box
    return y0 // 2, (y1 + 1) // 2, x0 // 2, (x1 + 1) // 2


class RegionalEncoder:
    """The features of changed frames of one clip ``x [1,T,3,H,W]``, for a net that ``supports``."""

    def __init__(self, net: nn.Module, x: torch.Tensor) -> None:
        self.net, self.enc = net, net.frame_encoder
        self.cnn: SmallCNN = self.enc.backbone
        self.x = x[0]
        t, _, h, w = self.x.shape
        self.size = (h, w)
        prev = torch.cat([self.x[:1], self.x[:-1]])
        self.inputs, self.masks = self.enc.front_pairs(prev, self.x)
        self.uses_mask = self.masks is not None or (self.enc.motion_input and self.enc.motion_kind == "object")
        if self.uses_mask:
            self.background = background_colour(self.x)
            self.seed, self.foreground = object_evidence(prev, self.x, self.background)
            self.object_masks = geodesic_reconstruction(self.seed, self.foreground, _steps())
        self.acts = [self.cnn.pool(self.inputs)]
        for block in self.cnn.features:
            self.acts.append(block(self.acts[-1]))
        self.feats = _READOUTS[type(net).features_from_front](self, self.acts[-1], self.masks)

    # ------------------------------------------------------------------ public
    def features(self, items: list[Item]) -> torch.Tensor:
        """The new features of each item, [N,D] (rows in the order of ``items``)."""
        out = self.feats.new_empty(len(items), self.feats.shape[1])
        groups: dict[tuple, list[int]] = {}
        for k, item in enumerate(items):
            groups.setdefault((item.box, item.prev is not None, item.cur is not None), []).append(k)
        for (box, _, _), rows in groups.items():
            out[rows] = self._group([items[k] for k in rows], box)
        return out

    # ------------------------------------------------------------------ internals
    def _frames(self, items: list[Item]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames = torch.tensor([it.frame for it in items], device=self.x.device)
        cur = torch.stack([it.cur if it.cur is not None else self.x[it.frame] for it in items])
        prev = torch.stack(
            [it.prev if it.prev is not None else self.x[max(it.frame - 1, 0)] for it in items]
        )  # a first frame is its own previous frame: the item's cur then
        first = frames == 0
        if first.any():
            prev[first] = cur[first]
        return frames, prev, cur

    def _group(self, items: list[Item], box: Box | None) -> torch.Tensor:
        frames, prev, cur = self._frames(items)
        quick = torch.zeros(len(items), dtype=torch.bool, device=self.x.device)
        if box is not None:
            quick = self._mask_unchanged(frames, prev, cur, box)
        feats = self.feats.new_empty(len(items), self.feats.shape[1])
        fast = quick.nonzero().flatten()
        if items[0].cur is None and not (self.enc.motion_input and self.enc.motion_kind == "difference"):
            # only the previous frame changed, and it reaches this frame through the mask alone
            feats[fast] = self.feats[frames[fast]]
            fast = fast[:0]
        if len(fast):
            inputs = self._inputs_in_box(frames[fast], prev[fast], cur[fast], box)
            masks = self.masks[frames[fast]] if self.masks is not None else None
            feats[fast] = self._cnn(frames[fast], inputs, box, masks)
        slow = (~quick).nonzero().flatten()
        if len(slow):
            feats[slow] = self._changed_front(frames[slow], prev[slow], cur[slow])
        return feats

    def _changed_front(self, frames: torch.Tensor, prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        """Rows whose mask or background may have changed: the whole front part again, then the
        CNN on the bounding box of the input's change (the whole frame when that is most of it)."""
        inputs, masks = self.enc.front_pairs(prev, cur)
        changed = (inputs != self.inputs[frames]).any(1)  # [N,H,W]
        feats = self.feats.new_empty(len(frames), self.feats.shape[1])
        whole = []
        h, w = self.size
        for row in range(len(frames)):
            ys, xs = changed[row].any(1).nonzero().flatten(), changed[row].any(0).nonzero().flatten()
            if len(ys) == 0:  # only the readout mask changed
                feats[row] = self._read(self.acts[-1][frames[row : row + 1]], _rows(masks, row))[0]
                continue
            box = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)
            if (box[1] - box[0]) * (box[3] - box[2]) > REGIONAL_SHARE * h * w:
                whole.append(row)
                continue
            patch = inputs[row : row + 1, :, box[0] : box[1], box[2] : box[3]]
            feats[row] = self._cnn(frames[row : row + 1], patch, box, _rows(masks, row))[0]
        if whole:
            feats[whole] = self.net.features_from_front(inputs[whole], masks[whole] if masks is not None else None)
        return feats

    def _read(self, maps: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        return _READOUTS[type(self.net).features_from_front](self, maps, masks)

    def _mask_unchanged(self, frames: torch.Tensor, prev: torch.Tensor, cur: torch.Tensor, box: Box) -> torch.Tensor:
        """Per row: is the object mask (and the background colour) the clip's own?  [N] bool."""
        if not self.uses_mask:
            return torch.ones(len(frames), dtype=torch.bool, device=frames.device)
        background = background_colour(cur)
        same = (background == self.background[frames]).flatten(1).all(1)
        b0, b1, c0, c1 = _blocks_box(box)
        seed, foreground = object_evidence(
            prev[..., 2 * b0 : 2 * b1, 2 * c0 : 2 * c1], cur[..., 2 * b0 : 2 * b1, 2 * c0 : 2 * c1], background
        )
        # the reconstruction reads the foreground everywhere and the seed only where it is foreground
        cached_foreground = self.foreground[frames, :, b0:b1, c0:c1]
        same &= (foreground == cached_foreground).flatten(1).all(1)
        start = torch.minimum(self.seed[frames, :, b0:b1, c0:c1], cached_foreground)
        same &= (torch.minimum(seed, foreground) == start).flatten(1).all(1)
        return same

    def _inputs_in_box(self, frames: torch.Tensor, prev: torch.Tensor, cur: torch.Tensor, box: Box) -> torch.Tensor:
        """The network input inside ``box`` [N,C_in,h,w], for rows whose mask is unchanged."""
        y0, y1, x0, x1 = box
        inputs = self.inputs[frames, :, y0:y1, x0:x1]
        c = cur[..., y0:y1, x0:x1]
        inputs[:, :3] = c
        if self.enc.motion_input:
            if self.enc.motion_kind == "difference":
                inputs[:, 3:6] = c - prev[..., y0:y1, x0:x1]
            else:
                gate = gate_from_object_mask(self.object_masks[frames], self.size)[..., y0:y1, x0:x1]
                inputs[:, 3:6] = (c - self.background[frames]).abs() * gate
        return inputs

    def _cnn(self, frames: torch.Tensor, patch: torch.Tensor, box: Box, masks: torch.Tensor | None) -> torch.Tensor:
        """The small CNN with the input replaced inside ``box`` by ``patch``: features [N,D]."""
        y0, y1, x0, x1 = box
        # the average pool: 2x2 blocks, stride 2
        region = (y0 // 2, math.ceil(y1 / 2), x0 // 2, math.ceil(x1 / 2))
        full = self.inputs[frames, :, 2 * region[0] : 2 * region[1], 2 * region[2] : 2 * region[3]]
        full[..., y0 - 2 * region[0] : y1 - 2 * region[0], x0 - 2 * region[2] : x1 - 2 * region[2]] = patch
        values = self.cnn.pool(full)
        for layer, block in enumerate(self.cnn.features):
            region, values = _conv_block(block, self.acts[layer], frames, region, values)
        maps = self.acts[-1][frames]
        r0, r1, c0, c1 = region
        maps[..., r0:r1, c0:c1] = values
        return self._read(maps, masks)


def _rows(masks: torch.Tensor | None, row: int) -> torch.Tensor | None:
    return None if masks is None else masks[row : row + 1]


def _steps() -> int:
    from ..models.motion import RECONSTRUCTION_STEPS

    return RECONSTRUCTION_STEPS


def _window(cached: torch.Tensor, frames: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """cached [T,C,h,w] -> its frames' window rows x cols [N,C,.,.], zeros outside the map (as
    the conv's zero padding)."""
    h, w = cached.shape[-2:]
    (a, b), (c, d) = rows, cols
    inside = cached[frames, :, max(a, 0) : min(b, h), max(c, 0) : min(d, w)]
    return F.pad(inside, (max(0, -c), max(0, d - w), max(0, -a), max(0, b - h)))


def _conv_block(
    block: nn.Sequential, cached: torch.Tensor, frames: torch.Tensor, region: Box, values: torch.Tensor
) -> tuple[Box, torch.Tensor]:
    """One conv-BN-ReLU block on the output positions that see ``region`` of its input, where the
    input's new ``values`` are (``cached[frames]`` [N,C,h,w] elsewhere).  Returns the output
    region and its values."""
    conv = block[0]
    (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
    h, w = cached.shape[-2:]
    out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    r0, r1, c0, c1 = region
    o0, o1 = max(0, -(-(r0 + p - k + 1) // s)), min(out_h, (r1 - 1 + p) // s + 1)
    q0, q1 = max(0, -(-(c0 + p - k + 1) // s)), min(out_w, (c1 - 1 + p) // s + 1)
    # the input window those outputs read (input coordinates; outside the map: the zero padding)
    i0, i1, j0, j1 = o0 * s - p, (o1 - 1) * s + k - p, q0 * s - p, (q1 - 1) * s + k - p
    window = _window(cached, frames, (i0, i1), (j0, j1))
    window[..., r0 - i0 : r1 - i0, c0 - j0 : c1 - j0] = values
    out = F.conv2d(window, conv.weight, conv.bias, stride=s)
    for module in list(block)[1:]:
        out = module(out)
    return (o0, o1, q0, q1), out


def _read_features(self: RegionalEncoder, maps: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    return self.cnn.read(maps, masks)


def _read_maps(self: RegionalEncoder, maps: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    if self.cnn.masked_maps is not None:
        maps = self.cnn.masked_maps(maps, masks)
    return maps.flatten(1)


def _readouts() -> dict:
    from ..models.convlstm import ConvLSTMNet
    from ..models.temporal import DecoupledVideoNet

    return {DecoupledVideoNet.features_from_front: _read_features, ConvLSTMNet.features_from_front: _read_maps}


_READOUTS = _readouts()
