"""A frame's features recomputed only where a box of its pixels changed: the perturbation
engine's fast path for the zoo's frame encoder (``FrameEncoder`` with the small CNN).

Every frame of the clip is computed once and its intermediate values kept: the background
colour (and the 4-pixel grid it is the median of), the object evidence (seed and foreground),
the readout mask, the network input, and the activation of every layer of the small CNN.  For a
frame whose pixels changed inside a box (or whose previous frame's did):

1. The front part.  If the background colour is unchanged (the cached grid with the box's
   points replaced) and so is the object evidence inside the box's 2x2 blocks (the foreground,
   and the seed where it is foreground), the object mask is the cached one (its reconstruction
   starts from the same seed in the same foreground), and the network input changes inside the
   box only.  Otherwise the whole front part runs again, and the CNN (below) on the bounding
   box of the input's change; rows in that case go through the CNN together, on the union of
   their boxes.
2. The CNN.  Each layer (the 2x2 average pool, then conv-BN-ReLU blocks) is recomputed on the
   output positions whose receptive field meets the changed region only, from the cached
   activations around them; the region grows by the kernel at every layer.  With a readout
   mask (the zoo's object readout) only the last map's cells under the mask count: the maps are
   >= 0 after the ReLU and multiplied by the mask, so a cell where it is zero adds nothing to
   the mean and cannot be the max.  The recomputation is cut back, layer by layer, to what those
   cells read; a change that cannot reach them leaves the features as they were, with no CNN.
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

from ...models.backbones import FrameEncoder, SmallCNN
from ...models.convlstm import ConvLSTMNet
from ...models.motion import (
    RECONSTRUCTION_STEPS,
    background_colour,
    gate_from_object_mask,
    geodesic_reconstruction,
    object_evidence,
)
from ...models.temporal import DecoupledVideoNet

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
        self.uses_mask = self.enc.object_readout or (self.enc.motion_input and self.enc.motion_kind == "object")
        object_masks = self.background = None
        if self.uses_mask:
            self.grid = self.x[..., ::4, ::4].contiguous()  # the points background_colour reads
            self.background = background_colour(self.x)
            self.seed, self.foreground = object_evidence(prev, self.x, self.background)
            self.object_masks = object_masks = geodesic_reconstruction(self.seed, self.foreground, RECONSTRUCTION_STEPS)
        self.inputs, self.masks = self.enc.front_pairs(prev, self.x, object_masks, self.background)
        self.acts = [self.cnn.pool(self.inputs)]
        for block in self.cnn.features:
            self.acts.append(block(self.acts[-1]))
        self.feats = _READOUTS[type(net).features_from_front](self, self.acts[-1], self.masks)
        # With a readout mask only the last map's cells under it count (the maps are >= 0 after
        # the ReLU, the mask zero elsewhere): cells outside it are never recomputed.
        self.restricted = self.masks is not None and self.cnn.masked_maps is not None
        self.supports = self._supports(self.masks) if self.restricted else None
        self._reached: dict[Box, list[Box]] = {}

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
    def _pairs(self, items: list[Item], region: Box | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each item's previous and current frame cropped to ``region`` (None: whole), [N,3,h,w]
        each; a first frame is its own previous frame."""
        y0, y1, x0, x1 = region or (0, self.size[0], 0, self.size[1])
        prevs, curs = [], []
        for it in items:
            cur = it.cur if it.cur is not None else self.x[it.frame]
            prev = cur if it.frame == 0 else (it.prev if it.prev is not None else self.x[it.frame - 1])
            prevs.append(prev[:, y0:y1, x0:x1])
            curs.append(cur[:, y0:y1, x0:x1])
        return torch.stack(prevs), torch.stack(curs)

    def _group(self, items: list[Item], box: Box | None) -> torch.Tensor:
        frames = torch.tensor([it.frame for it in items], device=self.x.device)
        quick = torch.zeros(len(items), dtype=torch.bool, device=self.x.device)
        if box is not None:
            quick = self._mask_unchanged(items, frames, box)
        feats = self.feats.new_empty(len(items), self.feats.shape[1])
        fast = quick.nonzero().flatten()
        if items[0].cur is None and not (self.enc.motion_input and self.enc.motion_kind == "difference"):
            # only the previous frame changed, and it reaches this frame through the mask alone
            feats[fast] = self.feats[frames[fast]]
            fast = fast[:0]
        need = None
        if len(fast) and self.restricted:
            # rows whose change cannot reach a cell under their frame's readout mask keep their features
            reach = self._affected(box)[-1]
            needs = [_intersect(reach, self.supports[f]) for f in frames[fast].tolist()]
            unchanged = torch.tensor([n is None for n in needs], dtype=torch.bool)
            feats[fast[unchanged]] = self.feats[frames[fast[unchanged]]]
            need = _union([n for n in needs if n is not None])
            fast = fast[~unchanged]
        if len(fast):
            inputs = self._inputs_in_box(frames[fast], [items[k] for k in fast.tolist()], box)
            masks = self.masks[frames[fast]] if self.masks is not None else None
            feats[fast] = self._cnn(frames[fast], inputs, box, masks, need)
        slow = (~quick).nonzero().flatten()
        if len(slow):
            feats[slow] = self._changed_front(frames[slow], *self._pairs([items[k] for k in slow.tolist()]))
        return feats

    def _changed_front(self, frames: torch.Tensor, prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        """Rows whose mask or background may have changed: the whole front part again, then the
        CNN on the bounding box of the input's change (with a readout mask: only on the cells
        under the new mask, all rows together on the union of their boxes and cells; without:
        row by row, the whole frame when the box is most of it)."""
        feats = self.feats.new_empty(len(frames), self.feats.shape[1])
        object_masks, background, needs = None, None, [None] * len(frames)
        rows = list(range(len(frames)))  # the rows that need their inputs
        if self.restricted:  # the readout mask is the object mask: rows it hides wholly need no input
            background = background_colour(cur)
            object_masks = geodesic_reconstruction(*object_evidence(prev, cur, background), RECONSTRUCTION_STEPS)
            needs = self._supports(object_masks)
            hidden = [row for row in rows if needs[row] is None]
            if hidden:
                feats[hidden] = self._read(self.acts[-1][frames[hidden]], object_masks[hidden])
                rows = [row for row in rows if needs[row] is not None]
                if not rows:
                    return feats
                frames, prev, cur = frames[rows], prev[rows], cur[rows]
                object_masks, background, needs = object_masks[rows], background[rows], [needs[r] for r in rows]
        inputs, masks = self.enc.front_pairs(prev, cur, object_masks, background)
        boxes = _bounding_boxes((inputs != self.inputs[frames]).any(1))
        new = feats.new_empty(len(frames), feats.shape[1])
        whole, together = [], {}
        h, w = self.size
        for k, box in enumerate(boxes):
            if box is None:  # only the readout mask changed
                together.setdefault(None, []).append(k)
            elif self.restricted:
                together.setdefault("all", []).append(k)
            elif (box[1] - box[0]) * (box[3] - box[2]) > REGIONAL_SHARE * h * w:
                whole.append(k)
            else:
                together.setdefault(box, []).append(k)
        for key, ks in together.items():
            k_masks = masks[ks] if masks is not None else None
            if key is None:
                new[ks] = self._read(self.acts[-1][frames[ks]], k_masks)
                continue
            box = _union([boxes[k] for k in ks])
            need = _union([needs[k] for k in ks]) if self.restricted else None
            patch = inputs[ks, :, box[0] : box[1], box[2] : box[3]]
            new[ks] = self._cnn(frames[ks], patch, box, k_masks, need)
        if whole:
            new[whole] = self.net.features_from_front(inputs[whole], masks[whole] if masks is not None else None)
        feats[rows] = new
        return feats

    def _supports(self, masks: torch.Tensor) -> list[Box | None]:
        """Readout masks [N,1,h',w'] -> per row the bounding box of the last map's cells the mask
        reaches (``MaskedMaps`` averages it over the same windows), None where it reaches none."""
        cells = F.adaptive_max_pool2d(masks, self.acts[-1].shape[-2:])[:, 0] > 0  # [N,h,w]
        return _bounding_boxes(cells)

    def _affected(self, box: Box) -> list[Box]:
        """The region of every level (the average pool's output, then each conv block's) that a
        change of the input inside ``box`` reaches."""
        if box not in self._reached:
            y0, y1, x0, x1 = box
            h, w = self.acts[0].shape[-2:]
            regions = [(y0 // 2, min(h, math.ceil(y1 / 2)), x0 // 2, min(w, math.ceil(x1 / 2)))]
            for block, act in zip(self.cnn.features, self.acts[1:], strict=True):
                regions.append(_reach(block[0], regions[-1], tuple(act.shape[-2:])))
            self._reached[box] = regions
        return self._reached[box]

    def _read(self, maps: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        return _READOUTS[type(self.net).features_from_front](self, maps, masks)

    def _mask_unchanged(self, items: list[Item], frames: torch.Tensor, box: Box) -> torch.Tensor:
        """Per row: is the object mask (and the background colour) the clip's own?  [N] bool."""
        if not self.uses_mask:
            return torch.ones(len(frames), dtype=torch.bool, device=frames.device)
        b0, b1, c0, c1 = _blocks_box(box)
        region = (2 * b0, 2 * b1, 2 * c0, 2 * c1)
        prev, cur = self._pairs(items, region)
        background = self._background(items, frames, cur, region)
        same = (background == self.background[frames]).flatten(1).all(1)
        seed, foreground = object_evidence(prev, cur, background)
        # the reconstruction reads the foreground everywhere and the seed only where it is foreground
        cached_foreground = self.foreground[frames, :, b0:b1, c0:c1]
        same &= (foreground == cached_foreground).flatten(1).all(1)
        start = torch.minimum(self.seed[frames, :, b0:b1, c0:c1], cached_foreground)
        same &= (torch.minimum(seed, foreground) == start).flatten(1).all(1)
        return same

    def _background(self, items: list[Item], frames: torch.Tensor, crops: torch.Tensor, region: Box) -> torch.Tensor:
        """``background_colour`` of each item's current frame [N,3,1,1], from the clip's 4-pixel
        grid with the points inside ``region`` taken from ``crops`` [N,3,h,w] (an item's frame
        differs from the clip inside its box only, and ``region`` holds the box)."""
        grid = self.grid[frames]
        changed = [k for k, it in enumerate(items) if it.cur is not None]
        y0, y1, x0, x1 = region
        g0, g1, h0, h1 = -(-y0 // 4), -(-y1 // 4), -(-x0 // 4), -(-x1 // 4)
        if changed and g0 < g1 and h0 < h1:
            grid[changed, :, g0:g1, h0:h1] = crops[changed][..., 4 * g0 - y0 :: 4, 4 * h0 - x0 :: 4]
        return grid.flatten(-2).median(-1).values[..., None, None]

    def _inputs_in_box(self, frames: torch.Tensor, items: list[Item], box: Box) -> torch.Tensor:
        """The network input inside ``box`` [N,C_in,h,w], for rows whose mask is unchanged."""
        y0, y1, x0, x1 = box
        prev, c = self._pairs(items, box)
        inputs = self.inputs[frames, :, y0:y1, x0:x1]
        inputs[:, :3] = c
        if self.enc.motion_input:
            if self.enc.motion_kind == "difference":
                inputs[:, 3:6] = c - prev
            else:
                gate = gate_from_object_mask(self.object_masks[frames], self.size)[..., y0:y1, x0:x1]
                inputs[:, 3:6] = (c - self.background[frames]).abs() * gate
        return inputs

    def _cnn(
        self, frames: torch.Tensor, patch: torch.Tensor, box: Box, masks: torch.Tensor | None, need: Box | None = None
    ) -> torch.Tensor:
        """The small CNN with the input replaced inside ``box`` by ``patch``: features [N,D].
        ``need``: the last map's cells the readout sees (None: all); each layer is recomputed only
        where the change reaches and those cells read."""
        affected = self._affected(box)
        last = affected[-1] if need is None else _intersect(affected[-1], need)
        maps = self.acts[-1][frames]
        if last is None:
            return self._read(maps, masks)
        regions = [last]  # each level's region to recompute, from the last back to the pool's
        for block, reached in zip(reversed(self.cnn.features), reversed(affected[:-1]), strict=True):
            region = _intersect(reached, _reads(block[0], regions[0]))
            if region is None:  # the cells read never see the change
                return self._read(maps, masks)
            regions.insert(0, region)
        r0, r1, c0, c1 = regions[0]  # the average pool: 2x2 blocks, stride 2
        full = self.inputs[frames, :, 2 * r0 : 2 * r1, 2 * c0 : 2 * c1]
        y0, y1, x0, x1 = box
        a0, a1, b0, b1 = max(y0, 2 * r0), min(y1, 2 * r1), max(x0, 2 * c0), min(x1, 2 * c1)
        if a0 < a1 and b0 < b1:
            full[..., a0 - 2 * r0 : a1 - 2 * r0, b0 - 2 * c0 : b1 - 2 * c0] = patch[
                ..., a0 - y0 : a1 - y0, b0 - x0 : b1 - x0
            ]
        values = self.cnn.pool(full)
        for layer, block in enumerate(self.cnn.features):
            values = _conv_block(block, self.acts[layer], frames, regions[layer], values, regions[layer + 1])
        r0, r1, c0, c1 = last
        maps[..., r0:r1, c0:c1] = values
        return self._read(maps, masks)


def _rows(masks: torch.Tensor | None, row: int) -> torch.Tensor | None:
    return None if masks is None else masks[row : row + 1]


def _window(cached: torch.Tensor, frames: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """cached [T,C,h,w] -> its frames' window rows x cols [N,C,.,.], zeros outside the map (as
    the conv's zero padding)."""
    h, w = cached.shape[-2:]
    (a, b), (c, d) = rows, cols
    inside = cached[frames, :, max(a, 0) : min(b, h), max(c, 0) : min(d, w)]
    return F.pad(inside, (max(0, -c), max(0, d - w), max(0, -a), max(0, b - h)))


def _reach(conv: nn.Conv2d, region: Box, out_size: tuple[int, int]) -> Box:
    """The conv's output positions whose window meets ``region`` of its input (within the map)."""
    (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
    r0, r1, c0, c1 = region
    out_h, out_w = out_size
    o0, o1 = max(0, -(-(r0 + p - k + 1) // s)), min(out_h, (r1 - 1 + p) // s + 1)
    q0, q1 = max(0, -(-(c0 + p - k + 1) // s)), min(out_w, (c1 - 1 + p) // s + 1)
    return o0, o1, q0, q1


def _reads(conv: nn.Conv2d, region: Box) -> Box:
    """The input window the conv's outputs in ``region`` read (outside the map: the zero padding)."""
    (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
    o0, o1, q0, q1 = region
    return o0 * s - p, (o1 - 1) * s + k - p, q0 * s - p, (q1 - 1) * s + k - p


def _intersect(a: Box, b: Box | None) -> Box | None:
    """The common part of two boxes (None: empty, or ``b`` is None)."""
    if b is None:
        return None
    box = (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[1] and box[2] < box[3] else None


def _union(boxes: list[Box]) -> Box | None:
    """The bounding box of ``boxes`` (None when there are none)."""
    if not boxes:
        return None
    return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))


def _bounding_boxes(cells: torch.Tensor) -> list[Box | None]:
    """cells bool [N,h,w] -> per row the bounding box of its true cells (None: none)."""
    rows, cols = cells.any(2), cells.any(1)  # [N,h], [N,w]
    h, w = rows.shape[1], cols.shape[1]
    found = rows.any(1).tolist()
    top, bottom = rows.int().argmax(1).tolist(), (h - rows.flip(1).int().argmax(1)).tolist()
    left, right = cols.int().argmax(1).tolist(), (w - cols.flip(1).int().argmax(1)).tolist()
    return [(t, b, lf, r) if f else None for f, t, b, lf, r in zip(found, top, bottom, left, right, strict=True)]


def _conv_block(
    block: nn.Sequential, cached: torch.Tensor, frames: torch.Tensor, region: Box, values: torch.Tensor, out: Box
) -> torch.Tensor:
    """One conv-BN-ReLU block's outputs in ``out`` [N,C',.,.], where its input has the new
    ``values`` in ``region`` (which must hold every changed position the outputs read) and
    ``cached[frames]`` [N,C,h,w] elsewhere."""
    conv = block[0]
    i0, i1, j0, j1 = _reads(conv, out)
    window = _window(cached, frames, (i0, i1), (j0, j1))
    r0, r1, c0, c1 = region
    window[..., r0 - i0 : r1 - i0, c0 - j0 : c1 - j0] = values
    result = F.conv2d(window, conv.weight, conv.bias, stride=conv.stride)
    for module in list(block)[1:]:
        result = module(result)
    return result


def _read_features(self: RegionalEncoder, maps: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    return self.cnn.read(maps, masks)


def _read_maps(self: RegionalEncoder, maps: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    if self.cnn.masked_maps is not None:
        maps = self.cnn.masked_maps(maps, masks)
    return maps.flatten(1)


# How each decoupled net reads its features from the last map (``features_from_front``).
_READOUTS = {DecoupledVideoNet.features_from_front: _read_features, ConvLSTMNet.features_from_front: _read_maps}
