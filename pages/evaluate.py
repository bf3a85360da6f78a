"""Evaluate page: score methods against Moving Shapes' ground truth (pointing game and ranks,
randomisation sanity checks, the pause frames' rank in time) with the sidebar's model, in the
background, with progress and a cancel button."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from workbench import batch_view, caches, jobs, runs, sidebar, user_models
from xai_core import render
from xai_core.evaluate import suites
from xai_core.evaluate.saved import clips_text, save_evaluation, saved_evaluation, suite_settings
from xai_core.methods.machinery.registry import MethodError
from xai_core.models.base import ModelError

POLL_SECONDS = 1.0
SLOT = "evaluate"
SUITE_HELP = {
    "localization": "where each frame's map peaks and how high the moving shape ranks (held-out clips)",
    "sanity": "how much each map changes when the output layer, or every weight, is randomised",
    "temporal": "how high each frame curve ranks the frames where the shape pauses",
}

selection = sidebar.page_setup()
st.title("Evaluate")
st.caption(
    "Scores the explanation methods against the ground truth of Moving Shapes clips made for the model "
    "(the sidebar's clip is not used). Also: `python -m xai_core evaluate --suite SUITE --model M --n N --out DIR`."
)
batch_view.batch_panel()
if selection is None:
    st.info("Pick a model in the sidebar.")
    st.stop()
try:
    model = user_models.get_model(selection.model, selection.device)
except ModelError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

task = suites.shapes_task(model)
if task is None:
    st.info(f"{model.name} was not trained on a Moving Shapes task: its predicted class is explained on each clip.")

c1, c2 = st.columns([1, 2])
suite = c1.radio(
    "Suite", list(suites.SUITES), key="eval_suite", persist_state="page", captions=list(SUITE_HELP.values())
)
try:
    usable = [s.name for s in suites.suite_methods(model, suite, None)]
except MethodError as exc:
    usable = []
    st.error(str(exc), icon=":material/error:")
if not usable:
    st.warning(f"{model.name} supports no method the {suite} suite scores.")
    st.stop()
methods = c2.multiselect(
    "Methods", usable, default=[m for m in ("gradcam", "saliency") if m in usable] or usable[:1],
    key=f"eval_methods_{suite}_{model.name}", persist_state="page",
)  # fmt: skip
d1, d2, d3, d4 = c2.columns(4)
n = d1.number_input("Clips", 1, 200, 5, key="eval_n", persist_state="page")
seed = d2.number_input("First seed", 0, 2**31 - 1, suites.FIRST_SEED, key="eval_seed", persist_state="page")
noise = d3.number_input("Noise", 0.0, 40.0, 8.0, key="eval_noise", persist_state="page")
distractors = d4.number_input("Distractors", 0, 5, 2, key="eval_distractors", persist_state="page")
randomised = suite == "sanity" or (
    suite == "localization"
    and c2.checkbox(
        "Beside each method, the same model with every weight randomised",
        value=True,
        key="eval_randomised",
        persist_state="page",
        help="A map that barely changes when the weights are randomised does not explain the model "
        "(Adebayo et al. 2018); methods whose maps survive it are marked.",
    )
)
variants = {"sanity": 3, "localization": 2 if randomised else 1}.get(suite, 1)
count = len(methods) * int(n) * variants
models_text = {
    3: " x 3 models: trained, output layer randomised, all weights randomised",
    2: " x 2 models: trained, randomised",
}
c2.caption(f"{count} explanations ({len(methods)} methods x {int(n)} clips{models_text.get(variants, '')})")
run_key = json.dumps(
    [caches.model_key(model, selection.device), suite, methods, int(n), int(seed), noise, distractors, bool(randomised)]
)


settings = suite_settings(suite, methods, int(n), int(seed), float(noise), int(distractors), bool(randomised))
what = f"{suite} suite"


def keep(result: dict) -> None:
    """Save a finished suite in the run store (a store that cannot be written loses only that)."""
    try:
        summary = suites.to_markdown(result).splitlines()[0].lstrip("# ")
        save_evaluation(runs.run_store(), model, what, settings, result, float(result.get("seconds", 0.0)),
                        summary, clips_text(int(n), int(seed)))  # fmt: skip
    except OSError as exc:
        st.session_state["eval_error"] = f"the result could not be saved in the run store: {exc}"


def start() -> None:
    st.session_state.pop("eval_error", None)

    own = jobs.job_copy(model)

    def work(report):
        return suites.run_suite(
            suite, own, methods, n=int(n), seed=int(seed), noise=float(noise), distractors=int(distractors),
            progress=report, randomised=bool(randomised),
        )  # fmt: skip

    try:
        jobs.start_job(SLOT, work, name=f"{suite} suite on {model.name}", key=run_key)
    except ValueError as exc:
        st.session_state["eval_error"] = str(exc)


def show(result: dict, key: str) -> None:
    st.markdown(f"**{result['suite']} suite, {result['model']}** (on {result.get('device', model.device)})")
    st.caption(suites.to_markdown(result).splitlines()[0])
    if suites.pointing_text(result):
        st.caption(suites.pointing_text(result))
    for row in result["rows"]:
        warning = suites.survival_warning(row)
        if warning:
            st.warning(warning + ".", icon=":material/warning:")
    st.dataframe(pd.DataFrame(suites.table_rows(result)).set_index("method"), width="stretch")
    if "masked_accuracy" in result:
        masked = result["masked_accuracy"]
        figure = render.importance_figure(
            {"accuracy with the frame masked": masked["masked"]}, normalise_curves=False,
            title=f"Accuracy over the clips with one frame masked (unmasked: {masked['accuracy']:.0%})",
        )  # fmt: skip
        st.plotly_chart(figure, key=f"masked_{hash(key)}")
    st.download_button(
        "Download (JSON)", json.dumps(suites.jsonable(result), indent=2),
        file_name=f"{result['suite']}_{result['model']}.json", mime="application/json", key=f"download_{hash(key)}",
    )  # fmt: skip


def job_panel() -> None:
    job = jobs.job(SLOT)
    status = job.status()
    if jobs.job_progress(job, status, "eval_cancel", f" · {status.what}"):
        return
    if status.state == "done" and job.key not in jobs.results(SLOT):
        jobs.results(SLOT)[job.key] = job.result
        if job.key == run_key:
            keep(job.result)
        st.rerun()  # the page shows it with the others, without polling
    if status.state == "failed":
        st.error(f"{job.name} failed: {job.error}", icon=":material/error:")
    elif status.state == "cancelled":
        st.warning(f"{job.name} was cancelled after {status.done} of {status.total}; nothing was kept.")


running = jobs.job(SLOT) is not None and not jobs.job(SLOT).status().finished
c2.button("Run", key="eval_run", on_click=start, type="primary", disabled=running or not methods)
if st.session_state.get("eval_error"):
    st.error(st.session_state["eval_error"], icon=":material/error:")
if jobs.job(SLOT) is not None:
    st.fragment(job_panel, run_every=POLL_SECONDS if running else None)()
done = jobs.results(SLOT)
saved = saved_evaluation(runs.run_store(), model, what, settings) if run_key not in done else None
if run_key in done:
    show(done[run_key], run_key)
elif saved is not None:
    record, result = saved
    st.caption(f"From saved {record.saved_text()} ({record.seconds:.1f} s on {record.device}); Run computes it again.")
    show(result, run_key)
others = [(key, r) for key, r in done.items() if key != run_key]
if others:
    with st.expander(f"Earlier results in this session ({len(others)})"):
        for key, result in reversed(others):
            show(result, key)
