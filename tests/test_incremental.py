"""The incremental engine for 3D CNNs (``machinery.incremental``): a perturbed clip's output from
the layers' changed regions only, against the whole pass in float64, on the zoo's 3D ResNet (with
its motion channels), torchvision's r3d_18 and a ShuffleNet-style 3D CNN; and the perturbation
engine's use of it."""

from __future__ import annotations

import pytest
import torch
from byo_models import shuffle_3d, with_running_statistics
from conftest import SMALL_SPEC, small_input, small_model
from torch import nn

from xai_core.explanation import resolve_target
from xai_core.methods.machinery.engine import PerturbationEngine
from xai_core.methods.machinery.incremental import IncrementalNet
from xai_core.methods.machinery.perturbation import Perturbation
from xai_core.models.base import InputSpec, VideoModel
from xai_core.models.registry import build_model

SPEC = InputSpec(frames=8, height=32, width=32)
# (frames, y0, y1, x0, x1): a corner, the middle, whole frames, several frames, the last frame's corner
BOXES = [(0, 1, 0, 6, 0, 6), (3, 4, 12, 20, 10, 18), (5, 6, 0, 32, 0, 32), (2, 5, 8, 16, 8, 16), (7, 8, 26, 32, 26, 32)]


def networks() -> dict[str, tuple[nn.Module, InputSpec]]:
    torch.manual_seed(0)
    r3d_18 = build_model("r3d_18", labels=["a", "b", "c"], input_spec=SPEC).net
    shuffle = with_running_statistics(shuffle_3d(3), (2, 3, 8, 32, 32))
    return {
        "r3d (zoo, motion channels)": (small_model("r3d").net, SMALL_SPEC),
        "r3d_18": (with_running_statistics(r3d_18, (2, 3, 8, 32, 32)), SPEC),
        "shuffle_3d": (shuffle, SPEC),
    }


