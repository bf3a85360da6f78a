"""The motion scores of xai_core.evaluate.motion on hand-made fields with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai_core.evaluate.motion import (
    MIN_SPEED,
    flow_direction_error,
    mean_motion_share,
    trajectories_on_target,
)


def field(angle: float, speed: float, shape=(3, 16, 16)) -> np.ndarray:
    """A uniform flow [T-1,2,H,W] of ``speed`` pixels a frame towards ``angle`` on the screen."""
    t, h, w = shape
    out = np.zeros((t, 2, h, w))
    out[:, 0] = speed * math.cos(math.radians(angle))
    out[:, 1] = -speed * math.sin(math.radians(angle))
    return out


def test_the_direction_error_reads_the_top_pixels_only():
    flows = field(30.0, 2.0)
    flows[:, :, :8] = field(120.0, 2.0)[:, :, :8]  # the top half moves 90 degrees off
    magnitude = np.zeros((3, 16, 16))
    magnitude[:, 8:, :] = 1.0 + np.arange(16)  # the model looks at the bottom half
    result = flow_direction_error(flows, magnitude, 30.0, top=20)
    assert result == {"error": pytest.approx(0.0, abs=1e-9), "frames": 3, "slow_share": 0.0}
    magnitude[:, :8, :] = 100.0  # now at the top half
    assert flow_direction_error(flows, magnitude, 30.0, top=20)["error"] == pytest.approx(90.0)
    # only the frames the shape moved into count; slow flow is left out and counted
    moving = np.array([True, False, True])
    still = flows.copy()
    still[0, :, :8] *= 0.5 * MIN_SPEED / 2.0
    result = flow_direction_error(still, magnitude, 30.0, moving, top=20)
    assert result["frames"] == 1 and result["slow_share"] == pytest.approx(0.5)
    assert mean_motion_share(np.array([0.2, 0.9, 0.4]), moving) == pytest.approx(0.3)


def test_trajectories_on_the_target():
    masks = np.zeros((6, 20, 20), bool)
    masks[:, 10:14, 10:14] = True
    tracks = np.zeros((3, 6, 2))
    tracks[0, :] = [11, 12]  # on it
    tracks[1, :] = [2, 2]  # far away
    tracks[2, :] = [17, 12]  # 4 px right of the mask's last column: on it only within 4 px
    windows = np.array([[0, 4], [0, 4], [2, 6]])
    assert trajectories_on_target(tracks, windows, masks) == pytest.approx(1 / 3)
    assert trajectories_on_target(tracks, windows, masks, reach=4) == pytest.approx(2 / 3)
    tracks[1, 1] = [12, 12]  # in the middle frame of its window (frame 1) it is on the shape
    assert trajectories_on_target(tracks, windows, masks) == pytest.approx(2 / 3)
