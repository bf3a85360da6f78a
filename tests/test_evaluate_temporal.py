"""Deletion / insertion curves and key frames: against hand-made rankings and clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

from xai_core.evaluate import auc, deletion_insertion, key_frame_overlap, key_frames
from xai_core.evaluate.temporal import order_masks
from xai_core.explanation import resolve_target


def test_auc_and_order_masks():
    assert auc([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert auc([0.0, 1.0]) == pytest.approx(0.5)
    steps = order_masks(np.array([2, 0, 1]), insertion=False)
    assert steps.tolist() == [[0, 0, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1]]
    assert (order_masks(np.array([2, 0, 1]), insertion=True) == ~steps).all()


def test_deletion_and_insertion_follow_the_ranking():
    model, x = small_model("cnn_lstm").double(), small_input().double()
    target = resolve_target(model.task, model.labels, 0)
    ranking = np.array([0.1, 5.0, 0.3, 2.0, 0.0, 0.2, 1.0, 0.4])
    result = deletion_insertion(model, x, target, ranking, baseline="zero", random_orders=3)
    order = [1, 3, 6, 7, 2, 5, 0, 4]
    assert result["order"] == order
    black = model.pixel_value(0).double()
    with torch.inference_mode():
        base = float(model(x)[0, 0])
        for k in (0, 3, 8):  # deletion: the k top frames black
            masked = x.clone()
            masked[:, order[:k]] = black[0]
            assert result["deletion"][k] == pytest.approx(float(model(masked)[0, 0]), abs=1e-9)
            kept = torch.full_like(x, 0) + black  # insertion: only the k top frames back
            kept[:, order[:k]] = x[:, order[:k]]
            assert result["insertion"][k] == pytest.approx(float(model(kept)[0, 0]), abs=1e-9)
    assert result["deletion"][0] == pytest.approx(base) and result["insertion"][-1] == pytest.approx(base)
    assert result["deletion_auc"] == pytest.approx(auc(result["deletion"]))
    assert len(result["random_deletion"]) == 9 and np.isfinite(result["random_insertion_auc"])
    # padding frames go last whatever their value
    padded = np.zeros(8, bool)
    padded[1] = True
    assert deletion_insertion(model, x, target, ranking, padded=padded, random_orders=0)["order"][-1] == 1
    with pytest.raises(ValueError, match=r"\(3,\) values for a clip of 8 frames"):
        deletion_insertion(model, x, target, np.ones(3))


def test_key_frames_mark_the_jumps():
    frames = np.zeros((6, 8, 8, 3), np.uint8)
    frames[3:] = 200  # a cut at frame 3
    frames[5, :4] = 0  # a smaller change at frame 5
    diffs, key = key_frames(frames)
    assert diffs[0] == 0 and diffs[3] == 200 and diffs[5] == pytest.approx(100)
    assert key.tolist() == [False, False, False, True, False, True]
    assert key_frames(frames, threshold=0.6)[1].tolist() == [False, False, False, True, False, False]
    assert not key_frames(np.zeros((4, 8, 8, 3), np.uint8))[1].any()
    assert key_frame_overlap(np.array([0, 0, 0, 9, 0, 8.0]), key) == 1.0
    assert key_frame_overlap(np.array([9, 8, 0, 0, 0, 0.0]), key) == 0.0
    assert np.isnan(key_frame_overlap(np.ones(6), np.zeros(6, bool)))


def test_masked_accuracy_counts_right_answers_frame_by_frame():
    from xai_core.evaluate import masked_accuracy

    model = small_model("cnn_transformer").double()
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8) for _ in range(3)]
    with torch.inference_mode():
        predicted = [int(model(model.preprocess(c).double()).argmax()) for c in clips]
    labels = [predicted[0], predicted[1], (predicted[2] + 1) % 3]  # the third is wrong as it is
    result = masked_accuracy(model, clips, labels, window=2)
    assert result["accuracy"] == pytest.approx(2 / 3) and result["masked"].shape == (7,)
    black = model.pixel_value(0).double()
    with torch.inference_mode():  # frames 3 and 4 masked, by hand
        right = 0
        for clip, label in zip(clips, labels, strict=True):
            x = model.preprocess(clip).double()
            x[:, 3:5] = black[0]
            right += int(model(x).argmax()) == label
    assert result["masked"][3] == pytest.approx(right / 3)
