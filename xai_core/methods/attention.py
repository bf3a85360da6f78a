"""Attention over frames: what a model's own attention says about which frames matter.

* ``attention_cls`` (000): the last Transformer layer's attention of the CLS token to each frame,
  averaged over heads.
* ``attention_rollout`` (Abnar & Zuidema 2020): per layer the head-averaged attention A_l plus the
  identity (the residual connection), rows renormalised to sum to 1; R = Â_L ... Â_1; the CLS
  row of R to the frames.
* ``attention_pool`` (003): the CNN-LSTM's attention-pooling weights over its per-frame states.

Each keeps the largest ``keep`` share of the T frame weights (ceil(keep * T) of them, 0.7 as in
000) and zeroes the rest; kept weights are not renormalised.  These are temporal methods: the
explanation has ``temporal`` [T] and no ``spatial`` map.  Attention does not depend on the
target; it is recorded all the same.
"""

from __future__ import annotations

import math

import torch

from ..explanation import Attribution, Target
from .machinery.registry import MethodCard, Param, register

KEEP = Param(
    "keep", "float", 0.7, minimum=0.01, maximum=1.0, help="share of the frame weights kept (the largest); the rest is 0"
)


def keep_top(weights: torch.Tensor, keep: float) -> torch.Tensor:
    """weights [T] -> the ceil(keep * T) largest kept, the others set to 0 (ties: the earlier frames)."""
    count = max(1, math.ceil(keep * len(weights) - 1e-6))
    kept = torch.zeros_like(weights)
    order = torch.argsort(weights, descending=True, stable=True)[:count]
    kept[order] = weights[order]
    return kept


def rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout of one clip: per-layer maps [1,heads,L,L] -> R [L,L], R = Â_L ... Â_1 with
    Â = rows-renormalised (mean over heads + identity)."""
    size = maps[0].shape[-1]
    eye = torch.eye(size, dtype=maps[0].dtype, device=maps[0].device)
    result = eye
    for attention in maps:
        a = attention[0].mean(0) + eye
        result = (a / a.sum(-1, keepdim=True)) @ result
    return result


def _attribution(weights: torch.Tensor, keep: float, extras: dict) -> Attribution:
    """weights [T] -> Attribution with temporal = the kept weights and extras["attention"] = all of them."""
    extras = {"attention": weights, **extras}
    return Attribution(
        temporal=keep_top(weights, keep).float().cpu().numpy(),
        extras={k: v.float().cpu().numpy() for k, v in extras.items()},
    )


@register(
    "attention_cls",
    card=MethodCard(
        computes=(
            "The attention of the CLS token to each frame's token in the last Transformer layer, averaged"
            " over the heads: a curve over time."
        ),
        needs="A Transformer over frames with a CLS token (the zoo's CNN-Transformer).",
        cannot_show=(
            "Where in the frame; what the attended values carry; anything from the earlier layers or the residual path."
        ),
        failures=(
            (
                "Attention weights are not attributions: a frame can be attended and still change nothing"
                " (Jain and Wallace 2019)."
            ),
            "Heads often disagree, and their mean hides it.",
            (
                "The curve is the same whatever target is explained (the weights do not depend on the "
                "class asked about), and `keep` (0.7) sets the lowest 30% of the frames to zero."
            ),
        ),
        cost="One forward pass.",
    ),
    family="temporal",
    requires=("temporal_attention", "attention_layers"),
    params=(KEEP,),
    description="The CLS token's attention to each frame in the last Transformer layer, mean over heads",
    references=("000: CNN-Transformer attention (bottom 30% discarded)",),
)
def attention_cls(model, x: torch.Tensor, target: Target, keep: float = 0.7) -> Attribution:
    """x [1,T,C,H,W] -> temporal [T]: the last layer's CLS-to-frame attention averaged over heads (the
    share of the CLS token's attention each frame gets), the largest ``keep`` share kept.  extras:
    ``attention`` [T] (nothing discarded), ``heads`` [heads,T], ``cls_self`` [1] (CLS to itself)."""
    with torch.inference_mode():
        last = model.attention_maps(x)[-1][0]  # [heads,T+1,T+1]
    cls_row = last[:, 0]  # [heads,T+1]
    weights = cls_row[:, 1:].mean(0)
    extras = {"heads": cls_row[:, 1:], "cls_self": cls_row[:, :1].mean(0)}
    return _attribution(weights, keep, extras)


@register(
    "attention_rollout",
    card=MethodCard(
        computes=(
            "Each layer's head-averaged attention plus the identity (the residual path), renormalised and"
            " multiplied through the layers; the CLS row of the product."
        ),
        needs="A Transformer over frames with a CLS token.",
        cannot_show="Where in the frame, and how the values and the MLPs transform what is mixed.",
        failures=(
            "Treats attention mixing as linear and the heads as equal.",
            "Tends towards a flat curve in deeper models.",
            (
                "The curve is the same whatever target is explained (the weights do not depend on the "
                "class asked about), and `keep` (0.7) sets the lowest 30% of the frames to zero."
            ),
        ),
        cost="One forward pass.",
    ),
    family="temporal",
    requires=("temporal_attention", "attention_layers"),
    params=(KEEP,),
    description="Attention rollout: head-averaged attention plus residual, multiplied through the layers; CLS row",
    references=("Abnar & Zuidema 2020",),
)
def attention_rollout(model, x: torch.Tensor, target: Target, keep: float = 0.7) -> Attribution:
    """x [1,T,C,H,W] -> temporal [T]: row 0 (CLS) of the rollout R to the frames, the largest ``keep``
    share kept.  extras: ``attention`` [T] (nothing discarded), ``rollout`` [T+1,T+1] (all of R)."""
    with torch.inference_mode():
        result = rollout(model.attention_maps(x))
    return _attribution(result[0, 1:], keep, {"rollout": result})


@register(
    "attention_pool",
    card=MethodCard(
        computes=(
            "The weights with which the CNN-LSTM's attention pooling sums its per-frame hidden states: a "
            "curve over time."
        ),
        needs="A CNN-LSTM with attention pooling (the zoo's cnn_lstm_attn).",
        cannot_show=(
            "What each hidden state carries: the state at frame t mixes every frame before it, so a high "
            "weight on t may be evidence seen earlier."
        ),
        failures=(
            ("Weights of a pooling layer are not the effect of removing a frame: compare with frame masking."),
            (
                "The curve is the same whatever target is explained (the weights do not depend on the "
                "class asked about), and `keep` (0.7) sets the lowest 30% of the frames to zero."
            ),
        ),
        cost="One forward pass.",
    ),
    family="temporal",
    requires=("temporal_attention", "attention_pooling"),
    params=(KEEP,),
    description="The attention-pooling weights with which the CNN-LSTM sums its per-frame states",
    references=("003: CNN-LSTM with attention",),
)
def attention_pool(model, x: torch.Tensor, target: Target, keep: float = 0.7) -> Attribution:
    """x [1,T,C,H,W] -> temporal [T]: the softmax pooling weights over the LSTM's outputs (sum to 1),
    the largest ``keep`` share kept.  extras: ``attention`` [T] (nothing discarded)."""
    with torch.inference_mode():
        weights = model.temporal_attention(x)[0]
    return _attribution(weights, keep, {})
