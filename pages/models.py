"""Models page: the zoo and each model's card, loading your own model, training a small model in
the background with a live loss curve, and where a model errs (confusion matrix, precision /
recall / F1, ROC; or its regression errors) on held-out or your own labelled clips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from workbench import figures, jobs, runs, sidebar, state, user_models
from workbench.model_upload import (
    LAYOUT_CHOICES,
    SOURCES,
    TORCHVISION_ARCHS,
    UploadedFile,
    default_name,
    load_request,
    safe_filename,
)
from workbench.training import start_training, training_run
from xai_core import zoo_report
from xai_core.evaluate import model_quality
from xai_core.evaluate.saved import save_evaluation, saved_evaluation
from xai_core.models.base import ModelError
from xai_core.models.registry import ARCHITECTURES
from xai_core.models.torchvision_weights import weight_names
from xai_core.models.training import TASK_KIND
from xai_core.models.training_runs import RunRequest, estimate_seconds
from xai_core.models.zoo import resolve_device

POLL_SECONDS = 1.5
TABS = ["Zoo", "Your own model", "Train a model", "Where it errs"]
TASK_HELP = {
    "sides": "how many sides the moving shape has (3 classes)",
    "angle": "the direction of movement in degrees (regression)",
    "pause": "does the shape stop for a while (2 classes)",
}

sidebar.page_setup()
st.title("Models")
run = training_run()
zoo_tab, upload_tab, train_tab, quality_tab = st.tabs(TABS, default=TABS[2] if run is not None else None)


# ---------------------------------------------------------------------------- the zoo
def show_card(card: dict) -> None:
    """One model's card: description, facts, training command, validation curve, held-out figures."""
    st.subheader(card["name"])
    st.markdown(zoo_report.describe_arch(card))
    st.markdown("\n".join(f"- **{label}:** {text}" for label, text in zoo_report.card_facts(card)))
    training = card.get("training") or {}
    if training.get("stopped_early"):
        st.warning(
            f"Training was stopped early, after {training.get('steps_done')} of "
            f"{(training.get('settings') or {}).get('steps', '?')} steps; "
            "the figures below are for the weights it kept. Running its training command again continues it.",
            icon=":material/pause_circle:",
        )
    if training.get("command"):
        st.markdown("**Training command**")
        st.code(training["command"], language="bash")
    figure = figures.curve_figure(card)
    if figure is not None:
        st.plotly_chart(figure, key="card_curve")
    metrics = figures.metrics_frame(card)
    if len(metrics):
        st.markdown("**Held-out clips** (never seen in training)")
        st.dataframe(metrics, hide_index=True)
    elif card.get("uploaded"):
        st.caption("Loaded in this session: no training record or held-out figures.")


with zoo_tab:
    cards = user_models.model_cards()
    if not cards:
        st.info("No models yet: train one (Train a model) or load your own (Your own model).")
    else:
        names = [c["name"] for c in cards]
        table = figures.zoo_table(cards, {name: user_models.model_capabilities(name) for name in names})

        def on_row_select() -> None:
            """Selecting a row of the table shows that model's card."""
            rows = st.session_state["zoo_table"]["selection"]["rows"]
            if rows and rows[0] < len(names):
                st.session_state["card_model"] = names[rows[0]]

        st.dataframe(
            table,
            key="zoo_table",
            on_select=on_row_select,
            selection_mode="single-row",
            hide_index=True,
            width="stretch",
        )
        if st.session_state.get("card_model") not in names:
            st.session_state.pop("card_model", None)
        chosen = st.selectbox("Model card", names, key="card_model", help="Or select a row of the table")
        show_card(cards[names.index(chosen)])


# ---------------------------------------------------------------------------- your own model
def uploaded(key: str) -> UploadedFile | None:
    file = st.session_state.get(key)
    return None if file is None else UploadedFile(file.name, file.getvalue())


def uploaded_all(key: str) -> list[UploadedFile]:
    """The files of an uploader that takes several."""
    files = st.session_state.get(key) or []
    return [UploadedFile(f.name, f.getvalue()) for f in (files if isinstance(files, list) else [files])]


