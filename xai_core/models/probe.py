"""Probing a network the workbench did not build: which layout it takes, which layer Grad-CAM uses.

A probe runs the network once on a dummy clip ``[1,T,3,H,W]`` (or ``[1,3,T,H,W]``) of the
stated size under ``torch.inference_mode()`` and records, in execution order, the output shape
of every Conv2d / Conv3d that ran (forward hooks, always removed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from .base import InputSpec, ModelError

LAYOUTS = ("BTCHW", "BCTHW")
CONV_TYPES = (nn.Conv2d, nn.Conv3d)


@dataclass
class Probe:
    """One forward pass on a dummy clip: the output (or the error) and the activations seen."""

    layout: str
    output: object = None
    error: str | None = None
    activations: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def fits(self, num_outputs: int | None) -> bool:
        """The output is [1,K] (K = ``num_outputs`` when known)."""
        out = self.output
        return (
            self.error is None
            and isinstance(out, torch.Tensor)
            and out.dim() == 2
            and out.shape[0] == 1
            and out.shape[1] >= 1
            and (num_outputs is None or out.shape[1] == num_outputs)
        )

    def output_text(self) -> str:
        out = self.output
        if isinstance(out, torch.Tensor):
            return f"a tensor of shape {list(out.shape)}"
        return f"a {type(out).__name__}"


def dummy_clip(spec: InputSpec, device: torch.device | str = "cpu") -> torch.Tensor:
    """A fixed random normalised clip [1,T,3,H,W] (its own generator: the global seed is untouched)."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, spec.frames, 3, spec.height, spec.width, generator=g).to(device)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def net_device(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    return torch.device("cpu")


def probe(net: nn.Module, spec: InputSpec, layout: str, watch: Iterable[str] = ()) -> Probe:
    """Run ``net`` on a dummy clip in ``layout``; record the conv layers (and the modules named
    in ``watch``) that ran, with their output shapes.  Never raises for the network's errors."""
    result = Probe(layout)
    watch = set(watch)
    handles = []

    def recorder(name: str):
        def hook(_module, _inputs, output) -> None:
            out = output[0] if isinstance(output, (tuple, list)) and output else output
            if isinstance(out, torch.Tensor):
                result.activations.append((name, tuple(out.shape)))

        return hook

    x = dummy_clip(spec, net_device(net))
    if layout == "BCTHW":
        x = x.transpose(1, 2)
    try:
        for name, module in net.named_modules():
            if isinstance(module, CONV_TYPES) or name in watch:
                handles.append(module.register_forward_hook(recorder(name)))
        with torch.inference_mode():
            result.output = net(x)
    except Exception as exc:  # the user's network may fail in any way: that is what the probe asks
        result.error = _one_line(exc)
    finally:
        for handle in handles:
            handle.remove()
    return result


def _size_text(spec: InputSpec) -> str:
    return f"a dummy clip of {spec.frames} frames of {spec.height}x{spec.width}"


def choose_layout(
    net: nn.Module,
    spec: InputSpec,
    num_outputs: int | None,
    layout: str | None = None,
    *,
    what: str = "the model",
    outputs_said: str = "",
    watch: Iterable[str] = (),
) -> Probe:
    """Probe ``net`` in the stated ``layout``, or in both: the one that runs and gives [1,K] wins.

    ``num_outputs``: K when known (labels stated, or 1 for regression); ``outputs_said`` says
    where it comes from ("3 labels were given").  Raises a ModelError when neither layout works,
    when both do (ambiguous: state ``layout``), or on NaN / infinite outputs."""
    watch = tuple(watch)
    probes = [probe(net, spec, lay, watch) for lay in ((layout,) if layout else LAYOUTS)]
    good = [p for p in probes if p.fits(num_outputs)]
    if len(good) > 1:
        raise ModelError(
            f"{what}: the layout is ambiguous: it runs on {_size_text(spec)} both as BTCHW [B,T,C,H,W] and as "
            f"BCTHW [B,C,T,H,W] and gives {good[0].output_text()} either way; state it with layout= "
            "(--layout BTCHW or BCTHW)"
        )
    if good:
        chosen = good[0]
        if not torch.isfinite(chosen.output).all():
            raise ModelError(f"{what} gives NaN or infinite outputs on {_size_text(spec)} ({chosen.layout})")
        return chosen
    ran = [p for p in probes if p.error is None]
    if ran:
        p = ran[0]
        out = p.output
        if p.fits(None) and num_outputs is not None:
            raise ModelError(f"{what} gives {out.shape[1]} outputs on {_size_text(spec)}, but {outputs_said}")
        raise ModelError(
            f"{what} returns {p.output_text()} on {_size_text(spec)} ({p.layout}); the workbench needs "
            "logits [B,K] (or [B,1] for regression)"
        )
    if layout:
        raise ModelError(f"{what} fails on {_size_text(spec)} in layout {layout}: {probes[0].error}")
    raise ModelError(
        f"{what} runs in neither layout on {_size_text(spec)} (state frames/height/width if it takes "
        f"another size): as BTCHW: {probes[0].error}; as BCTHW: {probes[1].error}"
    )


