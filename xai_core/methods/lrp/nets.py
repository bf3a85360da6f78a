"""LRP through each architecture the ``lrp`` method covers (``COVERAGE``, the one table of them),
in stages chained as in 004: the head first, then the temporal part (LSTM / ConvLSTM, hand-written
rules), then for every frame the frame CNN (zennit) with the relevance of its features as the
starting relevance.

Each stage re-runs its part of the network on the (detached) input of that part, under its
rules, and keeps the output: the stage's relevance is pulled back later through autograd with
the relevance of that output as the output gradient (zennit's convention).

Rules by part (the weight layers' rules come from the composite, see ``rules``):
* output scale (regression heads): the offset keeps its share (``output_scale_relevance``);
* MLP head, LSTM input projection, ConvLSTM 1x1 narrowing: the epsilon rule (linear layers);
* last-step readout: all relevance to h_T; attention pooling: weights held constant, relevance
  shared among the LSTM outputs in proportion to w_t h_t; ConvLSTM: mean over positions (in
  proportion to the contributions) and max (to the winner);
* LSTM, ConvLSTM, input-cell attention: ``lstm``;
* frame CNN readout: mean part in proportion to the contributions, max part to the winner;
  ``MaskedMaps`` (maps x object mask) is a gated product: all relevance to the maps, none to
  the mask (nor to the clip through the mask);
* frame CNN trunk, 3D CNNs: zennit with the chosen composite.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.video.resnet import BasicBlock, VideoResNet

from ...explanation import Target
from ...models.backbones import FrameEncoder, SmallCNN
from ...models.base import InputSpec
from ...models.conv3d import SmallR3D
from ...models.convlstm import ConvLSTMNet
from ...models.motion import motion_channels
from ...models.per_frame import PerFrame
from ...models.temporal import CNNLSTM, ICALSTM
from .graph import Canonized, canonize
from .lstm import (
    attention_summary_relevance,
    convlstm_relevance,
    convlstm_trace,
    lstm_relevance,
    lstm_trace,
)
from .rules import (
    epsilon_composite,
    fold_pool_into_conv,
    graph_composite,
    max_relevance,
    mean_relevance,
    output_scale_relevance,
    trunk_composite,
    weighted_sum_relevance,
)


@dataclass
class InputRelevance:
    """Relevance at the network's input, per frame: channels [T,C_in,H,W]; ``motion``: the
    indices of the motion channels (None without); ``features``: [T] relevance of each frame's
    feature vector (decoupled nets); ``output`` [1,K]: the output the rules reproduced."""

    channels: torch.Tensor
    motion: slice | None
    features: torch.Tensor | None
    output: torch.Tensor
    score: float
    graph: Canonized | None = None  # the graph pass's record (nodes passed by plain gradient, untraced modules)


class Traced:
    """``module`` run on a detached copy of ``x`` (under whatever rules are registered on it);
    ``relevance(R)`` pulls the relevance R of the output back to the input."""

    def __init__(self, module: nn.Module, x: torch.Tensor) -> None:
        self.input = x.detach().requires_grad_(True)
        with torch.enable_grad():
            self.output = module(self.input)

    def relevance(self, relevance: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.output, self.input, grad_outputs=relevance)
        return grad


def starting_relevance(output: torch.Tensor, target: Target) -> torch.Tensor:
    """output [B,K] -> [B,K]: the explained score on the target's unit, zero elsewhere."""
    relevance = torch.zeros_like(output)
    relevance[:, target.index if target.kind == "class" else 0] = target.score(output)
    return relevance


