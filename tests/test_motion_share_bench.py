"""benchmarks/motion_share.py's measures of motion against appearance: the stepwise ablation adds
up to the whole-clip ablations of ``motion_reliance``, the integrated gradients in the decomposed
space are complete (Captum's, wired to the rebuild), and the table lists every figure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import small_input, small_model

from xai_core.explanation import resolve_target
from xai_core.methods.flow import Decomposition, decompose, motion_reliance, rebuild, share_of
from xai_core.methods.machinery.scoring import TargetScore

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "motion_share.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("motion_share_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sub_pixel_decomposition(x: torch.Tensor) -> Decomposition:
    """x [1,T,C,H,W] with smooth flows under half a pixel (the warp stays within one bilinear cell)."""
    h, w = x.shape[-2:]
    g = torch.Generator().manual_seed(3)
    flows = 0.4 * torch.rand(1, x.shape[1] - 1, 2, 1, 1, generator=g, dtype=x.dtype).expand(-1, -1, -1, h, w)
    return decompose(x, flows.contiguous())


def test_the_stepwise_changes_add_up_to_the_whole_clip_ablations(bench):
    model, x = small_model("cnn_lstm").double(), small_input().double()
    target = resolve_target(model.task, model.labels, 2)
    d = sub_pixel_decomposition(x)
    flow_changes, error_changes = bench.stepwise_changes(model, target, d, batch=5)
    whole = motion_reliance(model, target, d)
    assert flow_changes.shape == error_changes.shape == (7,)
    assert float(flow_changes.sum()) == pytest.approx(whole["score"] - whole["without_motion"], abs=1e-9)
    assert float(error_changes.sum()) == pytest.approx(whole["score"] - whole["without_errors"], abs=1e-9)
    # the first step puts back flow 1 alone: by hand
    keep = torch.zeros_like(d.flows)
    keep[:, 0] = d.flows[:, 0]
    score = TargetScore(model, target)
    with torch.no_grad():
        by_hand = score(rebuild(Decomposition(d.first, keep, d.errors))) - score(
            rebuild(Decomposition(d.first, 0 * d.flows, d.errors))
        )
    assert float(flow_changes[0]) == pytest.approx(float(by_hand[0, 0]), abs=1e-9)


class LinearScore(torch.nn.Module):
    """A fixed linear read of the whole clip: along the path the score is a polynomial in the
    step (bilinear warps within one cell), which 32 Gauss-Legendre points integrate exactly (up to
    the float32 rounding of their weights)."""

    task = "regression"

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.weight = torch.randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return (clip * self.weight).flatten(1).sum(1, keepdim=True)


def test_the_integrated_attributions_are_complete(bench):
    x = small_input().double()
    model, target = LinearScore(x.shape[1:]), resolve_target("regression", None, None)
    d = sub_pixel_decomposition(x)
    flow_attr, error_attr, delta = bench.integrated_attributions(model, target, d, steps=32)
    score = TargetScore(model, target)
    with torch.no_grad():
        change = float(score(rebuild(d)) - score(rebuild(Decomposition(d.first, 0 * d.flows, 0 * d.errors))))
    assert flow_attr.shape == error_attr.shape == (7,)
    assert abs(change) > 1.0 and abs(delta) < 1e-6 * abs(change)  # Captum's quadrature weights: float32
    assert float(flow_attr.sum() + error_attr.sum()) == pytest.approx(change, rel=1e-6)
    share = share_of(flow_attr, error_attr)
    assert ((share >= 0) & (share <= 1)).all()
    assert share_of(torch.tensor([0.0, -1.0]), torch.tensor([0.0, 3.0])).tolist() == [0.0, 0.25]


def test_the_table_has_every_figure(bench):
    row = {
        "model": "m",
        "clips": 2,
        **{name: {"mean": 0.5, "median": 0.25} for name in bench.FIGURES},
        "integrated_delta": 0.01,
        "score_change_still": 0.2,
    }
    text = bench.to_markdown([row], steps=16)
    cells = text.strip().splitlines()[-1].split(" | ")
    assert len(cells) == 2 + len(bench.FIGURES) and cells[1:-1] == ["0.50 (0.25)"] * len(bench.FIGURES)
    assert cells[-1] == "0.01 / 0.2 |" and "16 steps" in text
