"""Explain page: prediction; several methods side by side on the selected frame and as curves on one
shared timeline; attention as a colour strip; the vanishing-saliency chart for cnn_lstm / ica_lstm."""

from __future__ import annotations

import os
from dataclasses import asdict
from functools import partial

import streamlit as st

from workbench import caches, exports, jobs, runs, sanity, sidebar, style_widgets, teach, user_models, widgets
from xai_core import display, notes, render, vanishing
from xai_core.evaluate import suites
from xai_core.explanation import Explanation, TargetError, prediction_text
from xai_core.methods.machinery.planning import LONG_METHODS, seconds_text
from xai_core.methods.machinery.registry import MethodError, get_method, method_specs
from xai_core.models.base import ModelError
from xai_core.video import VideoError

ZOOM = 3  # 112x112 frames shown at 336x336


def strip_caption(name: str, expl: Explanation) -> str:
    """What the colour strip of a method without maps shows: attention weights (with the share of
    frames kept, where the method drops the rest) or another frame score."""
    if "temporal_attention" in get_method(name).requires:
        keep = expl.params.get("keep")
        kept = f"; frames outside the kept {keep:.0%} are 0" if isinstance(keep, float) and keep < 1 else ""
        return f"{name}: attention weight of each frame (colour ÷ largest{kept})"
    return f"{name}: importance of each frame (colour ÷ largest)"


PER_ROW = 3  # frames shown side by side
HEAVY_SECONDS = float(os.environ.get("XAI_BACKGROUND_SECONDS", 3.0))  # estimated longer: in the background
SLOT = "explain"  # this page's background job


def background_panel(model, clip, target, waiting: list, shown_keys: set[str]) -> None:
    """The heavy methods chosen and not computed yet ((name, params, run key, plan) each): their
    plans and one button that runs them in the background (those not being computed already, on
    this page or another), then the job's progress and Cancel; the page stays usable and shows the
    other methods meanwhile.  ``shown_keys``: the run keys of every long method chosen."""
    current = jobs.job(SLOT)
    running = current is not None and not current.status().finished
    if waiting:
        busy = {key for _, _, key, _ in waiting if runs.computing(key)}
        startable = [item for item in waiting if item[2] not in busy]
        lines = [
            f"- **{name}**: " + ("being computed now" if key in busy else str(plan)) for name, _, key, plan in waiting
        ]
        st.markdown("Run in the background:\n" + "\n".join(lines))
        if startable:

            def start() -> None:
                st.session_state.pop("explain_job_error", None)
                wanted = [(name, resolved, key) for name, resolved, key, _ in startable]
                names = ", ".join(name for name, *_ in wanted)
                try:
                    runs.start_runs(SLOT, model, clip, target, wanted, f"{names} on {model.name}")
                except ValueError as exc:
                    st.session_state["explain_job_error"] = str(exc)

            total = seconds_text(sum(plan.seconds for *_, plan in startable))
            st.button(
                f"Run {len(startable)} in the background (about {total})"
                if len(startable) > 1
                else f"Run {startable[0][0]} in the background (about {total})",
                key="explain_run",
                on_click=start,
                type="primary",
                disabled=running,
                help="Another background run of this page is in progress: cancel it or wait" if running else None,
            )
    if running or not waiting:
        st.session_state.pop("explain_job_error", None)  # said of a start that is no longer pending
    if st.session_state.get("explain_job_error"):
        st.error(st.session_state["explain_job_error"], icon=":material/error:")
    jobs.show_job(SLOT, "explain_cancel", shown_keys)


selection = sidebar.page_setup()
st.title("Explain")
model, clip = sidebar.model_and_clip_or_stop(selection)

prediction = caches.get_prediction(model, clip, selection.device)
frames = clip.num_frames


def on_curve_select() -> None:
    """Clicking a point of the importance curve moves the scrubber to that frame."""
    event = st.session_state.get("importance_curve") or {}
    points = (event.get("selection") or {}).get("points") or []
    if points:
        st.session_state["frame"] = int(round(points[0]["x"]))


