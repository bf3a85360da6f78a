"""LRP: the hand-written rules against slow per-step references written from the formulas,
the CNN path against zennit's own attributor, conservation, and the method's contract."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
import torch
from conftest import SMALL_SPEC, small_input, small_model
from torch import nn
from torchvision.models.video.resnet import BasicStem, Bottleneck, Conv3DSimple, VideoResNet
from zennit.attribution import Gradient

from xai_core import explain, list_methods
from xai_core.explanation import Target
from xai_core.methods.lrp.lstm import (
    attention_summary_relevance,
    convlstm_relevance,
    convlstm_trace,
    lstm_relevance,
    lstm_trace,
)
from xai_core.methods.lrp.nets import COVERAGE, FrameCNN, channel_bounds, input_relevance, uncovered
from xai_core.methods.lrp.rules import (
    COMPOSITES,
    Block3dCanonizer,
    VideoBasicBlockCanonizer,
    fold_pool_into_conv,
    trunk_composite,
)
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.methods.machinery.registry import MethodError, get_method
from xai_core.models.backbones import FrameEncoder
from xai_core.models.base import InputSpec, VideoModel
from xai_core.models.conv3d import TORCHVISION_VIDEO, Block3d
from xai_core.models.convlstm import ConvLSTMCell
from xai_core.models.per_frame import PerFrame
from xai_core.models.registry import build_model

SUPPORTED = ["cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d"]
TINY_EPS = 1e-9


def sign(z: float) -> float:
    return 1.0 if z >= 0 else -1.0


def zero_biases(model: nn.Module) -> nn.Module:
    """Every bias (linear, conv, LSTM) set to zero; batch norms keep their fresh statistics, so
    the biases merged from them are zero too: LRP's epsilon rule then conserves relevance."""
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, nn.modules.batchnorm._BatchNorm):
                for name, p in module.named_parameters(recurse=False):
                    if name.startswith("bias"):
                        p.zero_()
    return model


# ----------------------------------------------------------------------------- LSTM rules
def slow_lstm_lrp(lstm: nn.LSTM, x: torch.Tensor, relevance_h: torch.Tensor, eps: float) -> torch.Tensor:
    """Arras et al.'s rules written out per step and per unit. x [T,N], relevance_h [T,H] -> [T,N]."""
    steps, n = x.shape
    hidden = lstm.hidden_size
    w, u = lstm.weight_ih_l0, lstm.weight_hh_l0
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    h, c = [torch.zeros(hidden, dtype=x.dtype)], [torch.zeros(hidden, dtype=x.dtype)]
    gates = []
    for t in range(steps):
        z = [float(w[j] @ x[t] + u[j] @ h[t] + b[j]) for j in range(4 * hidden)]
        i = [1 / (1 + np.exp(-z[j])) for j in range(hidden)]
        f = [1 / (1 + np.exp(-z[hidden + j])) for j in range(hidden)]
        zg = [z[2 * hidden + j] for j in range(hidden)]
        o = [1 / (1 + np.exp(-z[3 * hidden + j])) for j in range(hidden)]
        c_new = torch.tensor([f[j] * float(c[t][j]) + i[j] * np.tanh(zg[j]) for j in range(hidden)], dtype=x.dtype)
        h.append(torch.tensor([o[j] * np.tanh(float(c_new[j])) for j in range(hidden)], dtype=x.dtype))
        c.append(c_new)
        gates.append((i, f, zg))
    assert torch.allclose(torch.stack(h[1:]), lstm(x[None])[0][0], atol=1e-10)  # the formulas are nn.LSTM's

    relevance_x = torch.zeros(steps, n, dtype=x.dtype)
    r_c_next = [0.0] * hidden
    r_h_rec = [0.0] * hidden
    for t in reversed(range(steps)):
        i, f, zg = gates[t]
        r_c = [r_c_next[j] + float(relevance_h[t, j]) + r_h_rec[j] for j in range(hidden)]
        r_g = [0.0] * hidden
        for j in range(hidden):
            ct = float(c[t + 1][j])
            den = ct + 1e-12 * sign(ct)
            r_c_next[j] = f[j] * float(c[t][j]) / den * r_c[j]
            r_g[j] = i[j] * np.tanh(zg[j]) / den * r_c[j]
        r_h_rec = [0.0] * hidden
        for j in range(hidden):
            den = zg[j] + eps * sign(zg[j])
            for k in range(n):
                relevance_x[t, k] += float(x[t, k] * w[2 * hidden + j, k]) / den * r_g[j]
            for k in range(hidden):
                r_h_rec[k] += float(h[t][k] * u[2 * hidden + j, k]) / den * r_g[j]
    return relevance_x