def cam_usable(shape: tuple[int, ...], frames: int, batch: int = 1) -> bool:
    """Grad-CAM (``methods/cam.py``) can use this activation: [B*T,C,h,w] from a 2D layer run per
    frame, or [B,C,t,h,w] from a 3D layer; with more than one spatial position."""
    if len(shape) == 4:
        return shape[0] == batch * frames and shape[2] * shape[3] > 1
    if len(shape) == 5:
        return shape[0] == batch and shape[3] * shape[4] > 1
    return False


CAM_NEEDS = "it needs [B*T,C,h,w] from a 2D layer run per frame or [B,C,t,h,w] from a 3D layer, with h*w > 1"


def infer_cam_layer(net: nn.Module, p: Probe, frames: int) -> tuple[str | None, str | None]:
    """The last Conv2d/Conv3d that ran in the probe, if Grad-CAM can use its activation.

    Returns (layer name relative to ``net``, None), or (None, a note saying why not and naming
    the candidate layers)."""
    modules = dict(net.named_modules())
    convs = [(n, s) for n, s in p.activations if isinstance(modules.get(n), CONV_TYPES)]
    if not convs:
        if isinstance(net, torch.jit.ScriptModule):
            return None, (
                "TorchScript runs compiled code that forward hooks cannot see, so Grad-CAM has no layer to use; "
                "load the Python model as file.py:factory with its weights for Grad-CAM"
            )
        return None, "no Conv2d/Conv3d layer ran in a forward pass; state a layer with cam_layer= (--cam-layer)"
    name, shape = convs[-1]
    if cam_usable(shape, frames):
        return name, None
    candidates = list(dict.fromkeys(n for n, s in convs if cam_usable(s, frames)))
    listed = f"candidate layers: {', '.join(candidates)}" if candidates else "no conv layer that ran qualifies"
    return None, (
        f"no Grad-CAM layer was inferred: the last conv layer run, {name!r}, gives activations {list(shape)}, "
        f"which Grad-CAM cannot use ({CAM_NEEDS}); {listed}; state one with cam_layer= (--cam-layer)"
    )


def resolve_layer_name(net: nn.Module, name: str) -> str:
    """A layer name relative to ``net`` (a leading "net." as in ``VideoModel.cam_layer_name`` is
    accepted); a ModelError naming the conv layers when there is no such layer."""
    modules = dict(net.named_modules())
    if name and name in modules:
        return name
    if name.startswith("net.") and name[4:] in modules:
        return name[4:]
    convs = ", ".join(n for n, m in modules.items() if isinstance(m, CONV_TYPES)) or "none"
    raise ModelError(f"cam_layer {name!r} is not a layer of the model; its conv layers: {convs}")


def check_cam_layer(p: Probe, name: str, frames: int) -> None:
    """The stated layer ``name`` ran in the probe and Grad-CAM can use its activation."""
    shapes = [s for n, s in p.activations if n == name]
    if not shapes:
        raise ModelError(f"cam_layer {name!r} did not run in a forward pass (or gave no tensor)")
    if not cam_usable(shapes[-1], frames):
        raise ModelError(
            f"cam_layer {name!r} gives activations {list(shapes[-1])}, which Grad-CAM cannot use ({CAM_NEEDS})"
        )
