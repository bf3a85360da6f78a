"""The film strip (000, Fig. 1): a row of frames, under it a frame-importance strip, and one row
of overlays per method, drawn with matplotlib for print (PNG at 300 dpi, SVG or PDF)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .. import display

FORMATS = (".png", ".svg", ".pdf")
PICKS = ("every", "top")


def pick_frames(total: int, count: int, curve: np.ndarray | None = None, pick: str = "every",
                padded: np.ndarray | None = None) -> list[int]:  # fmt: skip
    """The frames a strip shows, in temporal order: ``every`` k-th real frame (spread evenly over
    the real frames, first and last included) or the ``top`` ``count`` real frames of ``curve`` [T]."""
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {', '.join(PICKS)}, not {pick!r}")
    if count < 1:
        raise ValueError(f"a strip shows at least one frame, not {count}")
    real = np.flatnonzero(~np.asarray(padded, bool)) if padded is not None else np.arange(total)
    if real.size == 0:
        real = np.arange(total)
    count = min(count, real.size)
    if pick == "top":
        if curve is None:
            raise ValueError("the top frames need a frame-importance curve")
        values = np.nan_to_num(np.asarray(curve, float)[real], nan=-np.inf)
        chosen = real[np.argsort(-values, kind="stable")[:count]]
        return sorted(int(i) for i in chosen)
    positions = np.unique(np.round(np.linspace(0, real.size - 1, count)).astype(int))
    return [int(real[i]) for i in positions]


def film_strip(
    frames: np.ndarray,
    maps: dict[str, np.ndarray],
    curves: dict[str, np.ndarray] | None = None,
    *,
    count: int = 8,
    pick: str = "every",
    style: display.Style | None = None,
    padded: np.ndarray | None = None,
    frame_indices: np.ndarray | list[int] | None = None,
    title: str = "",
):
    """A matplotlib Figure: frames uint8 [T,H,W,3] at ``pick_frames``' columns (titled with the
    model-input frame and the video frame; ``pick="top"`` ranks by the first curve), then each of
    ``curves`` (name -> [T], e.g. attention or frame masking) as a strip of cells (colour and value
    ÷ the clip's largest), then one row per entry of ``maps`` (name -> [T,H,W]) drawn in ``style``
    (default: the positive part, one range per frame)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    frames = np.asarray(frames)
    total = len(frames)
    for name, spatial in maps.items():
        if np.shape(spatial)[:1] != (total,):
            raise ValueError(f"{name}: {np.shape(spatial)[0]} maps for {total} frames")
    curves = curves or {}
    for name, curve in curves.items():
        if len(curve) != total:
            raise ValueError(f"the curve {name} has {len(curve)} values for {total} frames")
    style = style or display.Style()
    chosen = pick_frames(total, count, next(iter(curves.values()), None), pick, padded)
    rows = 1 + len(curves) + len(maps)
    heights = [1.0] + [0.28] * len(curves) + [1.0] * len(maps)
    width = 1.25 * len(chosen) + 1.4
    fig = Figure(figsize=(width, 1.3 * sum(heights) + (0.4 if title else 0.15)), layout="constrained")
    grid = fig.add_gridspec(rows, len(chosen), height_ratios=heights)
    row = 0
    for col, t in enumerate(chosen):
        ax = fig.add_subplot(grid[row, col])
        ax.imshow(frames[t])
        where = int(frame_indices[t]) if frame_indices is not None else t
        ax.set_title(f"frame {t}" + (f"\n(video {where})" if where != t and where >= 0 else ""), fontsize=7)
        _bare(ax, "frames" if col == 0 else "")
    for curve_name, curve in curves.items():
        row += 1
        values = np.nan_to_num(np.asarray(curve, float))
        peak = np.abs(values).max() or 1.0
        for col, t in enumerate(chosen):
            ax = fig.add_subplot(grid[row, col])
            unit = float(np.clip(values[t] / peak, 0, 1))
            ax.imshow(display.colorize(np.array([[unit]]), "viridis"), aspect="auto")
            ax.text(0, 0, f"{values[t] / peak:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if unit < 0.6 else "black")  # fmt: skip
            _bare(ax, curve_name if col == 0 else "", across=True)
    for name, spatial in maps.items():
        row += 1
        floor, ceiling = display.display_range(np.asarray(spatial), style, padded)
        for col, t in enumerate(chosen):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(display.draw(frames[t], np.asarray(spatial)[t], style, float(floor[t]), float(ceiling[t])))
            _bare(ax, name if col == 0 else "")
    note = f"{style.mode} part, {style.scale} range, {style.low:g}th-{style.high:g}th percentile, {style.cmap}"
    if curves:
        note += "; each frame curve ÷ the clip's largest value"
    fig.suptitle(title + ("\n" if title else "") + note, fontsize=7 if not title else 8)
    return fig


def _bare(ax, label: str, across: bool = False) -> None:
    """No ticks or frame; ``label`` on the left (written across for a thin strip row)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if label and across:
        ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    elif label:  # a long method name over two lines, so that it fits beside one row
        ax.set_ylabel(textwrap.fill(label.replace("_", " "), 14), fontsize=8)


def save_figure(fig, path: str | Path, dpi: int = 300) -> Path:
    """Write ``fig`` as PNG (``dpi``, print resolution), SVG or PDF, by the path's suffix; the
    file appears only once complete."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"a figure is written as {', '.join(FORMATS)}, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial{path.suffix}")
    fig.savefig(partial, dpi=dpi, format=path.suffix.lower()[1:])
    partial.replace(path)
    return path