def on_load(kind: str) -> None:
    """Load the model the form describes; on success it joins this session's models (and is selected)."""
    ss = st.session_state
    ss.pop("upload_error", None)
    ss.pop("upload_loaded", None)
    model_files = uploaded_all("up_model_factory") if kind == "factory" else []
    model_file = uploaded("up_model_torchscript") if kind == "torchscript" else None
    try:
        spec, kwargs = load_request(
            kind,
            state.session_folder() / "uploads",
            model_file=model_file,
            model_files=model_files,
            local_path=ss.get("up_local_path", ""),
            weights_path=ss.get("up_local_weights", ""),
            weights_file=uploaded(f"up_weights_{kind}") if kind in ("factory", "torchvision", "frames") else None,
            weights_name=ss.get("up_weights_name", "") if kind in ("torchvision", "frames") else "",
            labels_file=uploaded("up_labels_file"),
            factory=ss.get("up_factory", ""),
            arch=ss.get("up_image_net", "") if kind == "frames" else ss.get("up_arch", ""),
            task=ss["up_task"],
            labels_text=ss["up_labels"],
            frames=ss["up_frames"],
            height=ss["up_height"],
            width=ss["up_width"],
            mean_text=ss["up_mean"],
            std_text=ss["up_std"],
            layout=ss["up_layout"],
            cam_layer=ss["up_cam_layer"],
        )
        typed = ss["up_name"].strip()
        if typed:
            name = safe_filename(typed)
        elif kind == "path":
            name = safe_filename(spec.rsplit(":", 1)[-1] if ":" in spec else Path(spec).stem)
        else:
            first = model_file or (model_files[0] if model_files else None)
            name = default_name(
                kind,
                first,
                ss.get("up_factory", "").rpartition(":")[2],
                ss.get("up_image_net" if kind == "frames" else "up_arch", ""),
            )
        model = user_models.add_user_model(spec, kwargs, name)
    except ModelError as exc:
        ss["upload_error"] = str(exc)
        return
    except Exception as exc:  # the user's own code may raise anything: say it, keep the page
        ss["upload_error"] = f"{type(exc).__name__}: {exc}"
        return
    ss["upload_loaded"] = model.name
    ss["model_name"] = model.name  # selected in the sidebar: the Explain page explains it
    ss["card_model"] = model.name


with upload_tab:
    st.markdown(
        "Load a video model of your own for this session: it joins the sidebar's list and the Explain page "
        "explains it. Files stay in a temporary folder of this session."
    )
    kind = SOURCES[st.radio("What do you have?", list(SOURCES), key="upload_kind", horizontal=True)]
    with st.form("upload_form"):
        if kind == "torchscript":
            st.file_uploader("TorchScript file (torch.jit.save)", key="up_model_torchscript")
        elif kind == "factory":
            st.file_uploader(
                "Python files (the one that builds the model and those it imports), or a zip of them",
                type=["py", "zip"],
                accept_multiple_files=True,
                key="up_model_factory",
            )
            st.text_input(
                "Function or class that builds the model",
                key="up_factory",
                placeholder="build_model",
                help="NAME for a single file; FILE.py:NAME or PACKAGE:NAME (a path inside the upload) for several "
                "files or a zip",
            )
        elif kind == "path":
            st.text_input(
                "The model's code or TorchScript file on this machine",
                key="up_local_path",
                placeholder="/home/me/project/models.py:build_model",
                help="FILE.py:NAME (the modules beside it are importable), PACKAGE_FOLDER:NAME (a folder with "
                "__init__.py; relative imports work), or a TorchScript file; nothing is copied",
            )
            st.text_input("Weights on this machine (optional)", key="up_local_weights", placeholder="/home/me/w.pt")
        elif kind == "frames":
            st.text_input(
                "Image classifier",
                key="up_image_net",
                placeholder="mobilenet_v2",
                help="A torchvision image architecture (mobilenet_v2, resnet50, efficientnet_b0, ...), or FILE.py:NAME "
                "or a TorchScript file on this machine. Each frame is classified; the clip's logits are their mean",
            )
            st.text_input(
                "Weights: torchvision's by name, or a file on this machine (or upload one below)",
                key="up_weights_name",
                placeholder="IMAGENET1K_V1, DEFAULT, or /home/me/net.safetensors",
                help="By name: the labels, frame size and normalisation come from the weights' metadata",
            )
        else:
            arch = st.selectbox("Architecture", list(TORCHVISION_ARCHS), key="up_arch")
            names = ["", *weight_names(arch)]
            st.selectbox(
                "torchvision's weights (labels, size and normalisation from them)",
                names,
                key="up_weights_name",
                format_func=lambda n: n or "none: upload a weights file below",
                help="Read from torchvision's cache ($TORCH_HOME/hub/checkpoints), downloaded there if the network "
                "allows; an uploaded file below is used instead when given",
            )
        if kind not in ("torchscript", "path"):
            st.file_uploader(
                "Weights (.safetensors, or a .pt/.pth state_dict)",
                type=["safetensors", "pt", "pth"],
                key=f"up_weights_{kind}",
            )
        c1, c2, c3 = st.columns(3)
        c1.text_input("Name (optional)", key="up_name", placeholder="from the file")
        c2.radio("Task", ["classification", "regression"], key="up_task", horizontal=True)
        c3.selectbox(
            "Layout", LAYOUT_CHOICES, key="up_layout", help="auto: found by running both layouts on a dummy clip"
        )
        c1, c2 = st.columns(2)
        c1.text_area("Labels (one a line, or separated by commas)", key="up_labels", height=100)
        c2.file_uploader("…or a label file (one name a line)", type=["txt"], key="up_labels_file")
        c1, c2, c3 = st.columns(3)
        c1.number_input("Frames", min_value=1, max_value=512, value=None, step=1, key="up_frames")
        c2.number_input("Height", min_value=8, max_value=1024, value=None, step=1, key="up_height")
        c3.number_input("Width", min_value=8, max_value=1024, value=None, step=1, key="up_width")
        c1, c2, c3 = st.columns(3)
        c1.text_input("Mean (R, G, B)", key="up_mean", placeholder="0.45, 0.45, 0.45")
        c2.text_input("Std (R, G, B)", key="up_std", placeholder="0.225, 0.225, 0.225")
        c3.text_input("Grad-CAM layer (optional)", key="up_cam_layer", placeholder="found automatically")
        st.caption("Empty fields: from a card beside the weights, the architecture's defaults, or found by probing.")
        st.form_submit_button("Load the model", on_click=on_load, args=(kind,), type="primary")
    if st.session_state.get("upload_error"):
        st.error(st.session_state["upload_error"], icon=":material/error:")
    elif st.session_state.get("upload_loaded"):
        st.success(
            f"Loaded **{st.session_state['upload_loaded']}**: it is selected in the sidebar; "
            "open Explain to explain it, or see its card in the Zoo tab.",
            icon=":material/check_circle:",
        )


