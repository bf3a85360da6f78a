"""LRP building blocks: the parameter-free rules written here, and zennit's composites and canonizers.

Relevance follows zennit's convention: the relevance of a layer's output is fed to autograd as
the output gradient, and each rule hands back the relevance of the layer's input as the input
gradient.  Hand-written rules work on plain tensors.

Parameter-free rules (``TINY`` = 1e-12 is only a stabiliser against 0 / 0; it is also the
stabiliser of zennit's rules other than epsilon, whose default 1e-6 is not small next to the
activations of small random nets):

* mean pool: relevance shared in proportion to the contributions, R_p = (a_p / n) / mean * R;
* max pool: all relevance to the winning position (shared evenly between exact ties);
* a weighted sum with constant weights w (attention weights): R_t = w_t a_t / sum * R;
* the output scale y = offset + scale * z (regression heads): R_z = scale z / y * R_y, the
  offset being a bias keeps its share.

zennit does the weight layers (conv, linear) with the chosen composite, after folding the zoo
nets' input average pool into their first convolution (``fold_pool_into_conv``), merging
batch norms into the convolutions before them, and splitting each residual addition in
proportion to its two branches (zennit's ``Norm`` rule on a ``Sum`` module).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models.video.resnet import BasicBlock as VideoBasicBlock
from zennit.canonizers import AttributeCanonizer, SequentialMergeBatchNorm
from zennit.composites import (
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlusFlat,
    LayerMapComposite,
    layer_map_base,
)
from zennit.core import Composite
from zennit.layer import Sum
from zennit.rules import Epsilon
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer
from zennit.types import Convolution

from ...models.conv3d import Block3d
from .choices import COMPOSITES

TINY = 1e-12


def stabilise(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """z + epsilon * sign(z), with sign(0) = +1 (zennit's stabiliser)."""
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0).to(z)


