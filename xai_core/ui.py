"""Streamlit glue: what the app's pages share (the sidebar, cached loaders).

The only module of xai_core that imports Streamlit; the rest of the package never does.
Every page starts with ``page_setup()``, which draws the shared sidebar (model, clip, device):
then it is drawn once per run whether Streamlit runs app.py (st.navigation) or the page file
directly (its legacy pages/ mode, which AppTest uses on reruns).
Models are cached as resources (one per name and device), clips and explanations as data keyed
by what determines them (the clip's content hash, the method, the target and the parameters).
Models the user loads on the Models page live in the session (``user_models()``) and join the
sidebar's list; a training run started there is kept in the session too (``training_run()``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from . import render
from .api import explain, model_output, predict
from .explanation import Explanation, resolve_target
from .models.base import ModelError, VideoModel
from .models.training_runs import RunRequest, TrainingRun
from .models.zoo import checkpoints_dir, load_model, zoo_cards, zoo_names
from .video import Clip, VideoError, encode_video, load_video, sample_clips

DEFAULT_MODEL = "cnn_transformer-sides"
USER_MODELS = "user_models"  # session key: {name: the load request as JSON}
TRAINING_RUN = "training_run"  # session key: the session's TrainingRun
CLIP_KINDS = {"Moving Shapes": "shapes", "Sample clip": "sample", "Upload": "upload"}
UPLOAD_TYPES = ["mp4", "avi", "mov", "mkv", "webm", "gif", "npy", "npz"]


@dataclass(frozen=True)
class Selection:
    """What the sidebar picked: a model, a clip source and a device."""

    model: str
    clip_kind: str  # "shapes" | "sample" | "upload"
    clip_source: str  # "shapes:SEED?..." | a sample path | an uploaded file's name
    device: str = "cpu"
    upload: bytes | None = None

    @property
    def clip_label(self) -> str:
        return Path(self.clip_source).name if self.clip_kind != "shapes" else self.clip_source


def peak_frame(temporal: np.ndarray, padded: np.ndarray | None = None) -> int:
    """The frame a page shows first: the one with the most evidence on the importance curve
    (temporal [T]), padding frames excluded; the first frame when the curve is flat."""
    scores = np.asarray(temporal, dtype=np.float64).copy()
    if padded is not None and len(padded) == len(scores) and not np.all(padded):
        scores[np.asarray(padded, bool)] = -np.inf
    return int(np.argmax(scores)) if np.isfinite(scores).any() else 0


def frame_slider(key: str, first: int, last: int, start: int, shown_for: str, help: str) -> int:
    """The page's Frame scrubber over [first, last].  It starts at ``start`` (where the evidence
    is) the first time, and again whenever the model or clip it was showing (``shown_for``)
    changes; a value left outside the range (a shorter clip) is moved into it."""
    start = min(max(start, first), last)
    initial = {}
    if key not in st.session_state:  # the first run, or Streamlit dropped the scrubber (an error page)
        initial = {"value": start}
    elif st.session_state.get(f"{key}_shown_for") != shown_for:
        st.session_state[key] = start
    elif not first <= st.session_state[key] <= last:
        st.session_state[key] = min(max(st.session_state[key], first), last)
    st.session_state[f"{key}_shown_for"] = shown_for
    return st.slider("Frame", first, last, key=key, help=help, persist_state="page", **initial)


def describe_source(source: str) -> str:
    """'shapes:7?noise=8&distractors=2&...' -> 'Moving Shapes #7 (noise 8, 2 distractors)'; files keep their name."""
    if not source.startswith("shapes:"):
        return source
    from .data.moving_shapes import parse_source

    seed, options = parse_source(source)
    parts = [f"noise {options['noise']:g}" if options.get("noise") else "no noise"]
    count = options.get("distractors", 0)
    if count:
        parts.append(f"{count} {'white ' if options.get('white_distractors') else ''}distractor{'s' * (count > 1)}")
    if options.get("pause"):
        parts.append("a pause")
    return f"Moving Shapes #{seed} ({', '.join(parts)})"


def leave_file_navigation() -> None:
    """Until some session of the server has run app.py's ``st.navigation``, Streamlit serves a
    page file opened by its URL (``/models``) on its own, in its older multipage mode, with a
    menu of file names ("app", "explain", "models").  Leave that mode and rerun: the rerun goes
    through app.py, whose navigation finds the same page by its URL.  (``PagesManager``'s flag
    is internal to Streamlit; without it, nothing is done.)"""
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_setup() -> Selection | None:
    """Page config and the shared sidebar; returns what the sidebar picked (None: nothing yet)."""
    leave_file_navigation()
    st.set_page_config(page_title="Video XAI workbench", page_icon=":material/movie:", layout="wide")
    return sidebar()


def _shapes_source() -> str:
    seed = st.number_input(
        "Seed", min_value=0, max_value=2**31 - 1, value=7, step=1, key="shapes_seed", persist_state="session"
    )
    noise = st.slider("Noise (grey levels)", 0, 40, 8, key="shapes_noise", persist_state="session")
    distractors = st.slider("Distractor shapes", 0, 5, 2, key="shapes_distractors", persist_state="session")
    white = st.checkbox("White distractors", key="shapes_white", persist_state="session")
    pause = st.checkbox("Pause in the movement", key="shapes_pause", persist_state="session")
    query = f"noise={noise}&distractors={distractors}&white_distractors={int(white)}&pause={int(pause)}"
    return f"shapes:{int(seed)}?{query}"


def model_names() -> list[str]:
    """The zoo's models, then the ones loaded in this session."""
    zoo = zoo_names()
    return zoo + [name for name in user_models() if name not in zoo]


