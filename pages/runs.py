"""Runs: every saved explanation (the Explain and Temporal pages', `xai explain`'s and `xai
strip`'s, the API's with ``store=``), filtered and sorted in a table; one opened without
recomputing, or two to four compared on one frame scrubber and one timeline, with the difference
of two maps of the same clip."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from workbench import reopen, runs, sidebar, style_widgets, user_models, widgets
from xai_core import display, render
from xai_core.evaluate.scores import read_map
from xai_core.figures import difference, shared_length
from xai_core.figures.compare import SCALE_PERCENTILE
from xai_core.methods.machinery.registry import MethodError, get_method

ZOOM = 3
MOST = 4  # runs compared at once
OPEN = "runs_open_page"  # the page a run's Open button asked for
PAGE_TITLES = {"pages/explain.py": "Explain", "pages/temporal.py": "Temporal", "pages/motion.py": "Motion"}


def reading_of(method: str) -> str:
    """How a method's maps are read (positive part or magnitude); a method no longer registered: magnitude."""
    try:
        return get_method(method).reading
    except MethodError:
        return "magnitude"


if OPEN in st.session_state:  # a run's Open button set the sidebar and the page up: go there
    st.switch_page(st.session_state.pop(OPEN))
sidebar.page_setup()
st.title("Runs")
store = runs.run_store()
records = store.records()
if not records:
    st.info(
        f"No saved runs in {store.root} yet. Every explanation the Explain and Temporal pages compute is saved "
        "here, and so is every `xai explain`."
    )
    st.stop()

c1, c2 = st.columns(2)
models = c1.multiselect("Models", sorted({r.model for r in records}), key="runs_models", persist_state="page")
methods = c2.multiselect("Methods", sorted({r.method for r in records}), key="runs_methods", persist_state="page")
shown = [r for r in records if (not models or r.model in models) and (not methods or r.method in methods)]
st.dataframe(runs.runs_table(shown), hide_index=True, key="runs_table")  # a column's header sorts by it
st.caption(f"{len(shown)} of {len(records)} saved runs in {store.root}")

evaluations = [r for r in shown if r.kind != "explanation"]
if evaluations:
    with st.expander(f"Evaluations ({len(evaluations)}): suites and model quality, kept as runs"):
        for r in evaluations:
            st.markdown(f"**{r.method}** of **{r.model}** on {r.source} ({r.device}; {r.saved_text()}): {r.prediction}")
            result = runs.document(r.key)
            if result is not None:
                st.download_button("Its result (JSON)", json.dumps(result, indent=1, default=str),
                                   file_name=f"{r.model}_{r.method.replace(' ', '_')}_{r.key[:10]}.json",
                                   mime="application/json", key=f"runs_doc_{r.key}")  # fmt: skip
by_key = {r.key: r for r in shown if r.kind == "explanation"}
chosen = st.multiselect(
    "Open a run, or compare two to four",
    list(by_key),
    format_func=lambda key: runs.describe(by_key[key]),
    max_selections=MOST,
    key="runs_chosen",
    help="The same method on two models, two methods on one model, or one model on two clips of the same length",
)
if not chosen:
    st.info("Choose a run above to open it, or two to four to compare them.")
    st.stop()

opened = [run for run in (runs.open_run(key) for key in chosen) if run is not None]
if len(opened) < len(chosen):
    st.warning("A chosen run was deleted meanwhile: it is left out.")
if not opened:
    st.stop()
labels = [f"#{i + 1} {run.record.model} · {run.record.method}" for i, run in enumerate(opened)]
count = shared_length([run.expl.num_frames for run in opened])
if len({run.expl.num_frames for run in opened}) > 1:
    st.warning(f"The runs' clips differ in length: they are compared over their first {count} frames.")
one_clip = len({run.record.clip_hash for run in opened}) == 1

curves = {
    label: run.expl.temporal[:count] for label, run in zip(labels, opened, strict=True) if run.expl.temporal is not None
}
first = opened[0]
curve_area = st.container()
frame = widgets.frame_slider(
    "runs_frame",
    0,
    count - 1,
    widgets.peak_frame(next(iter(curves.values()), np.zeros(count)), first.padded[:count]),
    "|".join(chosen),
    help="One scrubber for every run shown",
)
if curves:
    curve_area.plotly_chart(
        render.importance_figure(
            curves,
            selected=frame,
            padded=first.padded[:count] if one_clip else None,
            frame_indices=first.frame_indices[:count] if one_clip else None,
            title="Frame importance (each ÷ its largest value)",
        ),
        key="runs_curve",
    )

