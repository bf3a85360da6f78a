"""Per-frame 2D encoders: the zoo's small CNN and torchvision backbones.

A backbone maps one frame's input ``[N, C_in, H, W]`` to a feature vector ``[N, D]``; it has
``out_dim`` and ``cam_layer_name`` (its last conv block, relative to the backbone).
``FrameEncoder`` builds the per-frame inputs from a clip: the frame itself and, for the zoo's
small CNN, three motion channels from the frame and the one before it (motion-gated appearance
or the signed difference), which make motion visible to a per-frame network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .motion import (
    MOTION_KINDS,
    RECONSTRUCTION_STEPS,
    background_colour,
    frame_pairs,
    geodesic_reconstruction,
    motion_channels,
    moving_object_mask,
    object_evidence,
    pair_motion_channels,
)
from .weights import read_state_dict

BACKBONES = ("small", "resnet18", "resnet50", "vgg16")


def motion_kind(motion_gate: bool | str) -> str:
    """The ``motion_gate`` option -> a kind of ``motion.MOTION_KINDS`` (True: "block", False:
    "difference", the meanings the option had before the object gate existed)."""
    if motion_gate is True or motion_gate is False:
        return "block" if motion_gate else "difference"
    if motion_gate not in MOTION_KINDS:
        raise ValueError(f"motion_gate must be one of {', '.join(MOTION_KINDS)} (or true / false), not {motion_gate!r}")
    return motion_gate


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class MaskedMaps(nn.Module):
    """maps [N,C,h,w] times a mask [N,1,h',w'] brought to h x w by area averaging.  A module of
    its own so that hooks (Grad-CAM's layer, LRP rules) can find the product."""

    def forward(self, maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.shape[-2:] != maps.shape[-2:]:
            mask = nn.functional.adaptive_avg_pool2d(mask, maps.shape[-2:])
        return maps * mask


class SmallCNN(nn.Module):
    """The zoo's frame CNN: 112x112 input halved by an average pool, four 3x3 conv blocks (the
    first strided) to a 28x28 map, then global average and global max pooling, concatenated.
    ~40 M multiply-adds per frame.  The 28x28 last block (4-pixel cells) is fine enough for
    Grad-CAM to resolve shapes of about 10 pixels' radius; in short pilot runs a 14x14 one
    (``strides=(2, 1, 2, 1)``) put the peak on the shape far less often.  The zoo model's rates
    are measured by ``benchmarks/localization.py``.

    Both readouts give each channel a gradient of one sign, so Grad-CAM on the last block is
    well defined (for the mean it is exactly the class activation map of Zhou et al.).  A
    position-coding readout (soft-argmax keypoints) was tried first and made Grad-CAM's averaged
    gradients cancel; the mean alone learned the sides task several times slower than with the
    max beside it (a small shape is a few percent of the map).

    With ``object_readout`` the last map is multiplied by a mask (``MaskedMaps``, the default
    Grad-CAM layer then) before the pooling, so the features describe only what the mask
    covers: in the zoo, the moving object."""

    def __init__(
        self,
        in_channels: int = 6,
        widths: tuple[int, ...] = (32, 48, 48, 48),
        readout: str = "meanmax",
        strides: tuple[int, ...] = (2, 1, 1, 1),
        object_readout: bool = False,
    ):
        super().__init__()
        if readout not in ("meanmax", "mean"):
            raise ValueError(f"readout must be 'meanmax' or 'mean', not {readout!r}")
        self.readout = readout
        w1, w2, w3, w4 = widths
        self.pool = nn.AvgPool2d(2)
        s1, s2, s3, s4 = strides
        self.features = nn.Sequential(
            _conv_bn(in_channels, w1, stride=s1),
            _conv_bn(w1, w2, stride=s2),
            _conv_bn(w2, w3, stride=s3),
            _conv_bn(w3, w4, stride=s4),
        )
        self.out_dim = 2 * w4 if readout == "meanmax" else w4
        self.masked_maps = MaskedMaps() if object_readout else None
        self.cam_layer_name = "masked_maps" if object_readout else "features.3"

    def feature_maps(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [N,C_in,H,W] (and mask [N,1,h',w'] with ``object_readout``) -> last map [N,C,h,w]."""
        maps = self.features(self.pool(x))
        if self.masked_maps is None:
            return maps
        if mask is None:
            raise ValueError("this CNN reads its features out under a mask; pass one")
        return self.masked_maps(maps, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [N,C_in,H,W] -> features [N,D]."""
        return self.read(self.features(self.pool(x)), mask)

    def read(self, maps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The last block's maps [N,C,h,w] (and the readout mask) -> features [N,D]."""
        if self.masked_maps is not None:
            if mask is None:
                raise ValueError("this CNN reads its features out under a mask; pass one")
            maps = self.masked_maps(maps, mask)
        if self.readout == "mean":
            return maps.mean((2, 3))
        return torch.cat([maps.mean((2, 3)), maps.amax((2, 3))], dim=1)


class TorchvisionBackbone(nn.Module):
    """resnet18 / resnet50 / vgg16 without their classifier: [N,3,H,W] -> [N,D] (random
    weights unless the user loads theirs)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        import torchvision  # a second to import: only for its networks

        if name in ("resnet18", "resnet50"):
            net = getattr(torchvision.models, name)(weights=None)
            self.out_dim = net.fc.in_features
            net.fc = nn.Identity()
            self.cam_layer_name = "net.layer4"
        elif name == "vgg16":
            net = torchvision.models.vgg16(weights=None)
            net.classifier = nn.Identity()
            net.avgpool = nn.AdaptiveAvgPool2d(1)
            self.out_dim = 512
            self.cam_layer_name = "net.features.29"  # the last conv block's (in-place) ReLU output
        else:
            raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FrameEncoder(nn.Module):
    """Runs a backbone on every frame: x [B,T,C,H,W] -> feats [B,T,D].

    With ``motion_input`` each frame's input also holds three motion channels computed from the
    frame and the one before it (zero for the first frame; see ``motion.py``), so one frame's
    features depend on that frame and the previous one (``frame_context = 2``).
    ``motion_gate`` picks them:

    * ``"difference"`` (or ``False``; the default): the signed difference to the previous frame.
      Any video model may see it; where to look is left to the learned weights;
    * ``"object"``: the moving object as it is in this frame, interior included, found by a
      formula (growing the changed pixels through the foreground);
    * ``"block"`` (or ``True``): appearance kept within 4-8 pixels of pixels that changed.

    With ``object_readout`` the small CNN's last map is multiplied by the moving object's mask
    (``motion.moving_object_mask``) before it is pooled, so a frame's features describe the
    moving object and nothing else.

    The object and block gates and the object readout are architecture priors
    (``priors.architecture_priors``): they say where the evidence is without any learned
    parameter, so every explanation finds it whatever the weights are, and the randomisation
    sanity check fails.  Only didactic models named ``...-gated`` use them.

    With ``coord_channels`` two constant channels give x and y in [-1, 1] (off in the zoo: they
    add position ramps to Grad-CAM maps)."""

    def __init__(
        self,
        backbone: str = "small",
        motion_input: bool = True,
        coord_channels: bool = False,
        motion_gate: bool | str = "difference",
        readout: str = "meanmax",
        widths: tuple[int, ...] = (32, 48, 48, 48),
        strides: tuple[int, ...] = (2, 1, 1, 1),
        object_readout: bool = False,
    ):
        super().__init__()
        if backbone != "small" and (motion_input or coord_channels or object_readout):
            raise ValueError(
                "torchvision backbones take plain RGB frames (no motion or coordinate channels, no object readout)"
            )
        self.motion_input = motion_input
        self.motion_kind = motion_kind(motion_gate)
        self.coord_channels = coord_channels
        self.object_readout = object_readout
        in_channels = 3 + 3 * motion_input + 2 * coord_channels
        self.backbone = (
            SmallCNN(in_channels, tuple(widths), readout, tuple(strides), object_readout)
            if backbone == "small"
            else TorchvisionBackbone(backbone)
        )
        self.out_dim = self.backbone.out_dim
        self.frame_context = 2 if motion_input or object_readout else 1
        self.cam_layer_name = "backbone." + self.backbone.cam_layer_name

    def motion_channels(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,3,H,W] -> [B,T,3,H,W]: this encoder's motion channels."""
        return motion_channels(x, self.motion_kind)

    def object_mask(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,3,H,W] -> the moving object's soft mask per frame, [B*T,1,H/2,W/2]."""
        return moving_object_mask(x).flatten(0, 1)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,3,H,W] -> the small CNN's last map per frame (masked with ``object_readout``),
        [B*T,C,h,w]."""
        return self.backbone.feature_maps(*self.front(x))

    def front(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The cheap part that looks across frames: x [B,T,3,H,W] -> per-frame network inputs
        [B*T,C_in,H,W] and, with ``object_readout``, the readout masks [B*T,1,H/2,W/2] (else None).
        A frame's pair depends on the frame and the one before it (``front_pairs``)."""
        return self.front_pairs(*frame_pairs(x))

    def front_pairs(
        self,
        prev: torch.Tensor,
        cur: torch.Tensor,
        object_mask: torch.Tensor | None = None,
        background: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``front`` of frames cur [N,3,H,W], each after prev [N,3,H,W] (a first frame: itself);
        ``object_mask`` (the pairs' ``pair_object_mask``) and ``background`` (``background_colour``
        of cur): when the caller has them already."""
        needs_mask = self.object_readout or (self.motion_input and self.motion_kind == "object")
        if background is None and self.motion_input and self.motion_kind in ("block", "object"):
            background = background_colour(cur)
        mask = None
        if needs_mask:
            mask = object_mask
            if mask is None:
                bg = background if background is not None else background_colour(cur)
                mask = geodesic_reconstruction(*object_evidence(prev, cur, bg), RECONSTRUCTION_STEPS)
        parts = [cur]
        if self.motion_input:
            parts.append(pair_motion_channels(prev, cur, self.motion_kind, mask, background))
        if self.coord_channels:
            n, _, h, w = cur.shape
            ys = torch.linspace(-1, 1, h, device=cur.device, dtype=cur.dtype)
            xs = torch.linspace(-1, 1, w, device=cur.device, dtype=cur.dtype)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            parts.append(torch.stack([gx, gy]).expand(n, 2, h, w))
        return torch.cat(parts, dim=1), (mask if self.object_readout else None)

    def frame_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,3,H,W] -> per-frame network inputs [B*T, C_in, H, W]."""
        return self.front(x)[0]

    def back(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The per-frame network: inputs [N,C_in,H,W] (and masks) -> features [N,D]."""
        if self.object_readout:
            return self.backbone(inputs, mask)
        return self.backbone(inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return self.back(*self.front(x)).reshape(b, t, -1)


def load_backbone_weights(encoder: FrameEncoder, path) -> list[str]:
    """Load a torchvision backbone's weights (e.g. ImageNet resnet18 from the user's disk) into a
    FrameEncoder; the classifier's keys (fc / classifier) are skipped.  Returns the skipped keys."""
    backbone = encoder.backbone
    if not isinstance(backbone, TorchvisionBackbone):
        raise ValueError("backbone weights can only be loaded into a torchvision backbone (resnet18/50, vgg16)")
    state = read_state_dict(path)
    own = backbone.net.state_dict()
    skipped = [k for k in state if k.split(".")[0] in ("fc", "classifier") or k not in own]
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"{Path(path).name} lacks {len(missing)} of the backbone's weights (e.g. {missing[0]})")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ValueError(f"{Path(path).name} has other shapes than the backbone (e.g. {wrong[0]})")
    backbone.net.load_state_dict({k: state[k] for k in own})
    return skipped


def output_layer(width: int, num_outputs: int, hidden: int | None = None, dropout: float = 0.1) -> nn.Module:
    """MLP head: Linear-ReLU-Dropout-Linear (or one Linear when ``hidden`` is None)."""
    if hidden is None:
        return nn.Linear(width, num_outputs)
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_outputs))


class OutputScale(nn.Module):
    """y = offset + scale * z: lets a regression head work in unit range and answer in the
    task's units (degrees for ``angle``).  Identity for classification."""

    def __init__(self, offset: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("offset", torch.tensor(float(offset)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.offset + self.scale * z
