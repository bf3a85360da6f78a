"""LRP for any CNN: the network's forward traced into a graph (``torch.fx``) and run node by node
with a rule for each node, so that residual additions, concatenations, channel shuffles, squeeze-
and-excitation gates and reshapes written anywhere in a user's ``forward`` get rules without an
architecture-specific canonizer.

What each node does with the relevance R of its output (zennit's convention: relevance travels as
the output gradient):

* conv and linear modules: the composite's rule (zennit); a batch norm right after a conv is first
  merged into it (``torch.nn.utils.fusion.fuse_conv_bn_eval``), one elsewhere passes R (zennit);
* additions and subtractions of two tensors, means, sums and average pools (modules included):
  R shared in proportion to the contributions (``share``: the z-rule of a weightless linear map,
  zennit's ``Norm``), so a residual addition splits R between its two branches instead of copying
  it into both;
* elementwise activations and scaling by constants: R passes unchanged (``relay``);
* a product or quotient of a signal and a smaller (broadcast) tensor, as in squeeze-and-excitation
  blocks: all of R to the signal, none to the gate (``gate``);
* reshapes, permutations (channel shuffle), slicing, concatenation and max pools: the gradient,
  which moves R without changing it (max pools: all of it to the winner);
* anything else: the plain gradient, and the node is named in ``plain_gradient``.

A network whose forward cannot be traced (data-dependent control flow) is canonized module by
module: its children are traced instead and the untraced forward's own operations pass the plain
gradient (named in ``untraced``).
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.ops import stochastic_depth

from ..machinery.tracing import OwnThreadTracer
from .rules import TINY, stabilise

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
RULED = CONVS + (nn.Linear,)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
AVG_POOLS = (
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)
ACTIVATION_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Mish,
    nn.Softplus,
    nn.Sigmoid,
    nn.Tanh,
)
# modules whose gradient already moves relevance as LRP does
EXACT_MODULES = (
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.ChannelShuffle,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.ZeroPad2d,
    nn.ConstantPad1d,
    nn.ConstantPad2d,
    nn.ConstantPad3d,
)
ACTIVATION_FUNCTIONS = {
    F.relu,
    torch.relu,
    F.relu6,
    F.hardtanh,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.celu,
    F.gelu,
    F.silu,
    F.hardswish,
    F.hardsigmoid,
    F.mish,
    F.softplus,
    torch.sigmoid,
    F.sigmoid,
    torch.tanh,
    F.tanh,
}
ACTIVATION_METHODS = {"relu", "sigmoid", "tanh", "clamp", "clamp_min", "clamp_max"}
EXACT_FUNCTIONS = {
    torch.flatten,
    torch.cat,
    torch.concat,
    torch.stack,
    torch.reshape,
    torch.permute,
    torch.transpose,
    torch.squeeze,
    torch.unsqueeze,
    torch.chunk,
    torch.split,
    torch.narrow,
    torch.flip,
    torch.roll,
    torch.amax,
    torch.max,
    operator.getitem,
    F.pad,
    F.dropout,
    F.max_pool1d,
    F.max_pool2d,
    F.max_pool3d,
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
    F.adaptive_max_pool3d,
    F.channel_shuffle,
    stochastic_depth,  # the identity outside training
}
EXACT_METHODS = {
    "view",
    "reshape",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "expand",
    "expand_as",
    "repeat",
    "chunk",
    "split",
    "narrow",
    "select",
    "flip",
    "roll",
    "clone",
    "to",
    "float",
    "double",
    "type_as",
    "view_as",
    "reshape_as",
    "amax",
    "max",
}
SHARED_FUNCTIONS = {torch.mean, torch.sum, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
                    F.adaptive_avg_pool2d, F.adaptive_avg_pool3d}  # fmt: skip
SHARED_METHODS = {"mean", "sum"}
ADDITIONS = {operator.add, operator.iadd, torch.add}
SUBTRACTIONS = {operator.sub, operator.isub, torch.sub}
PRODUCTS = {operator.mul, operator.imul, torch.mul}
QUOTIENTS = {operator.truediv, operator.itruediv, torch.div}
IN_PLACE = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
            operator.itruediv: operator.truediv}  # fmt: skip


# ------------------------------------------------------------------------------------------ rules
class _Share(torch.autograd.Function):
    """out = fn(*xs), linear in the xs without weights of its own (a sum, difference, mean, average
    pool): the relevance R of out is shared in proportion to the contributions, R_x = x * d out/dx * R / out."""

    @staticmethod
    def forward(ctx, fn: Callable, *xs: torch.Tensor) -> torch.Tensor:
        ctx.fn = fn
        ctx.save_for_backward(*xs)
        return fn(*xs)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        xs = [x.detach().requires_grad_(True) for x in ctx.saved_tensors]
        with torch.enable_grad():
            out = ctx.fn(*xs)
            grads = torch.autograd.grad(out, xs, grad_outputs=relevance / stabilise(out.detach(), TINY))
        return (None, *(x.detach() * g for x, g in zip(xs, grads)))


class _Relay(torch.autograd.Function):
    """out = fn(x) elementwise (an activation, a constant scale): R passes to x unchanged."""

    @staticmethod
    def forward(ctx, fn: Callable, x: torch.Tensor) -> torch.Tensor:
        return fn(x.clone())

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        return None, relevance


class _Gate(torch.autograd.Function):
    """out = fn(signal, gate) with the gate broadcast over the signal: all of R to the signal."""

    @staticmethod
    def forward(ctx, fn: Callable, signal: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        ctx.shape = signal.shape
        return fn(signal, gate)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        return None, relevance.sum_to_size(ctx.shape), None


def share(fn: Callable, *xs: torch.Tensor) -> torch.Tensor:
    """fn(*xs) with the proportional rule (see ``_Share``)."""
    return _Share.apply(fn, *xs)


def relay(fn: Callable, x: torch.Tensor) -> torch.Tensor:
    """fn(x) with the relevance passed unchanged (see ``_Relay``)."""
    return _Relay.apply(fn, x)


def gate(fn: Callable, signal: torch.Tensor, gate_: torch.Tensor) -> torch.Tensor:
    """fn(signal, gate) with all relevance to the signal (see ``_Gate``)."""
    return _Gate.apply(fn, signal, gate_)


# --------------------------------------------------------------------------------------- planning
Step = Callable[[tuple, dict], object]


@dataclass
class Canonized:
    """A network ready for LRP: ``net`` (the copy, rewritten), ``first`` the first conv or linear
    layer the input reaches (the composite's first-layer rule goes to it) and ``first_input`` what
    it received, ``plain_gradient`` the nodes that pass the plain gradient, ``untraced`` the modules
    whose own forward runs as written."""

    net: nn.Module
    first: nn.Module | None
    first_input: torch.Tensor | None = None
    plain_gradient: list[str] = field(default_factory=list)
    untraced: list[str] = field(default_factory=list)


class RuledGraph(nn.Module):
    """``root``'s forward as a traced graph, run node by node with each node's rule (``steps``)."""

    def __init__(self, root: nn.Module, graph: fx.Graph, steps: dict[str, Step]) -> None:
        super().__init__()
        self.root = root
        self.graph = graph
        self.steps = steps

    def forward(self, *args):
        return _Runner(self.root, self.graph, self.steps).run(*args)


class _Runner(fx.Interpreter):
    def __init__(self, root: nn.Module, graph: fx.Graph, steps: dict[str, Step]) -> None:
        super().__init__(root, graph=graph)
        self.steps = steps

    def run_node(self, n: fx.Node):
        step = self.steps.get(n.name)
        if step is None:
            return super().run_node(n)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        return step(args, kwargs)


def _is_tensor_node(value) -> bool:
    return isinstance(value, fx.Node) and isinstance(value.meta.get("tensor_meta"), TensorMetadata)


def _numel(node: fx.Node) -> int:
    shape = node.meta["tensor_meta"].shape
    n = 1
    for s in shape:
        n *= s
    return n


def _name(target) -> str:
    return getattr(target, "__name__", None) or str(target)


def _call(target: Callable) -> Step:
    return lambda args, kwargs: target(*args, **kwargs)


def _method(name: str) -> Callable:
    return lambda self_, *a, **k: getattr(self_, name)(*a, **k)


def _kind(node: fx.Node) -> tuple[str | None, Callable]:
    """What a call node computes, for its rule: ``exact`` (the gradient moves R as LRP does), ``share``,
    ``relay``, ``add`` (sums and differences), ``mul``, ``div`` or None (unknown); and the out-of-place
    callable (an in-place ``+=`` or ``relu_`` is run out of place)."""
    if node.op == "call_method":
        name = node.target
        if name.endswith("_") and not name.startswith("__"):
            name = name[:-1]
        fn = _method(name)
        if name in EXACT_METHODS:
            return "exact", fn
        if name in SHARED_METHODS:
            return "share", fn
        if name in ACTIVATION_METHODS:
            return "relay", fn
        return {"add": "add", "sub": "add", "mul": "mul", "div": "div", "true_divide": "div"}.get(name), fn
    fn = IN_PLACE.get(node.target, node.target)
    for kind, functions in (("exact", EXACT_FUNCTIONS), ("share", SHARED_FUNCTIONS), ("relay", ACTIVATION_FUNCTIONS),
                            ("add", ADDITIONS | SUBTRACTIONS), ("mul", PRODUCTS), ("div", QUOTIENTS)):  # fmt: skip
        if fn in functions:
            return kind, fn
    return None, fn


def _step(node: fx.Node, root: nn.Module) -> tuple[Step | None, str | None]:
    """The rule for one node: (a step that replaces the node's call, or None to run it as traced;
    a description when the node passes the plain gradient, else None)."""
    if node.op not in ("call_function", "call_method", "call_module") or "tensor_meta" not in node.meta:
        return None, None
    tensors = [a for a in node.all_input_nodes if _is_tensor_node(a)]
    if not tensors:
        return None, None  # nothing the relevance flows back to
    if node.op == "call_module":
        module = root.get_submodule(node.target)
        if isinstance(module, RULED + BATCH_NORMS + EXACT_MODULES):
            return None, None
        if isinstance(module, AVG_POOLS):
            return (lambda args, kwargs: share(module.forward, args[0])), None
        if isinstance(module, ACTIVATION_MODULES):
            return (lambda args, kwargs: relay(module.forward, args[0])), None
        return None, f"{node.target} ({type(module).__name__})"
    kind, fn = _kind(node)
    in_place = node.target in IN_PLACE or (node.op == "call_method" and node.target.endswith("_"))
    if in_place and isinstance(node.args[0], fx.Node) and len(node.args[0].users) > 1:
        return None, f"{node.name} ({_name(node.target)} in place on a tensor used elsewhere)"
    if kind == "add" and len(tensors) == 1 and not _is_tensor_node(node.args[0]) and fn in SUBTRACTIONS:
        return (lambda args, kwargs: relay(lambda v: fn(args[0], v, **kwargs), args[1])), None  # c - x: R to x
    if kind == "exact" or (kind == "add" and len(tensors) == 1):  # plus a constant: R passes unchanged
        return _call(fn), None
    if kind == "share":
        return (lambda args, kwargs: share(lambda x: fn(x, *args[1:], **kwargs), args[0])), None
    if kind == "relay":
        return (lambda args, kwargs: relay(lambda x: fn(x, *args[1:], **kwargs), args[0])), None
    two = len(tensors) == 2 and len(node.args) == 2
    if kind == "add" and two:
        return (lambda args, kwargs: share(lambda a, b: fn(a, b, **kwargs), *args)), None
    if kind in ("mul", "div") and len(tensors) == 1:
        index = 0 if _is_tensor_node(node.args[0]) else 1
        if index == 0 or kind == "mul":  # scaled by a constant
            return (lambda args, kwargs: relay(lambda x: fn(*args[:index], x, *args[index + 1 :], **kwargs),
                                              args[index])), None  # fmt: skip
    if kind in ("mul", "div") and two:
        left, right = (_numel(a) for a in node.args)
        if left > right:
            return (lambda args, kwargs: gate(lambda s, g: fn(s, g, **kwargs), args[0], args[1])), None
        if kind == "mul" and right > left:
            return (lambda args, kwargs: gate(lambda s, g: fn(g, s, **kwargs), args[1], args[0])), None
    return None, f"{node.name} ({_name(node.target)})"


def _fuse_batch_norms(root: nn.Module, graph: fx.Graph, first: dict) -> None:
    """Merge each batch norm whose only input is a conv (called once, used only by the norm) into
    that conv, in place in ``root``; the norm becomes an ``nn.Identity``."""
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(root.get_submodule(node.target), BATCH_NORMS):
            continue
        source = node.args[0] if node.args else None
        if not (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1):
            continue
        conv, norm = root.get_submodule(source.target), root.get_submodule(node.target)
        if not isinstance(conv, CONVS) or calls[source.target] != 1 or calls[node.target] != 1:
            continue
        fused = fuse_conv_bn_eval(conv, norm).requires_grad_(False)
        _set_submodule(root, source.target, fused)
        _set_submodule(root, node.target, nn.Identity())
        if first.get("module") is conv:
            first["module"] = fused


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _own_copies(root: nn.Module, graph: fx.Graph) -> None:
    """A module with a rule called more than once gets a copy for each further call (a zennit rule
    keeps the input of one call)."""
    seen: set[str] = set()
    for i, node in enumerate(graph.nodes):
        if node.op != "call_module":
            continue
        if node.target in seen and isinstance(root.get_submodule(node.target), RULED + BATCH_NORMS):
            name = f"lrp_call_{i}"
            root.add_module(name, copy.deepcopy(root.get_submodule(node.target)))
            node.target = name
        seen.add(node.target)


class _Tracer(OwnThreadTracer):
    """fx's tracer, with every module that has a rule kept whole, subclasses included (torchvision's
    ``Conv3DSimple`` is an ``nn.Conv3d``), unless the subclass computes something else (its own forward)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        for base in RULED + BATCH_NORMS + AVG_POOLS + ACTIVATION_MODULES + EXACT_MODULES:
            if isinstance(m, base):
                return type(m).forward is base.forward
        return super().is_leaf_module(m, module_qualified_name)


