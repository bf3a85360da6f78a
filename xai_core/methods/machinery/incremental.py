"""Incremental inference for perturbed clips (Krypton, Nakandala et al., SIGMOD 2019, in 3D): a
network whose input changed inside a box recomputes, layer by layer, only the part of each
layer's output that the change can reach, and takes the rest from the clean clip's pass.

The network's forward is traced (``torch.fx``) and every node's output on the clean clip is kept.
For a perturbed input, each node is one of:

* unchanged (no input changed): its kept output, no work;
* a convolution or pooling module (1-3D, any stride, padding, dilation and groups): the changed
  box of its input mapped through the kernel (its receptive field) to the output positions that
  read it; those positions computed from the input around them (the halo, zero- or -inf-padded
  at the borders as the layer pads) and pasted into the kept output;
* an elementwise module or function (batch norm in eval mode, activations, dropout in eval mode,
  sums and products of tensors of one shape): computed on the union of its inputs' boxes;
* anything else (the motion channels, reshapes, pooling over everything, linear heads):
  computed whole, and its changed box found by comparing with the kept output.

* a transpose or permute: the box's dimensions permuted (a view, no work);
* a concatenation: the changed inputs pasted in at their offsets;
* the zoo's motion channels of kind "difference" (frame t minus frame t-1): the changed frames and
  the one after each, from the changed frames and the one before.

A box is the half-open range of every dimension that may differ from the clean pass.  Each node
writes into a buffer holding its clean output and undoes its writes after the call, so no layer
is copied whole.  Once a box covers most of a layer (``WHOLE_SHARE``), that layer runs whole.
The result is the network's output on the perturbed clip: the same operations on the same values
(the tests check float64 agreement with the whole pass to 1e-5).
"""

from __future__ import annotations

import math
import operator

import torch
from torch import fx, nn
from torch.nn import functional as F

from ...models.motion import motion_channels

Box = tuple[tuple[int, int], ...]  # (lo, hi) for every dimension of a tensor
WHOLE_SHARE = 0.6  # a box over this share of a layer: the layer runs whole

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
POINTWISE_MODULES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
POINTWISE_FUNCTIONS = {torch.relu, F.relu, F.relu6, F.silu, F.gelu, F.hardswish, torch.sigmoid, torch.tanh,
                       operator.add, operator.sub, operator.mul, torch.add, torch.sub, torch.mul}  # fmt: skip
POINTWISE_METHODS = {"relu", "sigmoid", "tanh", "add", "sub", "mul"}


class _Tracer(fx.Tracer):
    """fx's tracer with the zoo's motion channels as one call (their frame pairing cannot be traced)."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=(motion_channels,))

    def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
        if isinstance(m, CONVS + MAX_POOLS + AVG_POOLS + POINTWISE_MODULES):
            return True
        return super().is_leaf_module(m, qualified_name)


def traceable(net: nn.Module) -> str | None:
    """Why ``net`` cannot run incrementally (its forward cannot be traced), or None."""
    try:
        _Tracer().trace(net)
    except Exception as error:  # noqa: BLE001 - any failure means: run whole clips
        return f"its forward cannot be traced ({str(error).strip().splitlines()[0][:120] or type(error).__name__})"
    return None


class IncrementalNet:
    """``net`` (in eval mode) with every node's output on the clean input ``x`` kept;
    ``__call__(x_new, box)`` gives ``net(x_new)``, recomputing only what the change reaches
    (``box``: where x_new may differ from x, every dimension; None: found by comparing).
    ``last_work``: the share of the conv layers' output positions recomputed in the last call."""

    def __init__(self, net: nn.Module, x: torch.Tensor) -> None:
        self.graph = _Tracer().trace(net)
        for n in self.graph.nodes:
            if _in_place(n) and isinstance(n.args[0], fx.Node) and len(n.args[0].users) > 1:
                raise ValueError(f"{n.name} writes in place into a value other nodes read: run whole clips")
        self.module = fx.GraphModule(net, self.graph)
        self.kept: dict[str, object] = {}
        self.x = x.detach()
        with torch.inference_mode():
            _Keeper(self.module, self.kept).run(self.x)
            self.scratch = {k: v.clone() for k, v in self.kept.items() if isinstance(v, torch.Tensor)}
        self.last_work = 0.0

    def __call__(self, x_new: torch.Tensor, box: Box | None = None) -> torch.Tensor:
        if x_new.shape != self.x.shape:
            raise ValueError(f"prepared for inputs {tuple(self.x.shape)}, got {tuple(x_new.shape)}")
        runner = _Incremental(self, box)
        with torch.inference_mode():
            try:
                out = _copied(runner.run(x_new))  # it may be a view of a buffer the undo restores
            finally:
                runner.undo()
        self.last_work = runner.work / max(runner.total, 1)
        return out


