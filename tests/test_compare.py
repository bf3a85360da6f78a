"""Runs compared: maps on a common scale and their difference, against the obvious loop."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.figures import difference, on_common_scale, shared_length


def slow_scale(spatial, padded):
    real = [abs(float(v)) for t in range(len(spatial)) if not padded[t] for v in spatial[t].ravel()]
    real.sort()
    position = 0.995 * (len(real) - 1)  # numpy's default (linear) percentile
    low, high = int(np.floor(position)), int(np.ceil(position))
    scale = real[low] + (real[high] - real[low]) * (position - low)
    return spatial / scale


def test_the_common_scale_and_the_difference_match_the_obvious_loop():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 6, 5, 5)) * [[[[3.0]]], [[[0.01]]]]
    padded = np.array([False] * 5 + [True])
    a[5], b[5] = 1e6, -1e6  # a padding frame's values set no scale
    np.testing.assert_allclose(on_common_scale(a, padded), slow_scale(a, padded), rtol=1e-12)
    np.testing.assert_allclose(difference(a, b, padded), slow_scale(a, padded) - slow_scale(b, padded), rtol=1e-12)
    assert np.abs(difference(a, a, padded)).max() == 0  # a run against itself: nothing
    assert on_common_scale(np.zeros((2, 3, 3))).max() == 0  # an all-zero map stays zero, no division by 0


def test_maps_of_other_clips_are_not_subtracted():
    with pytest.raises(ValueError, match="maps of one clip"):
        difference(np.zeros((4, 8, 8)), np.zeros((5, 8, 8)))
    assert shared_length([16, 32, 16]) == 16
    with pytest.raises(ValueError, match="nothing to compare"):
        shared_length([])
