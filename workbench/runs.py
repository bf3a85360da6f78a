"""The Temporal page's long runs: the run store shared by the server's sessions, a run's key and
folder, its saved explanation, and a background job that computes one and saves it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from xai_core.api import explain
from xai_core.explanation import Explanation
from xai_core.jobs import Job
from xai_core.models.base import VideoModel
from xai_core.store import RunStore, default_root, run_key
from xai_core.video import Clip

from .caches import model_key
from .jobs import job_copy, start_job


def run_store() -> RunStore:
    """The run store (``$XAI_RUNS``, else ``runs/``) shared by the sessions of this server."""
    return _store_at(str(default_root()))


@st.cache_resource(show_spinner=False)
def _store_at(root: str) -> RunStore:
    """One store object per folder (a changed $XAI_RUNS is a new store, not the old one's folder)."""
    return RunStore(root)


def temporal_key(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str) -> str:
    """The run store's key of these settings."""
    return run_key(model_key(model, device), clip.content_hash(), method, target, params)


def stored_folder(key: str) -> Path:
    """The folder of the run of this key in the store (there or not)."""
    return run_store().root / key


def stored_run(key: str) -> Explanation | None:
    """The saved run of this key (None: not computed yet)."""
    folder = stored_folder(key)
    return _load_run(str(folder), folder.stat().st_mtime_ns) if folder.is_dir() else None


@st.cache_data(show_spinner=False, max_entries=32)
def _load_run(folder: str, _mtime: int) -> Explanation:
    return Explanation.load(folder)


def start_temporal_run(
    slot: str, model: VideoModel, clip: Clip, method: str, target, params: dict, device: str, key: str
) -> Job:
    """Run ``method`` in the background; when it finishes, save it in the run store under ``key``
    (written whole or not at all: a cancel leaves nothing)."""
    mkey, clip_hash = model_key(model, device), clip.content_hash()
    own = job_copy(model)

    def work(report) -> str:
        expl = explain(own, clip, method, target=target, **params)
        run_store().put(expl, mkey, clip_hash, target, params)
        return key

    return start_job(slot, work, name=f"{method} on {model.name}", key=key)
