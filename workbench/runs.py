"""Long runs (the Temporal page's, and the Explain page's heavy methods): the run store shared by
the server's sessions, a run's key and folder, its saved explanation, and a background job that
computes runs and saves them."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from xai_core.api import explain
from xai_core.explanation import Explanation, TargetError
from xai_core.jobs import Job
from xai_core.methods.machinery.registry import MethodError
from xai_core.models.base import ModelError, VideoModel
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


def start_runs(
    slot: str, model: VideoModel, clip: Clip, target, device: str, wanted: list[tuple[str, dict, str]], name: str
) -> Job:
    """Compute each (method, resolved params, run key) of ``wanted`` in turn in the background and
    save each in the run store as it finishes (whole or not at all: a cancel leaves the runs
    already saved and nothing of the current one).  A method that raises is kept with its message
    in the job's result ({"saved": [key, ...], "failed": [(method, message), ...]}) and the rest go
    on; ``job.step`` says which of them is running."""
    mkey, clip_hash = model_key(model, device), clip.content_hash()
    own = job_copy(model)
    step = {"text": "", "saved": 0}

    def work(report) -> dict:
        saved, failed = [], []
        for i, (method, params, key) in enumerate(wanted):
            step["text"] = f"{method} ({i + 1} of {len(wanted)})" if len(wanted) > 1 else ""
            try:
                expl = explain(own, clip, method, target=target, **params)
            except (MethodError, TargetError, ModelError, ValueError) as exc:
                failed.append((method, str(exc)))
                continue
            run_store().put(expl, mkey, clip_hash, target, params)
            saved.append(key)
            step["saved"] = len(saved)
        return {"saved": saved, "failed": failed}

    keys = "|".join(key for _, _, key in wanted)
    job = start_job(slot, work, name=name, key=keys)
    job.step = step
    return job


def start_temporal_run(
    slot: str, model: VideoModel, clip: Clip, method: str, target, params: dict, device: str, key: str
) -> Job:
    """Run ``method`` in the background; when it finishes, save it in the run store under ``key``."""
    return start_runs(slot, model, clip, target, device, [(method, params, key)], f"{method} on {model.name}")
