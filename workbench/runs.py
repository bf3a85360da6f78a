"""Long runs (the Temporal page's, and the Explain page's heavy methods): the run store shared by
the server's sessions, a run's key and folder, its saved explanation, and a background job that
computes runs and saves them."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from xai_core.api import explain
from xai_core.explanation import Explanation
from xai_core.jobs import Cancelled, Job, check
from xai_core.models.base import VideoModel
from xai_core.store import RunStore, default_root, run_key
from xai_core.video import Clip

from .caches import model_key
from .jobs import job_copy, start_job
from .state import JOBS


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
    """The saved run of this key (None: not computed yet, or being replaced at this moment)."""
    folder = stored_folder(key)
    try:
        return _load_run(str(folder), folder.stat().st_mtime_ns) if folder.is_dir() else None
    except (OSError, ValueError, KeyError):  # another session swapping in a new run of this key
        return None


@st.cache_data(show_spinner=False, max_entries=32)
def _load_run(folder: str, _mtime: int) -> Explanation:
    return Explanation.load(folder)


def start_runs(
    slot: str, model: VideoModel, clip: Clip, target, device: str, wanted: list[tuple[str, dict, str]], name: str
) -> Job:
    """Compute each (method, resolved params, run key) of ``wanted`` in turn in the background and
    save each in the run store as it finishes (whole or not at all: a cancel leaves the runs
    already saved and nothing of the current one).  A method that raises is kept with its message
    in the job's result ({"saved": [method, ...], "failed": [(method, message), ...]}) and the rest
    go on; ``job.step`` says which of them is running and which were saved."""
    mkey, clip_hash = model_key(model, device), clip.content_hash()
    own = job_copy(model)
    step = {"text": "", "saved": [], "failed": []}

    def work(report) -> dict:
        for i, (method, params, key) in enumerate(wanted):
            check()  # a cancel between two methods: the next one does not start
            step["text"] = f"{method} ({i + 1} of {len(wanted)})" if len(wanted) > 1 else ""
            try:
                expl = explain(own, clip, method, target=target, **params)
                stored = run_store().put(expl, mkey, clip_hash, target, params)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure of one method is said, and the others go on)
                step["failed"].append((method, f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)))
                continue
            if stored.key != key:
                raise RuntimeError(f"{method} was saved under {stored.key}, not the page's key {key}")
            step["saved"].append(method)
        return {"saved": list(step["saved"]), "failed": list(step["failed"])}

    keys = "|".join(key for _, _, key in wanted)
    return start_job(slot, work, name=name, key=keys, step=step)


def computing(key: str) -> bool:
    """Whether a background job of this session (on any page) is computing the run ``key`` now."""
    return any(
        job is not None and not job.status().finished and key in (job.key or "").split("|")
        for job in st.session_state.get(JOBS, {}).values()
    )


def save_run(model: VideoModel, clip: Clip, expl: Explanation, target, params: dict, device: str) -> None:
    """Keep an explanation computed on the spot in the run store too (the other page finds it)."""
    run_store().put(expl, model_key(model, device), clip.content_hash(), target, params)


def start_temporal_run(
    slot: str, model: VideoModel, clip: Clip, method: str, target, params: dict, device: str, key: str
) -> Job:
    """Run ``method`` in the background; when it finishes, save it in the run store under ``key``."""
    return start_runs(slot, model, clip, target, device, [(method, params, key)], f"{method} on {model.name}")
