"""Evaluation: the scores against slow references, randomised copies, the suites on small random
models and on the zoo, and the ``evaluate`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import small_model

from xai_core.cli import main
from xai_core.evaluate import (
    pointing_game,
    randomized_copy,
    rank_scores,
    read_map,
    run_suite,
    spearman,
    temporal_scores,
    to_markdown,
)
from xai_core.evaluate.randomize import output_layer
from xai_core.methods.registry import MethodError, get_method
from xai_core.models.zoo import zoo_names


def slow_percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Rank 1..N by sorting (ties: the mean of their positions), divided by N; a loop per value."""
    order = sorted(values.tolist())
    out = np.empty(values.size)
    for i, v in enumerate(values.tolist()):
        positions = [k + 1 for k, w in enumerate(order) if w == v]
        out[i] = sum(positions) / len(positions) / values.size
    return out


def test_read_map_follows_the_methods_declared_reading():
    signed = np.array([-3.0, 0.0, 2.0])
    assert read_map(signed, get_method("saliency").reading).tolist() == [3.0, 0.0, 2.0]
    assert read_map(signed, get_method("gradcam").reading).tolist() == [0.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="unknown reading"):
        read_map(signed, "sideways")


def test_pointing_game_on_a_map_with_known_peaks():
    target = np.zeros((3, 20, 20), bool)
    target[:, 5:8, 5:8] = True
    distractors = np.zeros_like(target)
    distractors[:, 15:18, 15:18] = True
    view = np.zeros((3, 20, 20))
    view[0, 6, 6] = 1.0  # on the shape
    view[1, 6, 10] = 1.0  # 3 px right of the shape's edge column 7
    view[2, 16, 16] = 1.0  # on the distractor
    view[:, 0, 0] = 0.5  # mass elsewhere
    s = pointing_game(view, target, distractors)
    assert s["inside"].tolist() == [True, False, False]
    assert s["within_2px"].tolist() == [True, False, False]
    assert s["within_4px"].tolist() == [True, True, False]
    assert s["on_distractor"].tolist() == [False, False, True]
    np.testing.assert_allclose(s["mass_on_shape"], [1 / 1.5, 0, 0])


def test_rank_scores_against_a_sorting_reference():
    rng = np.random.default_rng(0)
    view = np.round(rng.random((2, 9, 11)), 1)  # rounding makes ties
    target = rng.random((2, 9, 11)) < 0.1
    shapes = target | (rng.random((2, 9, 11)) < 0.2)
    target[1] = False  # a frame without the target
    got = rank_scores(view, target, shapes)
    ranks = slow_percentile_ranks(view[0].ravel()).reshape(9, 11)
    assert got["target_rank"][0] == pytest.approx(ranks[target[0]].mean())
    assert got["target_over_union"][0] == pytest.approx(ranks[target[0]].mean() / ranks[shapes[0]].mean())
    assert got["target_over_all"][0] == pytest.approx(ranks[target[0]].mean() / ranks.mean())
    assert np.isnan(got["target_rank"][1])
    # a map that is its own target indicator ranks the target on top
    top = rank_scores(target[:1].astype(float), target[:1], shapes[:1])
    assert top["target_over_all"][0] > 1.5


def test_spearman_against_ranked_pearson_and_on_the_support():
    rng = np.random.default_rng(1)
    a, b = rng.random(500), rng.random(500)
    b[:250] = a[:250]
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))  # no ties
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    # shared zeros lift the correlation over all pixels, not over the support
    za, zb = np.zeros(5000), np.zeros(5000)
    za[:50], zb[:50] = rng.random(50), rng.random(50)
    assert spearman(za, zb) > 0.9
    assert abs(spearman(za, zb, support=True)) < 0.4
    assert np.isnan(spearman(np.ones(4), a[:4]))
    with pytest.raises(ValueError, match="different shapes"):
        spearman(a, b[:10])


def test_temporal_scores():
    evidence = np.array([False, True, True, False, False])
    perfect = temporal_scores(np.array([0.0, 5, 4, 1, 2]), evidence)
    assert perfect == {"evidence_rank": pytest.approx((5 + 4) / 2 / 5), "top_k_share": 1.0}
    worst = temporal_scores(np.array([5.0, 0, 0.5, 4, 3]), evidence)
    assert worst["top_k_share"] == 0.0 and worst["evidence_rank"] == pytest.approx((1 + 2) / 2 / 5)
    with pytest.raises(ValueError, match="no evidence"):
        temporal_scores(np.ones(5), np.zeros(5, bool))


