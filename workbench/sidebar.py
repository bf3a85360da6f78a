"""The shared sidebar (model, clip, device) and what a page does first.

Every page starts with ``page_setup()``, which draws the sidebar: then it is drawn once per run
whether Streamlit runs app.py (st.navigation) or the page file directly (its legacy pages/ mode,
which AppTest uses on reruns).  ``model_and_clip_or_stop`` loads what the sidebar picked.
"""

from __future__ import annotations

import streamlit as st
import torch

from xai_core.models.base import ModelError, VideoModel
from xai_core.models.zoo import checkpoints_dir
from xai_core.video import Clip, VideoError, sample_clips

from .caches import cached_clip
from .state import UPLOADED_CLIP, Selection, keep_choice, kept_choice
from .user_models import get_model, model_names, user_models

DEFAULT_MODEL = "cnn_transformer-sides"
CLIP_KINDS = {"Moving Shapes": "shapes", "Sample clip": "sample", "Upload": "upload"}
UPLOAD_TYPES = ["mp4", "avi", "mov", "mkv", "webm", "gif", "npy", "npz"]


def describe_source(source: str) -> str:
    """'shapes:7?noise=8&distractors=2&...' -> 'Moving Shapes #7 (noise 8, 2 distractors)'; files keep their name."""
    if not source.startswith("shapes:"):
        return source
    from xai_core.data.moving_shapes import parse_source

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
    """The Moving Shapes widgets (seed, noise, distractors, pause) as a source 'shapes:SEED?...'."""

    def initial(key: str, value) -> dict:  # a value set in the session (the Runs page's Open) is not overridden
        return {} if key in st.session_state else {"value": value}

    seed = st.number_input(
        "Seed", min_value=0, max_value=2**31 - 1, step=1, key="shapes_seed", persist_state="session",
        **initial("shapes_seed", 7),
    )  # fmt: skip
    noise = st.slider("Noise (grey levels)", 0, 40, key="shapes_noise", persist_state="session",
                      **initial("shapes_noise", 8))  # fmt: skip
    distractors = st.slider("Distractor shapes", 0, 5, key="shapes_distractors", persist_state="session",
                            **initial("shapes_distractors", 2))  # fmt: skip
    white = st.checkbox("White distractors", key="shapes_white", persist_state="session")
    pause = st.checkbox("Pause in the movement", key="shapes_pause", persist_state="session")
    query = f"noise={noise}&distractors={distractors}&white_distractors={int(white)}&pause={int(pause)}"
    return f"shapes:{int(seed)}?{query}"


def _forget_removed_upload() -> None:
    """The user removed the file from the uploader (its x): the kept clip goes too."""
    if st.session_state.get("upload") is None:
        st.session_state.pop(UPLOADED_CLIP, None)


def _uploaded_clip() -> tuple[str, bytes] | None:
    """The uploader, and the clip last uploaded in this session: Streamlit forgets an uploader's
    file when the page changes, so the file is kept in the session and stays selected on every
    page and for every model until another is uploaded or the file is removed from the uploader."""
    uploaded = st.file_uploader("Video file", type=UPLOAD_TYPES, key="upload", on_change=_forget_removed_upload)
    if uploaded is not None:
        st.session_state[UPLOADED_CLIP] = (uploaded.name, uploaded.getvalue())
        return st.session_state[UPLOADED_CLIP]
    kept = st.session_state.get(UPLOADED_CLIP)
    if kept is not None:
        name, data = kept
        st.caption(
            f"Using **{name}** ({len(data) / 1e6:.1f} MB), uploaded in this session; upload another to replace it."
        )
    return kept


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
        kinds = list(CLIP_KINDS)
        kind_name = st.radio(
            "Clip",
            kinds,
            index=kinds.index(kept_choice("clip_kind", kinds, kinds[0])),
            key="clip_kind",
            horizontal=True,
            persist_state="session",
        )
        keep_choice("clip_kind", kind_name)
        kind = CLIP_KINDS[kind_name]
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
            kept = _uploaded_clip()
            if kept is None:
                st.info("Upload a video (mp4, avi, mov, mkv, webm, gif) or a .npy/.npz array [T,H,W,3].")
                return None
            source, upload = kept
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
