"""How a map is shown over its frames: which part of it (positive, magnitude, signed), the range
of values the colours span (per frame or per clip, with percentile contrast), the colour map fit
for that reading, and a colour bar that states the values.

The range of a frame or a clip: ``floor`` = the ``low`` percentile and ``ceiling`` = the ``high``
percentile of the values shown (every pixel counted).  A floor above zero lets a map with an
offset everywhere (a CAM is positive on most of the frame) show its structure, as Grad-CAM's
figures do (min-max per image), and a low percentile rather than the minimum keeps a few outlying
pixels from undoing it; a sparse map (integrated gradients: mostly zeros) keeps a floor of 0.  A
ceiling below the maximum saturates the few largest values, so a sparse map is not one bright
pixel.  A pixel at the floor is not coloured; in the "positive" and "abs" readings the colour's
opacity grows with the value, so pixels without evidence keep the frame's own colours.  The
defaults (per frame, percentiles 5 and 99) were chosen on the zoo's default model and the sample
clips, where the old one (per clip, from zero to the 99.5th percentile of the non-zero values)
washed Grad-CAM's peak frame in one colour; the colour bar states the range drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MODES = ("positive", "abs", "signed")
SCALES = ("frame", "clip")
SEQUENTIAL = {
    "turbo": cv2.COLORMAP_TURBO,
    "jet": cv2.COLORMAP_JET,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "magma": cv2.COLORMAP_MAGMA,
    "hot": cv2.COLORMAP_HOT,
}
# Diverging maps for signed values, white at zero: (RGB at -1, RGB at +1).
DIVERGING = {
    "bwr": ((0, 0, 255), (255, 0, 0)),
    "orange-purple": ((94, 60, 153), (230, 97, 1)),  # told apart with the common colour-vision deficiencies
}
COLORMAPS = (*SEQUENTIAL, *DIVERGING)


def colormaps_for(mode: str) -> tuple[str, ...]:
    """The colour maps fit for a reading: diverging ones (white at zero) for signed maps,
    sequential ones for the positive part and the magnitude."""
    _check_mode(mode)
    return tuple(DIVERGING) if mode == "signed" else tuple(SEQUENTIAL)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


@dataclass(frozen=True)
class Style:
    """How maps are drawn: the reading (``mode``), a colour map fit for it, one range per frame or
    per clip (``scale``), the contrast as percentiles of the shown values (``low``: drawn as
    nothing at or below; ``high``: full colour at or above) and the opacity of full colour."""

    mode: str = "positive"
    cmap: str = "turbo"
    scale: str = "frame"
    low: float = 5.0
    high: float = 99.0
    opacity: float = 0.6

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        fit = colormaps_for(self.mode)
        if self.cmap not in fit:
            kind = "signed maps need a diverging" if self.mode == "signed" else f"{self.mode} maps need a sequential"
            raise ValueError(f"colour map {self.cmap!r} does not fit: {kind} colour map ({', '.join(fit)})")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES} (one range per frame or per clip), not {self.scale!r}")
        if not 0 <= self.low < self.high <= 100:
            raise ValueError(f"contrast percentiles must satisfy 0 <= low < high <= 100, got {self.low}, {self.high}")
        if not 0 <= self.opacity <= 1:
            raise ValueError(f"opacity must be between 0 and 1, got {self.opacity}")

    @classmethod
    def default_for(cls, mode: str = "positive", **changes) -> Style:
        """The default style for a reading (its first fitting colour map), with ``changes``."""
        return cls(mode=mode, cmap=changes.pop("cmap", colormaps_for(mode)[0]), **changes)


def shown_values(spatial: np.ndarray, mode: str) -> np.ndarray:
    """The values the colours stand for: the positive part, or the magnitude (abs and signed)."""
    _check_mode(mode)
    return np.maximum(spatial, 0) if mode == "positive" else np.abs(spatial)


def display_range(spatial: np.ndarray, style: Style, padded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maps [T,H,W] -> (floor [T], ceiling [T]): the values drawn as nothing and as full colour,
    per frame or one pair for the whole clip (repeated); NaN counts as 0.  ``padded`` [T] bool:
    the black frames that pad a short clip, left out of the clip's range and drawn per frame in the
    widest range of the real frames (never stretched to full colour on their own).  Where fewer values than
    the top share lie above the floor (a very sparse map), the ceiling is that percentile of those
    values alone; where the floor is already the maximum (a plateau), the range runs from the
    smallest value to it; a map of one positive value everywhere runs from 0 to it; an all-zero
    frame or clip gets ceiling = floor + 1: nothing is coloured."""
    values = shown_values(np.nan_to_num(np.asarray(spatial, dtype=np.float64), nan=0.0), style.mode)
    real = np.ones(len(values), bool) if padded is None else ~np.asarray(padded, bool)
    if style.scale == "frame" or not real.any():
        groups = values.reshape(len(values), -1)
    else:  # the clip's range, from its real frames (a padded frame's map says nothing of the clip)
        groups = values[real].reshape(1, -1)
    floor = np.percentile(groups, style.low, axis=1)
    ceiling = np.percentile(groups, style.high, axis=1)
    for i, group in enumerate(groups):
        if ceiling[i] > floor[i]:
            continue
        above = group[group > floor[i]]
        if above.size:  # fewer values above the floor than the top share: rank those alone
            ceiling[i] = np.percentile(above, style.high)
        elif group.min() < floor[i]:  # a plateau at the maximum: the floor drops to the smallest value
            floor[i], ceiling[i] = group.min(), floor[i]
        elif floor[i] > 0:  # the same value everywhere: drawn in full, from zero
            floor[i], ceiling[i] = 0.0, floor[i]
        else:  # nothing to show (all zero)
            ceiling[i] = floor[i] + 1.0
    if style.scale == "clip" and len(floor) == 1:
        floor, ceiling = np.repeat(floor, len(values)), np.repeat(ceiling, len(values))
    elif padded is not None and real.any() and not real.all():  # per frame: padded frames in the real ones' range
        floor[~real], ceiling[~real] = floor[real].min(), ceiling[real].max()
    return floor, ceiling


