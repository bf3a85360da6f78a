"""Moving Shapes: synthetic clips with full ground truth (echocardiogram report, 001).

One regular polygon of random colour with 3, 4 or 5 sides moves in a straight line at an angle
in [0, 270) degrees.  Options: Gaussian noise, static distractor shapes (coloured or white) and a
pause in the movement.  Everything is deterministic per seed.

Conventions
-----------
* Frames are uint8 RGB ``[T, H, W, 3]`` on a black background.
* The angle is a screen angle (``xai_core.angles``): degrees, counter-clockwise as seen on screen;
  a shape at 0 degrees moves to the right, at 90 degrees straight up (image y decreases), at 180
  degrees to the left.
* ``flow[i]`` (``[T-1, 2, H, W]``, x then y, pixels) is the true displacement between frame ``i``
  and frame ``i + 1`` of every target pixel of frame ``i`` (zero elsewhere): the convention of
  OpenCV's Farneback flow, ``frame_i(y, x) ~ frame_{i+1}(y + fy, x + fx)``.
* ``pause_frames[t]`` is True when the target did not move between frame ``t - 1`` and ``t``.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from ..angles import screen_direction

SIDES = (3, 4, 5)
SHAPE_NAMES = {3: "triangle", 4: "square", 5: "pentagon"}
TASKS = ("sides", "angle", "pause")
TASK_LABELS = {
    "sides": [SHAPE_NAMES[s] for s in SIDES],
    "angle": ["angle (degrees)"],
    "pause": ["no pause", "pause"],
}
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point vertices: 1/16 pixel


@dataclass(frozen=True)
class ShapesOptions:
    """Generation options; every field has a range so that models see varied clips."""

    frames: int = 32
    size: int = 112
    noise: float = 0.0  # std of Gaussian pixel noise, grey levels (0..255)
    distractors: int = 0  # number of static distractor shapes
    white_distractors: bool = False
    pause: bool = False  # the target stops moving for a while
    radius: tuple[float, float] = (9.0, 16.0)  # circumradius of the polygons, pixels
    speed: tuple[float, float] = (1.0, 2.5)  # pixels per moving frame
    pause_length: tuple[int, int] = (3, 14)  # frames without movement

    def __post_init__(self) -> None:
        if self.frames < 2 or self.size < 32:
            raise ValueError("Moving Shapes needs at least 2 frames of at least 32x32 pixels")
        if self.noise < 0 or self.distractors < 0:
            raise ValueError("noise and distractors must be non-negative")
        if self.pause and self.pause_length[1] >= self.frames - 4:
            raise ValueError("a pause needs clips longer than the pause plus 4 frames")


def clip_shape(frames: int, size: int) -> dict:
    """Options for clips of ``frames`` frames of ``size`` x ``size`` pixels, the pause's length scaled
    down with clips shorter than the default 32 frames."""
    shape = {"frames": frames, "size": size}
    if frames < 32:
        shape["pause_length"] = (max(2, frames // 4), max(3, 7 * frames // 16))
    return shape


@dataclass
class ShapesSample:
    """One clip and its ground truth.

    video: uint8 [T,H,W,3]; target_masks / distractor_masks: bool [T,H,W];
    flow: float32 [T-1,2,H,W]; positions: float32 [T,2] target centre (x, y);
    pause_frames: bool [T].
    """

    video: np.ndarray
    sides: int
    angle: float
    target_masks: np.ndarray
    distractor_masks: np.ndarray
    flow: np.ndarray
    positions: np.ndarray
    pause_frames: np.ndarray
    has_pause: bool
    seed: int
    colour: tuple[int, int, int]
    radius: float
    speed: float
    distractor_sides: list[int] = field(default_factory=list)
    options: ShapesOptions = field(default_factory=ShapesOptions)

    def label(self, task: str) -> float:
        """Training target for ``task``: class index (sides, pause) or degrees (angle)."""
        if task == "sides":
            return float(SIDES.index(self.sides))
        if task == "angle":
            return float(self.angle)
        if task == "pause":
            return float(self.has_pause)
        raise ValueError(f"unknown Moving Shapes task {task!r}; choose one of {', '.join(TASKS)}")

    def ground_truth(self) -> dict[str, np.ndarray]:
        """Arrays for an .npz file (everything but the video)."""
        return {
            "target_masks": self.target_masks,
            "distractor_masks": self.distractor_masks,
            "flow": self.flow,
            "positions": self.positions,
            "pause_frames": self.pause_frames,
        }

    def metadata(self) -> dict:
        """JSON-able scalars of the ground truth."""
        return {
            "seed": self.seed,
            "sides": self.sides,
            "shape": SHAPE_NAMES[self.sides],
            "angle": self.angle,
            "has_pause": self.has_pause,
            "pause_frames": [int(i) for i in np.flatnonzero(self.pause_frames)],
            "colour": list(self.colour),
            "radius": self.radius,
            "speed": self.speed,
            "distractor_sides": list(self.distractor_sides),
            "options": asdict(self.options),
        }


def polygon_vertices(centre: tuple[float, float], radius: float, sides: int, rotation: float) -> np.ndarray:
    """Vertices [sides, 2] (x, y) of a regular polygon."""
    k = np.arange(sides)
    a = rotation + 2.0 * np.pi * k / sides
    return np.stack([centre[0] + radius * np.cos(a), centre[1] + radius * np.sin(a)], axis=1)


def _fill(canvas: np.ndarray, vertices: np.ndarray, colour) -> None:
    pts = np.round(vertices * (1 << _SUBPIXEL_BITS)).astype(np.int32)[None]
    cv2.fillPoly(canvas, pts, colour, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def _polygon_mask(size: int, vertices: np.ndarray) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    _fill(mask, vertices, 1)
    return mask.astype(bool)


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated, bright colour, never close to white or to the black background."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.55, 1.0), rng.uniform(0.65, 1.0))
    return (int(round(255 * r)), int(round(255 * g)), int(round(255 * b)))


def _moving_steps(rng: np.random.Generator, opts: ShapesOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: how far along the path (in moving steps) the target is, and the pause mask."""
    t = opts.frames
    moving = np.ones(t, bool)
    moving[0] = False
    if opts.pause:
        length = int(rng.integers(opts.pause_length[0], opts.pause_length[1] + 1))
        # the pause starts after at least 2 moving frames and ends before the last 2
        start = int(rng.integers(3, t - length - 1))
        moving[start : start + length] = False
    progress = np.cumsum(moving).astype(np.float64)
    pause_frames = ~moving
    pause_frames[0] = False
    return progress, pause_frames