def sidebar() -> Selection | None:
    """Model, clip (Moving Shapes by seed and options, a bundled sample, an upload) and device."""
    st.sidebar.title("Video XAI")
    names = model_names()
    if not names:
        st.sidebar.error(
            f"No models in {checkpoints_dir()}. Train one with "
            "`python -m xai_core train --arch cnn_transformer --task sides --out checkpoints/cnn_transformer-sides` "
            "(or on the Models page), or load your own there."
        )
        return None
    default = names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0
    chosen = st.session_state.get("model_name")
    if chosen is not None and chosen not in names:  # a model that went away (or a page that set none)
        del st.session_state["model_name"]
    placed = {} if "model_name" in st.session_state else {"index": default}  # the Models page may have set it
    uploaded = user_models()
    with st.sidebar:
        model = st.selectbox(
            "Model",
            names,
            key="model_name",
            format_func=lambda n: f"{n} (yours)" if n in uploaded else n,
            persist_state="session",  # the sidebar is drawn by every page: its choices follow the user
            **placed,
        )
        kind = CLIP_KINDS[st.radio("Clip", list(CLIP_KINDS), key="clip_kind", horizontal=True, persist_state="session")]
        upload = None
        if kind == "shapes":
            source = _shapes_source()
        elif kind == "sample":
            samples = sample_clips()
            name = st.selectbox(
                "Sample clip",
                list(samples),
                key="sample_name",
                persist_state="session",
                help="Real footage bundled with the package (see its README for licences)",
            )
            source = str(samples[name])
        else:
            uploaded = st.file_uploader("Video file", type=UPLOAD_TYPES, key="upload")
            if uploaded is None:
                st.info("Upload a video (mp4, avi, mov, mkv, webm, gif) or a .npy/.npz array [T,H,W,3].")
                return None
            source, upload = uploaded.name, uploaded.getvalue()
        device = st.selectbox(
            "Device",
            ["auto", "cpu", "cuda"],
            key="device",
            help="auto: the GPU when there is one, else the CPU",
            persist_state="session",
        )
        if device == "cuda" and not torch.cuda.is_available():
            st.warning("No CUDA device on this machine: running on the CPU.")
            device = "cpu"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
    return Selection(model=model, clip_kind=kind, clip_source=source, device=device, upload=upload)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def cached_model(name: str, device: str) -> VideoModel:
    return load_model(name, device=device)


@st.cache_data(show_spinner="Reading the video…", max_entries=32)
def cached_clip(kind: str, source: str, frames: int, height: int, width: int, upload: bytes | None = None) -> Clip:
    """The clip sampled to the model's input; uploads are decoded from a temporary file."""
    size = (height, width)
    if kind != "upload":
        return load_video(source, frames=frames, size=size)
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(source).name) or "upload"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(upload or b"")
        try:
            clip = load_video(path, frames=frames, size=size)
        except VideoError as exc:  # name the user's file, not the temporary copy
            raise VideoError(str(exc).replace(str(path), Path(source).name)) from None
    clip.source = Path(source).name
    return clip