def to_unit(heat: np.ndarray, mode: str, floor: float, ceiling: float) -> np.ndarray:
    """Map values -> [0, 1] for the colour map: (shown value - floor) / (ceiling - floor), clipped;
    for signed maps the magnitude so scaled, around 0.5 (below: negative, above: positive)."""
    _check_mode(mode)
    span = ceiling - floor if ceiling > floor else 1.0
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float64), nan=0.0)
    scaled = np.clip((shown_values(heat, mode) - floor) / span, 0, 1)
    if mode == "signed":
        return 0.5 + 0.5 * np.sign(heat) * scaled
    return scaled


def colorize(unit: np.ndarray, cmap: str = "turbo") -> np.ndarray:
    """Values in [0, 1] [...,H,W] -> RGB uint8 [...,H,W,3]."""
    if cmap in DIVERGING:
        low, high = (np.asarray(c, dtype=np.float64) for c in DIVERGING[cmap])
        white = np.full(3, 255.0)
        u = np.clip(np.nan_to_num(unit, nan=0.5), 0, 1)[..., None]
        rgb = np.where(u < 0.5, low + (white - low) * (u / 0.5), white + (high - white) * ((u - 0.5) / 0.5))
        return rgb.round().astype(np.uint8)
    if cmap not in SEQUENTIAL:
        raise ValueError(f"unknown colour map {cmap!r}; choose one of {', '.join(COLORMAPS)}")
    flat = (np.clip(np.nan_to_num(unit, nan=0.0), 0, 1).reshape(-1, unit.shape[-1]) * 255).round().astype(np.uint8)
    bgr = cv2.applyColorMap(flat, SEQUENTIAL[cmap])
    return bgr[..., ::-1].reshape(*unit.shape, 3).copy()