# ---------------------------------------------------------------------------- training
def run_panel() -> None:
    """The session's run: live loss curve, progress, time left and Stop; its outcome once it ends."""
    run = training_run()
    progress = run.progress()
    request = run.request
    st.markdown(
        f"**{request.name}**: `{request.arch}` on *{request.task}*, {request.steps} steps of {request.batch_size} "
        f"clips ({request.frames or 32} frames of {request.size or 112}x{request.size or 112})"
    )
    if run.running:
        said = {
            "starting": "Starting (loading PyTorch, making the validation clips)…",
            "training": f"Step {progress.step} of {progress.total_steps}",
            "stopping": f"Stopping after step {progress.step}: validating…",
            "testing": "Testing the kept weights on the held-out clips…",
        }.get(progress.phase, progress.phase)
        if run.stop_requested and progress.phase == "training":
            said = f"Stopping after step {progress.step}…"
        st.progress(progress.fraction, text=said)
        st.plotly_chart(figures.training_figure(progress), key="training_curve")
        eta = progress.eta_seconds()
        if eta is not None and not run.stop_requested:
            st.caption(
                f"About {zoo_report.format_duration(eta)} of training left "
                f"({progress.step_seconds:.2f} s a step), then the held-out test."
            )
        st.button(
            "Stop",
            key="stop_training",
            on_click=run.stop,
            disabled=run.stop_requested,
            icon=":material/stop_circle:",
            help="Finish the current step, validate, test on the held-out clips and save the checkpoint",
        )
        return
    if not run.announced:  # refresh the whole page once: the zoo table and the sidebar list the new model
        run.announced = True
        st.rerun()
    failure = run.failure()
    if failure:
        st.error(f"Training {request.name} failed: {failure}", icon=":material/error:")
        return
    result = progress.result or {}
    headline = zoo_report.test_headline(result.get("test"))
    stopped = f", stopped early after {result.get('steps_done')} steps" if result.get("stopped_early") else ""
    st.success(
        f"Saved **{request.name}** ({headline} on held-out clips{stopped}): it is in the zoo table and the sidebar.",
        icon=":material/check_circle:",
    )
    st.plotly_chart(figures.training_figure(progress, whole_run=False), key="training_curve")


