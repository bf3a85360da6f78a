"""The app's caches: models as resources (one per name, device and files: a checkpoint
retrained, or a user's code edited, is loaded again); clips, predictions,
explanations, overlay videos, gradient profiles, run plans and deletion curves as data, keyed by
what determines them (the model's key, the clip's content hash, the method, the target and the
parameters).  The ``get_*`` helpers build those keys; arguments named ``_x`` are not hashed."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from xai_core import render
from xai_core.api import explain, frame_probabilities, predict, prepare
from xai_core.display import Style
from xai_core.explanation import Explanation
from xai_core.models.base import VideoModel
from xai_core.models.zoo import checkpoints_dir, load_model
from xai_core.video import Clip, VideoError, encode_video, load_video


def model_key(model: VideoModel, device: str) -> str:
    """What names ``model`` in the data caches: its name and device, and for a user's model its
    load request, for a zoo model its checkpoint files as they are now (``zoo_stamp``)."""
    user = getattr(model, "xai_user_key", None)
    zoo = getattr(model, "xai_zoo_stamp", None)
    return f"{model.name}@{device}" + (f"#{user}" if user else "") + (f"~{zoo}" if zoo else "")


def zoo_stamp(name: str) -> str:
    """The zoo's checkpoint ``name`` as it lies on disk now (folder, sizes and times of its
    weights and card): a model retrained under the same name, or another $XAI_CHECKPOINTS, is
    another model to the caches."""
    folder = checkpoints_dir()
    facts = [str(folder.resolve())]
    for suffix in (".safetensors", ".json"):
        path = folder / f"{name}{suffix}"
        facts.append(f"{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.exists() else "-")
    return hashlib.sha256("|".join(facts).encode()).hexdigest()[:12]


def _target_key(target) -> str | None:
    return None if target is None else str(target)


def zoo_model(name: str, device: str) -> VideoModel:
    """A zoo model by name, on ``device``, as its files are now (cached while they do not change)."""
    return _zoo_model_at(name, device, zoo_stamp(name))


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _zoo_model_at(name: str, device: str, stamp: str) -> VideoModel:
    """A zoo model by name, on ``device`` (``stamp``: ``zoo_stamp``, its files' identity)."""
    model = load_model(name, device=device)
    model.xai_zoo_stamp = stamp
    return model


def user_model(request_json: str, device: str) -> VideoModel:
    """A user's model as its files are now: code on the user's disk may be edited between two
    loads, so its files' identity is part of the key (``user_stamp``)."""
    return cached_user_model(request_json, device, user_stamp(json.loads(request_json)))


def user_stamp(request: dict) -> str:
    """The sizes and times of the files a load request reads: its code (the .py files of the
    file's folder or of the package), a TorchScript file, its weights and labels."""
    from xai_core.models.user_code import package_root, parse_factory

    paths: list[Path] = []
    factory = parse_factory(request["spec"])
    if factory is not None:
        code = factory[0]
        root = package_root(code)
        folder = root if root is not None else (code if code.is_dir() else code.parent)
        paths += sorted(folder.rglob("*.py") if root is not None else folder.glob("*.py"))
    elif Path(request["spec"]).is_file():
        paths.append(Path(request["spec"]))
    paths += [Path(request["kwargs"][k]) for k in ("weights", "labels_file") if request["kwargs"].get(k)]
    facts = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" if p.exists() else f"{p}:-" for p in paths]
    return hashlib.sha256("|".join(facts).encode()).hexdigest()[:12]


@st.cache_resource(show_spinner="Loading your model…", max_entries=8)
def cached_user_model(request_json: str, device: str, stamp: str) -> VideoModel:
    """A user's model (``load_model(spec, **kwargs)``) renamed as they asked; its cache key
    (``xai_user_key``: the request and its files' ``stamp``) keeps its explanations apart from
    another model of the same name and from the same code before an edit."""
    request = json.loads(request_json)
    model = load_model(request["spec"], device=device, **request["kwargs"])
    model.info.name = request["name"]
    model.xai_user_key = hashlib.sha256(f"{request_json}|{stamp}".encode()).hexdigest()[:16]
    return model


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


@st.cache_data(show_spinner=False, max_entries=64)
def cached_prediction(model_key: str, clip_hash: str, _model: VideoModel, _clip: Clip) -> dict:
    """predict(), cached by (model, clip content)."""
    return predict(_model, _clip)


def get_prediction(model: VideoModel, clip: Clip, device: str) -> dict:
    """The model's prediction on the clip (cached)."""
    return cached_prediction(model_key(model, device), clip.content_hash(), model, clip)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_frame_probabilities(model_key: str, clip_hash: str, _model: VideoModel, _clip: Clip):
    return frame_probabilities(_model, _clip)


def get_frame_probabilities(model: VideoModel, clip: Clip, device: str):
    """Each frame's class probabilities [T,K] for a per-frame image classifier, else None (cached)."""
    return cached_frame_probabilities(model_key(model, device), clip.content_hash(), model, clip)


@st.cache_data(show_spinner="Explaining…", max_entries=64)
def cached_explanation(
    model_key: str, clip_hash: str, method: str, target: str | None, params_json: str, _model: VideoModel, _clip: Clip
) -> Explanation:
    """explain(), cached by (model, clip content, method, target, parameters)."""
    return explain(_model, _clip, method, target=target, **json.loads(params_json))


def get_explanation(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str) -> Explanation:
    """``method``'s explanation of ``target`` with ``params`` (cached)."""
    key = model_key(model, device)
    return cached_explanation(
        key, clip.content_hash(), method, _target_key(target), json.dumps(params, sort_keys=True), model, clip
    )


@st.cache_data(show_spinner="Encoding the video…", max_entries=16)
def overlay_video_bytes(
    clip_hash: str,
    expl_key: str,
    fmt: str,
    style: dict,
    _frames: np.ndarray,
    _spatial: np.ndarray,
    _padded: np.ndarray | None = None,
    fps: float = 8.0,
) -> bytes:
    """The overlay of the whole clip (frames [T,H,W,3], map [T,H,W]) as an H.264 mp4 or a GIF, 3x
    enlarged, drawn as on the page (``style``: its ``display.Style`` as a dict) with each
    frame's colour bar."""
    frames = render.styled_overlays(_frames, _spatial, Style(**style), zoom=3, padded=_padded)
    return encode_video(frames, fmt=fmt, fps=fps)


@st.cache_data(show_spinner="Measuring the gradient per frame…", max_entries=32)
def cached_profile(model_key: str, clip_hash: str, target: str | None, _model: VideoModel, _clip: Clip) -> np.ndarray:
    """vanishing.gradient_profile(), cached by (model, clip content, target)."""
    from xai_core import vanishing

    return vanishing.gradient_profile(_model, _clip, target)


def get_profile(model: VideoModel, clip: Clip, target, device: str) -> np.ndarray:
    """The mean |gradient| reaching each frame [T] (cached)."""
    return cached_profile(model_key(model, device), clip.content_hash(), _target_key(target), model, clip)


@st.cache_data(show_spinner="Timing a sample…", max_entries=64)
def _plan(model_key_: str, clip_hash: str, method: str, target: str | None, params_json: str, _model, _clip):
    from xai_core.methods.machinery.planning import plan

    prepared = prepare(_model, _clip, target)
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(params_json).items()}
    return plan(_model, prepared.x, prepared.target, method, params)


def get_plan(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str):
    """``planning.plan`` for these settings (cached): evaluations and estimated seconds."""
    from xai_core.methods.machinery.registry import get_method

    resolved = get_method(method).resolve_params(params)
    return _plan(
        model_key(model, device), clip.content_hash(), method, _target_key(target), json.dumps(resolved), model, clip
    )


@st.cache_data(show_spinner="Deleting and inserting frames…", max_entries=32)
def _deletion(run: str, target: str | None, baseline: str, _model, _clip, _curve) -> dict:
    from xai_core.evaluate import deletion_insertion

    prepared = prepare(_model, _clip, target)
    kind = baseline if baseline != "previous" else "zero"  # sets of frames need a baseline of their own
    return deletion_insertion(_model, prepared.x, prepared.target, _curve, baseline=kind, padded=_clip.padded)


def get_deletion(model: VideoModel, clip: Clip, target, curve: np.ndarray, baseline: str, run: str) -> dict:
    """Deletion / insertion curves of a run's frame curve [T] (cached by the run)."""
    return _deletion(run, _target_key(target), baseline, model, clip, curve)
