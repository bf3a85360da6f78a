"""Fast, exact scores of many perturbed copies of one clip (frame masking, occlusion, deletion).

``PerturbationEngine(model, x, target, baseline).scores(perturbations)`` gives the explained score
of every perturbed clip, the same numbers as running each through the model (``perturbation.apply``
then ``model``), up to float rounding.  The strategy depends on what the model allows:

* **split** (decoupled models whose frame encoder has a cheap front part across frames and a
  per-frame network, ``features_from_front``: the zoo's CNN + Transformer / LSTM / ConvLSTM).
  Every frame's network input, readout mask and features are computed once.  A perturbation of
  frames s..e changes only frames s..e+c-1 (c = ``frame_context``); for each, the front part is
  recomputed on its window and compared with the cache: equal bit for bit -> the cached features;
  else the per-frame network runs (``regional``: only where its input changed, for the small
  CNN).  Sequences whose features all equal the clip's keep its score without a head pass; the
  others go through the temporal head in batches.
* **decoupled** (a temporal head without that split): the touched frames' features from windows
  of c frames, then the head.
* **whole clip** (3D CNNs, your own models): every perturbed clip through the model, in batches;
  where the network's forward can be traced, **incrementally** (``incremental``): each layer
  recomputes only the positions the perturbation's box reaches, the rest taken from the clean
  clip's pass, for ``group_size`` perturbations whose boxes have one size at once (exact; a box
  over ``INCREMENTAL_SHARE`` of the clip runs whole).

``progress(done, total)`` is called after every chunk (it may raise to cancel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ... import jobs
from ...explanation import Target
from . import regional
from .incremental import IncrementalNet
from .perturbation import Perturbation, apply, fill_clip, fill_frames, measure_scores, perturb_frames
from .regional import Item

CHUNK = 64  # perturbations prepared at once (bounds the memory of the perturbed windows)
# Clips or feature sequences per model call.  Whole clips: on the 2-core CPU one at a time was
# as fast per clip as larger batches (DEVELOPERS.md); the temporal heads are small, 32 sequences
# of 33 tokens at once amortise the per-call cost.  A GPU takes more.
CPU_CLIPS, GPU_CLIPS = 1, 16
CPU_SEQUENCES, GPU_SEQUENCES = 32, 256
INCREMENTAL_SHARE = 0.25  # a perturbation over more of the clip: the whole clip through the model
# Perturbations through the incremental network at once: at most GROUP, and as many as keep each
# whole layer output of the group under the memory budget (measured on the 2-core CPU: r3d-sides
# fastest at 16; torchvision's r3d_18, whose early layers run whole, 2.5x slower at 16 than at 4)
CPU_GROUP, GPU_GROUP = 16, 64
CPU_DENSE_BUDGET = 64 * 2**20  # bytes of one layer's whole outputs for a group
FIRST_GROUP = 4  # the first group of a box size, which measures the size of its whole outputs

Progress = Callable[[int, int], None]


def strategy_for(model) -> str:
    """ "split", "decoupled" or "whole" (see the module's docstring)."""
    net = model.net
    if "temporal_head" not in model.capabilities:
        return "whole"
    if callable(getattr(net, "features_from_front", None)) and callable(getattr(net.frame_encoder, "front", None)):
        return "split"
    return "decoupled"


class PerturbationEngine:
    """Scores of perturbed copies of ``x [1,T,C,H,W]`` for one target; ``baseline`` and ``measure``
    as in ``perturbation`` (``measure`` may also be a function of the outputs [B,K] -> [B]).
    ``strategy``: None picks the fastest the model allows; ``plain``: the split strategy without
    the regional recomputation, the whole-clip strategy without the incremental one (for comparisons)."""

    def __init__(
        self,
        model,
        x: torch.Tensor,
        target: Target,
        baseline: str = "zero",
        measure: str | Callable[[torch.Tensor], torch.Tensor] = "score",
        blur_sigma: float = 5.0,
        strategy: str | None = None,
        plain: bool = False,
    ) -> None:
        self.model, self.target, self.measure = model, target, measure
        self.x = x.detach()
        self.frames = x.shape[1]
        self.fill = fill_clip(model, self.x, baseline, blur_sigma)
        self.strategy = strategy or strategy_for(model)
        gpu = self.x.device.type == "cuda"
        self.clips_per_call = GPU_CLIPS if gpu else CPU_CLIPS
        self.sequences_per_call = GPU_SEQUENCES if gpu else CPU_SEQUENCES
        self.group_size = GPU_GROUP if gpu else CPU_GROUP
        self.dense_bytes: dict[tuple[int, ...], int] = {}  # box size -> one perturbation's largest whole output
        self.context = model.frame_context
        self.incremental: IncrementalNet | None = None
        with torch.inference_mode():
            if self.strategy == "whole":
                self.base_score = float(self._measure(model(self.x))[0])
                self.incremental = None if plain else _incremental(model, self.x)
                return
            net = model.net
            self.regional = None
            if self.strategy == "split" and regional.supports(net) and not plain:
                self.regional = regional.RegionalEncoder(net, self.x)
                self.feats = self.regional.feats
            elif self.strategy == "split":
                self.inputs, self.masks = net.frame_encoder.front(self.x)
                self.feats = net.features_from_front(self.inputs, self.masks)
            else:
                self.feats = model.encode_frames(self.x)[0]
            self.base_score = float(self._measure(net.temporal_head(self.feats[None]))[0])

    def _measure(self, output: torch.Tensor) -> torch.Tensor:
        if callable(self.measure):  # e.g. whether the prediction is right: output [B,K] -> [B]
            return self.measure(output)
        return measure_scores(output, self.target, self.measure)

    # ------------------------------------------------------------------ public
    def perturbed(self, p: Perturbation) -> torch.Tensor:
        """The whole perturbed clip [1,T,C,H,W] (the slow definition)."""
        return apply(self.model, self.x, self.fill, p)

    @torch.inference_mode()
    def scores(self, perturbations: Sequence[Perturbation], progress: Progress | None = None) -> torch.Tensor:
        """The score of each perturbed clip, float64 [P] on the CPU."""
        out = torch.empty(len(perturbations), dtype=torch.float64)
        # the same box at different frames together: the regional path batches them
        order = sorted(range(len(perturbations)), key=lambda i: (perturbations[i].box or (-1,), perturbations[i].start))
        for start in range(0, len(order), CHUNK):
            rows = order[start : start + CHUNK]
            chunk = [perturbations[i] for i in rows]
            out[rows] = self._whole(chunk) if self.strategy == "whole" else self._by_frames(chunk)
            if progress is not None:
                progress(start + len(chunk), len(perturbations))
        return out

    @torch.inference_mode()
    def subset_scores(self, masked: torch.Tensor, progress: Progress | None = None) -> torch.Tensor:
        """masked bool [P,T]: which frames each clip has replaced by the baseline (any subset) ->
        the scores, float64 [P].  Split models: every frame's features under the four cases of
        (previous frame masked, frame masked) are computed once, then each subset is a lookup and
        a head pass.  The baseline must not depend on the window ("previous")."""
        if self.fill is None:
            raise ValueError("masking arbitrary sets of frames needs a baseline of its own per frame, not 'previous'")
        masked = masked.to(torch.bool).cpu()
        out = torch.empty(len(masked), dtype=torch.float64)
        if self.strategy != "split":
            for i in range(len(masked)):
                clip = torch.where(masked[i].to(self.x.device)[None, :, None, None, None], self.fill, self.x)
                out[i] = float(self._measure(self.model(clip))[0])
                if progress is not None:
                    progress(i + 1, len(masked))
            return out
        variants = self._frame_variants()  # [T,2,2,D]: (previous masked, this masked)
        frames = torch.arange(self.frames)
        prev = torch.cat([masked[:, :1], masked[:, :-1]], dim=1)  # frame 0 follows itself
        for start in range(0, len(masked), self.sequences_per_call):
            rows = slice(start, start + self.sequences_per_call)
            feats = variants[frames, prev[rows].long(), masked[rows].long()]  # [p,T,D]
            out[rows] = self._measure(self.model.net.temporal_head(feats)).double().cpu()
            if progress is not None:
                progress(min(len(masked), start + self.sequences_per_call), len(masked))
        return out

    def _frame_variants(self) -> torch.Tensor:
        """Features of every frame with its previous frame and itself each original or masked, [T,2,2,D]."""
        net, x, fill = self.model.net, self.x[0], self.fill[0]
        prev_x, prev_fill = torch.cat([x[:1], x[:-1]]), torch.cat([fill[:1], fill[:-1]])
        variants = self.feats.new_empty(self.frames, 2, 2, self.feats.shape[1])
        for pm, prev in enumerate((prev_x, prev_fill)):
            for cm, cur in enumerate((x, fill)):
                first = cur[:1]  # frame 0's previous frame is itself
                pairs = (torch.cat([first, prev[1:]]), cur)
                variants[:, pm, cm] = net.features_from_front(*net.frame_encoder.front_pairs(*pairs))
        return variants

    # ------------------------------------------------------------------ strategies
    def _whole(self, chunk: Sequence[Perturbation]) -> torch.Tensor:
        if self.incremental is None:
            return self._whole_clips(chunk)
        scores = torch.empty(len(chunk), dtype=torch.float64)
        whole, groups = [], {}
        for i, p in enumerate(chunk):
            box = _box(p, self.x.shape)
            if math.prod(hi - lo for lo, hi in box) > INCREMENTAL_SHARE * self.x.numel():
                whole.append(i)
            else:  # boxes of one size go through the network together
                groups.setdefault(tuple(hi - lo for lo, hi in box), []).append(i)
        for box_size, rows in groups.items():
            start = 0
            while start < len(rows):
                jobs.check()
                known = self.dense_bytes.get(box_size)
                size = min(FIRST_GROUP, self._group_size(0)) if known is None else self._group_size(known)
                part = rows[start : start + size]
                scores[part] = self._measure(self._incremental_outputs([chunk[i] for i in part])).double().cpu()
                self.dense_bytes[box_size] = self.incremental.last_dense_bytes
                start += len(part)
        if whole:
            scores[whole] = self._whole_clips([chunk[i] for i in whole])
        return scores

    def _group_size(self, dense_bytes: int) -> int:
        """Perturbations per incremental call: ``group_size`` at most, and as many as keep one layer's
        whole outputs (``dense_bytes`` each) under the budget (a quarter of the free memory on a GPU)."""
        if not self.incremental.batchable:
            return 1
        if self.x.device.type == "cuda":
            budget = torch.cuda.mem_get_info(self.x.device)[0] // 4
        else:
            budget = CPU_DENSE_BUDGET
        return max(1, min(self.group_size, budget // max(dense_bytes, 1)))

    def _incremental_outputs(self, group: Sequence[Perturbation]) -> torch.Tensor:
        """The model's outputs [P,K] on perturbations whose boxes have one size (incrementally)."""
        patches, corners = [], []
        for p in group:
            content = perturb_frames(self.x[0, p.start : p.stop], fill_frames(self.model, self.x, self.fill, p), p)
            *_, (y0, y1), (x0, x1) = _box(p, self.x.shape)
            patch, corner = _net_patch(self.model.layout, content[:, :, y0:y1, x0:x1], p.start, y0, x0)
            patches.append(patch)
            corners.append(corner)
        return self.incremental.many(torch.stack(patches), corners)

    def _whole_clips(self, chunk: Sequence[Perturbation]) -> torch.Tensor:
        scores = torch.empty(len(chunk), dtype=torch.float64)
        for i in range(0, len(chunk), self.clips_per_call):
            jobs.check()  # a whole model pass each: a cancel need not wait for the chunk
            clips = torch.cat([self.perturbed(p) for p in chunk[i : i + self.clips_per_call]])
            scores[i : i + len(clips)] = self._measure(self.model(clips)).double().cpu()
        return scores

    def _items(self, chunk: Sequence[Perturbation]) -> list[tuple[int, Item]]:
        """(perturbation index, frame item) for every frame whose features the perturbation may
        change: its own frames and the ``frame_context - 1`` after them (split strategy, c <= 2)."""
        out = []
        for i, p in enumerate(chunk):
            content = perturb_frames(self.x[0, p.start : p.stop], fill_frames(self.model, self.x, self.fill, p), p)
            for a in range(p.start, min(self.frames, p.stop + self.context - 1)):
                prev = content[a - 1 - p.start] if a >= 1 and p.start <= a - 1 < p.stop else None
                cur = content[a - p.start] if a < p.stop else None
                out.append((i, Item(a, prev, cur, p.box)))
        return out

    def _windows(self, chunk: Sequence[Perturbation]) -> list[tuple[int, int, torch.Tensor]]:
        """(perturbation index, frame a, perturbed window x[a-c+1..a] [L,C,H,W]) for every frame
        whose features the perturbation may change (decoupled strategy)."""
        items = []
        for i, p in enumerate(chunk):
            content = perturb_frames(self.x[0, p.start : p.stop], fill_frames(self.model, self.x, self.fill, p), p)
            for a in range(p.start, min(self.frames, p.stop + self.context - 1)):
                lo = max(0, a - self.context + 1)
                window = self.x[0, lo : a + 1].clone()
                for f in range(max(lo, p.start), min(a + 1, p.stop)):
                    window[f - lo] = content[f - p.start]
                items.append((i, a, window))
        return items

    def _split_features(self, chunk: Sequence[Perturbation]) -> dict[tuple[int, int], torch.Tensor]:
        """(perturbation, frame) -> new features (split strategy)."""
        items = self._items(chunk)
        if not items:
            return {}
        if self.regional is not None:
            feats = self.regional.features([item for _, item in items])
            return {(i, item.frame): feats[k] for k, (i, item) in enumerate(items)}
        net = self.model.net
        frames = torch.tensor([item.frame for _, item in items], device=self.x.device)
        cur = torch.stack([item.cur if item.cur is not None else self.x[0, item.frame] for _, item in items])
        prev = torch.stack(
            [
                item.prev if item.prev is not None else (self.x[0, item.frame - 1] if item.frame else cur[k])
                for k, (_, item) in enumerate(items)
            ]
        )
        inputs, masks = net.frame_encoder.front_pairs(prev, cur)
        same = (inputs == self.inputs[frames]).flatten(1).all(1)
        if masks is not None:
            same &= (masks == self.masks[frames]).flatten(1).all(1)
        changed = {}
        todo = (~same).nonzero().flatten().tolist()
        if todo:
            feats = net.features_from_front(inputs[todo], masks[todo] if masks is not None else None)
            for row, k in enumerate(todo):
                changed[(items[k][0], items[k][1].frame)] = feats[row]
        return changed

    def _window_features(self, chunk: Sequence[Perturbation]) -> dict[tuple[int, int], torch.Tensor]:
        """(perturbation, frame) -> new features (decoupled strategy: windows of c frames)."""
        changed = {}
        by_length: dict[int, list] = {}
        for item in self._windows(chunk):
            by_length.setdefault(len(item[2]), []).append(item)
        for length, group in by_length.items():
            windows = torch.stack([w for _, _, w in group])  # [N,L,C,H,W]
            originals = torch.stack([self.x[0, a - length + 1 : a + 1] for _, a, _ in group])
            todo = (~(windows == originals).flatten(1).all(1)).nonzero().flatten().tolist()
            if todo:
                feats = self.model.encode_frames(windows[todo])[:, -1]
                for row, k in enumerate(todo):
                    changed[group[k][:2]] = feats[row]
        return changed

    def _by_frames(self, chunk: Sequence[Perturbation]) -> torch.Tensor:
        changed = self._split_features(chunk) if self.strategy == "split" else self._window_features(chunk)
        scores = torch.full((len(chunk),), self.base_score, dtype=torch.float64)
        sequences: dict[int, torch.Tensor] = {}
        for (i, a), feat in changed.items():
            if torch.equal(feat, self.feats[a]):  # e.g. a change the readout mask hides
                continue
            if i not in sequences:
                sequences[i] = self.feats.clone()
            sequences[i][a] = feat
        order = sorted(sequences)
        for k in range(0, len(order), self.sequences_per_call):
            rows = order[k : k + self.sequences_per_call]
            head = self.model.net.temporal_head(torch.stack([sequences[i] for i in rows]))
            scores[rows] = self._measure(head).double().cpu()
        return scores


def _box(p: Perturbation, shape: torch.Size) -> tuple[tuple[int, int], ...]:
    """Where perturbation p changes a clip of ``shape`` [1,T,C,H,W]: (lo, hi) for every dimension."""
    y0, y1, x0, x1 = p.box or (0, shape[3], 0, shape[4])
    return ((0, shape[0]), (p.start, p.stop), (0, shape[2]), (y0, y1), (x0, x1))


def _net_patch(layout: str, patch: torch.Tensor, start: int, y0: int, x0: int) -> tuple[torch.Tensor, tuple]:
    """A perturbation's values [t,C,h,w] from frame ``start``, pixel (y0, x0) -> the patch in the
    network's layout and its corner (every dimension but the batch)."""
    if layout == "BCTHW":
        return patch.transpose(0, 1), (0, start, y0, x0)
    return patch, (start, 0, y0, x0)


def _incremental(model, x: torch.Tensor) -> IncrementalNet | None:
    """The model's network prepared for incremental passes on x [1,T,C,H,W], or None where its
    forward cannot be traced (the whole clips then)."""

    def net_input(clip: torch.Tensor) -> torch.Tensor:
        return clip.transpose(1, 2) if model.layout == "BCTHW" else clip

    try:
        net = IncrementalNet(model.net, net_input(x))
        # two small changes, in one group, checked against whole passes before any is trusted
        probes = [Perturbation(0, 1, (0, 8, 0, 8)), Perturbation(x.shape[1] - 1, x.shape[1], (8, 16, 8, 16))]
        probes = [p for p in probes if p.box[1] <= x.shape[3] and p.box[3] <= x.shape[4]][: 2 if net.batchable else 1]
        clips = torch.cat([x.clone() for _ in probes])
        patches, corners = [], []
        for k, p in enumerate(probes):
            y0, y1, x0, x1 = p.box
            clips[k, p.start, :, y0:y1, x0:x1] = 0
            patch, corner = _net_patch(model.layout, clips[k, p.start : p.stop, :, y0:y1, x0:x1], p.start, y0, x0)
            patches.append(patch)
            corners.append(corner)
        got = net.many(torch.stack(patches), corners)
        expected = torch.cat([model(clips[k : k + 1]) for k in range(len(probes))])  # each clip alone
    except Exception:  # noqa: BLE001 - an untraceable forward: whole clips, as before
        return None
    scale = float(expected.abs().max()) + 1e-12
    return net if torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * scale) else None