@pytest.mark.parametrize("arch", ["cnn_transformer", "cnn_lstm", "r3d"])
def test_randomized_copies_change_what_they_say_and_leave_the_model(arch):
    model = small_model(arch)
    with torch.no_grad():  # away from the initial values, as a trained model is
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    original = {n: p.clone() for n, p in model.net.named_parameters()}
    buffers = {n: b.clone() for n, b in model.net.named_buffers()}
    head = output_layer(model.net)
    head_names = {n for n, p in model.net.named_parameters() if any(p is q for q in head.parameters())}
    assert head_names
    logits = randomized_copy(model, "logits", seed=3)
    everything = randomized_copy(model, "all", seed=3)
    assert all(torch.equal(p, original[n]) for n, p in model.net.named_parameters())
    assert all(torch.equal(b, buffers[n]) for n, b in model.net.named_buffers())
    for name, param in logits.net.named_parameters():
        assert torch.equal(param, original[name]) != (name in head_names), name
    assert all(not torch.equal(p, original[n]) for n, p in everything.net.named_parameters())
    again = randomized_copy(model, "all", seed=3)  # the seed decides
    assert all(torch.equal(p, q) for p, q in zip(again.parameters(), everything.parameters(), strict=True))
    with pytest.raises(ValueError, match="scope"):
        randomized_copy(model, "half")


@pytest.mark.parametrize("suite", ["localization", "sanity", "temporal"])
def test_suites_on_a_small_model(suite):
    model = small_model("cnn_lstm_attn")
    model.labels = ["no pause", "pause"] if suite == "temporal" else ["triangle", "square", "pentagon"]
    model.net.head[-1] = torch.nn.Linear(model.net.head[-1].in_features, len(model.labels))
    methods = ["gradcam", "attention_pool"] if suite != "localization" else ["gradcam", "saliency"]
    seen = []
    result = run_suite(suite, model, methods, n=2, progress=lambda done, total, what: seen.append((done, total)))
    variants = 3 if suite == "sanity" else 1
    assert seen[-1] == (len(methods) * 2 * variants,) * 2
    assert [r["method"] for r in result["rows"]] == methods
    for row in result["rows"]:
        values = [v for k, v in row.items() if isinstance(v, float)]
        assert values and all(np.isfinite(v) or np.isnan(v) for v in values)
        if suite == "localization":
            assert 0 <= row["inside"] <= row["within_4px"] <= 1 and 0 < row["area_share"] < 0.2
        if suite == "temporal":
            assert 0 < row["evidence_rank"] <= 1 and 0 <= row["top_k_share"] <= 1
        if suite == "sanity":
            assert -1 <= row["spearman_all"] <= 1
    assert result["target"] == ("the true pause" if suite == "temporal" else "the true sides")
    table = to_markdown(result)
    assert table.count("\n| `") == len(methods)


def test_suite_refuses_what_it_cannot_score():
    model = small_model("r3d")
    with pytest.raises(MethodError, match="attention_pool cannot be evaluated here"):
        run_suite("localization", model, ["attention_pool"], n=1)
    with pytest.raises(MethodError, match="unknown method"):
        run_suite("localization", model, ["nope"], n=1)
    with pytest.raises(MethodError, match="parameters given for lrp"):
        run_suite("localization", model, ["gradcam"], n=1, params={"lrp": {"epsilon": 1}})
    with pytest.raises(ValueError, match="unknown suite"):
        run_suite("speed", model, ["gradcam"], n=1)


needs_zoo = pytest.mark.skipif(
    not {"cnn_transformer-sides", "cnn_transformer-pause"} <= set(zoo_names()), reason="zoo checkpoints missing"
)


@needs_zoo
def test_zoo_gradcam_localizes_and_fails_the_sanity_check_it_should():
    import xai_core

    model = xai_core.load_model("cnn_transformer-sides", device="cpu")
    loc = run_suite("localization", model, ["gradcam"], n=2)["rows"][0]
    assert loc["inside"] >= 0.8 and loc["target_over_all"] > 1.3 and loc["on_distractor"] == 0
    sanity = run_suite("sanity", model, ["gradcam"], n=1)["rows"][0]
    assert sanity["spearman_all_support"] < 0.8  # the map depends on the weights


@needs_zoo
def test_zoo_pause_model_attention_points_at_the_pause():
    import xai_core

    model = xai_core.load_model("cnn_transformer-pause", device="cpu")
    row = run_suite("temporal", model, ["attention_cls"], n=2)["rows"][0]
    assert row["evidence_rank"] > 0.65 and row["top_k_share"] > 0.6


def test_evaluate_command(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["evaluate", "--suite", "localization", "--model", "tiny_r3d", "--methods", "gradcam,saliency"]
                + ["--n", "1", "--out", str(out), "--quiet"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "| `gradcam` (positive) |" in printed
    result = json.loads((out / "localization.json").read_text())
    assert [r["method"] for r in result["rows"]] == ["gradcam", "saliency"] and result["clips"] == 1
    assert (out / "localization.md").read_text() == to_markdown(result)
    code = main(["evaluate", "--suite", "sanity", "--model", "tiny_r3d", "--methods", "lrp", "--n", "1"]
                + ["--out", str(out), "--param", "lrp:composite=epsilon", "--quiet"])  # fmt: skip
    assert code == 0 and json.loads((out / "sanity.json").read_text())["rows"][0]["method"] == "lrp"
    code = main(["evaluate", "--suite", "localization", "--model", "tiny_r3d", "--methods", "lrp", "--n", "1"]
                + ["--out", str(out), "--param", "composite=epsilon"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: --param for evaluate takes METHOD:KEY=VALUE, got 'composite=epsilon'"
