"""Temporal page: frame masking, occlusion and TSR on demand, with the number of model evaluations
and an estimate before the run, progress and a cancel button during it; then the time-relevance
curve with key frames (and a Moving Shapes clip's pause frames), the maps on the scrubbed frame,
and deletion / insertion curves.  Finished runs are saved (``xai_core.runs``) and found again."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from workbench import caches, jobs, runs, sidebar, style_widgets, widgets
from xai_core import display, render
from xai_core.evaluate import key_frame_overlap, key_frames
from xai_core.explanation import TargetError, prediction_text
from xai_core.methods.machinery.planning import LONG_METHODS, seconds_text
from xai_core.methods.machinery.registry import MethodError, get_method
from xai_core.models.base import ModelError

SLOT = "temporal"
ZOOM = 3
HELP = {
    "frame_mask": "replace each frame (or window of frames) and record the drop in the score",
    "occlusion": "slide a spatio-temporal window over the clip and record the drop in the score",
    "tsr_onestep": "the base map of each frame times how much masking that frame changes the map",
    "tsr": "two-step TSR (002): time relevance, then feature relevance in the frames above alpha",
}

selection = sidebar.page_setup()
st.title("Temporal")
model, clip = sidebar.model_and_clip_or_stop(selection)
prediction = caches.get_prediction(model, clip, selection.device)
st.caption(f"{model.name} · {sidebar.describe_source(clip.source)} · predicts {prediction_text(prediction)}")

left, right = st.columns([1, 2], gap="large")
with left:
    method = st.radio(
        "Method",
        list(LONG_METHODS),
        key="temporal_method",
        persist_state="page",
        captions=[HELP[m] for m in LONG_METHODS],
    )
    spec = get_method(method)
    target = widgets.target_widget(model, prediction)
    with st.expander(f"{method}: settings and references", expanded=True):
        widgets.method_help(spec)
        params = widgets.param_widgets(spec, model)
    try:
        resolved = spec.resolve_params(params)
        plan = caches.get_plan(model, clip, method, target, resolved, selection.device)
    except (MethodError, TargetError, ModelError, ValueError) as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    took = seconds_text(plan.seconds)
    st.markdown(f"**{plan.evaluations:,} model evaluations**, about **{took}** here ({plan.note}).")
    key = runs.run_key(model, clip, method, target, resolved)
    stored = runs.stored_run(key)
    job = jobs.job(SLOT)
    running = job is not None and not job.status().finished

    def start() -> None:
        st.session_state.pop("temporal_error", None)
        try:
            runs.start_temporal_run(SLOT, model, clip, method, target, resolved, key)
        except ValueError as exc:
            st.session_state["temporal_error"] = str(exc)

    st.button(
        "Run again" if stored is not None else "Run",
        key="temporal_run",
        on_click=start,
        type="primary" if stored is None else "secondary",
        disabled=running or runs.computing(key),
    )
    if st.session_state.get("temporal_error"):
        st.error(st.session_state["temporal_error"], icon=":material/error:")


with right:
    panel = st.container()  # the job's progress goes above the result, drawn after it
    stored = runs.stored_run(key)
    computing = runs.computing(key)  # by this page's job or the Explain page's: its progress is shown instead
    if stored is None and not computing:
        st.info("Not computed yet for these settings: press Run.")
    with panel:
        jobs.show_job(SLOT, "temporal_cancel", {key})
        if computing and not running:
            st.info("Being computed now by the Explain page's background run: its progress is on that page.")
    if stored is None:
        st.stop()
    expl = stored
    frames = clip.num_frames
    c1, c2 = st.columns(2)
    threshold = c1.slider("Key frames: difference above (share of its range)", 0.05, 0.95, 0.3, 0.05,
                          key="key_threshold", persist_state="page")  # fmt: skip
    diffs, key_mask = key_frames(clip.frames, threshold)
    truth = clip.ground_truth.get("pause_frames")
    show_truth = c2.checkbox("Shade the pause frames", value=True, key="temporal_truth", persist_state="page",
                             disabled=truth is None or not np.any(truth))  # fmt: skip
    if "temporal_frame" not in st.session_state or st.session_state["temporal_frame"] >= frames:
        st.session_state["temporal_frame"] = widgets.peak_frame(expl.temporal, clip.padded)

    def on_select() -> None:
        points = ((st.session_state.get("temporal_curve") or {}).get("selection") or {}).get("points") or []
        if points:
            st.session_state["temporal_frame"] = int(round(points[0]["x"]))

    curve_area = st.container()
    frame = st.slider("Frame", 0, frames - 1, key="temporal_frame", persist_state="page")
    label = {"frame_mask": "drop in the score", "occlusion": "mean positive drop"}.get(method, "time relevance")
    figure = render.importance_figure(
        {label: expl.temporal}, selected=frame, padded=clip.padded, frame_indices=clip.frame_indices,
        normalise_curves=False, title=f"{method}: {label} per frame ({expl.meta.get('target_description', '')})",
        key_frames=key_mask, evidence=truth if show_truth and truth is not None and np.any(truth) else None,
    )  # fmt: skip
    with curve_area:
        st.plotly_chart(figure, key="temporal_curve", on_select=on_select, selection_mode="points")
    overlap = key_frame_overlap(expl.temporal, key_mask)
    st.caption(
        f"{int(key_mask.sum())} key frames; {overlap:.0%} of them among the {int(key_mask.sum())} highest frames."
        if np.isfinite(overlap) else "No key frames at this threshold."
    )  # fmt: skip
    if expl.spatial is not None:
        style = style_widgets.style_widgets("temporal_")
        original = clip.frames[frame]
        tiles = [(render.beside_colorbars(render.upscale(original, ZOOM)), f"frame {frame}")]
        maps = [(expl.spatial, style, f"{method} · frame {frame}")]
        if (
            "base_map" in expl.extras
        ):  # the base method's magnitude, in its own range (turbo when the reading is signed)
            magnitude = replace(style, mode="abs", cmap=style.cmap if style.mode != "signed" else "turbo")
            maps.append((expl.extras["base_map"], magnitude, "base map (magnitude)"))
        for spatial, shown_style, text in maps:
            floor, ceiling = display.display_range(spatial, shown_style, clip.padded)
            drawn = display.draw(original, spatial[frame], shown_style, float(floor[frame]), float(ceiling[frame]))
            shown = render.upscale(drawn, ZOOM)
            tiles.append((render.with_colorbar(shown, shown_style, float(floor[frame]), float(ceiling[frame])), text))
        for column, (image, text) in zip(st.columns(len(tiles)), tiles, strict=True):
            column.image(image, caption=text, width="stretch", output_format="PNG")
    if method == "tsr":
        picked = int(np.sum(expl.extras["selected"]))
        st.caption(f"alpha = {expl.meta['alpha']:.4g}: {picked} of {frames} frames got feature relevance.")

    st.subheader("Deletion and insertion")
    st.caption(
        "Frames replaced by the baseline in the order of this curve (most important first), against random "
        "orders: a good ranking makes the score fall early under deletion (small AUC) and rise early under "
        "insertion (large AUC)."
    )
    wanted = f"deletion_{key}"
    st.button("Compute the curves", key="temporal_deletion", on_click=lambda: st.session_state.update({wanted: True}))
    if st.session_state.get(wanted):
        try:
            result = caches.get_deletion(model, clip, target, expl.temporal, resolved.get("baseline", "zero"), key)
            st.plotly_chart(render.deletion_figure(result), key="deletion_curves")
        except (ValueError, ModelError) as exc:
            st.error(str(exc), icon=":material/error:")

    st.download_button(
        "Download the run (npz, json, overlay mp4, curve csv, film strip png)",
        runs.run_zip(key),
        file_name=f"{model.name}_{method}_{key[:10]}.zip",
        mime="application/zip",
        key="temporal_download",
    )
    device = expl.meta.get("device", "?")
    saved = runs.saved_caption(expl) or "saved"
    st.caption(f"Computed in {expl.seconds:.1f} s on {device}; {saved} in {runs.stored_folder(key)}.")
    widgets.method_card(spec)
