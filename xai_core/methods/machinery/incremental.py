"""Incremental inference for perturbed clips (Krypton, Nakandala et al., SIGMOD 2019, in 3D), many
perturbations at once: a network whose input changed inside a box recomputes, layer by layer, only
the part of each layer's output that the change can reach, and takes the rest from the clean
clip's pass.

The network's forward is traced (``torch.fx``) and every node's output on the clean clip is kept.
A group of P perturbed inputs, each changed inside a box of one common size (at its own place),
runs through the graph together.  Each node's value for the group is one of:

* ``None``: no input changed, the kept output (no work);
* a ``Patch``: where each perturbation may differ from the kept output, ``data [P, *size]`` at
  ``lo[i]`` (every dimension but the batch); the rest equals the kept output;
* ``Dense``: the whole output of every perturbation, ``[P, ...]``;
* ``Raw``: anything else computed from changed values (shapes, tuples).

Rules for patches:

* a convolution or pooling module (1-3D, any stride, padding, dilation and groups): the output
  positions whose window meets the changed box (its receptive field), computed from the input
  around them (the halo, zero- or -inf-padded at the borders as the layer pads);
* an elementwise module or function (batch norm in eval mode, activations, dropout in eval mode,
  sums and products of tensors of one shape): on the union of its operands' boxes;
* a transpose or permute: the box's dimensions permuted (a view, no work);
* a concatenation: the changed operands pasted in at their offsets;
* the zoo's motion channels of kind "difference" (frame t minus frame t-1): the changed frames and
  the one after each, from the changed frames and the one before.

Anything else (reshapes, pooling over everything, linear heads) runs on the whole outputs, batched,
and its changed boxes are found by comparing with the kept output.  Boxes of one group share a
size: a smaller one is widened (inside the tensor) to the largest, which recomputes a few more
positions, all exactly.  Once a box covers most of a layer (``WHOLE_SHARE``), that layer and what
follows run on whole outputs, batched.  The result is the network's output on each perturbed clip:
the same operations on the same values (the tests check float64 agreement with the whole pass to
1e-5).  Kept outputs are never written to.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn import functional as F

from ...models.motion import motion_channels
from .tracing import OwnThreadTracer

Box = tuple[tuple[int, int], ...]  # (lo, hi) for every dimension of a tensor
Corner = tuple[int, ...]  # a box's low corner in every dimension but the batch
Size = tuple[int, ...]  # a box's size in every dimension but the batch
WHOLE_SHARE = 0.6  # a box over this share of a layer: the layer runs on whole outputs

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


@dataclass
class Patch:
    """Values of P perturbed passes that may differ from the kept output: ``data [P, *size]`` at
    ``lo[i]`` (every dimension but the batch); everywhere else they equal the kept output."""

    lo: list[Corner]
    size: tuple[int, ...]
    data: torch.Tensor


@dataclass
class Dense:
    """Whole outputs of P perturbed passes, ``data [P, ...]``."""

    data: torch.Tensor


@dataclass
class Raw:
    """Anything else computed from changed values (a shape, a tuple of tensors)."""

    value: object


_NO_RULE = object()


class _Tracer(OwnThreadTracer):
    """fx's tracer with the zoo's motion channels as one call (their frame pairing cannot be traced)."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=(motion_channels,))

    def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
        if isinstance(m, CONVS + MAX_POOLS + AVG_POOLS + POINTWISE_MODULES):
            return True
        return super().is_leaf_module(m, qualified_name)


