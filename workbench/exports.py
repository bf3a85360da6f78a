"""What the pages hand to download buttons: a picture as PNG, frame curves as CSV, a film strip
(PNG, SVG or PDF).  Made when the button is clicked (a button's data may be a function), with no
Streamlit call inside: Streamlit runs such functions outside the page's script."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from xai_core import display
from xai_core.explanation import Explanation
from xai_core.figures import film_strip, save_figure
from xai_core.figures.export import curve_csv
from xai_core.render import timeline_curves
from xai_core.video import Clip

MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H,W,3] -> PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def curves_csv(explanations: dict[str, Explanation], clip: Clip) -> bytes:
    """Every explanation's frame curve (and LRP's maximum per frame) as CSV: frame, video_frame,
    padded, one column a curve."""
    return curve_csv(timeline_curves(explanations), clip.frame_indices, clip.padded).encode()


def strip_curves(explanations: dict[str, Explanation]) -> dict[str, np.ndarray]:
    """The strips of a film strip: the first method's frame curve, then every method that gives
    only a curve (attention, frame masking)."""
    with_curve = {name: e for name, e in explanations.items() if e.temporal is not None}
    if not with_curve:
        return {}
    first = next(iter(with_curve))
    curves = {f"{first} (frame)": with_curve[first].temporal}
    curves |= {name: e.temporal for name, e in with_curve.items() if e.spatial is None and name != first}
    return curves


def strip_bytes(
    clip: Clip,
    explanations: dict[str, Explanation],
    count: int,
    pick: str,
    style: display.Style,
    fmt: str,
    title: str,
    dpi: int = 300,
) -> bytes:
    """The film strip of ``explanations`` on ``clip`` as a PNG (``dpi``, print resolution by
    default), SVG or PDF file."""
    maps = {name: e.spatial for name, e in explanations.items() if e.spatial is not None}
    figure = film_strip(
        clip.frames,
        maps,
        strip_curves(explanations),
        count=count,
        pick=pick,
        style=style,
        padded=clip.padded,
        frame_indices=clip.frame_indices,
        title=title,
    )
    with tempfile.TemporaryDirectory() as scratch:
        return save_figure(figure, Path(scratch) / f"strip.{fmt}", dpi=dpi).read_bytes()