@pytest.mark.parametrize("readout", ["last", "every step"])
def test_lstm_relevance_matches_the_slow_reference(readout):
    torch.manual_seed(3)
    lstm = nn.LSTM(3, 4, batch_first=True).double()
    x = torch.randn(1, 5, 3, dtype=torch.float64)
    relevance_h = torch.randn(1, 5, 4, dtype=torch.float64)
    if readout == "last":
        relevance_h[:, :-1] = 0
    with torch.no_grad():
        trace = lstm_trace(lstm, x)
        assert torch.allclose(trace.outputs, lstm(x)[0], atol=1e-12)
        fast = lstm_relevance(lstm, trace, relevance_h, 0.01)
        slow = slow_lstm_lrp(lstm, x[0], relevance_h[0], 0.01)
    assert torch.allclose(fast[0], slow, atol=1e-10, rtol=1e-8)
    assert fast.abs().sum() > 0


def test_lstm_pass_alone_conserves_relevance_without_biases():
    torch.manual_seed(4)
    lstm = zero_biases(nn.LSTM(6, 5, batch_first=True).double())
    x = torch.randn(1, 7, 6, dtype=torch.float64)
    relevance_h = torch.randn(1, 7, 5, dtype=torch.float64)
    with torch.no_grad():
        relevance_x = lstm_relevance(lstm, lstm_trace(lstm, x), relevance_h, 1e-12)
    assert float(relevance_x.sum()) == pytest.approx(float(relevance_h.sum()), rel=1e-9)
    with torch.no_grad():  # with biases, they keep a share: the sum differs
        biased = nn.LSTM(6, 5, batch_first=True).double()
        other = lstm_relevance(biased, lstm_trace(biased, x), relevance_h, 1e-12)
    assert abs(float(other.sum()) - float(relevance_h.sum())) > 1e-3


def slow_convlstm_lrp(cell: ConvLSTMCell, x: torch.Tensor, relevance_h: torch.Tensor, eps: float) -> torch.Tensor:
    """The same rules for a ConvLSTM cell, with the 3x3 convolution written out. x [T,C,h,w],
    relevance_h [T,H,h,w] -> [T,C,h,w]."""
    steps, c_in, height, width = x.shape
    hidden = cell.hidden
    weight, bias = cell.gates.weight, cell.gates.bias
    h = torch.zeros(hidden, height, width, dtype=x.dtype)
    c = torch.zeros_like(h)
    states = []
    for t in range(steps):
        both = torch.cat([x[t], h])
        z = torch.zeros(4 * hidden, height, width, dtype=x.dtype)
        for j in range(4 * hidden):
            for py in range(height):
                for px in range(width):
                    total = float(bias[j])
                    for k in range(c_in + hidden):
                        for dy in range(3):
                            for dx in range(3):
                                qy, qx = py + dy - 1, px + dx - 1
                                if 0 <= qy < height and 0 <= qx < width:
                                    total += float(weight[j, k, dy, dx] * both[k, qy, qx])
                    z[j, py, px] = total
        i, f, o = (torch.sigmoid(z[k * hidden : (k + 1) * hidden]) for k in range(3))  # gate order i, f, o, g
        zg = z[3 * hidden :]
        c_new = f * c + i * torch.tanh(zg)
        states.append((both, c, c_new, i, f, zg))
        h, c = o * torch.tanh(c_new), c_new

    relevance_x = torch.zeros_like(x)
    r_c_next = torch.zeros(hidden, height, width, dtype=x.dtype)
    r_h_rec = torch.zeros_like(r_c_next)
    for t in reversed(range(steps)):
        both, c_prev, c_t, i, f, zg = states[t]
        r_c = r_c_next + relevance_h[t] + r_h_rec
        r_c_next = torch.zeros_like(r_c)
        r_g = torch.zeros_like(r_c)
        for j in range(hidden):
            for py in range(height):
                for px in range(width):
                    den = float(c_t[j, py, px]) + 1e-12 * sign(float(c_t[j, py, px]))
                    r_c_next[j, py, px] = f[j, py, px] * c_prev[j, py, px] / den * r_c[j, py, px]
                    r_g[j, py, px] = i[j, py, px] * torch.tanh(zg[j, py, px]) / den * r_c[j, py, px]
        r_both = torch.zeros_like(both)
        for j in range(hidden):
            for py in range(height):
                for px in range(width):
                    z = float(zg[j, py, px])
                    share = float(r_g[j, py, px]) / (z + eps * sign(z))
                    for k in range(c_in + hidden):
                        for dy in range(3):
                            for dx in range(3):
                                qy, qx = py + dy - 1, px + dx - 1
                                if 0 <= qy < height and 0 <= qx < width:
                                    contribution = float(weight[3 * hidden + j, k, dy, dx] * both[k, qy, qx])
                                    r_both[k, qy, qx] += contribution * share
        relevance_x[t] = r_both[:c_in]
        r_h_rec = r_both[c_in:]
    return relevance_x