def blend(frame: np.ndarray, unit: np.ndarray, mode: str, cmap: str, opacity: float) -> np.ndarray:
    """frame uint8 [H,W,3] + unit map [H,W] (``to_unit``) -> uint8 [H,W,3]; the colour's opacity
    grows with the unit value (with its distance from 0.5 for signed maps)."""
    if frame.shape[:2] != unit.shape:
        unit = cv2.resize(unit.astype(np.float32), (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = colorize(unit, cmap).astype(np.float32)
    strength = np.abs(unit - 0.5) * 2 if mode == "signed" else np.sqrt(unit)
    alpha = opacity * strength[..., None]
    out = frame.astype(np.float32) * (1 - alpha) + colour * alpha
    return out.round().clip(0, 255).astype(np.uint8)


def overlay_frames(
    frames: np.ndarray, spatial: np.ndarray, style: Style, padded: np.ndarray | None = None
) -> np.ndarray:
    """frames uint8 [T,H,W,3] + maps [T,H,W] -> uint8 [T,H,W,3], each frame in its range (``display_range``)."""
    floor, ceiling = display_range(spatial, style, padded)
    return np.stack([draw(f, m, style, lo, hi) for f, m, lo, hi in zip(frames, spatial, floor, ceiling, strict=True)])


def overlay_frame(
    frame: np.ndarray, spatial: np.ndarray, index: int, style: Style, padded: np.ndarray | None = None
) -> np.ndarray:
    """One frame uint8 [H,W,3] with map ``spatial[index]`` over it, in the range ``style`` gives it
    within ``spatial`` [T,H,W] (its own frame's, or the clip's)."""
    floor, ceiling = display_range(spatial, style, padded)
    return draw(frame, spatial[index], style, float(floor[index]), float(ceiling[index]))


def draw(frame: np.ndarray, heat: np.ndarray, style: Style, floor: float, ceiling: float) -> np.ndarray:
    """frame uint8 [H,W,3] + map [H,W] drawn in a range already found (``display_range``) -> uint8 [H,W,3]."""
    return blend(frame, to_unit(heat, style.mode, floor, ceiling), style.mode, style.cmap, style.opacity)


def _value_text(value: float) -> str:
    return "0" if value == 0 else f"{value:.2g}"


def colorbar_labels(style: Style, floor: float, ceiling: float) -> list[tuple[str, float]]:
    """The colour bar's labels and where they stand (0: top, 1: bottom): the ceiling over the floor;
    for signed maps +ceiling, the white band of magnitudes up to the floor, -ceiling."""
    if style.mode == "signed":
        zero = "0" if floor == 0 else f"|x|<{_value_text(floor)}"
        return [(f"+{_value_text(ceiling)}", 0.0), (zero, 0.5), (f"-{_value_text(ceiling)}", 1.0)]
    return [(_value_text(ceiling), 0.0), (_value_text(floor), 1.0)]


def colorbar(style: Style, floor: float, ceiling: float, height: int, width: int = 64) -> np.ndarray:
    """A vertical colour bar uint8 [height, width, 3] on white: the colours of ``style`` from the
    floor (bottom) to the ceiling (top), labelled with their values (signed maps: -ceiling at the
    bottom, white for magnitudes up to the floor in the middle, +ceiling at the top)."""
    bar_width = max(6, width // 4)
    unit = np.linspace(1, 0, height)[:, None].repeat(bar_width, axis=1)
    if style.mode == "signed":
        unit = 0.5 + 0.5 * np.linspace(1, -1, height)[:, None].repeat(bar_width, axis=1)
    image = np.full((height, width, 3), 255, np.uint8)
    image[:, :bar_width] = colorize(unit, style.cmap)
    labels = colorbar_labels(style, floor, ceiling)
    font_scale = max(0.3, min(0.5, height / 500))
    for text, where in labels:
        (_, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        y = int(round(text_height + where * (height - text_height - 2)))
        cv2.putText(
            image,
            text,
            (bar_width + 3, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return image