left, right = st.columns([1, 2], gap="large")
with left:
    st.subheader("Prediction")
    if model.task == "classification":
        st.markdown(f"Predicts **{prediction_text(prediction)}**")
        st.plotly_chart(  # no toolbar: it would cover the top bar's label
            render.probabilities_figure(prediction, model.labels), key="probabilities", config={"displayModeBar": False}
        )
        per_frame = caches.get_frame_probabilities(model, clip, selection.device)
        if per_frame is not None:  # an image classifier run on every frame: its prediction frame by frame
            top = [int(k) for k in per_frame.mean(0).argsort()[::-1][:3]]
            st.plotly_chart(
                render.importance_figure(
                    {model.labels[k]: per_frame[:, k] for k in top},
                    normalise_curves=False,
                    padded=clip.padded,
                    title="Each frame's probability of the clip's top classes",
                ),  # fmt: skip
                key="frame_predictions",
            )
            st.caption("The clip's prediction is the mean of the frames' logits (each frame classified on its own).")
    else:
        st.metric(prediction["label"], f"{prediction['value']:.1f}")
    truth = clip.meta
    if "shape" in truth:
        st.caption(
            f"Ground truth: a {truth['shape']} moving at {truth['angle']:.0f}°"
            + (", with a pause" if truth.get("has_pause") else "")
        )
    st.caption(
        f"{model.name} · {sidebar.describe_source(clip.source)} · {clip.num_frames} frames"
        + (f" ({int(clip.padded.sum())} padding)" if clip.padded.any() else "")
    )
    for note in notes.clip_notes(model, clip):
        st.info(note, icon=":material/info:")

    st.subheader("Methods")
    all_specs = [s for s in method_specs() if s.family in ("spatial", "temporal")]
    usable = [s for s in all_specs if s.unavailable_reason(model) is None]
    if not any(s.family == "spatial" for s in usable):
        st.warning(f"{model.name} supports no spatial method.")
        st.stop()
    names = [s.name for s in usable]
    survival = sanity.sanity_survival(model, selection.device)  # method -> its maps against a randomised model's
    survives = {m: v for m, v in survival.items() if v.survives(suites.SURVIVES)}
    chosen = widgets.method_choice(
        model,
        names,
        ["gradcam"] if "gradcam" in names else names[:1],
        format_func=lambda name: f"⚠ {name}" if name in survives else name,
        help="Maps side by side on the same frame; curves on one timeline (each ÷ its largest value). "
        "⚠: the method's maps survive randomising this model's weights (its sanity result).",
        persist_state="page",
    )
    for name in chosen:
        if name in survives:
            st.badge(
                survives[name].text(name, suites.SURVIVES),
                icon=":material/warning:",
                color="orange",
            )
    unavailable = [(s.name, s.unavailable_reason(model)) for s in all_specs if s not in usable]
    if unavailable:
        with st.expander(f"Not available for {model.name} ({len(unavailable)})"):
            for name, reason in unavailable:
                st.markdown(f"- **{name}**: {reason}")
    if not chosen:
        st.info("Pick one or more methods.")
        st.stop()
    specs = [s for s in usable if s.name in chosen]
    target = widgets.target_widget(model, prediction)
    params = {}
    for spec in specs:
        label = f"{spec.name}: settings and references" if spec.params else f"{spec.name}: references"
        with st.expander(label, expanded=len(specs) == 1 and bool(spec.params)):
            widgets.method_help(spec)
            params[spec.name] = widgets.param_widgets(spec, model) if spec.params else {}

