"""Showing explanations: colour maps, overlays, plotly figures.

How a map is coloured and scaled (per frame or per clip, the contrast, the colour maps fit for a
reading, the colour bar) is ``display``'s; this module draws with it.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import display
from .angles import screen_angle

COLORMAPS = display.COLORMAPS
MODES = display.MODES
colorize = display.colorize


def clip_scale(spatial: np.ndarray, mode: str = "positive", percentile: float = 99.5) -> float:
    """One scale for a whole map [T,H,W]: the ``percentile`` of the values shown (positive part,
    magnitude, or magnitude for signed maps) that are not zero; 1.0 when the map is all zero.
    (The pages draw explanations with ``display.Style``; this plain scale serves fixed views.)"""
    values = display.shown_values(spatial, mode)
    nonzero = values[values > 0]
    if nonzero.size == 0:
        return 1.0
    return float(np.percentile(nonzero, percentile)) or float(nonzero.max())


def normalise(heat: np.ndarray, mode: str, scale: float) -> np.ndarray:
    """Map values to [0, 1] for display: positive part / magnitude / signed (0.5 = zero), ÷ ``scale``."""
    return display.to_unit(heat, mode, 0.0, scale if scale > 0 else 1.0)


def overlay(
    frame: np.ndarray,
    heat: np.ndarray,
    *,
    opacity: float = 0.5,
    cmap: str = "jet",
    mode: str = "positive",
    scale: float | None = None,
) -> np.ndarray:
    """frame uint8 [H,W,3] + map [H,W] -> uint8 [H,W,3]: the coloured map blended over the frame,
    values ÷ ``scale`` (default: ``clip_scale`` of this map).

    In "positive" and "abs" modes the blend is weighted by the map's strength, so pixels with no
    evidence keep the frame's own colours."""
    scale = clip_scale(np.asarray(heat)[None], mode) if scale is None else scale
    return display.blend(frame, normalise(heat, mode, scale), mode, cmap, opacity)


def overlay_clip(frames: np.ndarray, spatial: np.ndarray, **kwargs) -> np.ndarray:
    """frames uint8 [T,H,W,3] + maps [T,H,W] -> uint8 [T,H,W,3], one scale for the whole clip."""
    mode = kwargs.get("mode", "positive")
    scale = kwargs.pop("scale", None) or clip_scale(spatial, mode)
    return np.stack([overlay(f, m, scale=scale, **kwargs) for f, m in zip(frames, spatial, strict=True)])


def with_colorbar(image: np.ndarray, style: display.Style, floor: float, ceiling: float) -> np.ndarray:
    """An overlay uint8 [H,W,3] with the colour bar of its range to its right (white gap)."""
    bar = display.colorbar(style, floor, ceiling, height=image.shape[0], width=_bar_width(image))
    return side_by_side(image, bar)