def mean_relevance(values: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Mean over positions: values [B,C,*pos], relevance of the means [B,C] -> [B,C,*pos]."""
    flat = values.flatten(2)
    share = relevance / stabilise(flat.mean(-1), TINY)
    return (flat / flat.shape[-1] * share[..., None]).view_as(values)


def max_relevance(values: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Max over positions: values [B,C,*pos], relevance of the maxima [B,C] -> [B,C,*pos]."""
    flat = values.flatten(2)
    winners = (flat == flat.amax(-1, keepdim=True)).to(values)
    return (winners / winners.sum(-1, keepdim=True) * relevance[..., None]).view_as(values)


def weighted_sum_relevance(weights: torch.Tensor, values: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """pooled = sum_t w_t v_t with the weights held constant: weights [B,T], values [B,T,H],
    relevance of pooled [B,H] -> relevance of the values [B,T,H]."""
    contributions = weights[..., None] * values
    return contributions * (relevance / stabilise(contributions.sum(1), TINY))[:, None]


def output_scale_relevance(scale_module: nn.Module, z: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """y = offset + scale * z: relevance of y [B,K] -> relevance of z [B,K] (the offset keeps its share)."""
    scaled = scale_module.scale * z
    return scaled * relevance / stabilise(scaled + scale_module.offset, TINY)


# ---------------------------------------------------------------------------------------- zennit
def residual_canonizers() -> list:
    """Batch norms merged into the convolution before them; residual additions as ``Sum`` modules."""
    return [
        SequentialMergeBatchNorm(),
        ResNetBasicBlockCanonizer(),
        ResNetBottleneckCanonizer(),
        Block3dCanonizer(),
        VideoBasicBlockCanonizer(),
    ]


def trunk_composite(
    name: str, epsilon: float, low: torch.Tensor, high: torch.Tensor, canonizers: list | None = None
) -> Composite:
    """The composite for a conv trunk (its first layer is the network's first layer).

    epsilon: the epsilon rule on every conv and linear layer; epsilon_plus_flat: flat rule on the
    first layer, z+ on the other convs, epsilon on linear layers; epsilon_alpha2_beta1_flat: flat,
    then alpha=2 beta=1; epsilon_gamma_box: the z-box rule on the first layer with the input's
    bounds ``low``/``high`` ([1,C,1,1(,1)]), gamma=0.25 on the other convs, epsilon on linear layers.
    Pooling and residual sums: proportional (zennit's ``Norm``); activations and batch norms pass.
    ``canonizers``: ``residual_canonizers()`` unless given."""
    canonizers = residual_canonizers() if canonizers is None else canonizers
    if name == "epsilon":
        return epsilon_composite(epsilon, canonizers)
    if name == "epsilon_plus_flat":
        return EpsilonPlusFlat(epsilon=epsilon, stabilizer=TINY, canonizers=canonizers)
    if name == "epsilon_alpha2_beta1_flat":
        return EpsilonAlpha2Beta1Flat(epsilon=epsilon, stabilizer=TINY, canonizers=canonizers)
    if name == "epsilon_gamma_box":
        return EpsilonGammaBox(low=low, high=high, epsilon=epsilon, stabilizer=TINY, canonizers=canonizers)
    raise ValueError(f"unknown composite {name!r}; choose one of {', '.join(COMPOSITES)}")


def graph_composite(
    name: str, epsilon: float, low: torch.Tensor, high: torch.Tensor, first: nn.Module | None
) -> Composite:
    """``trunk_composite`` for a network canonized by ``graph.canonize`` (no canonizers: the graph has
    merged the batch norms and gives sums their rule), the first-layer rule on ``first`` (the first
    conv the input reaches) whatever the order in which the network registers its modules."""
    composite = trunk_composite(name, epsilon, low, high, canonizers=[])
    first_map = getattr(composite, "first_map", None)
    if first_map is None:
        return composite

    def mapping(ctx: dict, module_name: str, module: nn.Module):
        if module is first:
            for types, hook in first_map:
                if isinstance(module, types):
                    return hook
        return LayerMapComposite.mapping(composite, ctx, module_name, module)

    composite.mapping = mapping
    return composite


def epsilon_composite(epsilon: float, canonizers: list | None = None) -> Composite:
    """The epsilon rule on every conv and linear layer (heads and projections use this one)."""
    layer_map = layer_map_base(TINY) + [(Convolution, Epsilon(epsilon)), (nn.Linear, Epsilon(epsilon))]
    return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)


class _SumCanonizer(AttributeCanonizer):
    """Gives the residual blocks of one type a forward that adds the two branches with a ``Sum``
    module, so that a rule can split the relevance between them."""

    block_type: type = nn.Module

    def __init__(self) -> None:
        super().__init__(self._attribute_map)

    @classmethod
    def _attribute_map(cls, name: str, module: nn.Module) -> dict | None:
        if type(module) is cls.block_type:
            return {"forward": cls.forward.__get__(module), "canonizer_sum": Sum()}
        return None

    def copy(self) -> _SumCanonizer:
        return self.__class__()


class Block3dCanonizer(_SumCanonizer):
    """The zoo's ``Block3d``: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    block_type = Block3d

    @staticmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(self.canonizer_sum(torch.stack([self.shortcut(x), out], dim=-1)))


class VideoBasicBlockCanonizer(_SumCanonizer):
    """torchvision's video ``BasicBlock`` (r3d_18, mc3_18, r2plus1d_18)."""

    block_type = VideoBasicBlock

    @staticmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(self.canonizer_sum(torch.stack([residual, out], dim=-1)))


def fold_pool_into_conv(pool: nn.Module, conv: nn.Module) -> nn.Module:
    """conv(avg_pool(x)) as one new convolution of x (2D or 3D), so that the first layer's rule
    (flat, z-box, epsilon) sees the pixels.  The pool's kernel must equal its stride; the result
    equals the original for inputs whose size the pool divides."""
    dims = conv.weight.dim() - 2
    kernel = _as_tuple(pool.kernel_size, dims)
    stride = _as_tuple(pool.stride or pool.kernel_size, dims)
    if (
        kernel != stride
        or any(_as_tuple(pool.padding, dims))
        or pool.ceil_mode
        or conv.groups != 1
        or any(d != 1 for d in conv.dilation)
        or not isinstance(conv.padding, tuple)
        or conv.padding_mode != "zeros"
    ):
        raise ValueError("cannot fold this pool into this convolution")
    weight = conv.weight.detach()
    for d, k in enumerate(kernel):
        weight = weight.repeat_interleave(k, dim=2 + d)
    folded = (nn.Conv2d if dims == 2 else nn.Conv3d)(
        conv.in_channels,
        conv.out_channels,
        tuple(k * c for k, c in zip(kernel, conv.kernel_size)),
        stride=tuple(k * s for k, s in zip(kernel, conv.stride)),
        padding=tuple(k * p for k, p in zip(kernel, conv.padding)),
        bias=conv.bias is not None,
    ).to(weight)
    folded.weight.data = weight / math.prod(kernel)
    if conv.bias is not None:
        folded.bias.data = conv.bias.detach().clone()
    return folded.requires_grad_(False)


def _as_tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