def on_start(request: RunRequest) -> None:
    """Start the run (the settings stay for the next one, the name does not)."""
    st.session_state.pop("train_error", None)
    try:
        start_training(request)
    except (ValueError, OSError) as exc:
        st.session_state["train_error"] = str(exc)
        return
    st.session_state["train_name"] = ""


with train_tab:
    if run is not None:
        st.fragment(run_panel, run_every=POLL_SECONDS if run.running else None)()
    if run is None or not run.running:
        st.markdown(
            "Train an architecture on Moving Shapes in the background (`python -m xai_core train`). "
            "Stop ends the run early and still saves the checkpoint, tested on held-out clips."
        )
        c1, c2, c3, c4 = st.columns(4)
        arch = c1.selectbox(
            "Architecture",
            list(ARCHITECTURES),
            index=list(ARCHITECTURES).index("cnn_lstm"),
            key="train_arch",
            persist_state="session",
        )
        task = c2.selectbox(
            "Task",
            list(TASK_KIND),
            key="train_task",
            persist_state="session",
            format_func=lambda t: f"{t}: {TASK_HELP[t]}",
        )
        steps = c3.number_input(
            "Steps", min_value=1, max_value=100_000, value=500, step=50, key="train_steps", persist_state="session"
        )
        batch = c4.number_input(
            "Batch size", min_value=1, max_value=256, value=8, key="train_batch", persist_state="session"
        )
        with st.expander("Clips, validation and held-out tests"):
            c1, c2, c3, c4 = st.columns(4)
            frames = c1.number_input(
                "Frames per clip", min_value=8, max_value=64, value=16, key="train_frames", persist_state="session"
            )
            size = c2.number_input(
                "Frame size (pixels)", min_value=32, max_value=224, value=64, key="train_size", persist_state="session"
            )
            every = c3.number_input(
                "Validate every (steps)", min_value=1, value=100, key="train_validate_every", persist_state="session"
            )
            threads = c4.number_input(
                "CPU threads",
                min_value=1,
                max_value=os.cpu_count() or 1,
                value=1,
                key="train_threads",
                persist_state="session",
            )
            validation = c1.number_input(
                "Validation clips", min_value=1, value=50, key="train_validation_clips", persist_state="session"
            )
            test = c2.number_input(
                "Test clips", min_value=1, value=100, key="train_test_clips", persist_state="session"
            )
            robustness = c3.number_input(
                "Clips per robustness test",
                min_value=1,
                value=50,
                key="train_robustness_clips",
                persist_state="session",
            )
        name = st.text_input(
            "Name", key="train_name", persist_state="session", placeholder=f"{arch}-{task}-{frames}x{size}"
        ).strip()
        request = RunRequest(
            arch=arch,
            task=task,
            name=name or user_models.unique_model_name(f"{arch}-{task}-{frames}x{size}"),
            steps=int(steps),
            batch_size=int(batch),
            frames=int(frames),
            size=int(size),
            validate_every=int(every),
            validation_clips=int(validation),
            test_clips=int(test),
            robustness_clips=int(robustness),
            threads=int(threads),
        )
        estimate = estimate_seconds(cards, request)
        if estimate is not None:
            seconds, source = estimate
            st.caption(
                f"Rough estimate: {zoo_report.format_duration(seconds)} of training, from {source}'s training time "
                "scaled to this clip size and batch (plus the held-out tests)."
            )
        else:
            st.caption(f"No {arch} model has been trained here yet: the time left shows once the first steps have run.")
        st.button("Start training", key="start_training", on_click=on_start, args=(request,), type="primary")
        if st.session_state.get("train_error"):
            st.error(st.session_state["train_error"], icon=":material/error:")


# ---------------------------------------------------------------------------- where a model errs
QUALITY_SLOT = "quality"


def quality_result(result: dict) -> None:
    """A model's quality: the confusion matrix, ROC curves and per-class table, or the regression's
    predicted-vs-true scatter and error histogram; the JSON to download."""
    st.markdown(model_quality.quality_markdown(result).split("\n", 2)[2].split("\n\n")[0])
    st.caption(f"{result['clips']} clips, computed on {result.get('device', '?')}")
    if result["task"] == "classification":
        c1, c2 = st.columns(2)
        c1.plotly_chart(figures.confusion_figure(result), key="quality_confusion")
        if result["roc"]:
            c2.plotly_chart(figures.roc_figure(result), key="quality_roc")
        st.dataframe(figures.per_class_frame(result), hide_index=True)
    else:
        scatter, histogram = figures.regression_figures(result)
        c1, c2 = st.columns(2)
        c1.plotly_chart(scatter, key="quality_scatter")
        c2.plotly_chart(histogram, key="quality_errors")
    st.download_button("Download (JSON)", json.dumps(result, indent=1), file_name=f"{result['model']}_quality.json",
                       mime="application/json", key="quality_download")  # fmt: skip


