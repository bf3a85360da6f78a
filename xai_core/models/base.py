"""The VideoModel adapter: one interface over every video network the workbench explains.

Every model takes ``x [B,T,C,H,W]`` (normalised float) and returns ``[B,K]`` logits or
``[B,1]`` regression outputs.  Optional capabilities decide which methods the UI offers:

* ``frame_encoder``   a per-frame 2D network; ``encode_frames(x) -> feats [B,T,D]``
* ``temporal_head``   ``temporal_head(feats [B,T,D]) -> [B,K]`` (decoupled models)
* ``cam_layer``       a conv layer (2D per frame or 3D) for Grad-CAM
* ``temporal_attention``  ``temporal_attention(x) -> [B,T]`` attention over frames
* ``attention_layers``  ``attention_maps(x) -> [[B,heads,T+1,T+1]] per layer`` of a CLS-token
                      Transformer over frames (token 0 is CLS): attention_cls, attention_rollout
* ``attention_pooling`` ``temporal_attention`` gives the weights that pool the frames' states
                      into the output (CNN-LSTM with attention pooling, 003): attention_pool
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

TASKS = ("classification", "regression")
CAPABILITIES = (
    "frame_encoder",
    "temporal_head",
    "cam_layer",
    "temporal_attention",
    "attention_layers",
    "attention_pooling",
)


# What a network of your own provides to have each capability (said when a method is refused for the lack of it).
CAPABILITY_SOURCES = {
    "frame_encoder": "a `frame_encoder` module and a method `encode_frames(x [B,T,C,H,W]) -> [B,T,D]`",
    "temporal_head": "a method `temporal_head(features [B,T,D]) -> [B,K]` beside its frame encoder",
    "cam_layer": "a convolutional layer whose output keeps a spatial grid (name it with cam_layer= / --cam-layer)",
    "temporal_attention": "a method `temporal_attention(x [B,T,C,H,W]) -> [B,T]` giving its weights over frames",
    "attention_layers": "a method `attention_maps(features [B,T,D]) -> [[B,heads,T+1,T+1], ...]` (token 0: CLS) "
    "beside its frame encoder",
    "attention_pooling": "`temporal_attention` plus the attribute `attention_pool = True` (its pooling weights)",
}


@dataclass(frozen=True)
class InputSpec:
    """What the network expects: T frames of H x W, normalised per channel with mean / std
    (on pixel values scaled to [0, 1])."""

    frames: int = 32
    height: int = 112
    width: int = 112
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        return cls(
            frames=int(data["frames"]),
            height=int(data["height"]),
            width=int(data["width"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
        )


def normalise_frames(frames: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 frames [...,H,W,3] -> normalised float [...,3,H,W]: (x / 255 - mean) / std."""
    x = frames.movedim(-1, -3).float().div_(255.0)
    mean = torch.tensor(spec.mean, device=x.device).view(3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(3, 1, 1)
    return (x - mean) / std


class ModelError(ValueError):
    """A model cannot be built, loaded or used as asked; the message says why."""


@dataclass
class ModelInfo:
    """Descriptive facts about a model, mostly from its card.  ``source``: where a user's own
    model came from (``models.external``); ``notes``: what the user should know, by topic
    ("weights": random weights, "cam_layer": why no Grad-CAM layer was found, ...)."""

    name: str
    arch: str
    config: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


class VideoModel(nn.Module):
    """Adapter around a network ``net``.

    ``layout`` is the layout ``net`` itself takes: "BTCHW" (per-frame models) or "BCTHW"
    (3D CNNs such as torchvision's r3d_18); the adapter always takes [B,T,C,H,W].
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        task: str,
        labels: list[str],
        input_spec: InputSpec,
        layout: str = "BTCHW",
        info: ModelInfo | None = None,
        cam_layer: str | None = None,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ModelError(f"task must be one of {TASKS}, not {task!r}")
        if layout not in ("BTCHW", "BCTHW"):
            raise ModelError(f"layout must be 'BTCHW' or 'BCTHW', not {layout!r}")
        self.net = net
        self.task = task
        self.labels = list(labels)
        self.input_spec = input_spec
        self.layout = layout
        self.info = info or ModelInfo(name=type(net).__name__, arch=type(net).__name__)
        self._cam_layer_name = cam_layer or getattr(net, "cam_layer_name", None)
        self.training = net.training  # the adapter has no layers of its own: it is in the mode of what it wraps

    # ------------------------------------------------------------------ basics
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the weights (float32; float64 for a model made ``.double()``)."""
        return next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,C,H,W] -> [B,K] logits or [B,1] regression output."""
        if x.dim() != 5:
            raise ModelError(f"expected a 5-D input [B,T,C,H,W], got shape {tuple(x.shape)}")
        if self.layout == "BCTHW":
            x = x.transpose(1, 2)
        return self.net(x)

    # ------------------------------------------------------------------ capabilities
    @property
    def capabilities(self) -> frozenset[str]:
        caps = set()
        if callable(getattr(self.net, "encode_frames", None)) and hasattr(self.net, "frame_encoder"):
            caps.add("frame_encoder")
        if callable(getattr(self.net, "temporal_head", None)) and "frame_encoder" in caps:
            caps.add("temporal_head")
        if self._cam_layer_name is not None:
            caps.add("cam_layer")
        if callable(getattr(self.net, "temporal_attention", None)) and getattr(
            self.net, "has_temporal_attention", True
        ):
            caps.add("temporal_attention")
        if callable(getattr(self.net, "attention_maps", None)) and "frame_encoder" in caps:
            caps.add("attention_layers")
        if getattr(self.net, "attention_pool", False) is True and "temporal_attention" in caps:
            caps.add("attention_pooling")
        return frozenset(caps)

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,C,H,W] -> per-frame features [B,T,D]."""
        self._require("frame_encoder")
        return self.net.encode_frames(x)

    def temporal_head(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B,T,D] -> [B,K]."""
        self._require("temporal_head")
        return self.net.temporal_head(feats)

    @property
    def frame_context(self) -> int:
        """How many frames (the frame itself and those before it) one frame's features see."""
        return int(getattr(self.net, "frame_context", 1))

    def temporal_attention(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,T,C,H,W] -> attention over frames [B,T] (sums to 1 over T)."""
        self._require("temporal_attention")
        if self.layout == "BCTHW":
            x = x.transpose(1, 2)
        return self.net.temporal_attention(x)

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B,T,C,H,W] -> every Transformer layer's attention [B,heads,T+1,T+1] (token 0: CLS)."""
        self._require("attention_layers")
        return self.net.attention_maps(self.encode_frames(x))

    def conv_layers(self) -> dict[str, nn.Module]:
        """All Conv2d / Conv3d layers by qualified name (relative to the adapter)."""
        return {name: m for name, m in self.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))}

    @property
    def cam_layer_name(self) -> str | None:
        """Qualified name (relative to the adapter) of the default Grad-CAM layer."""
        if self._cam_layer_name is None:
            return None
        return "net." + self._cam_layer_name

    def layer(self, name: str | None = None) -> nn.Module:
        """The module called ``name`` (default: the Grad-CAM layer)."""
        name = name or self.cam_layer_name
        if name is None:
            raise ModelError(f"model {self.name!r} has no default Grad-CAM layer; name one")
        modules = dict(self.named_modules())
        if name not in modules and ("net." + name) in modules:
            name = "net." + name
        if name not in modules:
            convs = ", ".join(self.conv_layers()) or "none"
            raise ModelError(f"model {self.name!r} has no layer {name!r}; its conv layers: {convs}")
        return modules[name]

    def _require(self, capability: str) -> None:
        if capability not in self.capabilities:
            raise ModelError(f"model {self.name!r} has no {capability.replace('_', ' ')}")

    # ------------------------------------------------------------------ input
    def preprocess(self, clip, device: torch.device | str | None = None) -> torch.Tensor:
        """A Clip (or uint8 array [T,H,W,3]) -> normalised float tensor [1,T,C,H,W].

        The clip is resized to the model's H x W if needed; its frame count must already be T
        (``xai_core.load_video(..., model=model)`` samples it)."""
        frames = getattr(clip, "frames", clip)
        frames = np.asarray(frames)
        spec = self.input_spec
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ModelError(f"expected frames [T,H,W,3], got shape {frames.shape}")
        if frames.shape[0] != spec.frames:
            raise ModelError(
                f"the clip has {frames.shape[0]} frames but model {self.name!r} takes {spec.frames}; "
                "load it with xai_core.load_video(source, model=model) to sample it"
            )
        x = normalise_frames(torch.from_numpy(np.ascontiguousarray(frames)).to(device or self.device), spec)
        if x.shape[-2:] != (spec.height, spec.width):
            x = nn.functional.interpolate(
                x, size=(spec.height, spec.width), mode="bilinear", align_corners=False, antialias=True
            )
        return x.unsqueeze(0).to(self.dtype)  # a model kept in float64 (the exactness tests) gets float64

    def frames_of(self, x: torch.Tensor) -> np.ndarray:
        """A normalised clip [1,T,C,H,W] -> its frames as uint8 [T,H,W,3] (what ``preprocess`` undoes)."""
        mean = torch.tensor(self.input_spec.mean, device=x.device, dtype=x.dtype).view(3, 1, 1)
        std = torch.tensor(self.input_spec.std, device=x.device, dtype=x.dtype).view(3, 1, 1)
        pixels = ((x.detach()[0] * std + mean) * 255.0).round().clamp(0, 255)
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def pixel_value(self, value: float, device=None) -> torch.Tensor:
        """The normalised value [1,1,3,1,1] of a grey level in [0, 255] (e.g. 0 = black)."""
        mean = torch.tensor(self.input_spec.mean, device=device or self.device)
        std = torch.tensor(self.input_spec.std, device=device or self.device)
        return ((value / 255.0 - mean) / std).view(1, 1, 3, 1, 1)

    def describe(self) -> dict:
        """JSON-able summary: name, architecture, task, labels, input spec, capabilities, notes."""
        return {
            "name": self.name,
            "arch": self.info.arch,
            "task": self.task,
            "labels": self.labels,
            "input_spec": self.input_spec.to_dict(),
            "layout": self.layout,
            "capabilities": sorted(self.capabilities),
            "cam_layer": self.cam_layer_name,
            "parameters": int(sum(p.numel() for p in self.parameters())),
            "notes": dict(self.info.notes),
        }
