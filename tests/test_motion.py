"""Motion channels and the moving-object mask (xai_core/models/motion.py), and the object
readout of the zoo's frame CNN that rests on them."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch
from conftest import LABELS

from xai_core.data.moving_shapes import generate
from xai_core.models.base import InputSpec, normalise_frames
from xai_core.models.motion import (
    geodesic_reconstruction,
    motion_channels,
    moving_object_mask,
)
from xai_core.models.registry import build_model

SPEC = InputSpec()


def clip_tensor(video: np.ndarray) -> torch.Tensor:
    """uint8 [T,H,W,3] -> normalised [1,T,3,H,W]."""
    return normalise_frames(torch.from_numpy(video)[None], SPEC)


def reference_reconstruction(seed: np.ndarray, foreground: np.ndarray, steps: int) -> np.ndarray:
    """Slow, obvious version for binary arrays [h,w]: breadth-first search from the seed pixels
    that lie on the foreground, through 8-connected foreground pixels, at most ``steps`` steps."""
    h, w = seed.shape
    distance = np.full((h, w), -1)
    queue = deque()
    for y, x in zip(*np.nonzero(seed & foreground), strict=True):
        distance[y, x] = 0
        queue.append((y, x))
    while queue:
        y, x = queue.popleft()
        if distance[y, x] == steps:
            continue
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w and foreground[ny, nx] and distance[ny, nx] < 0:
                    distance[ny, nx] = distance[y, x] + 1
                    queue.append((ny, nx))
    return distance >= 0


@pytest.mark.parametrize("steps", [0, 1, 3, 12])
def test_reconstruction_matches_a_breadth_first_search(steps):
    rng = np.random.default_rng(steps)
    foreground = rng.random((5, 40, 40)) < 0.55  # percolating blobs with narrow links
    seed = rng.random((5, 40, 40)) < 0.01
    fast = geodesic_reconstruction(
        torch.from_numpy(seed[:, None]).float(), torch.from_numpy(foreground[:, None]).float(), steps
    )[:, 0].numpy()
    assert set(np.unique(fast)) <= {0.0, 1.0}
    for i in range(len(seed)):
        np.testing.assert_array_equal(fast[i] > 0, reference_reconstruction(seed[i], foreground[i], steps))


def test_reconstruction_of_soft_values_never_exceeds_the_foreground():
    rng = np.random.default_rng(0)
    seed, foreground = (torch.from_numpy(rng.random((2, 1, 30, 30))).float() for _ in range(2))
    mask = geodesic_reconstruction(seed, foreground, 6)
    assert (mask <= foreground).all() and (mask >= torch.minimum(seed, foreground)).all()


def upsampled(mask: torch.Tensor) -> np.ndarray:
    """[1,T,1,h,w] half-resolution mask -> [T,2h,2w] numpy."""
    return mask[0, :, 0].repeat_interleave(2, 1).repeat_interleave(2, 2).numpy()


@pytest.mark.parametrize("noise", [0.0, 20.0])
def test_the_mask_is_the_moving_shape_and_not_the_distractors(noise):
    """Noise 20 is the top of the training range; distractors placed away from the path."""
    for seed in range(6):
        sample = generate(seed, noise=noise, distractors=3)
        mask = upsampled(moving_object_mask(clip_tensor(sample.video)))
        moving = ~sample.pause_frames
        moving[0] = False
        for t in np.flatnonzero(moving):
            target = sample.target_masks[t]
            assert (mask[t][target] > 0.5).mean() > 0.9, (seed, t)  # the interior too, not only edges
            far = ~(target | sample.distractor_masks[t])
            assert mask[t][far].mean() < 0.01, (seed, t)
            if sample.distractor_masks[t].any():
                assert mask[t][sample.distractor_masks[t]].mean() < 0.05, (seed, t)
        assert not mask[0].any()  # the first frame has no previous frame


def test_nothing_moves_nothing_is_masked():
    still = np.repeat(generate(3, noise=8, distractors=2).video[:1], 8, axis=0)
    assert not moving_object_mask(clip_tensor(still)).any()
    for kind in ("difference", "block", "object"):
        assert not motion_channels(clip_tensor(still), kind).any()


@pytest.mark.parametrize("gate", [True, "block", "object"])
def test_gated_appearance_puts_the_signal_on_the_moving_shape(gate):
    model = build_model("cnn_lstm", labels=LABELS, config={"motion_gate": gate}).eval()
    sample = generate(3, noise=0, distractors=2)
    gated = model.net.frame_encoder.motion_channels(model.preprocess(sample.video))[0].abs().sum(1).numpy()
    t = 10
    target, distractors = sample.target_masks[t], sample.distractor_masks[t]
    assert gated[t][target].mean() > 1.0 and (gated[t][target] > 0).mean() > 0.8
    assert gated[t][distractors].max() == 0 or gated[t][distractors].mean() < 0.05 * gated[t][target].mean()
    assert gated[t][~(target | distractors)].max() < 1e-5  # the background (the trailing edge too) carries nothing
    assert not gated[0].any()  # the first frame has no previous frame
    still = model.preprocess(np.repeat(sample.video[:1], 32, axis=0))
    assert not model.net.frame_encoder.motion_channels(still).any()  # nothing moves, nothing passes


def test_object_gate_shows_a_large_shape_whole_where_the_block_gate_shows_a_band():
    """A large square moving slowly sideways: its centre is more than 8 pixels from any pixel
    that changes, so the block gate leaves it dark; the object gate does not."""
    sample = generate(11, noise=0, distractors=0, radius=(17.0, 17.0), speed=(1.0, 1.0))
    x = clip_tensor(sample.video)
    t = 10
    target = sample.target_masks[t]
    block = motion_channels(x, "block")[0, t].abs().sum(0).numpy()
    whole = motion_channels(x, "object")[0, t].abs().sum(0).numpy()
    assert (whole[target] > 1.0).mean() > 0.97
    assert (block[target] > 1.0).mean() < (whole[target] > 1.0).mean()
    assert whole[~target].max() < 1e-5  # the trailing edge (background now) carries nothing


def test_object_gate_needs_an_even_frame_size():
    with pytest.raises(ValueError, match="even frame size"):
        motion_channels(torch.zeros(1, 2, 3, 33, 32), "object")
    with pytest.raises(ValueError, match="unknown motion kind"):
        motion_channels(torch.zeros(1, 2, 3, 32, 32), "optical")


def object_readout_model():
    torch.manual_seed(0)
    return build_model(
        "cnn_transformer", labels=LABELS, config={"motion_gate": "object", "object_readout": True}
    ).eval()


def test_object_readout_makes_the_model_blind_to_far_static_shapes():
    """The features are pooled under the moving object's mask: repainting a static distractor
    far from the moving shape (beyond the CNN's 30-pixel receptive field) changes nothing."""
    model = object_readout_model()
    assert model.cam_layer_name == "net.frame_encoder.backbone.masked_maps"
    sample = generate(5, noise=0, distractors=0, speed=(1.0, 1.0), radius=(9.0, 9.0))
    video = sample.video.copy()
    path = sample.target_masks.any(0)
    ys, xs = np.nonzero(path)
    # a square blob in the corner farthest from the path
    corner_y = 4 if ys.mean() > 56 else 92
    corner_x = 4 if xs.mean() > 56 else 92
    assert not path[corner_y - 4 : corner_y + 20, corner_x - 4 : corner_x + 20].any()
    distance = np.hypot(ys - (corner_y + 8), xs - (corner_x + 8)).min()
    assert distance > 40, distance
    painted = video.copy()
    painted[:, corner_y : corner_y + 16, corner_x : corner_x + 16] = (250, 40, 200)
    with torch.no_grad():
        plain = model.encode_frames(model.preprocess(video))
        with_blob = model.encode_frames(model.preprocess(painted))
        unmasked = build_model("cnn_transformer", labels=LABELS, config={"object_readout": False}).eval()
        changed = unmasked.encode_frames(unmasked.preprocess(painted)) - unmasked.encode_frames(
            unmasked.preprocess(video)
        )
    torch.testing.assert_close(with_blob, plain, atol=1e-6, rtol=0)
    assert changed.abs().max() > 1e-3  # without the object readout the blob does change the features


def test_gradcam_of_an_object_readout_model_lies_on_the_moving_object():
    import xai_core

    model = object_readout_model()
    sample = generate(8, noise=8, distractors=2)
    expl = xai_core.explain(model, sample.video, "gradcam")
    mask = upsampled(moving_object_mask(model.preprocess(sample.video)))
    support = torch.nn.functional.max_pool2d(torch.from_numpy(mask)[:, None], 15, 1, 7)[:, 0].numpy() > 0
    assert np.abs(expl.spatial)[~support].max() < 1e-6
    assert np.abs(expl.spatial)[1:].max() > 0


def test_r3d_takes_every_motion_kind():
    x = clip_tensor(generate(2, noise=8, distractors=1, frames=16).video[:, ::2, ::2])
    for gate in (False, True, "object"):
        torch.manual_seed(0)
        model = build_model(
            "r3d", labels=LABELS, input_spec=InputSpec(frames=16, height=56, width=56), config={"motion_gate": gate}
        ).eval()
        with torch.no_grad():
            assert torch.isfinite(model(x)).all()
    with pytest.raises(Exception, match="motion_gate must be one of"):
        build_model("r3d", labels=LABELS, config={"motion_gate": "optical"})