with quality_tab:
    selection = st.session_state.get("model_name")  # the sidebar's model, first
    names = user_models.model_names()
    if not names:
        st.info("No models yet.")
    else:
        chosen = st.selectbox("Model", names, index=names.index(selection) if selection in names else 0,
                              key="quality_model")  # fmt: skip
        source = st.radio("Clips", ["Held-out Moving Shapes clips", "A folder of my labelled clips"],
                          key="quality_source", horizontal=True)  # fmt: skip
        c1, c2, c3 = st.columns(3)
        folder = ""
        if source.startswith("Held-out"):
            n = c1.number_input("Clips", 4, 2000, 60, key="quality_n")
            noise = c2.slider("Noise (grey levels)", 0, 40, 8, key="quality_noise")
            distractors = c3.slider("Distractor shapes", 0, 5, 2, key="quality_distractors")
        else:
            folder = st.text_input("Folder on this machine (one subfolder per class, named as the model's labels)",
                                   key="quality_folder")  # fmt: skip
        device = str(resolve_device(st.session_state.get("device", "auto")))  # the sidebar's choice
        key = json.dumps([chosen, source, folder] + ([int(n), noise, distractors] if not folder else []))
        settings = (
            {"folder": folder} if folder else {"n": int(n), "noise": float(noise), "distractors": int(distractors)}
        )
        clips_text = f"clips in {folder}" if folder else f"{int(n)} held-out Moving Shapes clips"

        def start_quality() -> None:
            st.session_state.pop("quality_error", None)
            try:
                model = jobs.job_copy(user_models.get_model(chosen, device))
                clips = (
                    model_quality.folder_clips(model, folder)
                    if folder
                    else model_quality.shapes_clips(model, int(n), noise=float(noise), distractors=int(distractors))
                )
                work = lambda report: model_quality.evaluate_model_quality(model, clips, report)  # noqa: E731
                jobs.start_job(QUALITY_SLOT, work, name=f"{chosen} on {len(clips)} clips", key=key)
            except (ValueError, ModelError) as exc:
                st.session_state["quality_error"] = str(exc)

        running = jobs.job(QUALITY_SLOT) is not None and not jobs.job(QUALITY_SLOT).status().finished
        st.button("Evaluate", key="quality_run", on_click=start_quality, type="primary", disabled=running)
        if st.session_state.get("quality_error"):
            st.error(st.session_state["quality_error"], icon=":material/error:")

        def quality_panel() -> None:
            job = jobs.job(QUALITY_SLOT)
            status = job.status()
            if jobs.job_progress(job, status, "quality_cancel", f" · {status.what}"):
                return
            if status.state == "done" and job.key not in jobs.results(QUALITY_SLOT):
                jobs.results(QUALITY_SLOT)[job.key] = job.result
                if job.key == key:  # kept as a run
                    result = job.result
                    headline = model_quality.quality_markdown(result).split("\n")[2]
                    try:
                        save_evaluation(runs.run_store(), user_models.get_model(chosen, device), "model quality",
                                        settings, result, 0.0, headline, clips_text)  # fmt: skip
                    except OSError as exc:
                        st.session_state["quality_error"] = f"the result could not be saved in the run store: {exc}"
                st.rerun()
            if status.state == "failed":
                st.error(f"{job.name} failed: {job.error}", icon=":material/error:")
            elif status.state == "cancelled":
                st.warning(f"{job.name} was cancelled after {status.done} of {status.total} clips.")

        if jobs.job(QUALITY_SLOT) is not None:
            st.fragment(quality_panel, run_every=jobs.POLL_SECONDS if running else None)()
        done = jobs.results(QUALITY_SLOT)
        saved = None
        if key not in done:
            try:
                model_now = user_models.get_model(chosen, device)
                saved = saved_evaluation(runs.run_store(), model_now, "model quality", settings)
            except ModelError:
                saved = None
        if key in done:
            quality_result(done[key])
        elif saved is not None:
            st.caption(f"From saved {saved[0].saved_text()} on {saved[0].device}; Evaluate computes it again.")
            quality_result(saved[1])
        elif done:
            st.caption("Not evaluated with these settings yet in this session.")
