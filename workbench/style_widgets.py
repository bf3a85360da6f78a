"""How the pages' overlays look: the widgets of a ``display.Style`` (reading, colour map, range per
frame or per clip, contrast, opacity), for pages that let the user pick the reading and for
pages whose maps each have a reading of their own."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from xai_core import display
from xai_core.display import Style

SCALE_TEXT = {"frame": "per frame", "clip": "per clip"}


def style_widgets(prefix: str) -> Style:
    """The overlay's look (``display.Style``): what part of the map, its colour map (only those fit
    for that reading), one range per frame or per clip, the contrast as percentiles, the opacity.
    Keys start with ``prefix`` (a page keeps its own)."""
    c1, c2 = st.columns(2)
    mode = c1.selectbox(
        "Show",
        list(display.MODES),
        key=f"{prefix}mode",
        help="positive: evidence for the target; abs: magnitude; signed: for (the + end of the colour map) and "
        "against (the - end), white at zero",
        persist_state="page",
    )
    cmap = c2.selectbox(
        "Colour map",
        list(display.colormaps_for(mode)),
        key=f"{prefix}cmap_{mode}",  # each reading keeps its own choice among the maps that fit it
        help="sequential maps for the positive part and the magnitude; diverging (white at zero) for signed maps",
        persist_state="page",
    )
    return replace(range_widgets(prefix), mode=mode, cmap=cmap)


def range_widgets(prefix: str, reading: str = "positive") -> Style:
    """The overlay's range and look without its reading: one range per frame or per clip, the
    contrast as percentiles, the opacity; the default ``Style`` of ``reading`` with them (a page
    whose maps have their readings fixed sets each one's with ``dataclasses.replace``)."""
    c3, c4, c5 = st.columns(3)
    scale = c3.radio(
        "Scale",
        list(display.SCALES),
        format_func=SCALE_TEXT.get,
        key=f"{prefix}scale",
        horizontal=True,
        help="per frame: each frame's own range, so every frame's map is visible; per clip: one range for the "
        "whole clip, so frames can be compared with each other",
        persist_state="page",
    )
    low, high = c4.slider(
        "Contrast (percentiles)",
        0.0,
        100.0,
        (display.Style.low, display.Style.high),
        0.5,
        key=f"{prefix}contrast",
        help="values at or below the lower percentile are not coloured, those at or above the upper one get full "
        "colour; lower the upper percentile to see a sparse map",
        persist_state="page",
    )
    if high <= low:
        high = min(100.0, low + 0.5)
        low = high - 0.5
    opacity = c5.slider("Opacity", 0.0, 1.0, display.Style.opacity, 0.05, key=f"{prefix}opacity", persist_state="page")
    return Style.default_for(reading, scale=scale, low=low, high=high, opacity=opacity)
