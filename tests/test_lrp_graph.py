"""LRP for any CNN (``methods.lrp.graph``): the node rules against their formulas written out, the
graph pass against the hand-written pass for torchvision's 3D ResNets, exact conservation on
bias-free networks of every shape the issue names, and what is reported or refused."""

from __future__ import annotations

import copy
import operator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from byo_models import shuffle_3d
from torch import nn

from xai_core import explain, list_methods
from xai_core.explanation import Target
from xai_core.methods.lrp import nets
from xai_core.methods.lrp.graph import canonize, gate, relay, share
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.models.base import InputSpec, VideoModel
from xai_core.models.per_frame import PerFrame
from xai_core.models.registry import build_model

SPEC_3D = InputSpec(frames=4, height=32, width=32)
SPEC_2D = InputSpec(frames=2, height=48, width=48, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
LABELS = ["a", "b", "c"]


def clip(spec: InputSpec, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, spec.frames, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(seed))


def relevance_through(fn, *xs: torch.Tensor, relevance: torch.Tensor) -> tuple:
    xs = [x.clone().requires_grad_(True) for x in xs]
    out = fn(*xs)
    return torch.autograd.grad(out, xs, grad_outputs=relevance, allow_unused=True)


# ------------------------------------------------------------------------------ the node rules
def test_a_sum_shares_relevance_in_proportion_to_its_terms():
    g = torch.Generator().manual_seed(0)
    a, b, r = (torch.randn(2, 3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    ra, rb = relevance_through(lambda a, b: share(operator.add, a, b), a, b, relevance=r)
    for i in np.ndindex(*a.shape):  # written out per element
        assert float(ra[i]) == pytest.approx(float(a[i] / (a[i] + b[i]) * r[i]), rel=1e-9)
        assert float(rb[i]) == pytest.approx(float(b[i] / (a[i] + b[i]) * r[i]), rel=1e-9)
    ra, rb = relevance_through(lambda a, b: share(operator.sub, a, b), a, b, relevance=r)
    assert torch.allclose(rb, -b / (a - b) * r) and torch.allclose(ra + rb, r)


def test_means_and_average_pools_share_relevance_in_proportion_to_the_values():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 4, 4, generator=g, dtype=torch.float64) + 0.1
    r = torch.randn(1, 2, generator=g, dtype=torch.float64)
    (rx,) = relevance_through(lambda x: share(lambda v: v.mean((2, 3)), x), x, relevance=r)
    for c in range(2):
        total = float(x[0, c].sum())
        for i in np.ndindex(4, 4):
            assert float(rx[0, c][i]) == pytest.approx(float(x[0, c][i]) / total * float(r[0, c]), rel=1e-9)
    r = torch.randn(1, 2, 2, 2, generator=g, dtype=torch.float64)
    (rx,) = relevance_through(lambda x: share(lambda v: F.avg_pool2d(v, 2), x), x, relevance=r)
    for c, i, j in np.ndindex(2, 2, 2):
        window = x[0, c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
        expected = window / window.sum() * r[0, c, i, j]
        assert torch.allclose(rx[0, c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2], expected)


def test_a_gate_gives_all_relevance_to_the_signal_and_activations_pass_it_unchanged():
    g = torch.Generator().manual_seed(2)
    signal, weights = torch.randn(2, 3, 4, 4, generator=g), torch.rand(2, 3, 1, 1, generator=g)
    r = torch.randn(2, 3, 4, 4, generator=g)
    r_signal, r_gate = relevance_through(lambda s, w: gate(operator.mul, s, w), signal, weights, relevance=r)
    assert torch.equal(r_signal, r) and r_gate is None
    x = torch.tensor([-2.0, 0.5, 3.0, 7.0])  # ReLU6 clips both ends; the relevance still passes
    (rx,) = relevance_through(lambda v: relay(F.relu6, v), x, relevance=torch.ones(4))
    assert torch.equal(rx, torch.ones(4))


# ------------------------------------------------------------------------------- whole networks
def with_statistics(net: nn.Module, x: torch.Tensor, *, biases: bool, seed: int = 3) -> nn.Module:
    """Batch norms set so that every normalised activation has unit mean square on x (deep random
    nets otherwise shrink their outputs to ~1e-10); with ``biases=False`` every bias and every
    batch-norm shift is zero, so that the epsilon rule with a tiny epsilon conserves the score."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def calibrate(module, args):
        dims = [d for d in range(args[0].dim()) if d != 1]
        module.running_var.copy_(args[0].pow(2).mean(dims) + 1e-5)
        module.running_mean.zero_()

    handles = [m.register_forward_pre_hook(calibrate) for m in norms]
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features**0.5)
            if isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1 if biases else torch.zeros_like(m.bias))
        net.eval()(x)
    for handle in handles:
        handle.remove()
    return net


def image_model(arch: str) -> VideoModel:
    net = PerFrame(torchvision.models.get_model(arch, weights=None, num_classes=3))
    with_statistics(net, clip(SPEC_2D), biases=False)
    return VideoModel(net, task="classification", labels=LABELS, input_spec=SPEC_2D, layout="BTCHW")


class SqueezeExcite(nn.Module):
    """An inverted residual with a squeeze-and-excitation gate, Hardswish, and a concatenation."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.BatchNorm2d(2 * channels), nn.Hardswish())
        self.squeeze = nn.Sequential(nn.Linear(2 * channels, 4), nn.ReLU(), nn.Linear(4, 2 * channels), nn.Sigmoid())
        self.project = nn.Conv2d(3 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        y = y * self.squeeze(y.mean((2, 3)))[..., None, None]
        return x + self.project(torch.cat([y, x], dim=1))


class GatedFrames(nn.Module):
    """[B,T,3,H,W] -> [B,K]: a stem, two squeeze-excitation blocks, a spatial sum and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(SqueezeExcite(), SqueezeExcite())
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        y = self.blocks(self.stem(x.flatten(0, 1)))
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1)).view(b, t, -1).mean(1)


def video_model(name: str) -> VideoModel:
    if name == "shuffle_3d":
        net = with_statistics(shuffle_3d(3), clip(SPEC_3D).transpose(1, 2), biases=False)
        return VideoModel(net, task="classification", labels=LABELS, input_spec=SPEC_3D, layout="BCTHW")
    if name == "gated_frames":
        torch.manual_seed(0)
        net = with_statistics(GatedFrames(), clip(SPEC_2D), biases=False)
        return VideoModel(net, task="classification", labels=LABELS, input_spec=SPEC_2D, layout="BTCHW")
    if name.startswith("frames:"):
        return image_model(name.removeprefix("frames:"))
    torch.manual_seed(0)
    model = build_model(name, labels=LABELS, input_spec=SPEC_3D).eval()
    with_statistics(model.net, clip(SPEC_3D).transpose(1, 2), biases=False)
    return model


def graph_relevance(model: VideoModel, x: torch.Tensor, composite: str, epsilon: float) -> nets.InputRelevance:
    """The graph pass, also for networks that have a pass of their own (to compare the two); an
    image network over frames: the graph pass on it, frame by frame."""
    target = Target("class", 1, label="b")
    if isinstance(model.net, PerFrame):
        return nets.input_relevance(model, x, target, composite, epsilon)
    net = nets.private_copy(model.net)
    return nets._any_cnn(net, model.layout, x, model.input_spec, target, composite, epsilon)


@pytest.mark.parametrize(
    "name",
    ["r3d_18", "mc3_18", "r2plus1d_18", "shuffle_3d", "frames:resnet18", "frames:mobilenet_v2", "gated_frames"],
)
def test_the_graph_pass_conserves_the_score_on_bias_free_networks(name):
    """With no biases and a tiny epsilon every rule conserves relevance, so the input's total equals
    the score: residual additions split (not copied), ReLU6 clipping, gates and concatenations
    included. A copied residual relevance, a gate that took a share or a plain-gradient ReLU6
    would each move the total away from the score."""
    model = video_model(name)
    x = clip(model.input_spec)
    result = graph_relevance(model, x, "epsilon", 1e-9)
    assert abs(result.score) > 1e-2  # a score worth conserving
    assert float(result.channels.sum()) == pytest.approx(result.score, rel=2e-3)
    assert result.graph.plain_gradient == [] and result.graph.untraced == []


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box"])
def test_the_graph_pass_equals_the_hand_written_pass_on_r3d_18(composite):
    """torchvision's r3d_18 has a pass written for it (zennit's canonizers on its blocks); the graph
    pass, knowing nothing of its blocks, gives the same relevance (biases and shifts included)."""
    torch.manual_seed(0)
    model = build_model("r3d_18", labels=LABELS, input_spec=SPEC_3D).eval()
    with_statistics(model.net, clip(SPEC_3D).transpose(1, 2), biases=True)
    x = clip(SPEC_3D)
    written = nets.input_relevance(model, x, Target("class", 1, label="b"), composite, 0.25)
    graph = graph_relevance(model, x, composite, 0.25)
    assert written.graph is None and graph.graph is not None
    scale = float(written.channels.abs().max())
    assert torch.allclose(graph.channels, written.channels, atol=1e-3 * scale)
    assert graph.score == pytest.approx(written.score, rel=1e-4)  # merged batch norms: float32 rounding


def test_lrp_explains_a_users_3d_cnn_and_reports_its_pass():
    model = video_model("shuffle_3d")
    state = {k: v.clone() for k, v in model.net.state_dict().items()}
    assert "lrp" in list_methods(model)
    expl = explain(model, clip(SPEC_3D), "lrp", target=1, composite="epsilon", epsilon=1e-9)
    assert expl.spatial.shape == (4, 32, 32) and np.isfinite(expl.spatial).all()
    assert expl.meta["conservation"] == pytest.approx(1.0, abs=2e-3)
    assert expl.meta["pass"].startswith("graph pass") and expl.meta["plain_gradient"] == []
    default = explain(model, clip(SPEC_3D), "lrp", target=1)
    assert np.isfinite(default.spatial).all() and np.abs(default.spatial).sum() > 0
    assert count_hooks(model) == 0 and not model.net.training
    assert all(torch.equal(v, state[k]) for k, v in model.net.state_dict().items())  # batch norms not merged here
    assert all(type(m) is not nn.Identity for m in model.net.modules())


def test_an_image_network_over_frames_shares_the_clip_score_among_the_frames():
    """frames:SPEC: the clip's logit is the mean of the frames', so each frame's relevance is its
    logit's share of that mean, and the frames' relevance adds up to the score."""
    model = video_model("frames:resnet18")
    x = clip(SPEC_2D)
    expl = explain(model, x, "lrp", target=1)
    with torch.no_grad():
        frame_logits = model.net.frame_logits(x)[0, :, 1]
    expected = frame_logits / model.input_spec.frames
    assert np.allclose(expl.extras["relevance_features"], expected.numpy(), rtol=1e-4, atol=1e-6)
    assert float(expl.extras["relevance_features"].sum()) == pytest.approx(float(expl.extras["score"]), rel=1e-4)


class NoRuleFor(nn.Module):
    """A CNN with an operation the graph pass has no rule for (a matrix product with a weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.mix = nn.Parameter(torch.eye(4) + 0.1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)).mean((2, 3, 4))
        return self.fc(torch.matmul(y, self.mix))


class Branching(nn.Module):
    """A forward fx cannot trace (it branches on the data, and loops over a ModuleList that is never
    called itself); its blocks can be."""

    def __init__(self) -> None:
        super().__init__()
        stage = video_model("shuffle_3d").net.stage
        self.blocks = nn.ModuleList([stage[0], stage[1]])
        self.stem = nn.Conv3d(3, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        if bool(y.detach().mean() > 1e9):  # never, but fx cannot know
            y = y * 0
        for block in self.blocks:
            y = block(y)
        return self.fc(y.mean((2, 3, 4)))


def test_what_has_no_rule_passes_the_plain_gradient_and_is_named():
    model = VideoModel(NoRuleFor().eval(), task="classification", labels=LABELS, input_spec=SPEC_3D, layout="BCTHW")
    expl = explain(model, clip(SPEC_3D), "lrp", target=0)
    assert np.isfinite(expl.spatial).all()
    assert expl.meta["plain_gradient"] == ["matmul (matmul)"] and expl.meta["untraced"] == []


def test_an_untraceable_forward_is_canonized_block_by_block():
    torch.manual_seed(0)
    net = Branching().eval()
    model = VideoModel(net, task="classification", labels=LABELS, input_spec=SPEC_3D, layout="BCTHW")
    expl = explain(model, clip(SPEC_3D), "lrp", target=0, composite="epsilon", epsilon=1e-9)
    assert len(expl.meta["untraced"]) == 1 and expl.meta["untraced"][0].startswith("Branching (")
    assert expl.meta["plain_gradient"] == []
    # the blocks' residual additions are split inside the traced blocks: the score is conserved
    assert expl.meta["conservation"] == pytest.approx(1.0, abs=2e-3)


class OneMinus(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        nn.init.eye_(self.conv.weight[:, :, 0, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - self.conv(x)


def test_a_constant_minus_a_tensor_passes_relevance_with_its_sign():
    """fx records ``1 - v`` as sub(1, v): its gradient is -R, the relevance of v is +R."""
    x = torch.rand(1, 2, 3, 3)
    canon = canonize(OneMinus().eval(), x)
    relevance = torch.rand(1, 2, 3, 3)
    (rx,) = relevance_through(canon.net, x, relevance=relevance)  # no composite: the conv passes its gradient
    assert torch.allclose(rx, relevance) and canon.plain_gradient == []


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gru = nn.GRU(4, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return self.gru(self.conv(x.flatten(0, 1)).mean((2, 3)).view(b, t, -1))[0][:, -1]


def test_what_the_graph_pass_refuses_says_why():
    scripted = PerFrame(torch.jit.script(torchvision.models.get_model("resnet18", weights=None, num_classes=3)))
    assert "TorchScript" in nets.uncovered(scripted) and "file.py:factory" in nets.uncovered(scripted)
    assert nets.uncovered(Recurrent()).startswith("its network, Recurrent, has GRU layers")
    assert nets.uncovered(Recurrent()).endswith("without such layers of its own gets LRP through its traced graph")
    assert nets.uncovered(nn.Sequential(nn.Flatten(), nn.Linear(12, 3))).endswith("is for CNNs")
    assert nets.uncovered(torchvision.models.video.s3d(num_classes=3)) is None


def test_a_gates_own_layers_get_no_relevance():
    """Squeeze-and-excitation: the gate's branch (pool, two linear layers, sigmoid) gets none of the
    relevance; all of it goes to the signal it scales. A rule that shared it with the gate would
    send relevance into the branch's linear layers."""
    model = video_model("gated_frames")
    x = clip(SPEC_2D)
    frames = x.flatten(0, 1)
    canon = canonize(nets.private_copy(model.net), x)
    reached = []

    def watch(module, args, output):
        output.register_hook(lambda grad: reached.append(float(grad.abs().sum())))

    squeezes = [m for m in canon.net.modules() if isinstance(m, nn.Linear) and m.out_features == 4]
    assert len(squeezes) == 2 and frames.shape[0] == SPEC_2D.frames
    handles = [m.register_forward_hook(watch) for m in squeezes]
    try:
        x = x.clone().requires_grad_(True)
        out = canon.net(x)
        (relevance,) = torch.autograd.grad(out[:, 1].sum(), x)
    finally:
        for handle in handles:
            handle.remove()
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0
    assert sum(reached) == 0.0  # the gate's branch was never reached, or reached with zeros


class Twice(nn.Module):
    """One convolution called twice (a rule keeps one call's input: each call needs its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 3, 3, padding=1, bias=False)
        self.fc = nn.Linear(3, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(torch.relu(self.conv(x))).mean((2, 3, 4)))


class TwoConvs(Twice):
    """The same computation with two modules holding the same weights."""

    def __init__(self, twice: Twice) -> None:
        super().__init__()
        self.load_state_dict(twice.state_dict())
        self.second = copy.deepcopy(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.second(torch.relu(self.conv(x))).mean((2, 3, 4)))


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box"])
def test_a_module_called_twice_is_explained_as_two(composite):
    torch.manual_seed(0)
    twice = Twice().eval()
    x = clip(SPEC_3D)
    maps = []
    for net in (twice, TwoConvs(twice).eval()):
        model = VideoModel(net, task="classification", labels=LABELS, input_spec=SPEC_3D, layout="BCTHW")
        expl = explain(model, x, "lrp", target=1, composite=composite)
        assert expl.meta["plain_gradient"] == []
        maps.append(expl.spatial)
    assert np.abs(maps[0]).sum() > 0 and np.allclose(maps[0], maps[1], rtol=1e-4, atol=1e-6 * np.abs(maps[1]).max())
    assert sum(1 for m in twice.modules() if isinstance(m, nn.Conv3d)) == 1  # the user's net: one conv