with right:
    explanations, failures, waiting, long_keys = {}, [], [], set()
    for spec in specs:  # every explanation is a saved run: served from the store when saved, saved when computed
        try:
            resolved = spec.resolve_params(params[spec.name])
            key = runs.run_key(model, clip, spec.name, target, resolved)
            stored = runs.stored_run(key)
            if spec.name in LONG_METHODS:  # shared with the Temporal page; heavy ones in the background
                long_keys.add(key)
            if stored is not None:
                explanations[spec.name] = stored
                continue
            if spec.name in LONG_METHODS:
                plan = caches.get_plan(model, clip, spec.name, target, resolved, selection.device)
                if plan.seconds > HEAVY_SECONDS or runs.computing(key):
                    waiting.append((spec.name, resolved, key, plan))
                    continue
            explanations[spec.name] = caches.get_explanation(
                model, clip, spec.name, target, params[spec.name], selection.device
            )
            try:
                runs.save_run(model, clip, explanations[spec.name], target, resolved)
            except OSError as exc:  # a full disk or an unwritable store: the map is still shown
                failures.append(f"{spec.name} could not be saved in the run store: {exc}")
        except (MethodError, TargetError, ModelError, ValueError) as exc:
            failures.append(str(exc))
    for message in failures:
        st.error(message, icon=":material/error:")
    quickest_first = sorted(waiting, key=lambda item: item[3].seconds)
    background_panel(model, clip, target, quickest_first, long_keys)
    for expl in explanations.values():
        for note in notes.explanation_notes(expl, clip.padded):
            st.info(note, icon=":material/info:")
    saved = [f"{name}: {text}" for name, e in explanations.items() if (text := runs.saved_caption(e))]
    if saved:
        st.caption("; ".join(saved) + ".")
    if not explanations:
        st.stop()
    first = next(iter(explanations.values()))

    curve_area = st.container()
    shown_for = f"{caches.model_key(model, selection.device)}|{clip.content_hash()}"
    frame = widgets.frame_slider(  # a new clip or model starts where the evidence is
        "frame",
        0,
        frames - 1,
        widgets.peak_frame(first.temporal, clip.padded),
        shown_for,
        help="Scrub through the clip (or click the curve)",
    )
    with curve_area:
        curves = render.timeline_curves(explanations)
        figure = render.importance_figure(
            curves,
            selected=frame,
            padded=clip.padded,
            frame_indices=clip.frame_indices,
            title=f"Frame importance ({first.meta['target_description']})",
        )
        st.plotly_chart(figure, key="importance_curve", on_select=on_curve_select, selection_mode="points")

    style = style_widgets.style_widgets("")
    outline = st.checkbox(
        "Outline shape",
        value=True,
        key="outline",
        help="Draw the outline of the true moving shape",
        disabled="target_masks" not in clip.ground_truth,
        persist_state="page",
    )

    truth = clip.ground_truth.get("target_masks")
    teaching = st.toggle(
        "Teaching",
        key="teaching",
        disabled=truth is None,
        persist_state="page",
        help="On Moving Shapes: the true shape's outline, whether each map's peak is on the shape in each frame "
        "(the pointing game) and each method's sanity result for this model",
    )
    teaching = teaching and truth is not None
    spatial = {name: e for name, e in explanations.items() if e.spatial is not None}
    mask = truth[frame] if truth is not None and (outline or teaching) else None
    hits = (
        {name: teach.pointing(e.spatial, get_method(name).reading, truth) for name, e in spatial.items()}
        if teaching
        else {}
    )
    where = int(clip.frame_indices[frame])
    caption = f"frame {frame} of {frames}" + (f" (video frame {where})" if where >= 0 else " (padding)")
    original = clip.frames[frame]
    shown_original = render.outline(original, mask) if mask is not None else original
    tiles = [(render.beside_colorbars(render.upscale(shown_original, ZOOM)), f"original · {caption}")]
    for name, expl in spatial.items():
        floor, ceiling = display.display_range(expl.spatial, style, clip.padded)
        shown = display.draw(original, expl.spatial[frame], style, float(floor[frame]), float(ceiling[frame]))
        if mask is not None:
            shown = render.outline(shown, mask)
        shown = render.with_colorbar(render.upscale(shown, ZOOM), style, float(floor[frame]), float(ceiling[frame]))
        verdict = ""
        if name in hits and not clip.padded[frame]:
            verdict = " · peak on the shape ✓" if hits[name]["pointing"][frame] else " · peak off the shape ✗"
        tiles.append((shown, f"{name} for {expl.meta['target_description']} · {caption}{verdict}"))
    for row in range(0, len(tiles), PER_ROW):
        columns = st.columns(PER_ROW if len(tiles) > 2 else 2)
        for column, (image, text) in zip(columns, tiles[row : row + PER_ROW], strict=False):
            column.image(image, caption=text, width="stretch", output_format="PNG")

    if teaching:
        lines = [f"- {teach.pointing_summary(name, hits[name], clip.padded)}" for name in spatial]
        lines += [f"- {teach.sanity_summary(name, survival.get(name), suites.SURVIVES)}" for name in explanations]
        if target is not None:
            lines.append("- The pointing game is scored against the moving shape, the one the label is about, "
                         "whatever class or output is explained.")  # fmt: skip
        st.markdown("**Teaching notes** (Moving Shapes' ground truth)\n" + "\n".join(lines))
    for spec in specs:
        if spec.name in explanations:
            widgets.method_card(spec, teach.sanity_summary(spec.name, survival.get(spec.name), suites.SURVIVES))
    for name, expl in explanations.items():
        if expl.spatial is None:  # attention over frames: the colour strip under the frames
            strip = render.attention_strip(clip.frames, expl.temporal, selected=frame, cmap="viridis")
            st.image(
                strip,
                caption=strip_caption(name, expl),
                width="stretch",
                output_format="PNG",
            )

    if spatial:
        names = list(spatial)
        shown_name = (
            st.selectbox("Overlay to download", names, key="download_method", persist_state="page")
            if len(names) > 1
            else names[0]
        )
        if shown_name not in spatial:
            shown_name = names[0]
        expl = spatial[shown_name]
        shown_params = sorted(params[shown_name].items())
        expl_key = f"{caches.model_key(model, selection.device)}|{shown_name}|{target}|{shown_params}"
        d1, d2 = st.columns(2)
        d1.download_button(
            "Download overlay video (mp4)",
            data=partial(  # encoded when clicked, not on every rerun (a style change took 1.8 s)
                caches.overlay_video_bytes,
                clip.content_hash(),
                expl_key,
                "mp4",
                asdict(style),
                clip.frames,
                expl.spatial,
                clip.padded,
            ),
            file_name=f"{model.name}_{shown_name}.mp4",
            mime="video/mp4",
            key="download_mp4",
        )
        d2.download_button(
            "Download overlay GIF",
            data=partial(  # encoded when clicked, not on every rerun (a style change took 1.8 s)
                caches.overlay_video_bytes,
                clip.content_hash(),
                expl_key,
                "gif",
                asdict(style),
                clip.frames,
                expl.spatial,
                clip.padded,
            ),
            file_name=f"{model.name}_{shown_name}.gif",
            mime="image/gif",
            key="download_gif",
        )
    with st.expander("Export: this frame, the curves, a film strip, the runs"):
        e1, e2 = st.columns(2)
        e1.download_button(
            "This frame's pictures (PNG)",
            data=partial(exports.png_bytes, render.side_by_side(*(image for image, _ in tiles))),
            file_name=f"{model.name}_frame{frame}.png",
            mime="image/png",
            key="download_frame",
        )
        e2.download_button(
            "The frame curves (CSV)",
            data=partial(exports.curves_csv, explanations, clip),
            file_name=f"{model.name}_curves.csv",
            mime="text/csv",
            key="download_curves",
        )
        st.markdown("**Film strip** (paper 000, Fig. 1): frames, frame-curve strips, a row of overlays a method")
        f1, f2, f3 = st.columns(3)
        count = f1.number_input("Frames", 2, 16, 8, key="strip_count", persist_state="page")
        pick = f2.radio("Which", ["every", "top"], key="strip_pick", horizontal=True, persist_state="page",
                        help="every: spread evenly; top: the first curve's highest frames")  # fmt: skip
        fmt = f3.radio("Format", list(exports.MIME), key="strip_format", horizontal=True, persist_state="page")
        st.download_button(
            f"Film strip ({fmt.upper()})",
            data=partial(
                exports.strip_bytes,
                clip,
                explanations,
                int(count),
                pick,
                style,
                fmt,
                f"{model.name} on {sidebar.describe_source(clip.source)}: {prediction_text(prediction)}; "
                f"maps for {first.meta['target_description']}",
            ),  # fmt: skip
            file_name=f"{model.name}_strip.{fmt}",
            mime=exports.MIME[fmt],
            key="download_strip",
        )
        if st.toggle("Show the film strip here", key="strip_show", persist_state="page"):
            title = f"{model.name} on {sidebar.describe_source(clip.source)}: {prediction_text(prediction)}"
            preview = exports.strip_bytes(clip, explanations, int(count), pick, style, "png", title, dpi=90)
            st.image(preview, caption="film strip (the download is at 300 dpi)", output_format="PNG")
        saved_keys = {name: e.meta["run"] for name, e in explanations.items() if e.meta.get("run")}
        if saved_keys:
            st.markdown("**Saved runs** (npz, json, overlay mp4, curve csv, film strip png each; all on the Runs page)")
            columns = st.columns(3)
            for i, (name, key) in enumerate(saved_keys.items()):
                columns[i % 3].download_button(
                    f"{name} run (zip)",
                    runs.run_zip(key),
                    file_name=f"{model.name}_{name}_{key[:10]}.zip",
                    mime="application/zip",
                    key=f"download_run_{name}",
                )
    timings = ", ".join(f"{e.seconds:.2f} s ({name})" for name, e in explanations.items())
    st.caption(f"Computed in {timings} on {first.meta['device']}.")

    if model.info.arch in vanishing.PEERS:
        with st.expander("Vanishing saliency: how much gradient reaches each frame", expanded=False):
            st.caption(
                "Mean |gradient of the score| per frame (002). A plain LSTM's gradient fades towards the first "
                "frames; the input-cell attention LSTM was designed to keep them in view."
            )
            peer = vanishing.peer_model(model.name, model.info.arch, user_models.model_names())
            profiles = {model.name: caches.get_profile(model, clip, target, selection.device)}
            if peer is None:
                st.info(f"No {vanishing.PEERS[model.info.arch]} model for this task in the zoo to compare with.")
            else:
                try:
                    other = user_models.get_model(peer, selection.device)
                    other_clip = caches.cached_clip(
                        selection.clip_kind,
                        selection.clip_source,
                        other.input_spec.frames,
                        other.input_spec.height,
                        other.input_spec.width,
                        selection.upload,
                    )
                    profiles[peer] = caches.get_profile(other, other_clip, target, selection.device)
                except (ModelError, VideoError, TargetError) as exc:
                    st.error(str(exc), icon=":material/error:")
            st.plotly_chart(render.profile_figure(profiles, clip.padded), key="vanishing_profile")
            ratios = " · ".join(
                f"{name}: {vanishing.early_late_ratio(p, clip.padded):.2g}" for name, p in profiles.items()
            )
            st.caption(f"First quarter of the frames ÷ last quarter: {ratios}")
