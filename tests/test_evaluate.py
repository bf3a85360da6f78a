"""Evaluation: the scores against slow references, randomised copies, the suites on small random
models and on the zoo, and the ``evaluate`` command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import small_model

from xai_core.cli import main
from xai_core.evaluate import (
    pointing_game,
    pointing_tolerance,
    randomized_copy,
    rank_scores,
    read_map,
    run_suite,
    spearman,
    temporal_scores,
    to_markdown,
)
from xai_core.evaluate.randomize import output_layer
from xai_core.evaluate.scores import partial_spearman, shape_nearness
from xai_core.evaluate.suites import (
    cell,
    readout_heads_scores,
    sanity_scores,
    scope_correlation,
    shared_part_scores,
    summarise,
    survival,
    survival_warning,
    table_rows,
)
from xai_core.methods.machinery.registry import MethodError, get_method
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
    assert s["pointing"].tolist() == [True, False, False]  # 15 px at 224: 1.34 px on a 20-pixel frame


def test_the_pointing_games_tolerance_is_15_pixels_at_224_scaled_to_the_frame():
    assert pointing_tolerance(224, 224) == 15 and pointing_tolerance(112, 160) == 7.5
    target = np.zeros((4, 112, 112), bool)
    target[:, 50:60, 20:30] = True  # rightmost column 29
    view = np.zeros((4, 112, 112))
    for t, column in enumerate([29, 36, 37, 38]):  # 0, 7, 8 and 9 px right of the shape
        view[t, 55, column] = 1.0
    s = pointing_game(view, target)
    assert s["pointing"].tolist() == [True, True, False, False]  # within 7.5 px
    assert s["inside"].tolist() == [True, False, False, False]
    assert s["within_4px"].tolist() == [True, False, False, False]
    # chance: the share of the frame within 7.5 px of the shape, against a plain loop over pixels
    on = np.argwhere(target[0])
    near = [np.hypot(*(on - (y, x)).T).min() <= 7.5 for y in range(112) for x in range(112)]
    np.testing.assert_allclose(s["pointing_chance"], np.mean(near))
    assert 0.03 < np.mean(near) < 0.06  # 25 x 25 px, against the shape's 10 x 10


def test_a_map_with_no_peak_or_a_frame_with_no_shape_scores_no_hit():
    target = np.zeros((3, 112, 112), bool)
    target[:2, 0:10, 0:10] = True  # in the corner where an all-zero map's argmax lands
    view = np.zeros((3, 112, 112))
    view[1] = 0.3  # constant
    view[2, 5, 5] = 1.0  # a peak, but frame 2 has no shape
    s = pointing_game(view, target, distractors=target.copy())
    for key in ("pointing", "inside", "within_2px", "within_4px", "on_distractor"):
        assert s[key].tolist() == [False, False, False], key
    assert s["pointing_chance"][2] == 0


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


def test_partial_spearman_against_the_correlation_of_rank_residuals():
    rng = np.random.default_rng(3)
    c = rng.random(400)
    a = np.round(c + rng.normal(0, 0.3, 400), 1)  # rounded: ties share their mean rank
    b = np.round(c + 0.5 * a + rng.normal(0, 0.3, 400), 1)
    ranks = [scipy.stats.rankdata(v) for v in (a, b, c)]
    design = np.column_stack([np.ones(400), ranks[2]])
    residuals = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in ranks[:2]]
    assert partial_spearman(a, b, c) == pytest.approx(np.corrcoef(*residuals)[0, 1], abs=1e-9)
    # two maps alike only through what both follow: high together, near 0 with it held fixed
    a, b = c + rng.normal(0, 0.2, 400), c + rng.normal(0, 0.2, 400)
    assert spearman(a, b) > 0.6 and abs(partial_spearman(a, b, c)) < 0.15
    assert np.isnan(partial_spearman(a, b, a))  # c ranks a exactly: nothing of a is left


def test_shape_nearness_against_the_distance_to_every_shape_pixel():
    shapes = np.zeros((3, 6, 8), dtype=bool)
    shapes[0, 1, 2] = shapes[0, 4, 6] = True
    shapes[1, 2:4, 3:5] = True
    near = shape_nearness(shapes)
    for t in (0, 1):
        ys, xs = np.nonzero(shapes[t])
        for y in range(6):
            for x in range(8):
                assert near[t, y, x] == pytest.approx(-np.min(np.hypot(ys - y, xs - x)))
    assert (near[2] == 0).all()  # a frame without a shape


def test_three_output_layers_and_the_shared_part_by_hand():
    rng = np.random.default_rng(4)
    shape = (3, 6, 8)

    def explained(n):
        return [SimpleNamespace(spatial=rng.normal(size=shape), temporal=None) for _ in range(n)]

    trained, randomised, heads = explained(3), explained(3), [explained(3) for _ in range(3)]
    spec = SimpleNamespace(reading="positive")
    row = readout_heads_scores(spec, trained, heads)
    mag = [[spearman(np.abs(t.spatial), np.abs(h[c].spatial)) for h in heads] for c, t in enumerate(trained)]
    assert row["spearman_logits_heads"] == pytest.approx(np.mean(mag))
    pairs = {(i, j): [spearman(heads[i][c].spatial, heads[j][c].spatial) for c in range(3)]
             for i, j in ((0, 1), (0, 2), (1, 2))}  # fmt: skip
    assert row["spearman_logits_pairs_signed"] == pytest.approx(np.mean(list(pairs.values())))
    assert row["spearman_logits_pairs_lowest_signed"] == pytest.approx(min(np.mean(v) for v in pairs.values()))
    assert row["spearman_logits_pairs_highest_signed"] == pytest.approx(max(np.mean(v) for v in pairs.values()))
    assert row["spearman_logits_pairs_n"] == 3 and row["spearman_logits_pairs_se"] > 0

    masks = rng.random((3, *shape)) > 0.9
    clips = [SimpleNamespace(target_masks=m, distractor_masks=np.zeros(shape, dtype=bool)) for m in masks]
    shared = shared_part_scores(clips, trained, randomised)
    first, second = [np.abs(e.spatial) for e in trained], [np.abs(e.spatial) for e in randomised]
    near = [shape_nearness(m) for m in masks]
    assert shared["spearman_all_objects"] == pytest.approx(np.mean([spearman(b, n) for b, n in zip(second, near)]))
    assert shared["spearman_trained_objects"] == pytest.approx(np.mean([spearman(a, n) for a, n in zip(first, near)]))
    assert shared["spearman_all_given_objects"] == pytest.approx(
        np.mean([partial_spearman(a, b, n) for a, b, n in zip(first, second, near)])
    )
    other = [spearman(first[0], second[1]), spearman(first[1], second[2]), spearman(first[2], second[0])]
    assert shared["spearman_all_other_clip"] == pytest.approx(np.mean(other))
    with pytest.raises(ValueError, match="not at the size"):
        shared_part_scores([SimpleNamespace(target_masks=masks[0][:, :3], distractor_masks=masks[0][:, :3])],
                           trained[:1], randomised[:1])  # fmt: skip


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
    # sanity: trained, output layer, all weights, and for Grad-CAM (not attention) two more output layers and a
    # second copy with every weight randomised
    explained = 2 * (6 + 3) if suite == "sanity" else len(methods) * 2
    assert seen[-1] == (explained,) * 2
    assert result["randomised"] == (suite == "sanity")
    assert [r["method"] for r in result["rows"]] == methods
    for row in result["rows"]:
        values = [v for k, v in row.items() if isinstance(v, float)]
        assert values and all(np.isfinite(v) or np.isnan(v) for v in values)
        if suite == "localization":
            assert 0 <= row["inside"] <= row["within_4px"] <= 1 and 0 < row["area_share"] < 0.2
        if suite == "temporal":
            assert 0 < row["evidence_rank"] <= 1 and 0 <= row["top_k_share"] <= 1
        if suite == "sanity":
            for key in ("spearman_all", "spearman_all_signed", "spearman_logits", "spearman_logits_signed"):
                assert -1 <= row[key] <= 1 and row[f"{key}_n"] == 2 and row[f"{key}_se"] >= 0
            assert row["target_free"] == (row["method"] == "attention_pool")
            assert ("spearman_logits_pair" in row) == (row["method"] == "gradcam")  # attention ignores the head
        for key, value in row.items():  # every figure comes with its spread over the clips
            if isinstance(value, float) and not key.endswith(("_se", "_n")):
                assert f"{key}_se" in row and f"{key}_n" in row, key
    assert result["target"] == ("the true pause" if suite == "temporal" else "the true sides")
    table = to_markdown(result)
    assert table.count("\n| `") == len(methods)
    if suite == "sanity":  # frame by frame and the time course sit beside the whole-clip figures
        gradcam = result["rows"][0]
        assert "| all weights randomised, frame by frame |" in table
        line = next(x for x in table.splitlines() if x.startswith("| `gradcam`"))
        header = next(x for x in table.splitlines() if x.startswith("| method"))
        column = header.split(" | ").index("all weights randomised, frame by frame")
        assert cell(gradcam, "spearman_all_frames", "ratio") == line.split(" | ")[column]
        # the random output layers and the shared part sit in the same table
        for title, key in (("random output layers with each other (reference)", "spearman_logits_pairs"),
                           ("all randomised, nearness to the shapes held fixed", "spearman_all_given_objects"),
                           ("trained map vs randomised map of another clip", "spearman_all_other_clip")):  # fmt: skip
            assert cell(gradcam, key, "ratio") == line.split(" | ")[header.split(" | ").index(title)]
        assert np.isfinite(gradcam["spearman_logits_pairs"]) and np.isfinite(gradcam["spearman_all_given_objects"])
        assert np.isfinite(gradcam["spearman_all_frames"])
        assert table_rows(result)[0]["all randomised: map size vs frame index"] == cell(
            gradcam, "size_trend_all", "ratio"
        )


def test_summarise_is_the_mean_of_clip_means_with_its_standard_error():
    clips = [np.array([1.0, 3.0]), np.array([np.nan, 4.0, 6.0]), 7.0, np.array([np.nan])]
    mean, se, n = summarise(clips)
    per_clip = np.array([2.0, 5.0, 7.0])  # the all-NaN clip has no value
    assert n == 3 and mean == pytest.approx(per_clip.mean())
    assert se == pytest.approx(np.sqrt(((per_clip - per_clip.mean()) ** 2).sum() / 2 / 3))
    assert summarise([0.4])[:2] == (0.4, pytest.approx(float("nan"), nan_ok=True)) and summarise([0.4])[2] == 1
    assert np.isnan(summarise([np.nan])[0]) and summarise([np.nan])[2] == 0


def test_sanity_scores_against_scipy_on_magnitudes_and_signed_maps():
    rng = np.random.default_rng(0)
    trained = [SimpleNamespace(spatial=rng.normal(size=(3, 8, 8)), temporal=None) for _ in range(3)]
    randomised = [SimpleNamespace(spatial=-e.spatial + 0.3 * rng.normal(size=(3, 8, 8))) for e in trained]
    spec = get_method("saliency")
    row = sanity_scores(spec, trained, randomised, "all")
    signed = [
        scipy.stats.spearmanr(a.spatial.ravel(), b.spatial.ravel()).statistic for a, b in zip(trained, randomised)
    ]
    absolute = [
        scipy.stats.spearmanr(np.abs(a.spatial).ravel(), np.abs(b.spatial).ravel()).statistic
        for a, b in zip(trained, randomised)
    ]
    assert row["spearman_all_signed"] == pytest.approx(np.mean(signed)) and row["spearman_all_signed"] < -0.8
    assert row["spearman_all"] == pytest.approx(np.mean(absolute)) and row["spearman_all"] > 0.5
    assert row["spearman_all_n"] == 3
    assert row["spearman_all_se"] == pytest.approx(np.std(absolute, ddof=1) / np.sqrt(3))
    # a sign flip hides from the signed correlation, not from the magnitudes': survival takes the larger
    assert survival(row) == pytest.approx(row["spearman_all"])


def test_survival_and_its_warning():
    row = {"method": "gradcam", "spearman_logits": 0.2, "spearman_all": 0.1, "spearman_all_signed": 0.7,
           "spearman_all_support": 0.99, "spearman_all_se": 0.9, "spearman_all_n": 9}  # fmt: skip
    assert survival(row) == 0.7  # support, spreads and counts are not correlations of the maps
    assert "gradcam: its maps survive randomising the model (Spearman 0.70 > 0.5)" in survival_warning(row)
    assert survival_warning({**row, "spearman_all_signed": 0.5}) is None
    attention = {"method": "attention_pool", "target_free": True, "spearman_logits": 1.0, "spearman_all": 0.1}
    assert survival(attention) == 0.1 and survival_warning(attention) is None
    assert np.isnan(scope_correlation(attention, "logits"))  # its output layer plays no part
    assert scope_correlation({**attention, "target_free": False}, "logits") == 1.0
    assert np.isnan(survival({"method": "gradcam", "inside": 0.9}))
    # alike over the clip, not frame by frame: the warning says that only the maps' size per frame survives
    recurrent = {**row, "spearman_all_frames": 0.05, "spearman_all_frames_signed": 0.31}
    said = survival_warning(recurrent)
    assert said.startswith("gradcam: over the clip its maps survive randomising the model (Spearman 0.70 > 0.5)")
    assert "frame by frame they do not (0.31)" in said and "read each frame's map" in said
    assert survival_warning({**recurrent, "spearman_all_frames_signed": 0.6}).startswith("gradcam: its maps survive")


def test_localization_beside_the_randomised_model():
    model = small_model("cnn_transformer")
    result = run_suite("localization", model, ["gradcam", "saliency"], n=2, randomised=True)
    assert result["randomised"] is True
    for row in result["rows"]:
        assert {"random_inside", "random_target_over_all", "spearman_all", "spearman_all_signed"} <= set(row)
    rows = table_rows(result)
    assert [(r["method"], r["model"]) for r in rows] == [
        ("gradcam", "trained"), ("gradcam", "all weights randomised"),
        ("saliency", "trained"), ("saliency", "all weights randomised"),
    ]  # fmt: skip
    first = result["rows"][0]
    assert rows[1]["peak on shape"] == cell(first, "random_inside", "pct")
    assert rows[0]["target / all rank"] == f"{first['target_over_all']:.2f} ± {first['target_over_all_se']:.2f}"
    plain = run_suite("localization", model, ["gradcam"], n=1)
    assert "random_inside" not in plain["rows"][0] and plain["randomised"] is False
    assert [r["method"] for r in table_rows(plain)] == ["gradcam"]
    # a method whose maps survive randomisation gets a warning under the table and a mark in it
    clip_only = {k: v for k, v in first.items() if "_frames" not in k}  # (as measured before the frame figures)
    survived = {**result, "rows": [{**clip_only, "spearman_all": 0.93}]}
    assert "**Warning:** gradcam: its maps survive randomising the model (Spearman 0.93 > 0.5)" in to_markdown(survived)
    assert table_rows(survived)[0]["survives randomisation (Spearman)"] == "⚠ 0.93"


def test_tsr_runs_on_the_first_slow_clips_and_its_rows_say_so():
    model = small_model("cnn_transformer")
    params = {"tsr_onestep": {"base": "saliency"}}
    full = run_suite("sanity", model, ["saliency", "tsr_onestep"], n=2, params=params)
    short = run_suite("sanity", model, ["saliency", "tsr_onestep"], n=2, params=params, slow_clips=1)
    (sal, tsr), (sal_full, tsr_full) = short["rows"], full["rows"]
    assert sal["spearman_all_n"] == 2 and tsr["spearman_all_n"] == 1 and tsr_full["spearman_all_n"] == 2
    assert sal == sal_full  # the fast methods still see every clip
    first = run_suite("sanity", model, ["tsr_onestep"], n=1, params=params)["rows"][0]
    assert {k: v for k, v in tsr.items() if not k.endswith("_se")} == {
        k: v for k, v in first.items() if not k.endswith("_se")
    }  # exactly the figures of a run on the first clip alone
    assert "(n=1)" in to_markdown(short) and "(n=1)" not in to_markdown(full)
    with pytest.raises(ValueError, match="slow_clips must be at least 1"):
        run_suite("sanity", model, ["saliency"], n=2, slow_clips=0)


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
    not {"cnn_transformer-sides", "cnn_transformer-sides-gated", "cnn_transformer-pause"} <= set(zoo_names()),
    reason="zoo checkpoints missing",
)


@needs_zoo
def test_zoo_gradcam_is_earned_by_the_honest_model_and_built_into_the_gated_one():
    import xai_core

    honest = xai_core.load_model("cnn_transformer-sides", device="cpu")
    row = run_suite("localization", honest, ["gradcam"], n=3, randomised=True)["rows"][0]
    assert row["inside"] > 0.4 and row["inside"] >= row["random_inside"] + 0.2  # the weights find the shape
    assert row["pointing"] >= 0.8 and row["pointing"] >= row["random_pointing"] + 0.2  # issue 16, point 4
    assert survival(row) < 0.3  # and the map depends on them
    gated = xai_core.load_model("cnn_transformer-sides-gated", device="cpu")
    row = run_suite("localization", gated, ["gradcam"], n=2, randomised=True)["rows"][0]
    assert row["inside"] > 0.8 and row["random_inside"] > 0.4  # the formula finds it, whatever the weights
    assert survival(row) > 0.5 and survival_warning(row)


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
