"""Screen angles: the one convention for directions in the image plane.

An angle is in degrees, counter-clockwise as seen on the screen, from the right: 0 is a move to
the right, 90 straight up (image y decreases), 180 to the left.  Moving Shapes draws its angles
this way, the evaluation reads flows this way, and the flow colour wheel shows them this way.
Vectors are (x, y) in pixels with y pointing down, as in images and OpenCV flows.
"""

from __future__ import annotations

import math

import numpy as np


def screen_angle(flow: np.ndarray) -> np.ndarray:
    """flow [...,2] (x, y with y down) -> direction in degrees, counter-clockwise on the screen
    from the right, in [0, 360)."""
    return np.degrees(np.arctan2(-flow[..., 1], flow[..., 0])) % 360.0


def screen_direction(angle: float) -> np.ndarray:
    """An angle in degrees -> the unit vector [2] (x, y with y down) that moves that way."""
    return np.array([math.cos(math.radians(angle)), -math.sin(math.radians(angle))])


def angular_difference(a: np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """|a - b| in degrees, wrapped into [0, 180]."""
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)