def _bar_width(image: np.ndarray) -> int:
    return max(48, image.shape[1] // 3)


def beside_colorbars(image: np.ndarray) -> np.ndarray:
    """An image uint8 [H,W,3] with white where an overlay has its colour bar, so that a frame shown
    beside overlays (``with_colorbar``) is drawn at their size."""
    return side_by_side(image, np.full((image.shape[0], _bar_width(image), 3), 255, np.uint8))


def styled_overlays(
    frames: np.ndarray,
    spatial: np.ndarray,
    style: display.Style,
    zoom: int = 1,
    colorbar: bool = True,
    padded: np.ndarray | None = None,
) -> np.ndarray:
    """The whole clip drawn as ``style`` says, for a video: frames uint8 [T,H,W,3] + maps [T,H,W]
    -> uint8 [T,H*zoom,W',3], each frame enlarged ``zoom`` times with the colour bar of its range."""
    floor, ceiling = display.display_range(spatial, style, padded)
    out = []
    for frame, heat, lo, hi in zip(frames, spatial, floor, ceiling, strict=True):
        image = display.draw(frame, heat, style, float(lo), float(hi))
        image = upscale(image, zoom) if zoom > 1 else image
        out.append(with_colorbar(image, style, float(lo), float(hi)) if colorbar else image)
    return np.stack(out)


def outline(frame: np.ndarray, mask: np.ndarray, colour=(255, 255, 255), thickness: int = 1) -> np.ndarray:
    """frame uint8 [H,W,3] with the contour of a bool mask [H,W] drawn on a copy."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.ascontiguousarray(frame).copy()
    cv2.drawContours(out, contours, -1, colour, thickness)
    return out


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """Images [H,W,3] of the same height, left to right with a white gap."""
    h = images[0].shape[0]
    spacer = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for i, img in enumerate(images):
        parts.extend([spacer, img] if i else [img])
    return np.concatenate(parts, axis=1)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement (keeps pixels crisp when showing 112x112 frames)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def flow_colour(flow: np.ndarray, scale: float | None = None) -> np.ndarray:
    """flow [2,H,W] (x then y, pixels) -> RGB uint8 [H,W,3]: hue = direction (red: right, then
    anticlockwise on the screen through yellow-green: up), brightness = speed / ``scale`` (default:
    the largest speed; one scale for a clip makes frames comparable)."""
    dx, dy = flow[0].astype(np.float32), flow[1].astype(np.float32)
    speed = np.hypot(dx, dy)
    scale = float(speed.max()) if scale is None else scale
    angle = screen_angle(np.stack([dx, dy], axis=-1))  # screen y points down: up is +90 degrees
    hsv = np.zeros((*speed.shape, 3), np.uint8)
    hsv[..., 0] = np.round(angle / 2).astype(np.uint8) % 180  # OpenCV hue: 0..179 for 0..358 degrees
    hsv[..., 1] = 255
    hsv[..., 2] = np.round(np.clip(speed / scale if scale > 0 else 0 * speed, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def grid_points(height: int, width: int, step: int) -> np.ndarray:
    """Points every ``step`` pixels, half a step from the edges -> [N,2] (x, y)."""
    ys, xs = np.mgrid[step // 2 : height : step, step // 2 : width : step]
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def top_points(magnitude: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` pixels with the largest values of a map [H,W] (largest first) -> [n,2] (x, y)."""
    n = min(n, magnitude.size)
    flat = np.argsort(magnitude.ravel(), kind="stable")[::-1][:n]
    ys, xs = np.unravel_index(flat, magnitude.shape)
    return np.stack([xs, ys], axis=1)


def arrows(
    image: np.ndarray,
    points: np.ndarray,
    vectors: np.ndarray,
    *,
    zoom: int = 1,
    length: float = 1.0,
    colour=(255, 255, 255),
    thickness: int = 1,
) -> np.ndarray:
    """Arrows drawn on a copy of ``image`` (already enlarged ``zoom`` times): from each point
    [N,2] (x, y, pixels of the model input) along its vector [N,2] (pixels) times ``length``."""
    out = np.ascontiguousarray(image).copy()
    for (x, y), (dx, dy) in zip(points, vectors, strict=True):
        start = (int(round((x + 0.5) * zoom)), int(round((y + 0.5) * zoom)))
        end = (int(round((x + 0.5 + dx * length) * zoom)), int(round((y + 0.5 + dy * length) * zoom)))
        if start != end:
            cv2.arrowedLine(out, start, end, colour, thickness, cv2.LINE_AA, tipLength=0.3)
    return out


def tracks(
    image: np.ndarray, positions: np.ndarray, frame: int, *, zoom: int = 1, history: int = 10, colours=None
) -> np.ndarray:
    """Trajectories [K,T,2] (x, y, pixels of the model input) drawn on a copy of ``image``
    (enlarged ``zoom`` times): each one's last ``history`` frames up to ``frame`` as a line and
    its position in ``frame`` as a dot; colours from a qualitative palette (or ``colours`` [K])."""
    out = np.ascontiguousarray(image).copy()
    palette = colours or [tuple(int(c) for c in colorize(np.array([[k / max(len(positions), 1)]]), "turbo")[0, 0])
                          for k in range(len(positions))]  # fmt: skip
    first = max(0, frame - history)
    for track, colour in zip(positions, palette, strict=False):
        path = np.round((track[first : frame + 1] + 0.5) * zoom).astype(np.int32)
        if len(path) > 1:
            cv2.polylines(out, [path.reshape(-1, 1, 2)], False, colour, max(1, zoom // 2), cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in path[-1]), max(2, zoom), colour, -1, cv2.LINE_AA)
    return out


# ---------------------------------------------------------------------------- plotly figures
def probabilities_figure(prediction: dict, labels: list[str], top: int = 10):
    """Horizontal bars of the class probabilities (the top ``top``), predicted class highlighted."""
    import plotly.graph_objects as go

    probs = np.asarray(prediction["probabilities"])
    order = np.argsort(-probs)[:top][::-1]
    colours = ["#d62728" if i == prediction["index"] else "#1f77b4" for i in order]
    fig = go.Figure(
        go.Bar(
            x=probs[order],
            y=[labels[i] for i in order],
            orientation="h",
            marker_color=colours,
            text=[f"{p:.1%}" for p in probs[order]],
            textposition="auto",
        )
    )
    fig.update_layout(
        xaxis=dict(range=[0, 1], title="probability", tickformat=".0%"),
        height=60 + 28 * len(order),
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return fig


def importance_figure(
    curves: dict[str, np.ndarray],
    selected: int | None = None,
    *,
    padded: np.ndarray | None = None,
    frame_indices: np.ndarray | None = None,
    normalise_curves: bool = True,
    title: str = "frame importance",
    key_frames: np.ndarray | None = None,
    evidence: np.ndarray | None = None,
    evidence_name: str = "pause",
):
    """Frame-importance curves on one timeline [T each]; the selected frame marked by a line and
    a marker; padding frames shaded.  With ``normalise_curves`` every curve is divided by its
    maximum magnitude so that curves of different methods share one axis.  ``key_frames`` bool [T]:
    marked by red triangles under the axis; ``evidence`` bool [T] (e.g. a clip's pause frames):
    shaded green."""
    import plotly.graph_objects as go

    fig = go.Figure()
    length = len(next(iter(curves.values())))
    frames = np.arange(length)
    hover = None
    if frame_indices is not None:
        hover = [f"video frame {int(i)}" if i >= 0 else "padding" for i in frame_indices]
    for name, curve in curves.items():
        y = np.asarray(curve, dtype=float)
        if normalise_curves:
            peak = np.abs(y).max()
            y = y / peak if peak > 0 else y
        fig.add_trace(go.Scatter(x=frames, y=y, mode="lines+markers", name=name, hovertext=hover))
        if selected is not None:
            fig.add_trace(
                go.Scatter(
                    x=[selected],
                    y=[y[selected]],
                    mode="markers",
                    showlegend=False,
                    hoverinfo="skip",
                    marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
                )
            )
    if selected is not None:
        fig.add_vline(x=selected, line_dash="dash", line_color="gray")
    if padded is not None and np.any(padded):
        first = int(np.argmax(padded))
        fig.add_vrect(x0=first - 0.5, x1=length - 0.5, fillcolor="lightgray", opacity=0.4, line_width=0)
    if evidence is not None:
        for t in np.flatnonzero(evidence):
            fig.add_vrect(x0=t - 0.5, x1=t + 0.5, fillcolor="lightgreen", opacity=0.3, line_width=0)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{evidence_name} frames (truth)",
                                 marker=dict(size=10, symbol="square", color="lightgreen")))  # fmt: skip
    if key_frames is not None and np.any(key_frames):
        marks = np.flatnonzero(key_frames)
        bottom = min(float(np.min(t.y)) for t in fig.data if t.y is not None and len(t.y) and t.y[0] is not None)
        fig.add_trace(go.Scatter(x=marks, y=[bottom] * len(marks), mode="markers", name="key frames",
                                 marker=dict(symbol="triangle-up", size=10, color="red"), hoverinfo="x"))  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis_title="frame (model input)",
        yaxis_title="importance" + (" (÷ max)" if normalise_curves else ""),
        height=280,
        margin=dict(l=10, r=10, t=40, b=10),
        showlegend=len(curves) > 1 or key_frames is not None or evidence is not None,
        clickmode="event+select",
    )
    return fig


def deletion_figure(result: dict, title: str = "deletion and insertion"):
    """The curves of ``evaluate.deletion_insertion`` over the share of frames removed / inserted,
    with their AUCs in the legend (random orders dashed)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    styles = {
        "deletion": ("deletion", "solid"),
        "insertion": ("insertion", "solid"),
        "random_deletion": ("deletion, random order", "dash"),
        "random_insertion": ("insertion, random order", "dash"),
    }
    for key, (label, dash) in styles.items():
        if key not in result:
            continue
        y = np.asarray(result[key], dtype=float)
        line = dict(dash=dash, color="firebrick" if "deletion" in key else "seagreen")
        name = f"{label} (AUC {result[key + '_auc']:.3g})"
        fig.add_trace(go.Scatter(x=np.linspace(0, 1, len(y)), y=y, mode="lines", name=name, line=line))
    fig.update_layout(
        title=title, xaxis_title="share of frames removed (deletion) / put back (insertion)", yaxis_title="score",
        height=300, margin=dict(l=10, r=10, t=40, b=10),
    )  # fmt: skip
    return fig


def attention_strip(
    frames: np.ndarray,
    weights: np.ndarray,
    *,
    selected: int | None = None,
    cmap: str = "viridis",
    thumb: int = 32,
    bar: int = 10,
    gap: int = 2,
) -> np.ndarray:
    """The frames as a row of thumbnails with a colour bar under each (000's attention strip).

    frames uint8 [T,H,W,3], weights [T] (shown ÷ their maximum; 0 = the map's lowest colour) ->
    uint8 [thumb + bar, T * (thumb + gap) - gap, 3]; the ``selected`` frame is framed in white."""
    frames = np.asarray(frames)
    weights = np.asarray(weights, dtype=float)
    if len(frames) != len(weights):
        raise ValueError(f"{len(frames)} frames but {len(weights)} weights")
    peak = np.abs(weights).max()
    unit = np.clip(weights / peak if peak > 0 else weights, 0, 1)
    colours = colorize(unit[None, :], cmap)[0]  # [T,3]
    step = thumb + gap
    strip = np.full((thumb + bar, len(frames) * step - gap, 3), 255, dtype=np.uint8)
    for t, frame in enumerate(frames):
        x0 = t * step
        strip[:thumb, x0 : x0 + thumb] = cv2.resize(frame, (thumb, thumb), interpolation=cv2.INTER_AREA)
        strip[thumb:, x0 : x0 + thumb] = colours[t]
    if selected is not None:
        x0 = selected * step
        cv2.rectangle(strip, (x0, 0), (x0 + thumb - 1, thumb + bar - 1), (255, 255, 255), 1)
    return strip


def profile_figure(profiles: dict[str, np.ndarray], padded: np.ndarray | None = None, title: str = ""):
    """Mean |gradient| per frame of one or more models on a log axis (002's vanishing-saliency chart)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, profile in profiles.items():
        y = np.asarray(profile, dtype=float)
        fig.add_trace(go.Scatter(x=np.arange(len(y)), y=y, mode="lines+markers", name=name))
    if padded is not None and np.any(padded):
        first = int(np.argmax(padded))
        fig.add_vrect(x0=first - 0.5, x1=len(padded) - 0.5, fillcolor="lightgray", opacity=0.4, line_width=0)
    fig.update_layout(
        title=title or "Mean |gradient| per frame",
        xaxis_title="frame (model input)",
        yaxis_title="mean |d score / d input|",
        yaxis_type="log",
        height=280,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def timeline_curves(explanations: dict) -> dict[str, np.ndarray]:
    """The curves of the shared timeline: each explanation's ``temporal`` [T] under its method's
    name, plus LRP's second curve (maximum relevance per frame) as "lrp (max)"."""
    curves = {}
    for name, expl in explanations.items():
        curves[name] = np.asarray(expl.temporal, dtype=float)
        if "relevance_max" in (expl.extras or {}):
            curves[f"{name} (max)"] = np.asarray(expl.extras["relevance_max"], dtype=float)
    return curves


def motion_share_figure(share: np.ndarray, selected: int | None = None, padded: np.ndarray | None = None, title=""):
    """A stacked area over frames 1..T-1: the flows' share of the attribution (motion) and the
    errors' (appearance), which add up to 1 (``share`` [T-1], frame i's value at x = i)."""
    import plotly.graph_objects as go

    frames = np.arange(1, len(share) + 1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=frames, y=share, name="motion (flows)", stackgroup="one", mode="lines"))
    fig.add_trace(
        go.Scatter(x=frames, y=1 - np.asarray(share), name="appearance (errors)", stackgroup="one", mode="lines")
    )
    if selected is not None:
        fig.add_vline(x=selected, line_dash="dash", line_color="gray")
    if padded is not None and np.any(padded):
        first = int(np.argmax(padded))
        fig.add_vrect(x0=first - 0.5, x1=len(share) + 0.5, fillcolor="lightgray", opacity=0.4, line_width=0)
    fig.update_layout(
        title=title or "motion vs appearance",
        xaxis_title="frame (model input)",
        yaxis_title="share of the attribution",
        yaxis_range=[0, 1],
        height=260,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig
