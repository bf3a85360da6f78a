"""Screen angles (xai_core.angles): counter-clockwise on the screen, y pointing down."""

from __future__ import annotations

import numpy as np

from xai_core.angles import angular_difference, screen_angle, screen_direction
from xai_core.data.moving_shapes import generate


def test_screen_angles_are_counter_clockwise_with_y_down():
    vectors = np.array([[1.0, 0.0], [0.0, -1.0], [-1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    np.testing.assert_allclose(screen_angle(vectors), [0, 90, 180, 270, 45])
    np.testing.assert_allclose(angular_difference(np.array([350.0, 10.0, 180.0]), 5.0), [15, 5, 175])


def test_direction_and_angle_are_inverse():
    np.testing.assert_allclose(screen_direction(90.0), [0.0, -1.0], atol=1e-12)  # up: y decreases
    angles = np.arange(0.0, 360.0, 7.5)
    back = screen_angle(np.stack([screen_direction(a) for a in angles]))
    assert angular_difference(back, angles).max() < 1e-9


def test_moving_shapes_moves_along_its_screen_angle():
    sample = generate(11)
    steps = np.diff(sample.positions, axis=0)
    moving = np.hypot(steps[:, 0], steps[:, 1]) > 0
    assert angular_difference(screen_angle(steps[moving]), sample.angle).max() < 1e-3