def channel_bounds(spec: InputSpec, motion_kind: str | None, coords: bool, dims: int) -> tuple:
    """Lowest and highest normalised value of each input channel ([1,C,1,1] or [1,C,1,1,1]):
    RGB from pixel values 0 and 255; motion channels (``motion.motion_channels``): the signed
    difference spans -1/std..1/std, the object-gated appearance 0..1/std (the gate is in [0, 1]),
    the block-gated one 0..mean(1/std)/std (the gate is a mean absolute difference); coordinate
    channels -1..1."""
    mean, std = torch.tensor(spec.mean), torch.tensor(spec.std)
    low, high = [-mean / std], [(1 - mean) / std]
    if motion_kind is not None:
        low.append(-1 / std if motion_kind == "difference" else torch.zeros(3))
        high.append(1 / std * ((1 / std).mean() if motion_kind == "block" else 1.0))
    if coords:
        low.append(-torch.ones(2))
        high.append(torch.ones(2))
    shape = (1, -1) + (1,) * dims
    return torch.cat(low).view(shape), torch.cat(high).view(shape)


class FrameCNN:
    """A FrameEncoder's per-frame CNN traced for LRP on x [B,T,3,H,W]: ``inputs`` [N,C_in,H,W]
    (N = B*T), ``maps`` (the small CNN's last map, masked with the object readout) [N,C,h,w] or
    None, ``features`` [N,D]."""

    def __init__(
        self, encoder: FrameEncoder, x: torch.Tensor, spec: InputSpec, composite: str, epsilon: float, stack: ExitStack
    ) -> None:
        backbone = encoder.backbone
        with torch.no_grad():
            inputs = encoder.frame_inputs(x)
        self.small = isinstance(backbone, SmallCNN)
        if self.small:
            first = backbone.features[0]
            trunk = nn.Sequential(fold_pool_into_conv(backbone.pool, first[0]), *first[1:], *backbone.features[1:])
        else:
            trunk = backbone.net
        kind = encoder.motion_kind if encoder.motion_input else None
        low, high = channel_bounds(spec, kind, encoder.coord_channels, 2)
        stack.enter_context(trunk_composite(composite, epsilon, low, high).context(trunk))
        self.trunk = Traced(trunk, inputs)
        self.inputs = self.trunk.input
        self.motion = slice(3, 6) if encoder.motion_input else None
        self.readout = getattr(backbone, "readout", None)
        if not self.small:
            self.maps, self.features = None, self.trunk.output.detach()
            return
        with torch.no_grad():
            maps = self.trunk.output.detach()
            if encoder.object_readout:
                maps = backbone.masked_maps(maps, encoder.object_mask(x))
            self.maps = maps
            parts = [maps.mean((2, 3))] + ([maps.amax((2, 3))] if self.readout == "meanmax" else [])
            self.features = torch.cat(parts, dim=1)

    def relevance_from_maps(self, relevance: torch.Tensor) -> torch.Tensor:
        """Relevance of the (masked) maps [N,C,h,w] -> of the inputs [N,C_in,H,W]; the mask's
        product passes all of it to the maps."""
        return self.trunk.relevance(relevance)

    def relevance_from_features(self, relevance: torch.Tensor) -> torch.Tensor:
        """Relevance of the features [N,D] -> of the inputs [N,C_in,H,W]."""
        if not self.small:
            return self.trunk.relevance(relevance)
        channels = self.maps.shape[1]
        maps_relevance = mean_relevance(self.maps, relevance[:, :channels])
        if self.readout == "meanmax":
            maps_relevance = maps_relevance + max_relevance(self.maps, relevance[:, channels:])
        return self.relevance_from_maps(maps_relevance)