def generate(
    seed: int, options: ShapesOptions | None = None, *, ground_truth: bool = True, **overrides
) -> ShapesSample:
    """Generate one clip; the same seed and options always give the same clip.

    With ``ground_truth=False`` (training) masks and flow are left empty, which is faster."""
    opts = options or ShapesOptions()
    if overrides:
        opts = ShapesOptions(**{**asdict(opts), **overrides})
    rng = np.random.default_rng(seed)
    size, t = opts.size, opts.frames

    sides = int(rng.choice(SIDES))
    angle = float(rng.uniform(0.0, 270.0))
    radius = float(rng.uniform(*opts.radius))
    rotation = float(rng.uniform(0, 2 * np.pi))
    colour = _random_colour(rng)
    progress, pause_frames = _moving_steps(rng, opts)
    steps = progress[-1]

    direction = screen_direction(angle)
    margin = radius + 2.0
    room = size - 2 * margin
    largest = max(abs(direction[0]), abs(direction[1])) * steps
    speed = float(rng.uniform(opts.speed[0], opts.speed[1]))
    speed = min(speed, 0.999 * room / max(largest, 1e-6))
    travel = direction * speed * steps
    start = np.empty(2)
    for axis in range(2):
        lo = margin - min(0.0, travel[axis])
        hi = size - margin - max(0.0, travel[axis])
        start[axis] = rng.uniform(lo, max(lo, hi))
    positions = start[None, :] + progress[:, None] * speed * direction[None, :]

    # static distractors, placed away from the target's path where possible
    distractors = []
    for _ in range(opts.distractors):
        d_sides = int(rng.choice(SIDES))
        d_radius = float(rng.uniform(*opts.radius))
        d_rot = float(rng.uniform(0, 2 * np.pi))
        d_colour = (255, 255, 255) if opts.white_distractors else _random_colour(rng)
        best, best_gap = None, -np.inf
        for _try in range(20):
            c = rng.uniform(d_radius + 1, size - d_radius - 1, size=2)
            gap = np.min(np.linalg.norm(positions - c[None], axis=1)) - radius - d_radius
            others = [np.linalg.norm(c - o[0]) - d_radius - o[1] for o in distractors]
            gap = min([gap, *others])
            if gap > best_gap:
                best, best_gap = c, gap
            if gap > 3:
                break
        distractors.append((best, d_radius, d_sides, d_rot, d_colour))

    background = np.zeros((size, size, 3), np.uint8)
    distractor_mask = np.zeros((size, size), bool)
    for c, d_radius, d_sides, d_rot, d_colour in distractors:
        verts = polygon_vertices((c[0], c[1]), d_radius, d_sides, d_rot)
        _fill(background, verts, d_colour)
        distractor_mask |= _polygon_mask(size, verts)

    video = np.empty((t, size, size, 3), np.uint8)
    target_masks = np.zeros((t, size, size), bool)
    for i in range(t):
        frame = background.copy()
        verts = polygon_vertices((positions[i, 0], positions[i, 1]), radius, sides, rotation)
        _fill(frame, verts, colour)
        if ground_truth:
            target_masks[i] = _polygon_mask(size, verts)
        video[i] = frame
    distractor_masks = np.repeat(distractor_mask[None], t, axis=0) & ~target_masks

    if opts.noise > 0:
        noise = rng.standard_normal(video.shape, dtype=np.float32) * np.float32(opts.noise)
        video = np.clip(video.astype(np.float32) + noise, 0, 255).round().astype(np.uint8)

    flow = np.zeros((t - 1, 2, size, size) if ground_truth else (0, 2, size, size), np.float32)
    for i in range(len(flow)):
        step = positions[i + 1] - positions[i]
        flow[i, 0][target_masks[i]] = step[0]
        flow[i, 1][target_masks[i]] = step[1]

    return ShapesSample(
        video=video,
        sides=sides,
        angle=angle,
        target_masks=target_masks,
        distractor_masks=distractor_masks,
        flow=flow,
        positions=positions.astype(np.float32),
        pause_frames=pause_frames,
        has_pause=bool(opts.pause),
        seed=int(seed),
        colour=colour,
        radius=radius,
        speed=speed,
        distractor_sides=[d[2] for d in distractors],
        options=opts,
    )


# A ``shapes:SEED`` clip source (``video.shapes``): its options where the spec states none, and its frame rate.
DEFAULT_SHAPES_OPTIONS: dict = {"noise": 8.0, "distractors": 2}
SHAPES_FPS = 8.0


def parse_source(spec: str) -> tuple[int, dict]:
    """Parse ``shapes:SEED`` or ``shapes:SEED?noise=8&distractors=2&pause=1`` into (seed, options)."""
    body = spec.split(":", 1)[1] if ":" in spec else spec
    seed_text, _, query = body.partition("?")
    try:
        seed = int(seed_text)
    except ValueError:
        raise ValueError(f"'{spec}': the seed after 'shapes:' must be an integer") from None
    kinds = {"noise": float, "distractors": int, "frames": int, "size": int}
    flags = {"pause", "white_distractors"}
    options: dict = {}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key in kinds:
            options[key] = kinds[key](value)
        elif key in flags:
            options[key] = value.lower() in ("1", "true", "yes", "")
        else:
            known = ", ".join([*kinds, *sorted(flags)])
            raise ValueError(f"'{spec}': unknown Moving Shapes option {key!r} (known: {known})")
    return seed, options