def _trace(module: nn.Module, args: tuple, first: dict, prefix: str, out: Canonized) -> nn.Module:
    graph = _Tracer().trace(module)
    graph_module = fx.GraphModule(module, graph)
    with torch.no_grad():
        ShapeProp(graph_module).propagate(*_copies(args))
    _fuse_batch_norms(module, graph, first)
    _own_copies(module, graph)
    steps = {}
    for node in graph.nodes:
        step, plain = _step(node, module)
        if step is not None:
            steps[node.name] = step
        if plain is not None:
            out.plain_gradient.append(f"{prefix}{plain}")
    return RuledGraph(module, graph, steps)


def _copies(args: tuple) -> tuple:
    return tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args)


CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def canonize(net: nn.Module, x: torch.Tensor) -> Canonized:
    """``net`` (a private copy in eval mode, changed in place) ready for LRP on the input x; see the
    module's doc.  Raises ValueError if the rewritten network computes anything but what ``net`` did."""
    calls: dict[nn.Module, tuple] = {}
    order: list[tuple[nn.Module, torch.Tensor]] = []

    def record(module, args):
        if isinstance(module, RULED):
            order.append((module, args[0].detach().clone() if not order else None))
        elif list(module.children()) and module not in calls:  # what tracing it will need
            calls[module] = _copies(args)

    handles = [m.register_forward_pre_hook(record) for m in net.modules()]
    try:
        with torch.no_grad():
            expected = net(x.clone())
    finally:
        for handle in handles:
            handle.remove()
    first = {"module": order[0][0] if order else None}
    out = Canonized(net, None, order[0][1] if order else None)

    def visit(module: nn.Module, prefix: str) -> nn.Module:
        if not list(module.children()):
            return module
        if module in calls and not isinstance(module, CONTAINERS):
            try:
                return _trace(module, calls[module], first, prefix, out)
            except torch.OutOfMemoryError:
                raise
            except Exception as error:  # noqa: BLE001 - fx cannot trace this forward: its children instead
                reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
                out.untraced.append(f"{prefix.rstrip('.') or type(module).__name__} ({reason})")
        for name, child in list(module.named_children()):  # a container keeps its type; its members are traced
            setattr(module, name, visit(child, f"{prefix}{name}."))
        return module

    out.net = visit(net, "")
    out.first = first["module"]
    with torch.no_grad():
        got = out.net(x.clone())
    if not _same(got, expected):
        raise ValueError(
            "LRP's graph pass would explain a network that computes something else than yours "
            "(an in-place operation it could not follow?); please report the network"
        )
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        scale = float(b.abs().max()) if b.numel() else 0.0
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-3, atol=1e-4 * scale + 1e-6))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(p, q) for p, q in zip(a, b))
    return True