def _top(
    net: nn.Module, pooled: torch.Tensor, target: Target, stack: ExitStack, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MLP head and output scale: pooled [B,W] -> (output [B,K], relevance of pooled [B,W])."""
    stack.enter_context(epsilon_composite(epsilon).context(net.head))
    head = Traced(net.head, pooled)
    z = head.output.detach()
    output = net.output_scale(z)
    return output, head.relevance(output_scale_relevance(net.output_scale, z, starting_relevance(output, target)))


def _lstm_nets(
    net: CNNLSTM | ICALSTM, cnn: FrameCNN, b: int, t: int, target: Target, epsilon: float, stack: ExitStack
) -> tuple[torch.Tensor, torch.Tensor]:
    """CNNLSTM (last step or attention pooling) and ICALSTM -> (output, relevance of the features [N,D])."""
    stack.enter_context(epsilon_composite(epsilon).context(net.proj))
    proj = Traced(net.proj, cnn.features.view(b, t, -1))
    inputs = proj.output.detach()
    if isinstance(net, ICALSTM):
        attention = net.input_cell_attention(inputs)  # [B,T,r,T]
        lstm_in = torch.einsum("btrs,bsn->btrn", attention, inputs).flatten(2)
    else:
        lstm_in = inputs
    trace = lstm_trace(net.lstm, lstm_in)
    outputs = trace.outputs
    relevance_h = torch.zeros_like(outputs)
    if getattr(net, "attention_pool", False):
        weights = net._pool_weights(outputs)
        output, relevance_pooled = _top(net, (weights[..., None] * outputs).sum(1), target, stack, epsilon)
        relevance_h = weighted_sum_relevance(weights, outputs, relevance_pooled)
    else:  # the last step's output is read out
        output, relevance_last = _top(net, outputs[:, -1], target, stack, epsilon)
        relevance_h[:, -1] = relevance_last
    relevance_in = lstm_relevance(net.lstm, trace, relevance_h, epsilon)
    if isinstance(net, ICALSTM):
        relevance_in = attention_summary_relevance(attention, inputs, relevance_in.view(b, t, attention.shape[2], -1))
    return output, proj.relevance(relevance_in).flatten(0, 1)


def _decoupled(
    net: nn.Module, x: torch.Tensor, spec: InputSpec, target: Target, composite: str, epsilon: float
) -> InputRelevance:
    b, t = x.shape[:2]
    with ExitStack() as stack, torch.no_grad():
        cnn = FrameCNN(net.frame_encoder, x, spec, composite, epsilon, stack)
        if isinstance(net, ConvLSTMNet):
            stack.enter_context(epsilon_composite(epsilon).context(net.narrow))
            narrow = Traced(net.narrow, cnn.maps)
            trace = convlstm_trace(net.cell, narrow.output.detach().unflatten(0, (b, t)))
            last = trace.outputs[:, -1]
            output, relevance_pooled = _top(net, net.pool(last), target, stack, epsilon)
            relevance_h = torch.zeros_like(trace.outputs)
            hidden = last.shape[1]
            relevance_h[:, -1] = mean_relevance(last, relevance_pooled[:, :hidden])
            if net.readout == "meanmax":
                relevance_h[:, -1] += max_relevance(last, relevance_pooled[:, hidden:])
            relevance_in = convlstm_relevance(net.cell, trace, relevance_h, epsilon)
            feature_relevance = narrow.relevance(relevance_in.flatten(0, 1))
            channels = cnn.relevance_from_maps(feature_relevance)
        else:
            output, feature_relevance = _lstm_nets(net, cnn, b, t, target, epsilon, stack)
            channels = cnn.relevance_from_features(feature_relevance)
    per_frame = feature_relevance.flatten(1).sum(1).view(b, t)[0]
    channels = channels.view(b, t, *channels.shape[1:])[0]
    return InputRelevance(channels, cnn.motion, per_frame, output, _score(output, target))


def _small_r3d(
    net: SmallR3D, x: torch.Tensor, spec: InputSpec, target: Target, composite: str, epsilon: float
) -> InputRelevance:
    clip = x.transpose(1, 2)  # [B,C,T,H,W]
    with ExitStack() as stack, torch.no_grad():
        if net.motion_input:
            clip = torch.cat([clip, motion_channels(x, net.motion_kind).transpose(1, 2)], dim=1)
        stem = net.stem
        trunk = nn.Sequential(fold_pool_into_conv(net.pool, stem[0]), *stem[1:], net.layer1, net.layer2, net.layer3)
        kind = net.motion_kind if net.motion_input else None
        low, high = channel_bounds(spec, kind, False, 3)
        stack.enter_context(trunk_composite(composite, epsilon, low, high).context(trunk))
        traced = Traced(trunk, clip)
        maps = traced.output.detach()
        output, relevance_pooled = _top(net, maps.mean((2, 3, 4)), target, stack, epsilon)
        channels = traced.relevance(mean_relevance(maps, relevance_pooled))
    motion = slice(3, 6) if net.motion_input else None
    return InputRelevance(channels[0].transpose(0, 1), motion, None, output, _score(output, target))


def _video_resnet(
    net: VideoResNet, x: torch.Tensor, spec: InputSpec, target: Target, composite: str, epsilon: float
) -> InputRelevance:
    low, high = channel_bounds(spec, None, False, 3)
    with ExitStack() as stack, torch.no_grad():
        stack.enter_context(trunk_composite(composite, epsilon, low, high).context(net))
        traced = Traced(net, x.transpose(1, 2))
        output = traced.output.detach()
        channels = traced.relevance(starting_relevance(output, target))
    return InputRelevance(channels[0].transpose(0, 1), None, None, output, _score(output, target))


def _per_frame(
    net: PerFrame, x: torch.Tensor, spec: InputSpec, target: Target, composite: str, epsilon: float
) -> InputRelevance:
    """An image classifier over the frames: the clip's logits are the mean of the frames', so the
    starting relevance is shared among the frames in proportion to their logits; then the image
    network's graph pass on every frame."""
    b, t = x.shape[:2]
    frames = x.reshape(b * t, *x.shape[2:])
    canon = canonize(net.image_net, frames)
    with ExitStack() as stack, torch.no_grad():
        stack.enter_context(graph_composite(composite, epsilon, *_bounds(spec, canon), canon.first).context(canon.net))
        traced = Traced(canon.net, frames)
        logits = traced.output.detach().view(b, t, -1)  # [B,T,K]
        output = logits.mean(1)
        frame_relevance = mean_relevance(logits.transpose(1, 2), starting_relevance(output, target))  # [B,K,T]
        channels = traced.relevance(frame_relevance.transpose(1, 2).reshape(b * t, -1))
    channels = channels.view(b, t, *channels.shape[1:])[0]
    per_frame = frame_relevance.sum(1)[0]
    return InputRelevance(channels, None, per_frame, output, _score(output, target), graph=canon)


def _bounds(spec: InputSpec, canon: Canonized) -> tuple[torch.Tensor, torch.Tensor]:
    """The z-box bounds for the first layer's input: from the input spec's normalisation where that
    layer is a conv taking the clip's RGB channels, else the lowest and highest value it received."""
    first, seen = canon.first, canon.first_input
    if isinstance(first, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and first.in_channels == len(spec.mean):
        return channel_bounds(spec, None, False, first.weight.dim() - 2)
    if seen is None:
        return torch.tensor(0.0), torch.tensor(0.0)
    return seen.amin().reshape(()), seen.amax().reshape(())


def _score(output: torch.Tensor, target: Target) -> float:
    return float(target.score(output)[0])


def private_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` without anyone's hooks and without parameter gradients."""
    net = copy.deepcopy(net).requires_grad_(False)
    for module in net.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks):
            hooks.clear()
        getattr(module, "_backward_pre_hooks", {}).clear()
    return net


def _other_blocks(net: VideoResNet) -> str | None:
    """Why a torchvision 3D ResNet is not covered: blocks other than ``BasicBlock`` (no rules for them)."""
    layers = (net.layer1, net.layer2, net.layer3, net.layer4)
    others = sorted({type(block).__name__ for layer in layers for block in layer if type(block) is not BasicBlock})
    return f"its blocks ({', '.join(others)}) have no LRP rules" if others else None


Pass = Callable[[nn.Module, torch.Tensor, InputSpec, Target, str, float], InputRelevance]


@dataclass(frozen=True)
class Covered:
    """An architecture LRP has rules for: ``relevance`` its pass; ``unless(net)``: why a net of the
    class is still not covered (None: it is), where the class alone does not decide."""

    relevance: Pass
    unless: Callable[[nn.Module], str | None] | None = None


# LRP's coverage: the exact classes it has rules for (a subclass may compute something else).
# Not the CNN-Transformer (LRP through attention is out of scope), nor a user's own network.
COVERAGE: dict[type, Covered] = {
    CNNLSTM: Covered(_decoupled),
    ICALSTM: Covered(_decoupled),
    ConvLSTMNet: Covered(_decoupled),
    PerFrame: Covered(_per_frame),
    SmallR3D: Covered(_small_r3d),
    VideoResNet: Covered(_video_resnet, _other_blocks),
}


# Any other CNN goes through the graph pass (``graph``): the composite's rules on its conv and
# linear layers, batch norms merged, and a rule for every addition, product, pooling and
# activation its forward computes; what has no rule passes the plain gradient and is named.
NO_GENERIC_RULES = (
    nn.RNNBase,
    nn.RNNCellBase,
    nn.MultiheadAttention,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)


def uncovered(net: nn.Module) -> str | None:
    """Why LRP has no rules for ``net``, or None when ``COVERAGE`` covers it or the graph pass for
    CNNs applies (a network with convolutions and without recurrent or attention layers)."""
    if _covered(net) is not None and type(net) is not PerFrame:  # an image network over frames: the graph pass
        return None
    if any(isinstance(m, torch.jit.ScriptModule) for m in net.modules()):
        return (
            "a TorchScript network runs compiled code that LRP's rules cannot reach; load it as file.py:factory "
            "(with a weights file) to have LRP"
        )
    kinds = sorted({type(m).__name__ for m in net.modules() if isinstance(m, NO_GENERIC_RULES)})
    if kinds:
        names = ", ".join(cls.__name__ for cls in COVERAGE if cls is not PerFrame)
        return (
            f"its network, {type(net).__name__}, has {', '.join(kinds)} layers; LRP through recurrent and "
            f"attention layers exists only for the architectures it covers ({names}); a network of convolutions "
            "without such layers of its own gets LRP through its traced graph"
        )
    if not any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in net.modules()):
        return "its network has no convolution: LRP's graph pass is for CNNs"
    return None


def _any_cnn(net: nn.Module, layout: str, x: torch.Tensor, spec: InputSpec, target: Target, composite: str,
             epsilon: float) -> InputRelevance:  # fmt: skip
    """The graph pass on the whole network, the relevance pulled back to x [1,T,C,H,W] through the
    layout's transpose."""
    clip = x.transpose(1, 2) if layout == "BCTHW" else x
    canon = canonize(net, clip)
    with ExitStack() as stack, torch.no_grad():
        stack.enter_context(graph_composite(composite, epsilon, *_bounds(spec, canon), canon.first).context(canon.net))
        traced = Traced(canon.net, clip)
        output = traced.output.detach()
        channels = traced.relevance(starting_relevance(output, target))
    channels = channels.transpose(1, 2) if layout == "BCTHW" else channels
    return InputRelevance(channels[0], None, None, output, _score(output, target), graph=canon)


def input_relevance(model, x: torch.Tensor, target: Target, composite: str, epsilon: float) -> InputRelevance:
    """LRP of ``model`` on x [1,T,C,H,W]: the network's own pass where ``COVERAGE`` has one, else
    the graph pass (any CNN, ``graph``).

    The rules run on a copy of the network: canonizers change weights and batch norms while
    they are attached, and the model may be serving other calls meanwhile (the app shares it)."""
    why = uncovered(model.net)
    if why is not None:
        raise ValueError(f"LRP has no rules for {model.name}: {why}")
    net = private_copy(model.net)  # explain computes in eval mode (models.modes)
    covered = _covered(net)
    if covered is None:
        return _any_cnn(net, model.layout, x, model.input_spec, target, composite, epsilon)
    return covered.relevance(net, x, model.input_spec, target, composite, epsilon)


def _covered(net: nn.Module) -> Covered | None:
    """The architecture-specific pass for ``net``, or None (the graph pass then)."""
    covered = COVERAGE.get(type(net))
    if covered is None or (covered.unless is not None and covered.unless(net) is not None):
        return None
    return covered
