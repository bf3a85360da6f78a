"""A second Moving Shapes implementation, written from the specification alone (DESIGN.md):
32 frames of 112x112, one shape of random colour with 3, 4 or 5 sides moving in a straight
line at an angle in [0, 270) degrees (counter-clockwise on screen), optional Gaussian noise,
static distractors and a pause (the shape stands still for a while, then moves on).

It shares no code with xai_core.data.moving_shapes (Pillow draws the polygons, Python's
``random`` draws the parameters, sizes, speeds and colours come from other ranges), so the zoo
models and the explanations can be checked on clips they were not trained on.
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


@dataclass
class IndependentClip:
    video: np.ndarray  # uint8 [T,H,W,3]
    target_masks: np.ndarray  # bool [T,H,W]
    sides: int
    angle: float
    paused: np.ndarray  # bool [T]: the shape did not move between frame t-1 and frame t


def _vivid(rnd: random.Random) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(rnd.random(), rnd.uniform(0.45, 0.6), rnd.uniform(0.7, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _still_frames(rnd: random.Random, frames: int, pause: bool) -> list[bool]:
    """Per frame: does the shape stand still since the previous frame?  A pause lasts 6 to 12
    frames and leaves at least 3 moving frames before it and 3 after it."""
    still = [False] * frames
    if pause:
        length = rnd.randint(6, 12)
        first = rnd.randint(4, frames - length - 3)
        for t in range(first, first + length):
            still[t] = True
    return still


def make_clip(
    seed: int, noise: float = 8.0, distractors: int = 2, frames: int = 32, size: int = 112, pause: bool = False
) -> IndependentClip:
    rnd = random.Random(f"independent-{seed}")
    sides = rnd.choice([3, 4, 5])
    angle = rnd.uniform(0.0, 270.0)
    radius = rnd.uniform(10.0, 17.0)
    rotation = rnd.uniform(0.0, 360.0)
    colour = _vivid(rnd)
    vx, vy = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
    still = _still_frames(rnd, frames, pause)
    moves = [sum(not s for s in still[1 : t + 1]) for t in range(frames)]  # moving steps up to frame t
    lo, hi = radius + 1.5, size - radius - 1.5
    speed = rnd.uniform(1.2, 2.8)
    longest = max(abs(vx), abs(vy)) * moves[-1]
    speed = min(speed, (hi - lo) / longest)
    x0 = rnd.uniform(lo - min(0.0, vx * speed * moves[-1]), hi - max(0.0, vx * speed * moves[-1]))
    y0 = rnd.uniform(lo - min(0.0, vy * speed * moves[-1]), hi - max(0.0, vy * speed * moves[-1]))
    path = [(x0 + vx * speed * m, y0 + vy * speed * m) for m in moves]

    statics = []
    while len(statics) < distractors:
        r = rnd.uniform(10.0, 17.0)
        cx, cy = rnd.uniform(r, size - r), rnd.uniform(r, size - r)
        clear_of_path = min(math.dist((cx, cy), p) for p in path) > r + radius + 2
        clear_of_others = all(math.dist((cx, cy), (ox, oy)) > r + orr + 2 for ox, oy, orr, *_ in statics)
        if clear_of_path and clear_of_others or rnd.random() < 0.02:
            statics.append((cx, cy, r, rnd.choice([3, 4, 5]), rnd.uniform(0, 360), _vivid(rnd)))

    video = np.zeros((frames, size, size, 3), np.uint8)
    masks = np.zeros((frames, size, size), bool)
    for t, (x, y) in enumerate(path):
        image = Image.new("RGB", (size, size))
        draw = ImageDraw.Draw(image)
        for cx, cy, r, n, rot, col in statics:
            draw.regular_polygon((cx, cy, r), n, rotation=rot, fill=col)
        draw.regular_polygon((x, y, radius), sides, rotation=rotation, fill=colour)
        mask = Image.new("L", (size, size))
        ImageDraw.Draw(mask).regular_polygon((x, y, radius), sides, rotation=rotation, fill=255)
        video[t] = np.asarray(image)
        masks[t] = np.asarray(mask) > 0
    if noise > 0:
        noisy = video + np.random.default_rng(seed + 7919).normal(0.0, noise, video.shape)
        video = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return IndependentClip(video=video, target_masks=masks, sides=sides, angle=angle, paused=np.array(still))
