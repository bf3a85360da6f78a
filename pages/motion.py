"""Motion page: the clip decomposed into its first frame, Farneback flows and warp errors (001),
and the gradients of the explained score with respect to each.  The flow on the scrubbed frame
as colour and as arrows, the flow vectors where the score is most sensitive to the flow, the
first-frame and error gradients, the motion reliance (the score without motion against without
the errors) and the first-order share per frame, and the trajectories
along which a spatial method's saliency is highest."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import streamlit as st

from workbench import caches, exports, runs, sidebar, style_widgets, widgets
from xai_core import display, render
from xai_core.explanation import TargetError
from xai_core.methods.machinery.optical_flow import FARNEBACK_PARAMS
from xai_core.methods.machinery.registry import MethodError, get_method, method_specs
from xai_core.models.base import ModelError

ZOOM = 3


def styled(picture: np.ndarray, maps: np.ndarray, index: int, style: display.Style, padded=None):
    """Map ``index`` of ``maps`` [N,H,W] over ``picture`` [H,W,3] in its range (per frame or over all
    N, as ``style`` says), enlarged: (image, the range's floor, its ceiling) for the colour bar."""
    floor, ceiling = display.display_range(maps, style, padded)
    low, high = float(floor[index]), float(ceiling[index])
    return render.upscale(display.draw(picture, maps[index], style, low, high), ZOOM), low, high


HELP = {
    "flow_gradient": "gradients through the rebuild from the first frame, flows and errors",
    "smoothflow": "the same, averaged over noisy decompositions (SmoothGrad in the decomposed space)",
}

selection = sidebar.page_setup()
st.title("Motion")
model, clip = sidebar.model_and_clip_or_stop(selection)
prediction = caches.get_prediction(model, clip, selection.device)
st.caption(f"{model.name} · {sidebar.describe_source(clip.source)} · {clip.num_frames} frames")

specs = [s for s in method_specs() if s.family == "motion" and s.name != "trajectories"]
usable = [s for s in specs if s.unavailable_reason(model) is None]
if not usable:
    st.warning(f"{model.name} supports no motion method.")
    st.stop()

left, right = st.columns([1, 2], gap="large")
with left:
    method = st.radio(
        "Method",
        [s.name for s in usable],
        key="motion_method",
        persist_state="page",
        captions=[HELP.get(s.name, s.description) for s in usable],
    )
    spec = next(s for s in usable if s.name == method)
    target = widgets.target_widget(model, prediction)
    with st.expander(f"{method}: settings and references"):
        widgets.method_help(spec)
        params = widgets.param_widgets(spec, model)
    top_help = "arrows where the score is most sensitive to the flow (largest |d score / d flow|)"
    top_n = st.slider("Top flow vectors", 5, 200, 30, 5, key="motion_top", persist_state="page", help=top_help)
    step = st.slider("Arrow grid (pixels)", 4, 16, 8, 2, key="motion_step", persist_state="page")
    length = st.slider("Arrow length (x flow)", 1.0, 8.0, 3.0, 0.5, key="motion_length", persist_state="page")
    st.subheader("Trajectories")
    trajectory_spec = get_method("trajectories")
    farneback = {p.name: params[p.name] for p in FARNEBACK_PARAMS if p.name in params}
    with st.expander("trajectories: settings and references"):
        widgets.method_help(trajectory_spec, " (Farneback settings as above)")
        trajectory_params = widgets.param_widgets(trajectory_spec, model, skip=tuple(farneback))
    history = st.slider("Track history (frames)", 1, 32, 10, key="motion_history", persist_state="page")

with right:
    try:
        with st.spinner(f"Decomposing the clip and running {method}…"):
            expl = runs.explanation(model, clip, method, target, params, selection.device)  # a saved run
    except (MethodError, TargetError, ModelError, ValueError) as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    extras = expl.extras
    flows, flow_grad, magnitude = extras["flows"], extras["flow_grad"], extras["flow_grad_magnitude"]
    share = extras["motion_share"]
    frames = clip.num_frames
    shown_for = f"{caches.model_key(model, selection.device)}|{clip.content_hash()}"
    peak = int(np.argmax(magnitude.reshape(len(magnitude), -1).sum(1))) + 1  # a new clip starts at the peak
    frame = widgets.frame_slider(
        "motion_frame", 1, frames - 1, peak, shown_for, help="The flow into this frame from the one before it"
    )
    meta = expl.meta
    saved = runs.saved_caption(expl)
    st.caption(
        f"{method}: computed in {expl.seconds:.2f} s on {meta.get('device', '?')}" + (f"; {saved}" if saved else "")
    )
    widgets.method_card(spec)
    reliance, score = meta["motion_reliance"], meta["score"]
    st.subheader("Motion or appearance")
    columns = st.columns(4)
    columns[0].metric(
        "Motion reliance",
        f"{reliance:.0%}",
        help="The score's change when every flow is set to zero (nothing moves) against its change when every"
        " error is set to zero: near 100% the score rests on the motion, near 0% on the appearance",
    )
    columns[1].metric("Score", f"{score:.3g}")
    columns[2].metric(
        "Nothing moving", f"{meta['without_motion']:.3g}", f"{meta['without_motion'] - score:+.3g}", delta_color="off"
    )
    columns[3].metric(
        "No errors", f"{meta['without_errors']:.3g}", f"{meta['without_errors'] - score:+.3g}", delta_color="off"
    )
    st.caption(
        f"Motion reliance {reliance:.0%}: with every flow set to zero (nothing moves) the score goes from "
        f"{score:.3g} to {meta['without_motion']:.3g}, with every error set to zero to "
        f"{meta['without_errors']:.3g}. On Moving Shapes it is 97-99% for the angle models and 34% for a sides"
        " model that cannot see motion (benchmarks/results/motion.md)."
    )
    st.plotly_chart(
        render.motion_share_figure(
            share, frame, clip.padded, f"Motion vs appearance per frame, first order ({meta['target_description']})"
        ),
        key="motion_share",
    )
    st.caption(
        f"Mean motion share {share.mean():.0%} (first order, per frame): each frame's gradient x value in the"
        " flows against the errors. The flows also carry the shape's appearance from frame to frame, so a model"
        " that reads appearance alone scores high on it too (0.77 on Moving Shapes, as high as the transformer"
        " angle model; the per-frame variants in benchmarks/results/motion_share.md do not separate them"
        " either). Read it as where in time the flow gradients lie, and the motion reliance above as how much"
        " the score needs the motion."
        f" The decomposition rebuilds the clip to within {meta['rebuild_max_error']:.1e}; flows took"
        f" {meta['flow_seconds']:.2f} s, gradients {meta['gradient_seconds']:.2f} s."
    )

    i = frame - 1  # flows[i] is the flow into frame i + 1
    original = clip.frames[frame]
    magnitude_style = style_widgets.range_widgets("motion_", "abs")  # the gradients' range and look
    signed_style = replace(magnitude_style, mode="signed", cmap=display.colormaps_for("signed")[0])
    speed_scale = float(np.percentile(np.hypot(flows[:, 0], flows[:, 1]), 99.5)) or 1.0
    points = render.grid_points(*original.shape[:2], step)
    field = flows[i][:, points[:, 1], points[:, 0]].T
    tiles = [
        (
            render.arrows(render.upscale(original, ZOOM), points, field, zoom=ZOOM, length=length),
            f"flow into frame {frame} (arrows ×{length:g})",
        ),
        (
            render.upscale(render.flow_colour(flows[i], speed_scale), ZOOM),
            "flow as colour: hue = direction, brightness = speed",
        ),  # fmt: skip
    ]
    top = render.top_points(magnitude[i], top_n)
    flow_padded = clip.padded[1:] if clip.padded is not None else None  # flows[i]: into frame i + 1
    heat, low, high = styled(original, magnitude, i, magnitude_style, flow_padded)
    heat = render.arrows(heat, top, flows[i][:, top[:, 1], top[:, 0]].T, zoom=ZOOM, length=length, colour=(0, 255, 255))
    tiles.append(
        (
            render.with_colorbar(heat, magnitude_style, low, high),
            f"|d score / d flow| with the top {len(top)} flow vectors",
        )
    )
    error_grad = extras["error_grad"]
    heat, low, high = styled(original, error_grad, i, signed_style, flow_padded)
    tiles.append((render.with_colorbar(heat, signed_style, low, high), "d score / d error (red: raises the score)"))
    heat, low, high = styled(clip.frames[0], extras["first_grad"][None], 0, signed_style)
    tiles.append((render.with_colorbar(heat, signed_style, low, high), "d score / d first frame"))
    tiles.append(
        (
            render.upscale(
                render.colorize(np.clip(extras["errors"][i] / (extras["errors"].max() or 1), 0, 1), "inferno"), ZOOM
            ),  # fmt: skip
            "warp error |E| (what the flow does not explain)",
        )
    )
    for row in range(0, len(tiles), 3):
        columns = st.columns(3)
        for column, (image, text) in zip(columns, tiles[row : row + 3], strict=False):
            column.image(image, caption=text, width="stretch", output_format="PNG")

    st.subheader("Most salient trajectories")
    try:
        with st.spinner("Pushing points along the flows…"):
            paths = runs.explanation(
                model, clip, "trajectories", target, {**trajectory_params, **farneback}, selection.device
            )
    except (MethodError, TargetError, ModelError, ValueError) as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    top_tracks = paths.extras["trajectories"]
    drawn = render.tracks(render.upscale(original, ZOOM), top_tracks, frame, zoom=ZOOM, history=history)
    if "picked" in paths.extras:  # the user's own points in white
        drawn = render.tracks(drawn, paths.extras["picked"], frame, zoom=ZOOM, history=history,
                              colours=[(255, 255, 255)] * len(paths.extras["picked"]))  # fmt: skip
    base_name = paths.meta["base"]
    c1, c2 = st.columns([1, 1])
    c1.image(drawn, caption=f"top {len(top_tracks)} trajectories by {base_name} over "
             f"{paths.meta['window']} frames · frame {frame}", width="stretch", output_format="PNG")  # fmt: skip
    windows = paths.extras["trajectory_windows"]
    rows = [
        {
            "rank": k + 1,
            "score": f"{float(score):.3g}",  # (a float column shows 1e-7 as 0.0000001)
            "frames": f"{int(a)}-{int(b) - 1}",
            "at frame": f"({track[frame][0]:.0f}, {track[frame][1]:.0f})",
        }  # fmt: skip
        for k, (score, (a, b), track) in enumerate(zip(paths.extras["trajectory_scores"], windows, top_tracks))
    ]
    c2.dataframe(rows, hide_index=True, key="trajectory_table")

    with st.expander("Export: this frame's pictures, the runs"):
        e1, e2, e3 = st.columns(3)
        e1.download_button(
            "This frame's pictures (PNG)",
            data=partial(exports.png_bytes, render.side_by_side(*(image for image, _ in tiles))),
            file_name=f"{model.name}_{method}_frame{frame}.png",
            mime="image/png",
            key="motion_download_frame",
        )
        for column, run in ((e2, expl), (e3, paths)):
            if run.meta.get("run"):
                column.download_button(
                    f"{run.method} run (zip)",
                    runs.run_zip(run.meta["run"]),
                    file_name=f"{model.name}_{run.method}_{run.meta['run'][:10]}.zip",
                    mime="application/zip",
                    key=f"motion_download_{run.method}",
                )