class IncrementalNet:
    """``net`` (in eval mode) with every node's output on the clean input ``x`` [1,...] kept.

    ``many(data, lo)`` gives ``net`` on P perturbed inputs, each equal to ``x`` except for
    ``data[i]`` at ``lo[i]``; ``__call__(x_new, box)`` gives ``net(x_new)`` for one (``box``: where
    x_new may differ from x, every dimension; None: found by comparing).  ``last_work``: the share
    of the conv layers' multiply-adds done in the last call (of those of whole passes);
    ``work_share()`` the same over every call so far; ``last_dense_bytes``: the largest whole
    output one perturbation needed in the last call (the engine sizes its groups by it)."""

    def __init__(self, net: nn.Module, x: torch.Tensor) -> None:
        if x.shape[0] != 1:
            raise ValueError(f"the clean input must be one clip, got a batch of {x.shape[0]}")
        self.graph = _Tracer().trace(net)
        inputs = [n for n in self.graph.nodes if n.op == "placeholder"]
        if len(inputs) != 1:
            raise ValueError(f"the network takes {len(inputs)} inputs; incremental passes need one")
        for n in self.graph.nodes:
            if n.op == "call_function" and n.target is operator.setitem:
                raise ValueError(f"{n.name} assigns into a tensor in place: run whole clips")
            writes = _in_place(n) or n.kwargs.get("inplace") is True
            if n.op == "call_module":
                writes = getattr(net.get_submodule(n.target), "inplace", False) is True
            if writes and n.args and isinstance(n.args[0], fx.Node) and len(n.args[0].users) > 1:
                raise ValueError(f"{n.name} writes in place into a value other nodes read: run whole clips")
        self.module = fx.GraphModule(net, self.graph)
        self.x = x.detach()
        self.kept: dict[str, object] = {}
        with torch.inference_mode():
            _Keeper(self.module, self.kept).run(self.x)
        tensors = {k for k, v in self.kept.items() if isinstance(v, torch.Tensor)}
        dependent = _dependent(self.graph) & tensors
        # values computed from the input with its batch of one first; one without (frames folded into
        # the batch, [B*T,...]) means P perturbations cannot be stacked along the batch
        self.batched = {k for k in dependent if self.kept[k].dim() and self.kept[k].shape[0] == 1}
        self.batchable = batch_independent(net) and self.batched == dependent
        self._padded: dict[tuple[str, float], tuple[tuple[int, ...], torch.Tensor]] = {}
        self.last_work = 0.0
        self.work_done = self.work_total = 0  # the conv layers' multiply-adds, done and of whole passes, all calls
        self.last_dense_bytes = 0  # the largest whole output of one perturbation in the last call (memory traffic)

    def __call__(self, x_new: torch.Tensor, box: Box | None = None):
        if x_new.shape != self.x.shape:
            raise ValueError(f"prepared for inputs {tuple(self.x.shape)}, got {tuple(x_new.shape)}")
        box = box if box is not None else _changed_box(x_new, self.x)
        if box is None:
            self.last_work = 0.0
            return _copied(self._clean_output())
        return self.many(x_new[_slices(box)], [tuple(lo for lo, _ in box[1:])])

    def many(self, data: torch.Tensor, lo: list[Corner]):
        """data [P, *size], lo: P corners -> the network's output on every perturbed input (batch P)."""
        if len(lo) != len(data):
            raise ValueError(f"{len(data)} patches but {len(lo)} corners")
        if len(lo) > 1 and not self.batchable:
            raise ValueError("this network's clips are not independent in a batch: one perturbation a call")
        shape = self.x.shape[1:]
        if data.dim() != self.x.dim() or any(
            c < 0 or c + s > n for corner in lo for c, s, n in zip(corner, data.shape[1:], shape, strict=True)
        ):
            raise ValueError(f"patches of shape {tuple(data.shape[1:])} at {lo} do not fit {tuple(self.x.shape)}")
        runner = _Batch(self, len(lo))
        with torch.inference_mode():
            out = runner.run(Patch([tuple(c) for c in lo], tuple(data.shape[1:]), data))
        self.last_work = runner.work / max(runner.total, 1)
        self.work_done += runner.work
        self.work_total += runner.total
        self.last_dense_bytes = runner.dense_bytes
        return out

    def work_share(self) -> float:
        """The conv layers' multiply-adds done over every call so far, as a share of whole passes'."""
        return self.work_done / max(self.work_total, 1)

    def _clean_output(self):
        return fx.node.map_arg(_output(self.graph).args[0], lambda a: self.kept[a.name])

    def padded(self, name: str, before: list[int], after: list[int], fill: float) -> tuple[Corner, torch.Tensor]:
        """The kept output of ``name`` padded with ``fill`` by at least ``before``/``after`` in every
        dimension but the batch: (the padding before, in every dimension; the padded tensor)."""
        kept = self.kept[name]
        if not any(before) and not any(after):
            return (0,) * (kept.dim() - 1), kept
        margin, tensor = self._padded.get((name, fill), ((0,) * (2 * (kept.dim() - 1)), None))
        need = tuple(max(m, v) for m, v in zip(margin, [*before, *after], strict=True))
        if tensor is None or need != margin:
            dims = kept.dim() - 1
            pad = []
            for d in reversed(range(dims)):
                pad += [need[d], need[dims + d]]
            tensor = F.pad(kept, pad, value=fill)
            self._padded[(name, fill)] = (need, tensor)
            margin = need
        return tuple(margin[: kept.dim() - 1]), tensor


def _output(graph: fx.Graph) -> fx.Node:
    return next(n for n in graph.nodes if n.op == "output")


def batch_independent(net: nn.Module) -> bool:
    """Whether each clip of a batch gets what it gets alone: no layer in training mode, no batch
    norm normalising with the batch's own statistics (one without running statistics)."""
    for m in net.modules():
        if m.training or (isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None):
            return False
    return True


def _dependent(graph: fx.Graph) -> set[str]:
    """The nodes whose output is computed from the input."""
    dependent: set[str] = set()
    for n in graph.nodes:
        if n.op == "placeholder" or any(a.name in dependent for a in n.all_input_nodes):
            dependent.add(n.name)
    return dependent


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


def _slices(box: Box) -> tuple:
    return tuple(slice(lo, hi) for lo, hi in box)


def _at(corner: Corner, size: tuple[int, ...]) -> tuple:
    return tuple(slice(c, c + s) for c, s in zip(corner, size, strict=True))


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _fitted(lows: list[list[int]], highs: list[list[int]], shape: tuple[int, ...]) -> tuple[list[Corner], Size]:
    """Boxes [lo, hi) of P passes -> one common size (the largest in every dimension) and each
    box's corner, moved back where the widened box would leave the tensor (``shape``)."""
    size = tuple(max(max(h - lo for lo, h in zip(los, his)), 0) for los, his in zip(zip(*lows), zip(*highs)))
    corners = [tuple(min(c, n - s) for c, s, n in zip(low, size, shape, strict=True)) for low in lows]
    return corners, size


def _paste(regions: torch.Tensor, lo: list[Corner], size: tuple[int, ...], patch: Patch, rows: list[int]) -> None:
    """Write the parts of ``patch`` (rows ``rows``) inside each region ``regions[k]`` at ``lo[k]``."""
    for k, (i, corner) in enumerate(zip(rows, lo, strict=True)):
        src, dst = [], []
        for c, s, p, ps in zip(corner, size, patch.lo[i], patch.size, strict=True):
            a, b = max(c, p), min(c + s, p + ps)
            if b <= a:
                break
            src.append(slice(a - p, b - p))
            dst.append(slice(a - c, b - c))
        else:
            regions[k][tuple(dst)] = patch.data[i][tuple(src)]


