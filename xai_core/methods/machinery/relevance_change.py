"""How much a base attribution R changes when a clip is perturbed: ``delta(p) = sum |R(x) - R(x_p)|``
over every frame and pixel, for many perturbations ``p`` of one clip (the inner loop of TSR).

``ReferenceChange`` runs the base method on every perturbed clip: any registered method, one
attribution per perturbation.

``BatchedGradients`` serves the same gradient maps on any other model (3D CNNs, your own): the
perturbed clips' gradients in batched backward passes, several clips a pass.  No more can be
re-used there: a perturbation changes the head's gradient, so every pixel's gradient changes and
each perturbed clip needs a whole backward pass.

``GradientChange`` is exact and much faster for the gradient maps (``saliency``, and
``input_x_gradient``) of decoupled models with a split frame encoder (the zoo's CNN + Transformer /
LSTM / ConvLSTM).  There ``score = H(f_1..f_T)`` and ``f_a = E(x_{a-1}, x_a)``, so the map of frame q
is ``R_q = sum_{a in (q, q+1)} K_{a,q}^T g_a`` with ``g_a = dH/df_a`` and ``K_{a,q}`` the Jacobian of
``f_a`` w.r.t. frame q, summed over colour channels (times the pixel values for input x gradient).
A perturbation of frames s..e-1 changes the features of frames s..e only (``A``); frames whose
inputs it did not touch keep their Jacobians, so for them only the head's gradient changes:

* the clip's Jacobians are computed once (D batched backward passes through the frame encoder,
  stored without their all-zero columns: pixels no feature depends on);
* per perturbation: the features of ``A`` from the perturbed frames, the head's gradient ``g~``
  (forward and backward on the feature sequence), and a backward through the encoder for ``A``;
* every untouched frame's change is ``K^T (g - g~)``: one matrix product for many perturbations.

Both give the same numbers up to float rounding (the tests compare them in float64).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ... import jobs
from ...explanation import Target
from .clock import now
from .incremental import batch_independent
from .perturbation import Perturbation, apply, fill_clip, fill_frames, perturb_frames
from .registry import MethodError, get_method
from .scoring import gradient_input

GRADIENT_BASES = ("saliency", "input_x_gradient")
CHUNK = 16  # perturbations at once: their features, head passes and encoder backward passes (~0.5 s)
JACOBIAN_CHUNK = 4  # Jacobian rows per batched backward pass (measured: 4 rows 0.2 s, 16 rows 1 s; all 96 rows
# of the default model 4.1 s in 4s, 5.5 s in 16s): short passes let a cancel take effect soon
JACOBIAN_STAGE = "preparing the gradient engine: Jacobian rows"
# Perturbed clips per batched backward pass (r3d-sides on the 2-core CPU, per clip: 40 ms one at a
# time, 27 ms four at a time, 31 ms eight at a time)
CPU_GRADIENT_CLIPS, GPU_GRADIENT_CLIPS = 4, 16
MAX_FEATURES = 512  # per-frame features beyond which the Jacobians cost more than they save

Progress = Callable[[int, int], None]


def gradient_change_applies(model, base: str, feature_dim: int | None = None) -> bool:
    """Whether ``GradientChange`` can serve ``base`` on ``model`` (``feature_dim``: its per-frame
    feature size when known; the Jacobians cost one backward pass per feature, so nets with large
    per-frame features, the ConvLSTM's maps, are left to the reference loop)."""
    net = model.net
    return (
        base in GRADIENT_BASES
        and "temporal_head" in model.capabilities
        and callable(getattr(net, "features_from_front", None))
        and callable(getattr(getattr(net, "frame_encoder", None), "front_pairs", None))
        and model.frame_context <= 2
        and (feature_dim is None or feature_dim <= MAX_FEATURES)
    )


def uses_gradient_engine(model, x: torch.Tensor, base: str, engine: str) -> bool:
    """Whether ``change_engine`` picks ``GradientChange`` for ``base`` on ``model`` (x [1,T,C,H,W])."""
    with torch.no_grad():
        dim = model.encode_frames(x[:, :1]).shape[-1] if "temporal_head" in model.capabilities else None
    return engine == "auto" and gradient_change_applies(model, base, dim)


def uses_batched_gradients(model, base: str, engine: str) -> bool:
    """Whether ``change_engine`` picks ``BatchedGradients`` (when ``GradientChange`` does not apply):
    the gradient maps of a model without a temporal head (3D CNNs, your own), engine "auto"."""
    return engine == "auto" and base in GRADIENT_BASES and "temporal_head" not in model.capabilities


def base_method(model, base: str | None):
    """The registered method TSR rescales (``base``; saliency when empty), or MethodError saying
    why it cannot be one: not a spatial method, not available for ``model``, or TSR itself."""
    spec = get_method(base or "saliency")
    if spec.family != "spatial":
        raise MethodError(f"TSR needs a spatial base method; {spec.name} is {spec.family}")
    reason = spec.unavailable_reason(model)
    if reason:
        raise MethodError(reason)
    if spec.name in ("tsr", "tsr_onestep"):
        raise MethodError("TSR cannot rescale itself; choose another base method")
    return spec


def change_engine(model, x: torch.Tensor, target: Target, base: str, baseline: str, blur_sigma: float, engine: str):
    """The engine of TSR's sums for this base method and model (``engine`` "auto"): ``GradientChange``
    where it applies, ``BatchedGradients`` for the gradient maps of models without a temporal head
    (3D CNNs, your own), else (and for "reference") ``ReferenceChange``; a base TSR cannot use
    raises MethodError."""
    spec = base_method(model, base)
    if uses_gradient_engine(model, x, spec.name, engine):
        return GradientChange(model, x, target, spec.name, baseline, blur_sigma)
    if uses_batched_gradients(model, spec.name, engine):
        return BatchedGradients(model, x, target, spec.name, baseline, blur_sigma)
    return ReferenceChange(model, x, target, spec.name, {}, baseline, blur_sigma)


class ReferenceChange:
    """``delta`` by running the registered ``base`` method on each perturbed clip."""

    def __init__(
        self, model, x: torch.Tensor, target: Target, base: str, base_params: dict, baseline: str, blur_sigma: float
    ):
        self.model, self.x, self.target = model, x.detach(), target
        self.spec = get_method(base)
        self.params = self.spec.resolve_params(base_params)
        self.fill = fill_clip(model, self.x, baseline, blur_sigma)
        self.relevance = self._map(self.x)

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        spatial = self.spec.fn(self.model, x, self.target, **self.params).spatial
        return torch.as_tensor(spatial, dtype=torch.float64)

    def deltas(self, perturbations: Sequence[Perturbation], progress: Progress | None = None) -> torch.Tensor:
        out = torch.empty(len(perturbations), dtype=torch.float64)
        for i, p in enumerate(perturbations):
            out[i] = (self._map(apply(self.model, self.x, self.fill, p)) - self.relevance).abs().sum()
            if progress is not None:
                progress(i + 1, len(perturbations))
        return out


class BatchedGradients:
    """``delta`` for R = saliency / input_x_gradient on any model: ``clips`` perturbed clips per
    backward pass (the registered methods' maps: the gradient, times the clip for input x
    gradient, summed over the colour channels)."""

    def __init__(
        self,
        model,
        x: torch.Tensor,
        target: Target,
        base: str,
        baseline: str,
        blur_sigma: float,
        clips: int | None = None,
    ):
        if base not in GRADIENT_BASES:
            raise ValueError(f"batched gradients serve {' and '.join(GRADIENT_BASES)}, not {base}")
        self.model, self.x, self.target = model, x.detach(), target
        self.times_input = base == "input_x_gradient"
        self.fill = fill_clip(model, self.x, baseline, blur_sigma)
        self.clips = clips or (GPU_GRADIENT_CLIPS if self.x.device.type == "cuda" else CPU_GRADIENT_CLIPS)
        if not batch_independent(model.net):  # batch statistics: each clip must be alone in its pass
            self.clips = 1
        self.relevance = self._maps(self.x)[0]

    def _maps(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B,T,C,H,W] -> each clip's map [B,T,H,W] float64 (float32 values, as the method gives)."""
        with torch.enable_grad():
            leaf = gradient_input(clips)
            (grad,) = torch.autograd.grad(self.target.score(self.model(leaf)).sum(), leaf)
        attribution = grad * leaf.detach() if self.times_input else grad
        return attribution.sum(2).float().double().cpu()

    def deltas(self, perturbations: Sequence[Perturbation], progress: Progress | None = None) -> torch.Tensor:
        out = torch.empty(len(perturbations), dtype=torch.float64)
        for start in range(0, len(perturbations), self.clips):
            jobs.check()
            chunk = perturbations[start : start + self.clips]
            clips = torch.cat([apply(self.model, self.x, self.fill, p) for p in chunk])
            out[start : start + len(chunk)] = (self._maps(clips) - self.relevance).abs().sum((1, 2, 3))
            if progress is not None:
                progress(start + len(chunk), len(perturbations))
        return out


class GradientChange:
    """``delta`` for R = saliency / input_x_gradient on a split decoupled model (see the module)."""

    def __init__(
        self,
        model,
        x: torch.Tensor,
        target: Target,
        base: str,
        baseline: str,
        blur_sigma: float,
        jacobian_rows: int | None = None,
    ):
        """``jacobian_rows``: compute only the first rows of the Jacobians (the rest stay 0), for
        timing a sample of the work (``planning``); its deltas are then not the method's."""
        if not gradient_change_applies(model, base):
            raise ValueError(f"the gradient engine does not apply to {base} on {model.name}")
        self.model, self.net, self.target = model, model.net, target
        self.times_input = base == "input_x_gradient"
        self.x = x.detach()[0]  # [T,C,H,W]
        self.frames = self.x.shape[0]
        self.fill = fill_clip(model, x.detach(), baseline, blur_sigma)
        prev = torch.cat([self.x[:1], self.x[:-1]])
        with torch.enable_grad():
            prev_, cur_ = prev.clone().requires_grad_(True), self.x.clone().requires_grad_(True)
            feats = self._features(prev_, cur_)  # [T,D]
            self.feats = feats.detach()
            self.grads = self._head_gradient(self.feats[None])[0]  # [T,D]
            g_prev, g_cur = torch.autograd.grad(feats, (prev_, cur_), grad_outputs=self.grads)
        self.relevance = self._combine_frames(g_prev, g_cur, self.x).double()  # [T,H,W]
        self.feature_dim = self.feats.shape[1]
        self.jacobian_chunk_seconds: list[float] = []  # each batched backward pass, as timed
        self._jacobians(prev, self.feature_dim if jacobian_rows is None else min(jacobian_rows, self.feature_dim))

    # ------------------------------------------------------------------ pieces
    def _features(self, prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        return self.net.features_from_front(*self.net.frame_encoder.front_pairs(prev, cur))

    def _head_gradient(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [P,T,D] -> d score / d feats [P,T,D] (each sequence's own score)."""
        with torch.enable_grad():
            leaf = feats.detach().requires_grad_(True)
            score = self.target.score(self.net.temporal_head(leaf))
            return torch.autograd.grad(score.sum(), leaf)[0]

    def _weight(self, frames: torch.Tensor) -> torch.Tensor | float:
        return frames if self.times_input else 1.0

    def _combine(self, grad: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Per-channel gradient [...,C,H,W] -> the map [...,H,W] (times the frame for input x gradient)."""
        return (grad * self._weight(frame)).sum(-3)

    def _combine_frames(self, g_prev: torch.Tensor, g_cur: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Gradients w.r.t. each frame pair [T,C,H,W] x 2 -> the map of every frame [T,H,W]: frame q
        gets its own pair's ``cur`` part and the next pair's ``prev`` part (frame 0 both of its own)."""
        total = g_cur.clone()
        total[:-1] += g_prev[1:]
        total[0] += g_prev[0]
        return self._combine(total, frames)

    def _jacobians(self, prev: torch.Tensor, rows_wanted: int) -> None:
        """K[which][a]: d f_a / d (prev_a or cur_a), channel-combined, as (columns [D,n], pixel
        indices [n]); rows past ``rows_wanted`` are left 0 (a timing sample)."""
        t, _, h, w = self.x.shape
        d = self.feats.shape[1]
        cur_k = torch.zeros(t, d, h * w, dtype=self.x.dtype, device=self.x.device)
        prev_k = torch.zeros_like(cur_k)
        with torch.enable_grad():
            prev_, cur_ = prev.clone().requires_grad_(True), self.x.clone().requires_grad_(True)
            feats = self._features(prev_, cur_)
            for lo in range(0, rows_wanted, JACOBIAN_CHUNK):
                jobs.report(lo, d, JACOBIAN_STAGE)  # the first stage of a run: progress from its start
                started = now(self.x.device)
                rows = torch.arange(lo, min(rows_wanted, lo + JACOBIAN_CHUNK), device=self.x.device)
                basis = torch.zeros(len(rows), t, d, dtype=feats.dtype, device=feats.device)
                basis[torch.arange(len(rows)), :, rows] = 1.0
                g_prev, g_cur = torch.autograd.grad(
                    feats, (prev_, cur_), grad_outputs=basis, is_grads_batched=True, retain_graph=True
                )  # [r,T,C,H,W] each
                cur_k[:, lo : lo + len(rows)] = self._combine(g_cur, self.x).transpose(0, 1).flatten(2)
                prev_k[:, lo : lo + len(rows)] = self._combine(g_prev, prev).transpose(0, 1).flatten(2)
                self.jacobian_chunk_seconds.append(now(self.x.device) - started)
        # frame 0 is its own previous frame: both parts belong to it
        cur_k[0] += prev_k[0]
        prev_k[0] = 0
        self.jacobian = {"cur": [_sparse(k) for k in cur_k], "prev": [_sparse(k) for k in prev_k]}

    # ------------------------------------------------------------------ perturbations
    def deltas(self, perturbations: Sequence[Perturbation], progress: Progress | None = None) -> torch.Tensor:
        out = torch.empty(len(perturbations), dtype=torch.float64)
        for start in range(0, len(perturbations), CHUNK):
            chunk = perturbations[start : start + CHUNK]
            out[start : start + len(chunk)] = self._chunk(chunk)
            if progress is not None:
                progress(start + len(chunk), len(perturbations))
        return out

    def _chunk(self, chunk: Sequence[Perturbation]) -> torch.Tensor:
        t = self.frames
        # the perturbed frames, and every (perturbation, frame a) whose features change
        contents, items = [], []
        for i, p in enumerate(chunk):
            content = perturb_frames(self.x[p.start : p.stop], fill_frames(self.model, self.x[None], self.fill, p), p)
            contents.append(content)
            for a in range(p.start, min(t, p.stop + 1)):
                items.append((i, a))

        def frame(i: int, q: int) -> torch.Tensor:
            p = chunk[i]
            return contents[i][q - p.start] if p.start <= q < p.stop else self.x[q]

        cur = torch.stack([frame(i, a) for i, a in items])
        prev = torch.stack([frame(i, a - 1) if a > 0 else cur[k] for k, (i, a) in enumerate(items)])
        with torch.enable_grad():
            prev_, cur_ = prev.clone().requires_grad_(True), cur.clone().requires_grad_(True)
            first = torch.tensor([a == 0 for _, a in items], device=cur.device)
            pair_prev = torch.where(first[:, None, None, None], cur_, prev_)  # a first frame follows itself
            feats = self._features(pair_prev, cur_)
            sequences = self.feats.expand(len(chunk), -1, -1).clone()
            rows = torch.tensor([i for i, _ in items], device=cur.device)
            cols = torch.tensor([a for _, a in items], device=cur.device)
            sequences[rows, cols] = feats.detach()
            grads = self._head_gradient(sequences)  # [P,T,D]
            g_prev, g_cur = torch.autograd.grad(feats, (prev_, cur_), grad_outputs=grads[rows, cols])
        # every frame's change from the head's new gradient alone (correct for untouched frames)
        change = self._untouched_changes(self.grads[None] - grads)  # [P,T]
        # the touched frames: their maps assembled exactly and compared with the clip's
        vjp_cur = {(i, a): g_cur[k] for k, (i, a) in enumerate(items)}
        vjp_prev = {(i, a): g_prev[k] for k, (i, a) in enumerate(items)}
        for i, p in enumerate(chunk):
            touched = range(p.start, min(t, p.stop + 1))
            for q in range(max(0, p.start - 1), min(t, p.stop + 1)):
                cached = torch.zeros_like(self.x[0, 0])
                grad = torch.zeros_like(self.x[0])
                for a, which in ((q, "cur"), (q + 1, "prev")):
                    if a >= t:
                        continue
                    if a in touched:  # (a first frame's pair is (x0, x0): its gradient is all in cur)
                        grad = grad + (vjp_cur if which == "cur" else vjp_prev)[(i, a)]
                    else:
                        cached = cached + _apply(self.jacobian[which][a], grads[i, a], self.x.shape[-2:])
                mapped = cached + self._combine(grad, frame(i, q))
                change[i, q] = (self.relevance[q] - mapped.double()).abs().sum()
        return change.sum(1)

    def _untouched_changes(self, dgrads: torch.Tensor) -> torch.Tensor:
        """dgrads [P,T,D] (g - g~) -> per frame q: sum over pixels of |sum_a K_{a,q}^T dg_a|, [P,T] float64."""
        p, t, _ = dgrads.shape
        out = torch.zeros(p, t, dtype=torch.float64)
        for q, (width, parts) in enumerate(self._frame_parts()):
            if width == 0:
                continue
            total = dgrads.new_zeros(p, width)
            for a, values, where in parts:
                total[:, where] += dgrads[:, a] @ values
            out[:, q] = total.abs().sum(1).double().cpu()
        return out

    def _frame_parts(self) -> list[tuple[int, list[tuple[int, torch.Tensor, torch.Tensor]]]]:
        """Per frame q: the number of pixels any of its Jacobians reaches, and (a, K_{a,q} columns,
        their positions among those pixels) for a = q ("cur") and q + 1 ("prev").  Computed once."""
        if getattr(self, "_parts", None) is None:
            t = self.frames
            self._parts = []
            for q in range(t):
                sources = [(q, self.jacobian["cur"][q])]
                if q + 1 < t:
                    sources.append((q + 1, self.jacobian["prev"][q + 1]))
                index = torch.cat([cols for _, (_, cols) in sources]).unique()
                parts = [(a, values, torch.searchsorted(index, cols)) for a, (values, cols) in sources]
                self._parts.append((len(index), parts))
        return self._parts


def _sparse(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k [D,HW] -> (its non-zero columns [D,n], their indices [n])."""
    cols = k.abs().sum(0).nonzero().flatten()
    return k[:, cols].contiguous(), cols


def _apply(sparse: tuple[torch.Tensor, torch.Tensor], g: torch.Tensor, size) -> torch.Tensor:
    """K^T g as a map [H,W] from the sparse K (columns [D,n], indices [n]) and g [D]."""
    values, cols = sparse
    out = g.new_zeros(size[0] * size[1])
    out[cols] = g @ values
    return out.reshape(size)