def user_models() -> dict[str, str]:
    """The models loaded in this session: name -> load request (JSON of spec, keyword arguments, name)."""
    return st.session_state.setdefault(USER_MODELS, {})


def session_folder() -> Path:
    """A temporary folder of this session (uploaded model files, training logs)."""
    if "session_folder" not in st.session_state:
        st.session_state["session_folder"] = tempfile.mkdtemp(prefix="xai-session-")
    return Path(st.session_state["session_folder"])


@st.cache_resource(show_spinner="Loading your model…", max_entries=8)
def cached_user_model(request_json: str, device: str) -> VideoModel:
    """A user's model (``load_model(spec, **kwargs)``) renamed as they asked; its cache key
    (``xai_user_key``) keeps its explanations apart from another model of the same name."""
    request = json.loads(request_json)
    model = load_model(request["spec"], device=device, **request["kwargs"])
    model.info.name = request["name"]
    model.xai_user_key = hashlib.sha256(request_json.encode()).hexdigest()[:16]
    return model


def unique_model_name(name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when the zoo or this session has it already."""
    taken = set(model_names())
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name}-{i}", i + 1
    return candidate


def add_user_model(spec: str, kwargs: dict, name: str) -> VideoModel:
    """Load the user's model (on the CPU, which checks it) and add it to this session's models
    under a unique name.  Raises ModelError (or the error of the user's own code)."""
    name = unique_model_name(name)
    request_json = json.dumps({"spec": spec, "kwargs": kwargs, "name": name}, sort_keys=True)
    model = cached_user_model(request_json, "cpu")
    user_models()[name] = request_json
    return model


def get_model(name: str, device: str) -> VideoModel:
    """A zoo model or one of this session's (cached)."""
    request = user_models().get(name)
    if request is not None:
        return cached_user_model(request, device)
    return cached_model(name, device)


def model_cards() -> list[dict]:
    """The zoo's cards, then a card for each model loaded in this session (``make_user_card``)."""
    from .models.external import make_user_card

    cards = zoo_cards()
    for name in user_models():
        try:
            card = make_user_card(get_model(name, "cpu"))
        except ModelError as exc:
            card = {"name": name, "arch": "?", "task": "?", "description": f"cannot be loaded: {exc}"}
        weights = card.get("weights") or {}
        card.update(name=name, uploaded=True, file_bytes=weights.get("bytes"))
        cards.append(card)
    return cards


def model_capabilities(name: str) -> list[str] | str:
    """The capabilities of a model as loaded (cached), or why it cannot be loaded."""
    try:
        return sorted(get_model(name, "cpu").capabilities)
    except ModelError as exc:
        return f"cannot be loaded: {exc}"


def training_run() -> TrainingRun | None:
    """This session's training run (running or finished), if any."""
    return st.session_state.get(TRAINING_RUN)


def start_training(request: RunRequest) -> TrainingRun:
    """Start ``request`` in the background, into the zoo's folder; one run a session (raises
    ValueError for a second one while the first runs, or for a name in use)."""
    current = training_run()
    if current is not None and current.running:
        raise ValueError(f"{current.request.name} is still training: stop it first")
    run = TrainingRun.start(request, checkpoints_dir(), session_folder() / "runs" / request.name)
    st.session_state[TRAINING_RUN] = run
    return run


def model_key(model: VideoModel, device: str) -> str:
    """What names ``model`` in the data caches: its name and device, and for a user's model its load request."""
    user = getattr(model, "xai_user_key", None)
    return f"{model.name}@{device}" + (f"#{user}" if user else "")


def model_and_clip(selection: Selection) -> tuple[VideoModel, Clip]:
    """Load (cached) the selected model and the selected clip sampled for it.  Raises the
    package's own errors (ModelError, VideoError) with messages meant for the user."""
    model = get_model(selection.model, selection.device)
    spec = model.input_spec
    clip = cached_clip(
        selection.clip_kind, selection.clip_source, spec.frames, spec.height, spec.width, selection.upload
    )
    return model, clip


def model_and_clip_or_stop(selection: Selection | None) -> tuple[VideoModel, Clip]:
    """``model_and_clip`` for a page: with nothing selected, or a model or clip that cannot be
    loaded, the page says so in one line and stops there (the sidebar stays usable)."""
    if selection is None:
        st.info("Pick a model and a clip in the sidebar.")
        st.stop()
    try:
        return model_and_clip(selection)
    except (ModelError, VideoError) as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def job_progress(job, status, cancel_key: str, detail: str = "") -> bool:
    """While ``job`` runs (``status``: its ``job.status()``): its progress bar (done of total,
    time left, ``detail``) and a Cancel button; returns whether it is still running."""
    if status.finished:
        return False
    left = f", about {status.seconds_left:.0f} s left" if status.seconds_left is not None else ""
    st.progress(status.fraction, text=f"{job.name}: {status.done:,} of {status.total:,}{left}{detail}")
    st.button("Cancel", key=cancel_key, on_click=job.cancel, icon=":material/cancel:")
    return True


@st.cache_data(show_spinner=False, max_entries=64)
def cached_prediction(model_key: str, clip_hash: str, _model: VideoModel, _clip: Clip) -> dict:
    return predict(_model, _clip)


@st.cache_data(show_spinner="Explaining…", max_entries=64)
def cached_explanation(
    model_key: str, clip_hash: str, method: str, target: str | None, params_json: str, _model: VideoModel, _clip: Clip
) -> Explanation:
    """explain(), cached by (model, clip content, method, target, parameters)."""
    return explain(_model, _clip, method, target=target, **json.loads(params_json))


def get_explanation(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str) -> Explanation:
    key = model_key(model, device)
    target_key = None if target is None else str(target)
    return cached_explanation(
        key, clip.content_hash(), method, target_key, json.dumps(params, sort_keys=True), model, clip
    )


def get_prediction(model: VideoModel, clip: Clip, device: str) -> dict:
    return cached_prediction(model_key(model, device), clip.content_hash(), model, clip)


@st.cache_data(show_spinner="Encoding the video…", max_entries=16)
def overlay_video_bytes(
    clip_hash: str,
    expl_key: str,
    fmt: str,
    opacity: float,
    cmap: str,
    mode: str,
    _frames: np.ndarray,
    _spatial: np.ndarray,
    fps: float = 8.0,
) -> bytes:
    """The overlay of the whole clip as an H.264 mp4 or a GIF, 3x enlarged."""
    frames = render.overlay_clip(_frames, _spatial, opacity=opacity, cmap=cmap, mode=mode)
    frames = np.stack([render.upscale(f, 3) for f in frames])
    return encode_video(frames, fmt=fmt, fps=fps)


@st.cache_data(show_spinner="Measuring the gradient per frame…", max_entries=32)
def cached_profile(model_key: str, clip_hash: str, target: str | None, _model: VideoModel, _clip: Clip) -> np.ndarray:
    """vanishing.gradient_profile(), cached by (model, clip content, target)."""
    from . import vanishing

    return vanishing.gradient_profile(_model, _clip, target)


def get_profile(model: VideoModel, clip: Clip, target, device: str) -> np.ndarray:
    target_key = None if target is None else str(target)
    return cached_profile(model_key(model, device), clip.content_hash(), target_key, model, clip)


JOBS = "jobs"  # session key: {slot: Job}
RESULTS = "results"  # session key: {slot: {run key: result}}, what finished jobs computed


def job(slot: str):
    """This session's background job in ``slot`` ("evaluate", "temporal", ...), if any."""
    return st.session_state.setdefault(JOBS, {}).get(slot)


def job_copy(model: VideoModel) -> VideoModel:
    """A model of its own for a background job: the pages keep using the cached model meanwhile,
    and a hook one of them attaches (Grad-CAM's) must not fire in the job's passes, nor the
    other way round."""
    try:
        return copy.deepcopy(model)
    except Exception:  # a model that cannot be copied is shared (methods remove their hooks when done)
        return model


def start_job(slot: str, fn, name: str, key: str | None = None):
    """Run ``fn(report)`` in the background as this session's job in ``slot`` (one at a time a
    slot: raises ValueError while the previous one runs); ``key`` names what it computes."""
    from .jobs import Job

    current = job(slot)
    if current is not None and not current.status().finished:
        raise ValueError(f"{current.name} is still running: cancel it first")
    st.session_state[JOBS][slot] = Job(fn, name=name, key=key).start()
    return st.session_state[JOBS][slot]


def results(slot: str) -> dict:
    """The finished results of ``slot`` in this session: {run key: result} (newest last)."""
    return st.session_state.setdefault(RESULTS, {}).setdefault(slot, {})


@st.cache_data(show_spinner=False, max_entries=64)
def _zoo_survival(name: str, folder: str, stamp: tuple) -> dict[str, tuple[int, float]]:
    """The committed sanity results of zoo model ``name``: method -> (clips, correlation)
    (``stamp``: the files' sizes and times, so that a new file is read again)."""
    from .evaluate.report import stored_entry, weights_sha256
    from .evaluate.suites import survival

    entry = stored_entry(name, weights_sha256(Path(folder) / f"{name}.safetensors"), Path(folder))
    if entry is None:
        return {}
    clips = int(entry["sanity"].get("clips", 0))  # a method run on fewer clips (TSR, --slow-n) says how many
    return {row["method"]: (int(row.get("spearman_all_n", clips)), survival(row)) for row in entry["sanity"]["rows"]}


def sanity_survival(model: VideoModel, device: str) -> dict[str, float]:
    """method -> the largest Spearman correlation between its maps on ``model`` and on a randomised
    copy, where a sanity result exists: the zoo's committed evaluation (for exactly these weights)
    and this session's Evaluate runs on the same model; the result over more clips wins (the
    newer one between equals)."""
    from .evaluate.report import RESULTS_FILE
    from .evaluate.suites import survival

    found: dict[str, tuple[int, float]] = {}  # method -> (clips, correlation)
    if getattr(model, "xai_user_key", None) is None and model.name in zoo_names():
        folder = checkpoints_dir()
        files = [folder / f"{model.name}.safetensors", folder / RESULTS_FILE]
        stamp = tuple((f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None for f in files)
        found |= _zoo_survival(model.name, str(folder), stamp)
    key = model_key(model, device)
    for run_key, result in results("evaluate").items():
        if not result.get("randomised") or json.loads(run_key)[0] != key:
            continue
        for row in result["rows"]:
            clips, value = int(result.get("clips", 0)), survival(row)
            if np.isfinite(value) and clips >= found.get(row["method"], (0, 0.0))[0]:
                found[row["method"]] = (clips, value)
    return {method: value for method, (_, value) in found.items() if np.isfinite(value)}


# ---------------------------------------------------------------------------- widgets shared by pages
def target_widget(model: VideoModel, prediction: dict):
    """The target chosen by the user: None (predicted / output), a class index, or 'ref=VALUE'."""
    if model.task == "classification":
        # -1 stands for the predicted class (a None option would read as "nothing chosen" in the browser)
        options = [-1, *range(len(model.labels))]

        def name(option):
            if option == -1:
                return f"predicted class ({prediction['label']})"
            return f"{option}: {model.labels[option]}"

        chosen = st.selectbox(
            "Explain the class", options, format_func=name, key=f"target_{model.name}", persist_state="page"
        )
        return None if chosen == -1 else chosen
    kind = st.radio(
        "Explain",
        ["the output", "the error against a reference value"],
        key=f"regression_{model.name}",
        persist_state="page",
    )
    if kind == "the output":
        return None
    value = st.number_input(
        "Reference value", value=float(round(prediction["value"])), key=f"reference_{model.name}", persist_state="page"
    )
    return f"ref={value}"


def param_widgets(spec, model: VideoModel, skip: tuple[str, ...] = ()) -> dict:
    """One widget per declared parameter of the method (those of the CAM layer first)."""
    params = {}
    for p in spec.params:
        if p.name in skip:
            continue
        key = f"param_{spec.name}_{p.name}_{model.name}"
        if p.kind == "layer":
            layers = list(model.conv_layers())
            default = model.cam_layer_name
            ordered = [default] + [name for name in layers if name != default] if default else layers
            chosen = st.selectbox(
                p.name,
                ordered,
                key=key,
                help=p.help,
                format_func=lambda n, d=default: f"{n} (default)" if n == d else n,
                persist_state="page",
            )
            params[p.name] = None if chosen == default else chosen
        elif p.kind == "choice":
            params[p.name] = st.selectbox(
                p.name,
                list(p.choices),
                index=list(p.choices).index(p.default),
                key=key,
                help=p.help,
                persist_state="page",
            )
        elif p.kind == "bool":
            params[p.name] = st.checkbox(p.name, value=bool(p.default), key=key, help=p.help, persist_state="page")
        elif p.kind == "float" and p.default is None:  # optional: empty means "not set"
            text = st.text_input(p.name, value="", key=key, help=p.help, persist_state="page").strip()
            try:
                params[p.name] = float(text) if text else None
            except ValueError:
                st.error(f"{p.name} must be a number (or empty), not {text!r}", icon=":material/error:")
                params[p.name] = None
        elif p.kind in ("int", "float"):
            cast = int if p.kind == "int" else float
            params[p.name] = st.number_input(
                p.name,
                value=cast(p.default),
                min_value=None if p.minimum is None else cast(p.minimum),
                max_value=None if p.maximum is None else cast(p.maximum),
                key=key,
                help=p.help,
                persist_state="page",
            )
        elif p.kind == "ints":
            columns = st.columns(p.size or len(p.default))
            values = []
            for i, (column, v) in enumerate(zip(columns, p.default, strict=True)):
                values.append(
                    column.number_input(
                        f"{p.name} [{i}]", value=int(v), min_value=int(p.minimum or 0), key=f"{key}_{i}", help=p.help,
                        persist_state="page",
                    )
                )  # fmt: skip
            params[p.name] = tuple(int(v) for v in values)
        else:
            params[p.name] = (
                st.text_input(p.name, value=p.default or "", key=key, help=p.help, persist_state="page") or None
            )
    return params


# ---------------------------------------------------------------------------- long runs (Temporal page)
@st.cache_resource(show_spinner=False)
def run_store():
    """The run store (``$XAI_RUNS``, else ``runs/``) shared by the sessions of this server."""
    from .store import RunStore

    return RunStore()


def temporal_key(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str) -> str:
    from .store import run_key

    return run_key(model_key(model, device), clip.content_hash(), method, target, params)


def stored_run(key: str) -> Explanation | None:
    """The saved run of this key (None: not computed yet)."""
    folder = stored_folder(key)
    return _load_run(str(folder), folder.stat().st_mtime_ns) if folder.is_dir() else None


def stored_folder(key: str) -> Path:
    return run_store().root / key


@st.cache_data(show_spinner=False, max_entries=32)
def _load_run(folder: str, _mtime: int) -> Explanation:
    return Explanation.load(folder)


def start_temporal_run(
    slot: str, model: VideoModel, clip: Clip, method: str, target, params: dict, device: str, key: str
):
    """Run ``method`` in the background; when it finishes, save it in the run store under ``key``
    (written whole or not at all: a cancel leaves nothing)."""
    mkey, clip_hash = model_key(model, device), clip.content_hash()
    own = job_copy(model)

    def work(report):
        expl = explain(own, clip, method, target=target, **params)
        run_store().put(expl, mkey, clip_hash, target, params)
        return key

    return start_job(slot, work, name=f"{method} on {model.name}", key=key)


@st.cache_data(show_spinner="Timing a sample…", max_entries=64)
def _plan(model_key_: str, clip_hash: str, method: str, target: str | None, params_json: str, _model, _clip):
    from .methods.planning import plan

    x = _model.preprocess(_clip)
    resolved = resolve_target(_model.task, _model.labels, target, model_output(_model, x))
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(params_json).items()}
    return plan(_model, x, resolved, method, params)


def get_plan(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str):
    """``planning.plan`` for these settings (cached): evaluations and estimated seconds."""
    from .methods.registry import get_method

    resolved = get_method(method).resolve_params(params)
    target_key = None if target is None else str(target)
    return _plan(model_key(model, device), clip.content_hash(), method, target_key, json.dumps(resolved), model, clip)


@st.cache_data(show_spinner="Deleting and inserting frames…", max_entries=32)
def _deletion(run: str, target: str | None, baseline: str, _model, _clip, _curve) -> dict:
    from .evaluate import deletion_insertion

    x = _model.preprocess(_clip)
    resolved = resolve_target(_model.task, _model.labels, target, model_output(_model, x))
    kind = baseline if baseline != "previous" else "zero"  # sets of frames need a baseline of their own
    return deletion_insertion(_model, x, resolved, _curve, baseline=kind, padded=_clip.padded)


def get_deletion(model: VideoModel, clip: Clip, target, curve: np.ndarray, baseline: str, run: str) -> dict:
    """Deletion / insertion curves of a run's frame curve (cached by the run)."""
    return _deletion(run, None if target is None else str(target), baseline, model, clip, curve)