@pytest.mark.parametrize("name", list(networks()))
def test_the_incremental_pass_equals_the_whole_pass_in_float64(name):
    net, spec = networks()[name]
    net = net.double().eval()
    x = small_input(spec=spec).double().transpose(1, 2)  # [1,C,T,H,W]
    incremental = IncrementalNet(net, x)
    snapshot = {k: v.clone() for k, v in incremental.kept.items() if isinstance(v, torch.Tensor)}
    with torch.inference_mode():
        clean = net(x)
    for t0, t1, y0, y1, x0, x1 in BOXES:
        y0, y1, x0, x1 = (v * spec.height // 32 for v in (y0, y1, x0, x1))
        changed = x.clone()
        changed[:, :, t0:t1, y0:y1, x0:x1] = torch.rand(1, 3, t1 - t0, y1 - y0, x1 - x0, dtype=torch.float64)
        with torch.inference_mode():
            whole = net(changed)
        given = incremental(changed, ((0, 1), (0, 3), (t0, t1), (y0, y1), (x0, x1)))
        found = incremental(changed)  # the box found by comparing with the clean clip
        scale = float(whole.abs().max())
        assert (given - whole).abs().max() <= 1e-5 * scale, (name, t0, y0, x0)
        assert (found - whole).abs().max() <= 1e-5 * scale
        assert not torch.allclose(whole, clean)  # the change reached the output
        # the clean pass's values are read, never written
        assert all(torch.equal(value, incremental.kept[k]) for k, value in snapshot.items())
        if (t1 - t0) * (y1 - y0) * (x1 - x0) <= 8 * 8 * 3:  # the point: less work (small clips: less saved)
            assert incremental.last_work < (0.5 if name.startswith("r3d (zoo") else 0.9), (name, incremental.last_work)
    # the clean clip gives the clean output again, from the kept values
    again = incremental(x.clone(), ((0, 1), (0, 3), (0, 1), (0, 1), (0, 1)))
    assert (again - clean).abs().max() <= 1e-9 * float(clean.abs().max())


@pytest.mark.parametrize("name", list(networks()))
def test_a_group_of_perturbations_at_different_places_equals_their_whole_passes(name):
    """``many``: P patches of one size at their own corners (borders, first and last frames, the
    middle; a box over most of the clip: whole outputs) against one whole pass each, float64."""
    net, spec = networks()[name]
    net = net.double().eval()
    x = small_input(spec=spec).double().transpose(1, 2)  # [1,C,T,H,W]
    incremental = IncrementalNet(net, x)
    snapshot = {k: v.clone() for k, v in incremental.kept.items() if isinstance(v, torch.Tensor)}
    h, w = spec.height, spec.width
    torch.manual_seed(1)
    for t, y, z in ((2, h // 4, w // 4), (6, h - h // 4, w - w // 4)):  # small boxes; boxes of most of the clip
        last = spec.frames
        wanted = [(0, 0, 0), (last, h, w), (last // 2, h // 3, 1), (1, 0, w), (last, h // 2, w // 2)]
        corners = [(0, min(a, spec.frames - t), min(b, h - y), min(c, w - z)) for a, b, c in wanted]
        data = torch.rand(len(corners), 3, t, y, z, dtype=torch.float64)
        got = incremental.many(data, corners)
        for i, (_, t0, y0, x0) in enumerate(corners):
            changed = x.clone()
            changed[:, :, t0 : t0 + t, y0 : y0 + y, x0 : x0 + z] = data[i]
            with torch.inference_mode():
                whole = net(changed)
            assert (got[i] - whole[0]).abs().max() <= 1e-5 * float(whole.abs().max()), (name, t, corners[i])
        assert all(torch.equal(value, incremental.kept[k]) for k, value in snapshot.items())
    with pytest.raises(ValueError, match="do not fit"):
        incremental.many(torch.zeros(1, 3, 2, 4, 4, dtype=torch.float64), [(0, spec.frames - 1, 0, 0)])


class InPlace(nn.Module):
    """An in-place torch function (it would write into the conv's buffer)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid_(self.conv(x)).mean((2, 3, 4))


class EndsInAView(nn.Module):
    """The output is a view of a layer's output (of the buffer a rule writes into)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x)).transpose(1, 2)


class BatchStatistics(nn.Module):
    """A batch norm without running statistics normalises with the batch's own, even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm3d(4, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x)).mean((2, 3, 4))


@pytest.mark.parametrize("net", [InPlace, EndsInAView, BatchStatistics])
def test_in_place_functions_views_and_batch_statistics_stay_exact_call_after_call(net):
    torch.manual_seed(0)
    net = net().double().eval()
    x = torch.rand(1, 3, 4, 16, 16, dtype=torch.float64)
    incremental = IncrementalNet(net, x)
    snapshot = {k: v.clone() for k, v in incremental.kept.items() if isinstance(v, torch.Tensor)}
    for t, y in ((0, 0), (2, 8), (3, 4)):
        changed = x.clone()
        changed[:, :, t, y : y + 4, 2:6] = 0
        got = incremental(changed, ((0, 1), (0, 3), (t, t + 1), (y, y + 4), (2, 6)))
        with torch.inference_mode():
            assert torch.allclose(got, net(changed), rtol=1e-9, atol=1e-12)
        assert all(torch.equal(value, incremental.kept[k]) for k, value in snapshot.items())


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if bool(y.detach().mean() > 1e9):  # fx cannot trace a branch on the data
            y = -y
        return self.fc(y.mean((2, 3, 4)))


def test_the_engine_runs_3d_cnns_incrementally_and_whole_clips_otherwise():
    for net, incremental in ((small_model("r3d").net, True), (Branching().eval(), False)):
        model = VideoModel(net.double(), task="classification", labels=["a", "b", "c"], input_spec=SMALL_SPEC,
                           layout="BCTHW")  # fmt: skip
        x = small_input().double()
        target = resolve_target(model.task, model.labels, 1)
        engine = PerturbationEngine(model, x, target, "blur", blur_sigma=2.0)
        assert (engine.incremental is not None) == incremental
        windows = [Perturbation(t, t + 1, (y, y + 16, 8, 24)) for t in (0, 5) for y in (0, 40)]
        windows += [Perturbation(0, 8)]  # the whole clip: over INCREMENTAL_SHARE, a whole pass
        plain = PerturbationEngine(model, x, target, "blur", blur_sigma=2.0, plain=True)
        assert plain.incremental is None
        fast, slow = engine.scores(windows), plain.scores(windows)
        assert (fast - slow).abs().max() <= 1e-9 * max(1.0, float(slow.abs().max()))


def test_groups_are_sized_by_the_memory_their_whole_outputs_take():
    """The engine's groups: at most ``group_size``, and as many as keep one layer's whole outputs
    under the budget; a call reports the largest whole output one perturbation needed."""
    from xai_core.methods.machinery.engine import CPU_DENSE_BUDGET

    model = small_model("r3d")
    x = small_input()
    target = resolve_target(model.task, model.labels, 1)
    engine = PerturbationEngine(model, x, target, "zero")
    assert engine._group_size(1) == engine.group_size
    assert engine._group_size(CPU_DENSE_BUDGET // 3) == 3
    assert engine._group_size(10 * CPU_DENSE_BUDGET) == 1
    net = engine.incremental
    clip = x.transpose(1, 2)  # [1,C,T,H,W]
    net.many(clip[:, :, :1, :4, :4].clone(), [(0, 0, 0, 0)])  # a small box: patches, or small whole outputs
    small = net.last_dense_bytes
    net.many(torch.zeros_like(clip[:, :, :4]), [(0, 2, 0, 0)])  # half the clip: whole outputs from the input on
    assert net.last_dense_bytes >= clip[0, :, :4].numel() * clip.element_size() > small


class SharedInPlace(nn.Module):
    """An in-place ReLU module on a value another node reads: the network changes that value for it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        b = self.relu(a)
        return (a + b).mean((2, 3, 4))


def test_batch_statistics_keep_each_perturbation_alone_and_shared_in_place_writes_run_whole():
    """A batch norm without running statistics normalises over the batch: groups would mix the
    perturbations, so the engine scores them one a call (and TSR's batched gradients one a pass),
    the same numbers as whole clips; in-place writes into shared values are refused."""
    from xai_core.methods.machinery.relevance_change import BatchedGradients

    torch.manual_seed(0)
    net = BatchStatistics().double().eval()
    x = torch.rand(1, 3, 4, 16, 16, dtype=torch.float64)
    incremental = IncrementalNet(net, x)
    assert not incremental.batchable
    with pytest.raises(ValueError, match="not independent in a batch"):
        incremental.many(torch.zeros(2, 3, 1, 4, 4, dtype=torch.float64), [(0, 0, 0, 0), (0, 1, 4, 4)])
    model = VideoModel(net, task="classification", labels=["a", "b", "c", "d"], input_spec=InputSpec(4, 16, 16),
                       layout="BCTHW")  # fmt: skip
    clip = x.transpose(1, 2)
    target = resolve_target(model.task, model.labels, 1)
    engine = PerturbationEngine(model, clip, target, "zero")
    assert engine.incremental is not None and engine._group_size(1) == 1
    windows = [Perturbation(t, t + 1, (y, y + 4, 4, 8)) for t in range(4) for y in (0, 8)]
    plain = PerturbationEngine(model, clip, target, "zero", plain=True)
    assert (engine.scores(windows) - plain.scores(windows)).abs().max() <= 1e-9
    assert BatchedGradients(model, clip, target, "saliency", "zero", 5.0).clips == 1
    assert IncrementalNet(small_model("r3d").net.eval(), small_input().transpose(1, 2)).batchable
    with pytest.raises(ValueError, match="in place"):
        IncrementalNet(SharedInPlace().double().eval(), x)