def _copied(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_copied(v) for v in value)
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    return value


class _Keeper(fx.Interpreter):
    def __init__(self, module: fx.GraphModule, kept: dict) -> None:
        super().__init__(module)
        self.kept = kept

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        # a copy as computed: an in-place consumer (ReLU(inplace=True)) must not change what is kept
        self.kept[n.name] = out.clone() if isinstance(out, torch.Tensor) else out
        return out


def _changed_box(new: torch.Tensor, old: torch.Tensor) -> Box | None:
    """The bounding box of where new differs from old (every dimension); None if nowhere."""
    diff = new != old
    if not bool(diff.any()):
        return None
    box = []
    for d in range(diff.dim()):
        along = diff.transpose(0, d).flatten(1).any(1)
        idx = torch.nonzero(along).flatten()
        box.append((int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)


def _in_place(n: fx.Node) -> bool:
    """x.relu_(), torch.sigmoid_(x): a call that writes into its first argument."""
    name = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "")
    return n.op in ("call_method", "call_function") and name.endswith("_") and not name.startswith("__")


def _full(shape) -> Box:
    return tuple((0, s) for s in shape)


def _union(boxes: list[Box]) -> Box:
    return tuple((min(b[d][0] for b in boxes), max(b[d][1] for b in boxes)) for d in range(len(boxes[0])))


def _slices(box: Box) -> tuple:
    return tuple(slice(lo, hi) for lo, hi in box)


def _volume(box: Box) -> int:
    return math.prod(hi - lo for lo, hi in box)


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