style = style_widgets.style_widgets("runs_")
tiles = []
if one_clip and first.kept_frames:
    tiles.append((render.beside_colorbars(render.upscale(first.frames[frame], ZOOM)), f"original · frame {frame}"))
for label, run in zip(labels, opened, strict=True):
    spatial = run.expl.spatial
    if spatial is None:
        continue
    floor, ceiling = display.display_range(spatial, style, run.padded)
    image = display.draw(run.frames[frame], spatial[frame], style, float(floor[frame]), float(ceiling[frame]))
    image = render.with_colorbar(render.upscale(image, ZOOM), style, float(floor[frame]), float(ceiling[frame]))
    tiles.append((image, f"{label} · frame {frame}"))
spatial_runs = [run for run in opened if run.expl.spatial is not None]
if len(opened) == 2 and len(spatial_runs) == 2 and one_clip:
    a, b = (read_map(run.expl.spatial, reading_of(run.record.method)) for run in spatial_runs)
    delta = difference(a, b, first.padded)  # each read as its method is read (positive part or magnitude)
    signed = display.Style.default_for("signed", scale=style.scale, low=style.low, high=style.high)
    floor, ceiling = display.display_range(delta, signed, first.padded)
    image = display.draw(first.frames[frame], delta[frame], signed, float(floor[frame]), float(ceiling[frame]))
    image = render.with_colorbar(render.upscale(image, ZOOM), signed, float(floor[frame]), float(ceiling[frame]))
    tiles.append(
        (
            image,
            f"difference #1 − #2 (each read as its method is, ÷ its {SCALE_PERCENTILE}th percentile) · frame {frame}",
        )
    )
per_row = 3
for row in range(0, len(tiles), per_row):
    columns = st.columns(per_row)
    for column, (image, text) in zip(columns, tiles[row : row + per_row], strict=False):
        column.image(image, caption=text, width="stretch", output_format="PNG")
if not first.kept_frames:
    st.caption("#1 kept no frames (a tensor explained from Python): its maps are drawn on grey.")

st.subheader("The runs")
for label, run in zip(labels, opened, strict=True):
    r = run.record
    with st.expander(f"{label}: {r.prediction}", expanded=len(opened) == 1):
        st.markdown(
            f"- **model** {r.model} (weights {r.weights[:12]}), on **{r.device}**\n"
            f"- **clip** {r.source or 'a tensor'} ({r.clip_hash[:12]})\n"
            f"- **method** {r.method}, target {r.target or 'the predicted class / output'}\n"
            f"- **parameters** {', '.join(f'{k}={v}' for k, v in r.params.items()) or 'none'}\n"
            f"- computed in {r.seconds:.2f} s; {r.saved_text()}; versions "
            + ", ".join(f"{k} {v}" for k, v in r.versions.items())
        )
        reason = reopen.why_not(r, user_models.model_names())
        if reason is None:
            st.button(
                f"Open on the {PAGE_TITLES[reopen.page_of(r)]} page",
                key=f"runs_open_{r.key}",
                on_click=lambda r=r: st.session_state.update({OPEN: reopen.open_in_page(r)}),
                help="The sidebar and the page set to this run's model, clip, device, method and settings: the "
                "page is served the saved run without computing",
            )
        else:
            st.caption(f"Not opened in its page: {reason}.")
        st.download_button(
            "Download the run (npz, json, overlay mp4, curve csv, film strip png)",
            runs.run_zip(r.key),
            file_name=f"{r.model}_{r.method}_{r.key[:10]}.zip",
            mime="application/zip",
            key=f"runs_zip_{r.key}",
        )

with st.expander("Delete the chosen runs"):
    sure = st.checkbox(f"Yes, delete these {len(opened)} runs from {store.root}", key="runs_delete_sure")

    def delete() -> None:
        runs.delete_runs(list(chosen))
        st.session_state["runs_chosen"] = []
        st.session_state["runs_delete_sure"] = False

    st.button("Delete", key="runs_delete", disabled=not sure, on_click=delete)
