"""Moving Shapes: determinism, and ground truth that agrees with the pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai_core.data.moving_shapes import SIDES, ShapesOptions, generate, parse_source


def test_same_seed_same_clip_and_other_seed_other_clip():
    a, b, c = generate(11, noise=8, distractors=2), generate(11, noise=8, distractors=2), generate(12, noise=8)
    assert np.array_equal(a.video, b.video) and a.angle == b.angle and a.sides == b.sides
    assert not np.array_equal(a.video, c.video)


def test_shapes_and_types():
    s = generate(3, distractors=2, pause=True)
    assert s.video.shape == (32, 112, 112, 3) and s.video.dtype == np.uint8
    assert s.target_masks.shape == (32, 112, 112) and s.target_masks.dtype == bool
    assert s.distractor_masks.shape == (32, 112, 112)
    assert s.flow.shape == (31, 2, 112, 112) and s.flow.dtype == np.float32
    assert s.positions.shape == (32, 2) and s.pause_frames.shape == (32,)
    assert s.sides in SIDES and 0 <= s.angle < 270


@pytest.mark.parametrize("seed", range(8))
def test_target_pixels_have_the_target_colour_and_stay_in_frame(seed):
    s = generate(seed, distractors=2)
    for t in (0, 15, 31):
        mask = s.target_masks[t]
        assert mask.sum() > 100  # radius >= 9 pixels
        assert np.all(s.video[t][mask] == np.array(s.colour, np.uint8))
        assert not np.any(s.video[t][~mask & ~s.distractor_masks[t]])  # black elsewhere
    assert not s.target_masks[:, 0, :].any() and not s.target_masks[:, -1, :].any()


@pytest.mark.parametrize("seed", range(10))
def test_movement_follows_the_angle(seed):
    """The centroid of the target mask moves in direction (cos a, -sin a) on screen."""
    s = generate(seed)
    ys, xs = np.nonzero(s.target_masks[0])
    ye, xe = np.nonzero(s.target_masks[-1])
    dx, dy = xe.mean() - xs.mean(), ye.mean() - ys.mean()
    measured = math.degrees(math.atan2(-dy, dx)) % 360
    assert min(abs(measured - s.angle), 360 - abs(measured - s.angle)) < 3.0
    assert np.allclose(s.positions[0], [xs.mean(), ys.mean()], atol=1.0)


def test_flow_is_the_step_between_frames_on_target_pixels():
    s = generate(4)
    for i in (0, 10, 30):
        step = s.positions[i + 1] - s.positions[i]
        assert np.allclose(s.flow[i, 0][s.target_masks[i]], step[0])
        assert np.allclose(s.flow[i, 1][s.target_masks[i]], step[1])
        assert not s.flow[i][:, ~s.target_masks[i]].any()
    # Farneback convention: frame_i(y, x) == frame_{i+1}(y + fy, x + fx) for target pixels
    ys, xs = np.nonzero(s.target_masks[5])
    moved_y = np.round(ys + s.flow[5, 1, ys, xs]).astype(int)
    moved_x = np.round(xs + s.flow[5, 0, ys, xs]).astype(int)
    assert s.target_masks[6][moved_y, moved_x].mean() > 0.9


@pytest.mark.parametrize("seed", range(6))
def test_pause_frames_are_frames_without_movement(seed):
    s = generate(seed, pause=True)
    assert s.has_pause and 3 <= s.pause_frames.sum() <= 14  # the default pause_length
    steps = np.linalg.norm(np.diff(s.positions, axis=0), axis=1)
    assert np.allclose(steps[s.pause_frames[1:]], 0)
    assert np.all(steps[~s.pause_frames[1:]] > 0.5)
    paused = np.flatnonzero(s.pause_frames)
    assert np.all(np.diff(paused) == 1)  # one contiguous pause
    assert paused[0] >= 3 and paused[-1] <= 29  # moves before and after
    for t in paused:
        assert np.array_equal(s.target_masks[t], s.target_masks[t - 1])
    assert not generate(seed).pause_frames.any()


def test_distractors_are_static_and_white_when_asked():
    s = generate(9, distractors=3, white_distractors=True)
    assert len(s.distractor_sides) == 3
    static = s.distractor_masks[0] | s.distractor_masks[-1]
    white = np.all(s.video[0] == 255, axis=-1)
    assert white[s.distractor_masks[0]].all() and static.sum() > 200
    coloured = generate(9, distractors=3)
    assert not np.all(coloured.video[0][coloured.distractor_masks[0]] == 255)


def test_noise_has_the_asked_strength():
    clean, noisy = generate(2), generate(2, noise=8)
    diff = noisy.video.astype(float) - clean.video.astype(float)
    background = ~clean.target_masks
    # clipping at 0 halves the noise on black pixels: E|N(0,8) clipped| ~ 8 * 0.58
    assert 0.4 * 8 < diff[background].std() < 0.8 * 8
    assert abs(diff[clean.target_masks].std() - 8) < 1.0


def test_labels_per_task():
    s = generate(1, pause=True)
    assert s.label("sides") == SIDES.index(s.sides)
    assert s.label("angle") == pytest.approx(s.angle)
    assert s.label("pause") == 1.0 and generate(1).label("pause") == 0.0
    with pytest.raises(ValueError, match="unknown Moving Shapes task"):
        s.label("colour")


def test_parse_source():
    assert parse_source("shapes:7") == (7, {})
    seed, opts = parse_source("shapes:3?noise=8&distractors=2&pause=1&white_distractors=0")
    assert seed == 3 and opts == {"noise": 8.0, "distractors": 2, "pause": True, "white_distractors": False}
    with pytest.raises(ValueError, match="integer"):
        parse_source("shapes:abc")
    with pytest.raises(ValueError, match="unknown Moving Shapes option"):
        parse_source("shapes:1?speed=3")


def test_options_are_checked():
    with pytest.raises(ValueError):
        ShapesOptions(noise=-1)
    with pytest.raises(ValueError):
        ShapesOptions(frames=12, pause=True)