class _Batch:
    """One pass of a group of P perturbations through the traced graph."""

    def __init__(self, owner: IncrementalNet, count: int) -> None:
        self.owner, self.kept, self.module, self.count = owner, owner.kept, owner.module, count
        self.states: dict[str, object] = {}
        self.dense_cache: dict[str, torch.Tensor] = {}
        self.work = self.total = 0
        self.dense_bytes = 0

    def run(self, given: Patch):
        for n in self.owner.graph.nodes:
            if n.op == "placeholder":
                self.states[n.name] = given if all(given.size) else None
            elif n.op == "output":
                return fx.node.map_arg(n.args[0], lambda a: _copied(self._value(a)))
            elif n.op == "get_attr":
                self.states[n.name] = None
            else:
                self.states[n.name] = self._node(n)
        raise ValueError("the traced graph has no output")

    # ------------------------------------------------------------------ values
    def _value(self, node: fx.Node):
        """A node's value for the whole group: batch P where it changed or carries the batch."""
        state = self.states.get(node.name)
        if state is None:
            kept = self.kept[node.name]
            return kept.expand(self.count, *kept.shape[1:]) if node.name in self.owner.batched else kept
        if isinstance(state, Patch):
            return self._dense(node.name, state)
        return state.data if isinstance(state, Dense) else state.value

    def _dense(self, name: str, patch: Patch) -> torch.Tensor:
        if name not in self.dense_cache:
            kept = self.kept[name]
            out = kept.expand(self.count, *kept.shape[1:]).clone()
            for i, corner in enumerate(patch.lo):
                out[i][_at(corner, patch.size)] = patch.data[i]
            self.dense_cache[name] = out
            self._noted(out)
        return self.dense_cache[name]

    def _noted(self, dense: torch.Tensor) -> torch.Tensor:
        self.dense_bytes = max(self.dense_bytes, dense[0].numel() * dense.element_size())
        return dense

    def _values(self, name: str, state, lo: list[Corner], size: tuple[int, ...], fill: float = 0.0) -> torch.Tensor:
        """Every pass's values of node ``name`` in the box ``size`` at ``lo[i]`` (which may reach
        outside the tensor: ``fill`` there), [P, *size], a new tensor."""
        kept = self.kept[name]
        dims = kept.dim() - 1
        before = [max(0, -min(c[d] for c in lo)) for d in range(dims)]
        after = [max(0, max(c[d] + size[d] for c in lo) - kept.shape[d + 1]) for d in range(dims)]
        margin, source = self.owner.padded(name, before, after, fill)
        source = source[0]
        regions = torch.stack([source[_at(tuple(c + m for c, m in zip(corner, margin)), size)] for corner in lo])
        if isinstance(state, Patch):
            _paste(regions, lo, size, state, list(range(len(lo))))
        return regions

    # ------------------------------------------------------------------ nodes
    def _node(self, n: fx.Node):
        if not any(self.states.get(a.name) is not None for a in n.all_input_nodes):
            return None
        module = self.module.get_submodule(n.target) if n.op == "call_module" else None
        kept = self.kept[n.name]
        if isinstance(module, CONVS):
            self.total += self.count * kept[0].numel() * module.weight[0].numel()
        if n.name in self.owner.batched and not _nodes_in(n.kwargs):
            state = self._by_rule(n, module, kept)
            if state is not _NO_RULE:
                return state
        return self._generic(n, module, kept)

    def _by_rule(self, n: fx.Node, module, kept: torch.Tensor):
        name = n.target if n.op == "call_method" else None
        if name in ("transpose", "permute") or n.target in (torch.transpose, torch.permute):
            return self._permuted(n, kept)
        if n.op == "call_function" and n.target is motion_channels:
            return self._motion(n, kept)
        if n.op == "call_function" and n.target in (torch.cat, torch.concat):
            return self._cat(n, kept)
        if isinstance(module, CONVS + MAX_POOLS + AVG_POOLS) and len(n.args) == 1 and not n.kwargs:
            return self._windowed(n, module, kept)
        if self._pointwise(n, module, kept):
            return self._elementwise(n, module, kept)
        return _NO_RULE

    def _generic(self, n: fx.Node, module, kept):
        """The node on whole values (batched); back to a patch where the change stays small."""
        args = fx.node.map_arg(n.args, self._value)
        kwargs = fx.node.map_arg(n.kwargs, self._value)
        out = _call(n, module, args, kwargs)
        if isinstance(module, CONVS):
            self.work += self.count * kept[0].numel() * module.weight[0].numel()
        batch = (self.count, *kept.shape[1:]) if isinstance(kept, torch.Tensor) else None
        if isinstance(out, torch.Tensor) and n.name in self.owner.batched and out.shape == batch:
            if any(isinstance(self.states.get(a.name), Dense) for a in n.all_input_nodes):
                return Dense(self._noted(out))  # changed everywhere already: no comparison
            return self._found(out, kept)
        return Raw(out)

    def _whole(self, n: fx.Node, module, kept):
        """A node whose change covers most of its output: on whole outputs, batched."""
        out = _call(n, module, fx.node.map_arg(n.args, self._value), fx.node.map_arg(n.kwargs, self._value))
        if isinstance(module, CONVS):
            self.work += self.count * kept[0].numel() * module.weight[0].numel()
        return Dense(self._noted(out))

    def _found(self, out: torch.Tensor, kept: torch.Tensor):
        """Whole outputs [P, ...] -> None (no change), a patch (the changed boxes) or Dense."""
        diff = out != kept
        if not bool(diff.any()):
            return None
        dims = kept.dim() - 1
        lows, highs = [[0] * dims for _ in range(self.count)], [[0] * dims for _ in range(self.count)]
        for d in range(dims):
            other = tuple(e for e in range(1, dims + 1) if e != d + 1)
            along = diff.any(dim=other) if other else diff  # [P, n_d]
            length = along.shape[1]
            first = along.to(torch.uint8).argmax(1)
            last = length - 1 - along.flip(1).to(torch.uint8).argmax(1)
            has = along.any(1)
            for i, (f, la, h) in enumerate(zip(first.tolist(), last.tolist(), has.tolist(), strict=True)):
                lows[i][d], highs[i][d] = (f, la + 1) if h else (0, 0)
        lo, size = _fitted(lows, highs, tuple(kept.shape[1:]))
        if math.prod(size) > WHOLE_SHARE * kept[0].numel():
            return Dense(self._noted(out))
        return Patch(lo, size, torch.stack([out[i][_at(c, size)] for i, c in enumerate(lo)]))

    def _permuted(self, n: fx.Node, kept: torch.Tensor):
        state = self.states[n.args[0].name] if isinstance(n.args[0], fx.Node) else None
        if not isinstance(state, Patch) or _nodes_in(n.args[1:]):
            return _NO_RULE
        ndim = kept.dim()
        if n.target in ("transpose", torch.transpose):
            a, b = (int(d) % ndim for d in n.args[1:3])
            dims = list(range(ndim))
            dims[a], dims[b] = dims[b], dims[a]
        else:
            given = n.args[1] if len(n.args) == 2 and isinstance(n.args[1], (tuple, list)) else n.args[1:]
            dims = [int(d) % ndim for d in given]
        if dims[0] != 0 or len(dims) != ndim:
            return _NO_RULE
        lo = [tuple(c[d - 1] for d in dims[1:]) for c in state.lo]
        return Patch(lo, tuple(state.size[d - 1] for d in dims[1:]), state.data.permute(dims))

    def _motion(self, n: fx.Node, kept: torch.Tensor):
        """motion_channels(x [B,T,C,H,W], "difference"): frame t minus frame t-1 (frame 0: none)."""
        source = n.args[0]
        state = self.states.get(source.name) if isinstance(source, fx.Node) else None
        if len(n.args) < 2 or n.args[1] != "difference" or not isinstance(state, Patch) or kept.dim() != 5:
            return _NO_RULE
        if self.kept[source.name].shape != kept.shape:
            return _NO_RULE
        frames, channels = kept.shape[1], kept.shape[2]
        lows = [[c[0], 0, c[2], c[3]] for c in state.lo]
        highs = [
            [min(c[0] + state.size[0] + 1, frames), channels, c[2] + state.size[2], c[3] + state.size[3]]
            for c in state.lo
        ]
        lo, size = _fitted(lows, highs, tuple(kept.shape[1:]))
        parts = []
        for i, corner in enumerate(lo):
            start = max(corner[0] - 1, 0)  # the frame before: its own difference is unchanged, it is the pair's first
            crop_lo = (start, 0, corner[2], corner[3])
            crop_size = (corner[0] + size[0] - start, channels, size[2], size[3])
            own = Patch([state.lo[i]], state.size, state.data[i : i + 1])
            crop = self._values(source.name, own, [crop_lo], crop_size)
            parts.append(motion_channels(crop, "difference")[:, corner[0] - start :])
        return Patch(lo, size, torch.cat(parts))

    def _cat(self, n: fx.Node, kept: torch.Tensor):
        tensors = n.args[0]
        dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
        listed = isinstance(tensors, (tuple, list)) and all(isinstance(t, fx.Node) for t in tensors)
        if not listed or not isinstance(dim, int):
            return _NO_RULE
        dim %= kept.dim()
        states = [self.states.get(t.name) for t in tensors]
        if dim == 0 or any(s is not None and not isinstance(s, Patch) for s in states):
            return _NO_RULE
        offset, pieces = 0, []
        for node, state in zip(tensors, states, strict=True):
            if state is not None:
                lo = [tuple(c + offset if d == dim - 1 else c for d, c in enumerate(corner)) for corner in state.lo]
                pieces.append(Patch(lo, state.size, state.data))
            offset += self.kept[node.name].shape[dim]
        lo, size = self._union(pieces, kept, all_channels=False)
        if math.prod(size) > WHOLE_SHARE * kept[0].numel():
            return self._whole(n, None, kept)
        regions = self._values(n.name, None, lo, size)
        for piece in pieces:
            _paste(regions, lo, size, piece, list(range(self.count)))
        return Patch(lo, size, regions)

    def _union(self, patches: list[Patch], kept: torch.Tensor, all_channels: bool) -> tuple[list[Corner], Size]:
        dims = kept.dim() - 1
        lows = [[min(p.lo[i][d] for p in patches) for d in range(dims)] for i in range(self.count)]
        highs = [[max(p.lo[i][d] + p.size[d] for p in patches) for d in range(dims)] for i in range(self.count)]
        if all_channels:  # a module's parameters are per channel: all channels
            for low, high in zip(lows, highs, strict=True):
                low[0], high[0] = 0, kept.shape[1]
        return _fitted(lows, highs, tuple(kept.shape[1:]))

    def _elementwise(self, n: fx.Node, module, kept: torch.Tensor):
        nodes = [a for a in n.args if isinstance(a, fx.Node)]
        states = [self.states.get(a.name) for a in nodes]
        patches = [s for s in states if s is not None]
        if any(not isinstance(s, Patch) for s in patches):
            return _NO_RULE  # whole outputs already: the node runs on them
        first = patches[0]
        same = all(p.lo == first.lo and p.size == first.size for p in patches) and (
            module is None or first.size[0] == kept.shape[1]
        )
        lo, size = (first.lo, first.size) if same else self._union(patches, kept, all_channels=module is not None)
        if math.prod(size) > WHOLE_SHARE * kept[0].numel():
            return self._whole(n, module, kept)
        args = []
        for a in n.args:
            if not isinstance(a, fx.Node):
                args.append(a)
                continue
            state = self.states.get(a.name)
            args.append(state.data if same and state is not None else self._values(a.name, state, lo, size))
        return Patch(lo, size, _call(n, module, args, n.kwargs))

    def _pointwise(self, n: fx.Node, module: nn.Module | None, kept: torch.Tensor) -> bool:
        if module is not None:
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is None:
                return False  # batch statistics even in eval mode: not pointwise
            if not isinstance(module, POINTWISE_MODULES) or module.training or len(n.args) != 1:
                return False
        elif not (
            (n.op == "call_function" and n.target in POINTWISE_FUNCTIONS)
            or (n.op == "call_method" and n.target in POINTWISE_METHODS)
        ):
            return False
        # every tensor operand is a node output of the output's shape (no broadcasting over the box)
        return all(
            isinstance(a, fx.Node) and getattr(self.kept.get(a.name), "shape", None) == kept.shape
            for a in n.args
            if isinstance(a, (fx.Node, torch.Tensor))
        )

    def _windowed(self, n: fx.Node, module: nn.Module, kept: torch.Tensor):
        """A conv or pool on the output positions whose window meets each pass's box."""
        source = n.args[0]
        state = self.states.get(source.name) if isinstance(source, fx.Node) else None
        if not isinstance(state, Patch):
            return _NO_RULE
        dims = kept.dim() - 2
        if isinstance(module, CONVS):
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                return _NO_RULE
            kernel, stride = module.kernel_size, module.stride
            padding, dilation = module.padding, module.dilation
            fill = 0.0
        else:
            if getattr(module, "ceil_mode", False) or getattr(module, "return_indices", False):
                return _NO_RULE
            if isinstance(module, AVG_POOLS) and (
                not module.count_include_pad or getattr(module, "divisor_override", None)
            ):
                return _NO_RULE
            kernel = _tuple(module.kernel_size, dims)
            stride = _tuple(module.stride or module.kernel_size, dims)
            padding = _tuple(module.padding, dims)
            dilation = _tuple(getattr(module, "dilation", 1), dims)
            fill = -math.inf if isinstance(module, MAX_POOLS) else 0.0
        conv = isinstance(module, CONVS)
        lows, highs = [], []
        for corner in state.lo:
            low, high = [0 if conv else corner[0]], [kept.shape[1] if conv else corner[0] + state.size[0]]
            for d in range(dims):
                lo, hi = corner[1 + d], corner[1 + d] + state.size[1 + d]
                reach = (kernel[d] - 1) * dilation[d]
                o_lo = max(0, -(-(lo + padding[d] - reach) // stride[d]))
                o_hi = min(kept.shape[2 + d], (hi - 1 + padding[d]) // stride[d] + 1)
                low.append(o_lo)
                high.append(max(o_hi, o_lo))
            lows.append(low)
            highs.append(high)
        lo, size = _fitted(lows, highs, tuple(kept.shape[1:]))
        if not all(size):
            return None  # no output position reads a changed input
        if math.prod(size) > WHOLE_SHARE * kept[0].numel():
            return self._whole(n, module, kept)  # most of the layer
        channels = self.kept[source.name].shape[1]
        in_lo = [(0 if conv else c[0], *(c[1 + d] * stride[d] - padding[d] for d in range(dims))) for c in lo]
        spans = ((size[1 + d] - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1 for d in range(dims))
        in_size = (channels if conv else size[0], *spans)
        region = self._values(source.name, state, in_lo, in_size, fill)
        if conv:
            part = (F.conv1d, F.conv2d, F.conv3d)[dims - 1](
                region, module.weight, module.bias, module.stride, 0, module.dilation, module.groups
            )
            self.work += self.count * math.prod(size) * module.weight[0].numel()
        elif isinstance(module, MAX_POOLS):
            part = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[dims - 1](region, kernel, stride, 0, dilation)
        else:
            part = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[dims - 1](region, kernel, stride, 0)
        return Patch(lo, size, part)


def _nodes_in(value) -> bool:
    found = []
    fx.node.map_arg(value, found.append)
    return bool(found)


def _call(n: fx.Node, module: nn.Module | None, args, kwargs):
    if module is not None:
        if getattr(module, "inplace", False):  # it would write into another node's value
            args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        return module(*args, **kwargs)
    if _in_place(n) or kwargs.get("inplace"):  # x.relu_(), F.relu(x, inplace=True): on a copy
        args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    if n.op == "call_method":
        self_, *rest = args
        return getattr(self_, n.target)(*rest, **kwargs)
    return n.target(*args, **kwargs)