def test_convlstm_relevance_matches_the_slow_reference():
    torch.manual_seed(5)
    cell = ConvLSTMCell(2, 2).double()
    x = torch.randn(1, 3, 2, 4, 4, dtype=torch.float64)
    relevance_h = torch.zeros(1, 3, 2, 4, 4, dtype=torch.float64)
    relevance_h[:, -1] = torch.randn(2, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        trace = convlstm_trace(cell, x)
        h = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
        c = torch.zeros_like(h)
        for t in range(3):
            h, c = cell(x[:, t], (h, c))
        assert torch.allclose(trace.outputs[:, -1], h, atol=1e-12)  # the trace is the cell's forward
        fast = convlstm_relevance(cell, trace, relevance_h, 0.01)
        slow = slow_convlstm_lrp(cell, x[0], relevance_h[0], 0.01)
    assert torch.allclose(fast[0], slow, atol=1e-10, rtol=1e-8)

    zero_biases(cell)
    with torch.no_grad():
        conserved = convlstm_relevance(cell, convlstm_trace(cell, x), relevance_h, 1e-12)
    assert float(conserved.sum()) == pytest.approx(float(relevance_h.sum()), rel=1e-9)


def test_attention_summary_relevance_matches_the_sums():
    """ICA-LSTM summaries M[t,r,n] = sum_s A[t,r,s] x[s,n]: relevance shared by contribution."""
    torch.manual_seed(6)
    attention = torch.rand(1, 4, 2, 4, dtype=torch.float64).softmax(-1)
    inputs = torch.randn(1, 4, 3, dtype=torch.float64)
    relevance = torch.randn(1, 4, 2, 3, dtype=torch.float64)
    fast = attention_summary_relevance(attention, inputs, relevance)
    slow = torch.zeros(4, 3, dtype=torch.float64)
    for t in range(4):
        for r in range(2):
            for n in range(3):
                total = sum(float(attention[0, t, r, s] * inputs[0, s, n]) for s in range(4))
                for s in range(4):
                    slow[s, n] += float(attention[0, t, r, s] * inputs[0, s, n]) / total * float(relevance[0, t, r, n])
    assert torch.allclose(fast[0], slow, atol=1e-10)
    assert float(fast.sum()) == pytest.approx(float(relevance.sum()), rel=1e-6)  # 1e-12 stabiliser


# ----------------------------------------------------------------------------- CNN path and zennit
class MeanMaxReadout(nn.Module):
    """The small CNN's readout built from modules zennit has rules for: mean pool (its Norm rule)
    and max pool (no rule: the gradient, which routes to the winner)."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mean(maps), self.max(maps)], dim=1).flatten(1)


def randomise_batch_norms(module: nn.Module) -> None:
    """Trained-like batch norms, so that merging them into the convolutions matters."""
    g = torch.Generator().manual_seed(7)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize("composite", COMPOSITES)
def test_frame_cnn_agrees_with_zennit_on_the_same_sequential(composite):
    torch.manual_seed(8)
    encoder = FrameEncoder(object_readout=False).eval()
    randomise_batch_norms(encoder)
    x = small_input()[:, :3]
    spec = SMALL_SPEC
    with ExitStack() as stack, torch.no_grad():
        cnn = FrameCNN(encoder, x, spec, composite, 0.1, stack)
        relevance = torch.randn(3, encoder.out_dim) * cnn.features
        mine = cnn.relevance_from_features(relevance)
        inputs = cnn.inputs.detach()
    assert count_hooks(encoder) == 0
    with torch.no_grad():  # canonizers undone: the encoder is itself again, and the trace was right
        assert torch.allclose(cnn.features, encoder(x)[0], atol=1e-5)

    backbone = encoder.backbone
    first = backbone.features[0]
    sequential = nn.Sequential(
        fold_pool_into_conv(backbone.pool, first[0]), *first[1:], *backbone.features[1:], MeanMaxReadout()
    ).eval()
    low, high = channel_bounds(spec, encoder.motion_kind, False, 2)
    with Gradient(model=sequential, composite=trunk_composite(composite, 0.1, low, high)) as attributor:
        output, reference = attributor(inputs.clone(), attr_output=relevance)
    assert torch.allclose(output, cnn.features, atol=1e-5)
    assert torch.allclose(mine, reference, atol=1e-6 * float(reference.abs().max()), rtol=1e-4)
    assert count_hooks(sequential) == 0


def test_frame_cnn_alone_conserves_relevance_with_the_object_mask():
    """Mean and max readout, the mask's product (all to the maps) and the conv trunk conserve the
    features' relevance exactly with the epsilon rule, a tiny epsilon and no biases."""
    encoder = FrameEncoder().eval()  # the zoo's default: object gate and object readout
    x = small_input()
    with ExitStack() as stack, torch.no_grad():
        cnn = FrameCNN(encoder, x, SMALL_SPEC, "epsilon", TINY_EPS, stack)
        relevance = torch.randn(8, encoder.out_dim) * cnn.features
        inputs_relevance = cnn.relevance_from_features(relevance)
    assert float(relevance.abs().sum()) > 0
    assert float(inputs_relevance.sum()) == pytest.approx(float(relevance.sum()), rel=1e-3)


@pytest.mark.parametrize("kind", ["difference", "block", "object"])
def test_channel_bounds_hold_the_motion_channels_of_an_extreme_clip(kind):
    """The z-box rule needs each input channel's range: black/white flicker reaches it."""
    from xai_core.models.motion import motion_channels

    spec = InputSpec(frames=4, height=16, width=16)
    pixels = torch.zeros(1, 4, 3, 16, 16)
    pixels[:, 1::2] = 1
    pixels[..., :8] = 1 - pixels[..., :8]
    x = (pixels - torch.tensor(spec.mean).view(3, 1, 1)) / torch.tensor(spec.std).view(3, 1, 1)
    low, high = channel_bounds(spec, kind, False, 2)
    values = torch.cat([x, motion_channels(x, kind)], dim=2)[0].transpose(0, 1).flatten(1)  # [6, T*H*W]
    assert (values >= low.view(6, 1) - 1e-5).all() and (values <= high.view(6, 1) + 1e-5).all()
    assert torch.allclose(values.amax(1), high.flatten(), rtol=1e-5)  # and the bounds are reached


def test_fold_pool_into_conv_is_the_same_function():
    torch.manual_seed(9)
    pool2, conv2 = nn.AvgPool2d(2), nn.Conv2d(6, 4, 3, stride=2, padding=1)
    x2 = torch.randn(2, 6, 20, 20)
    assert torch.allclose(fold_pool_into_conv(pool2, conv2)(x2), conv2(pool2(x2)), atol=1e-6)
    pool3, conv3 = nn.AvgPool3d((1, 2, 2)), nn.Conv3d(6, 4, (3, 5, 5), stride=(2, 2, 2), padding=(1, 2, 2))
    x3 = torch.randn(1, 6, 8, 24, 24)
    assert torch.allclose(fold_pool_into_conv(pool3, conv3)(x3), conv3(pool3(x3)), atol=1e-6)
    with pytest.raises(ValueError, match="cannot fold"):
        fold_pool_into_conv(nn.AvgPool2d(3, stride=1), conv2)


def test_residual_canonizers_keep_the_function_and_split_the_sum():
    from torchvision.models.video.resnet import BasicBlock, Conv3DSimple

    torch.manual_seed(10)
    block = Block3d(4, 6, (1, 2, 2)).eval()
    video_block = BasicBlock(6, 6, Conv3DSimple).eval()
    randomise_batch_norms(block)
    randomise_batch_norms(video_block)
    x = torch.randn(1, 4, 4, 8, 8)
    with torch.no_grad():
        expected = video_block(block(x))
        instances = Block3dCanonizer().apply(block) + VideoBasicBlockCanonizer().apply(video_block)
        assert len(instances) == 2 and hasattr(block, "canonizer_sum")
        assert torch.allclose(video_block(block(x)), expected, atol=1e-6)
        for instance in instances:
            instance.remove()
    assert not hasattr(block, "canonizer_sum") and torch.allclose(video_block(block(x)), expected)


# ----------------------------------------------------------------------------- whole models
@pytest.mark.parametrize("arch", SUPPORTED)
def test_end_to_end_conservation_without_biases(arch):
    """Epsilon rule, tiny epsilon, no biases: the input's relevance sums to the explained score
    (the logit), through the head, the temporal part and the CNN; and the rules reproduce the output."""
    model, x = zero_biases(small_model(arch)), small_input()
    with torch.no_grad():
        output = model(x)
    result = input_relevance(model, x, Target("class", 1, label="square"), "epsilon", TINY_EPS)
    assert torch.allclose(result.output, output, atol=1e-6, rtol=1e-4)
    assert result.score == pytest.approx(float(output[0, 1]), rel=1e-4)
    assert abs(result.score) > 1e-7
    assert float(result.channels.sum()) == pytest.approx(result.score, rel=2e-3)
    if result.features is not None:
        assert float(result.features.sum()) == pytest.approx(result.score, rel=2e-3)


@pytest.mark.parametrize("backbone", ["resnet18", "vgg16"])
def test_cnn_lstm_on_torchvision_backbones_conserves(backbone):
    """The paper's VGG16 + LSTM (and a ResNet with its residual sums) through zennit."""
    spec = InputSpec(frames=2, height=32, width=32)
    config = {"backbone": backbone, "motion_input": False}
    model = build_model("cnn_lstm", labels=["a", "b"], input_spec=spec, config=config).eval()
    zero_biases(model)
    x = small_input(spec=spec)
    result = input_relevance(model, x, Target("class", 0, label="a"), "epsilon", TINY_EPS)
    with torch.no_grad():
        assert torch.allclose(result.output, model(x), atol=1e-6, rtol=1e-4)
    assert result.channels.shape == (2, 3, 32, 32) and result.motion is None
    assert float(result.channels.sum()) == pytest.approx(result.score, rel=2e-3)
    assert count_hooks(model) == 0


@pytest.mark.parametrize("arch", ["r3d", "r3d_18", "mc3_18", "r2plus1d_18"])
def test_3d_resnets_finite_and_conserving_with_the_epsilon_composite(arch):
    spec = SMALL_SPEC if arch == "r3d" else InputSpec(frames=4, height=32, width=32)
    model = build_model(arch, labels=["a", "b", "c"], input_spec=spec).eval()
    zero_biases(model)
    x = small_input(spec=spec)
    expl = explain(model, x, "lrp", target=2, composite="epsilon", epsilon=TINY_EPS)
    assert expl.spatial.shape == (spec.frames, spec.height, spec.width) and np.isfinite(expl.spatial).all()
    assert float(expl.extras["conservation"]) == pytest.approx(1.0, abs=5e-3)
    default = explain(model, x, "lrp", target=2)
    assert np.isfinite(default.spatial).all() and np.abs(default.spatial).sum() > 0
    assert count_hooks(model) == 0


@pytest.mark.parametrize("arch", SUPPORTED)
def test_shapes_extras_and_no_hooks_left(arch):
    model, x = small_model(arch), small_input()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    expl = explain(model, x, "lrp", target=0)
    t, h, w = SMALL_SPEC.frames, SMALL_SPEC.height, SMALL_SPEC.width
    assert expl.spatial.shape == (t, h, w) and expl.temporal.shape == (t,)
    assert np.allclose(expl.temporal, np.maximum(expl.spatial, 0).mean((1, 2)))
    assert np.allclose(expl.extras["relevance_max"], expl.spatial.max((1, 2)))
    assert expl.extras["motion_spatial"].shape == (t, h, w) and expl.extras["relevance_motion"].shape == (t,)
    assert np.allclose(expl.extras["relevance_motion"], expl.extras["motion_spatial"].sum((1, 2)), rtol=1e-4)
    assert ("relevance_features" in expl.extras) == (arch != "r3d")
    assert float(expl.extras["relevance_total"]) == pytest.approx(float(expl.spatial.sum()), rel=1e-4, abs=1e-9)
    assert expl.params == {"composite": "epsilon_plus_flat", "epsilon": 0.25}
    assert count_hooks(model) == 0
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # canonizers undone


@pytest.mark.parametrize("composite", COMPOSITES)
def test_every_composite_runs_and_differs(composite):
    model, x = small_model("cnn_lstm"), small_input()
    expl = explain(model, x, "lrp", composite=composite)
    reference = explain(model, x, "lrp", composite="epsilon")
    assert np.isfinite(expl.spatial).all() and count_hooks(model) == 0
    if composite != "epsilon":
        assert not np.allclose(expl.spatial, reference.spatial, rtol=1e-3, atol=1e-3 * np.abs(reference.spatial).max())


def test_lrp_is_not_offered_to_the_transformer():
    transformer = small_model("cnn_transformer")
    assert "CNNTransformer" in uncovered(transformer.net) and "lrp" not in list_methods(transformer)
    with pytest.raises(MethodError, match="lrp needs a model with lrp rules; cnn_transformer has none"):
        explain(transformer, small_input(), "lrp")
    assert all(uncovered(small_model(arch).net) is None for arch in SUPPORTED)
    assert "lrp" in list_methods(small_model("cnn_lstm"))
    assert all(uncovered(build_model(name, input_spec=SMALL_SPEC).net) is None for name in TORCHVISION_VIDEO[:3])
    assert uncovered(build_model("s3d", input_spec=SMALL_SPEC).net) is None  # the graph pass takes its blocks


def test_one_table_decides_which_nets_have_a_pass_of_their_own():
    """The classes of ``COVERAGE`` have a pass written for them; a torchvision 3D ResNet has it only
    with basic blocks: one with bottleneck blocks goes through the graph pass instead (any CNN),
    and says so."""
    covered = {type(small_model(arch).net) for arch in SUPPORTED} | {VideoResNet, PerFrame}
    assert set(COVERAGE) == covered
    bottleneck = VideoResNet(Bottleneck, [Conv3DSimple] * 4, [1, 1, 1, 1], BasicStem, num_classes=2).eval()
    model = VideoModel(bottleneck, task="classification", labels=["a", "b"], input_spec=SMALL_SPEC, layout="BCTHW")
    assert uncovered(bottleneck) is None and get_method("lrp").unavailable_reason(model) is None
    result = input_relevance(model, small_input(), Target("class", 0, label="a"), "epsilon", 0.25)
    assert result.graph is not None and result.graph.plain_gradient == [] and result.graph.untraced == []
    assert torch.isfinite(result.channels).all()


def test_a_subclass_with_its_own_forward_is_not_covered():
    from xai_core.models.temporal import CNNLSTM

    class Mine(CNNLSTM):
        def temporal_head(self, feats):
            return super().temporal_head(feats.flip(1))

    model = small_model("cnn_lstm")
    model.net.__class__ = Mine
    assert "Mine" in uncovered(model.net) and "lrp" not in list_methods(model)
    assert "gradcam" in list_methods(model)


def test_regression_targets():
    """The output itself and the negative squared error against a reference; the output scale's
    offset (a bias) keeps its share: relevance sums to score * (y - offset) / y."""
    model, x = zero_biases(small_model("cnn_lstm", task="regression")), small_input()
    model.net.output_scale.offset.fill_(0.5)
    model.net.output_scale.scale.fill_(40.0)
    with torch.no_grad():
        y = float(model(x)[0, 0])
    deviation = (y - 0.5) / y
    out = explain(model, x, "lrp", composite="epsilon", epsilon=TINY_EPS)
    assert out.target["kind"] == "output" and float(out.extras["score"]) == pytest.approx(y, rel=1e-5)
    assert float(out.extras["relevance_total"]) == pytest.approx(y * deviation, rel=3e-3)
    ref = explain(model, x, "lrp", target="ref=3.0", composite="epsilon", epsilon=TINY_EPS)
    score = -((y - 3.0) ** 2)
    assert float(ref.extras["score"]) == pytest.approx(score, rel=1e-5)
    assert float(ref.extras["relevance_total"]) == pytest.approx(score * deviation, rel=3e-3)
    assert np.allclose(ref.spatial, out.spatial * score / y, rtol=1e-3, atol=1e-6 * np.abs(ref.spatial).max())


def test_parameters_are_checked():
    model, x = small_model("r3d"), small_input()
    with pytest.raises(MethodError, match="composite"):
        explain(model, x, "lrp", composite="zplus")
    with pytest.raises(MethodError, match="epsilon"):
        explain(model, x, "lrp", epsilon=0)
    assert count_hooks(model) == 0