class _Incremental(fx.Interpreter):
    def __init__(self, owner: IncrementalNet, box: Box | None) -> None:
        super().__init__(owner.module)
        self.kept, self.scratch = owner.kept, owner.scratch
        self.given = box
        self.boxes: dict[str, Box | None] = {}
        self.written: list[tuple[str, Box]] = []
        self.work = self.total = 0

    def undo(self) -> None:
        for name, box in self.written:
            self.scratch[name][_slices(box)] = self.kept[name][_slices(box)]
        self.written.clear()

    def _write(self, name: str, box: Box, part: torch.Tensor) -> torch.Tensor:
        self.scratch[name][_slices(box)] = part
        self.written.append((name, box))
        self.boxes[name] = box
        return self.scratch[name]

    def run_node(self, n: fx.Node):
        if n.op == "placeholder":
            value = super().run_node(n)
            given = self.given if self.given is not None else _changed_box(value, self.kept[n.name])
            self.boxes[n.name] = given
            return value
        if n.op not in ("call_module", "call_function", "call_method"):  # parameters and the output
            return super().run_node(n)
        module = self.module.get_submodule(n.target) if n.op == "call_module" else None
        kept = self.kept[n.name]
        if isinstance(module, CONVS):
            self.total += kept[0, 0].numel()
        changed = [self.boxes[a.name] for a in n.all_input_nodes if self.boxes.get(a.name) is not None]
        if not changed:
            self.boxes[n.name] = None
            return self.scratch.get(n.name, kept)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        if isinstance(kept, torch.Tensor):
            done = self._by_rule(n, module, args, kwargs, kept)
            if done is not None:
                return done
        out = self._call(n, module, args, kwargs)
        if isinstance(module, CONVS):
            self.work += kept[0, 0].numel()
        if isinstance(out, torch.Tensor) and isinstance(kept, torch.Tensor) and out.shape == kept.shape:
            self.boxes[n.name] = _changed_box(out, kept)
        else:
            self.boxes[n.name] = _full(out.shape) if isinstance(out, torch.Tensor) else ()
        return out

    def _box_of(self, node) -> Box | None:
        return self.boxes.get(node.name) if isinstance(node, fx.Node) else None

    def _by_rule(self, n: fx.Node, module, args, kwargs, kept: torch.Tensor) -> torch.Tensor | None:
        if any(isinstance(v, (torch.Tensor, tuple, list)) for v in kwargs.values()) or (
            n.target in (torch.transpose, torch.permute, "transpose", "permute") and kwargs
        ):
            return None  # operands or dimensions given by keyword: the node runs whole
        name = n.target if n.op == "call_method" else None
        if name in ("transpose", "permute") or n.target in (torch.transpose, torch.permute):
            box = self._box_of(n.args[0])
            if box is None or len(box) != kept.dim():
                return None
            dims = list(range(kept.dim()))
            if name == "transpose" or n.target is torch.transpose:
                a, b = (d % kept.dim() for d in args[1:3])
                dims[a], dims[b] = dims[b], dims[a]
            else:
                dims = [d % kept.dim() for d in (args[1:] if not isinstance(args[1], (tuple, list)) else args[1])]
            self.boxes[n.name] = tuple(box[d] for d in dims)
            return self._call(n, module, args, kwargs)  # a view of the input's buffer
        if n.op == "call_function" and n.target is motion_channels:
            return self._motion(n, args, kept)
        if n.op == "call_function" and n.target in (torch.cat, torch.concat):
            return self._cat(n, args, kwargs, kept)
        boxes = [self._box_of(a) for a in n.all_input_nodes]
        boxes = [b for b in boxes if b is not None]
        if any(len(b) != kept.dim() for b in boxes):
            return None
        box = _union(boxes)
        if _volume(box) > WHOLE_SHARE * kept.numel():
            return None
        if isinstance(module, CONVS + MAX_POOLS + AVG_POOLS) and len(args) == 1:
            return self._windowed(n.name, module, args[0], box, kept)
        if self._pointwise(n, module, args, kept):
            if module is not None:  # a module's parameters are per channel: all channels
                box = (box[0], (0, kept.shape[1]), *box[2:])
            region = _slices(box)
            sliced = [a[region] if isinstance(a, torch.Tensor) and a.shape == kept.shape else a for a in args]
            return self._write(n.name, box, self._call(n, module, sliced, kwargs))
        return None

    def _motion(self, n: fx.Node, args, kept: torch.Tensor) -> torch.Tensor | None:
        """motion_channels(x [B,T,C,H,W], "difference"): frame t minus frame t-1 (frame 0: none)."""
        box = self._box_of(n.args[0])
        if len(args) < 2 or args[1] != "difference" or box is None or len(box) != 5:
            return None
        (b0, b1), (t0, t1), _, (y0, y1), (x0, x1) = box
        t_end = min(t1 + 1, kept.shape[1])
        start = max(t0 - 1, 0)  # the frame before the change: its difference is unchanged, it is the pair's first
        crop = args[0][b0:b1, start:t_end, :, y0:y1, x0:x1]
        part = motion_channels(crop, "difference")[:, t0 - start :]
        return self._write(n.name, ((b0, b1), (t0, t_end), (0, kept.shape[2]), (y0, y1), (x0, x1)), part)

    def _cat(self, n: fx.Node, args, kwargs, kept: torch.Tensor) -> torch.Tensor | None:
        tensors = args[0]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0) % kept.dim()
        offset, pieces = 0, []
        for node, value in zip(n.args[0], tensors):
            box = self._box_of(node)
            if box is not None:
                if len(box) != kept.dim():
                    return None
                (lo, hi) = box[dim]
                target = tuple((lo + offset, hi + offset) if d == dim else box[d] for d in range(kept.dim()))
                pieces.append((target, value[_slices(box)]))
            offset += value.shape[dim]
        if not pieces:
            return None
        out = self.scratch[n.name]
        for target, part in pieces:
            self._write(n.name, target, part)
        self.boxes[n.name] = _union([t for t, _ in pieces])
        return out

    def _call(self, n: fx.Node, module: nn.Module | None, args, kwargs):
        if module is not None:
            if getattr(module, "inplace", False):  # it would write into another node's buffer
                args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            return module(*args, **kwargs)
        if _in_place(n) or kwargs.get(
            "inplace"
        ):  # x.relu_(), F.relu(x, inplace=True): on a copy, never on another node's buffer
            args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        if n.op == "call_method":
            self_, *rest = args
            return getattr(self_, n.target)(*rest, **kwargs)
        return n.target(*args, **kwargs)

    @staticmethod
    def _pointwise(n: fx.Node, module: nn.Module | None, args, kept: torch.Tensor) -> bool:
        if module is not None:
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is None:
                return False  # batch statistics even in eval mode: not pointwise
            return isinstance(module, POINTWISE_MODULES) and not module.training
        if n.op == "call_function" and n.target in POINTWISE_FUNCTIONS:
            pass
        elif not (n.op == "call_method" and n.target in POINTWISE_METHODS):
            return False
        # every tensor operand has the output's shape (no broadcasting over the box)
        return all(a.shape == kept.shape for a in args if isinstance(a, torch.Tensor))

    def _windowed(self, name: str, module: nn.Module, x: torch.Tensor, box: Box, kept: torch.Tensor):
        """A conv or pool on the output positions whose window meets ``box``; None where this layer's
        options are not followed (the caller then runs it whole)."""
        dims = x.dim() - 2
        if isinstance(module, CONVS):
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                return None
            kernel, stride = module.kernel_size, module.stride
            padding, dilation = module.padding, module.dilation
            fill = 0.0
        else:
            if getattr(module, "ceil_mode", False) or getattr(module, "return_indices", False):
                return None
            if isinstance(module, AVG_POOLS) and (
                not module.count_include_pad or getattr(module, "divisor_override", None)
            ):
                return None
            kernel = _tuple(module.kernel_size, dims)
            stride = _tuple(module.stride or module.kernel_size, dims)
            padding = _tuple(module.padding, dims)
            dilation = _tuple(getattr(module, "dilation", 1), dims)
            fill = -math.inf if isinstance(module, MAX_POOLS) else 0.0
        out_box, in_lo, in_hi = [], [], []
        for d in range(dims):
            lo, hi = box[2 + d]
            reach = (kernel[d] - 1) * dilation[d]
            o_lo = max(0, -(-(lo + padding[d] - reach) // stride[d]))
            o_hi = min(kept.shape[2 + d], (hi - 1 + padding[d]) // stride[d] + 1)
            if o_hi <= o_lo:
                return None
            out_box.append((o_lo, o_hi))
            in_lo.append(o_lo * stride[d] - padding[d])
            in_hi.append((o_hi - 1) * stride[d] - padding[d] + reach + 1)
        channels = (0, x.shape[1]) if isinstance(module, CONVS) else box[1]
        spans = (slice(max(lo, 0), min(hi, x.shape[2 + d])) for d, (lo, hi) in enumerate(zip(in_lo, in_hi)))
        region = x[(slice(*box[0]), slice(*channels), *spans)]
        pad = []
        for d in reversed(range(dims)):
            pad += [max(0, -in_lo[d]), max(0, in_hi[d] - x.shape[2 + d])]
        if any(pad):
            region = F.pad(region, pad, value=fill)
        if isinstance(module, CONVS):
            conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
            part = conv(region, module.weight, module.bias, module.stride, 0, module.dilation, module.groups)
            self.work += _volume(tuple(out_box))
            channels = (0, kept.shape[1])
        elif isinstance(module, MAX_POOLS):
            part = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[dims - 1](region, kernel, stride, 0, dilation)
        else:
            part = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[dims - 1](region, kernel, stride, 0)
        return self._write(name, (box[0], channels, *out_box), part)
