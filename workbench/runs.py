"""Saved runs in the app: the run store shared by the server's sessions, a run's key and folder,
its saved explanation, and a background job that computes runs (the Temporal page's, the Explain
page's heavy methods) and saves them.  Every explanation the pages compute is saved; a request
whose key is saved is served from the store."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from xai_core.api import explain, request_for
from xai_core.explanation import Explanation
from xai_core.figures import export_run
from xai_core.jobs import Cancelled, Job, check
from xai_core.methods.machinery.registry import get_method
from xai_core.models.base import VideoModel
from xai_core.runs import RunRecord, RunStore, default_root
from xai_core.runs.store import served
from xai_core.video import Clip

from . import caches
from .jobs import job_copy, start_job
from .state import JOBS


def run_store() -> RunStore:
    """The run store (``$XAI_RUNS``, else ``runs/``) shared by the sessions of this server."""
    return _store_at(str(default_root()))


@st.cache_resource(show_spinner=False)
def _store_at(root: str) -> RunStore:
    """One store object per folder (a changed $XAI_RUNS is a new store, not the old one's folder)."""
    return RunStore(root)


def run_key(model: VideoModel, clip: Clip, method: str, target, params: dict) -> str:
    """The run store's key of explaining ``clip`` with ``method`` (resolved ``params``) on
    ``model`` as it is now (its weights, input spec and device)."""
    return request_for(model, clip, method, target, **params).key


def stored_folder(key: str) -> Path:
    """The folder of the run of this key in the store (there or not)."""
    return run_store().root / key


def stored_run(key: str) -> Explanation | None:
    """The saved run of this key (None: not computed yet, or being replaced at this moment); its
    ``meta`` says which run it is and when it was saved."""
    try:
        record = run_store().find(key)
        return None if record is None else _load_run(record, record.folder.stat().st_mtime_ns)
    except (OSError, ValueError, KeyError):  # another session swapping in a new run of this key
        return None


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs={RunRecord: lambda r: (r.key, r.created)})
def _load_run(record: RunRecord, _mtime: int) -> Explanation:
    return served(record)


def run_zip(key: str) -> Callable[[], bytes]:
    """What a download button calls on click (no Streamlit context there): the saved run ``key``
    exported as a zip (``xai_core.figures.export_run``: arrays, record, overlay.mp4, curve.csv,
    strip.png)."""
    root = str(run_store().root)

    def make() -> bytes:
        with tempfile.TemporaryDirectory() as scratch:
            return export_run(RunStore(root), key, Path(scratch) / "run.zip").read_bytes()

    return make


def saved_caption(expl: Explanation) -> str | None:
    """'from saved run … saved …' for an explanation served from the store (None for a new one)."""
    if "saved_at" not in expl.meta:
        return None
    record = run_store().find(expl.meta.get("run", ""))
    return None if record is None else f"from saved {record.saved_text()}"


def start_runs(slot: str, model: VideoModel, clip: Clip, target, wanted: list[tuple[str, dict, str]], name: str) -> Job:
    """Compute each (method, resolved params, run key) of ``wanted`` in turn in the background and
    save each in the run store as it finishes (whole or not at all: a cancel leaves the runs
    already saved and nothing of the current one).  A method that raises is kept with its message
    in the job's result ({"saved": [method, ...], "failed": [(method, message), ...]}) and the rest
    go on; ``job.step`` says which of them is running and which were saved."""
    own = job_copy(model)
    step = {"text": "", "saved": [], "failed": []}

    def work(report) -> dict:
        for i, (method, params, key) in enumerate(wanted):
            check()  # a cancel between two methods: the next one does not start
            step["text"] = f"{method} ({i + 1} of {len(wanted)})" if len(wanted) > 1 else ""
            try:
                expl = explain(own, clip, method, target=target, store=run_store(), recompute=True, **params)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure of one method is said, and the others go on)
                step["failed"].append((method, f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)))
                continue
            if expl.meta["run"] != key:
                raise RuntimeError(f"{method} was saved under {expl.meta['run']}, not the page's key {key}")
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


def save_run(model: VideoModel, clip: Clip, expl: Explanation, target, params: dict) -> RunRecord:
    """Keep an explanation computed on the spot in the run store (with the clip's frames), under
    the key of ``model``, ``clip``, its method, ``target`` and resolved ``params``; ``expl.meta["run"]``
    names the run after."""
    wanted = request_for(model, clip, expl.method, target, **params)
    record = run_store().put(expl, wanted, frames=clip.frames, padded=clip.padded)
    expl.meta["run"] = record.key  # the page's copy names its run (its zip can be downloaded at once)
    return record


def start_temporal_run(slot: str, model: VideoModel, clip: Clip, method: str, target, params: dict, key: str) -> Job:
    """Run ``method`` in the background; when it finishes, save it in the run store under ``key``."""
    return start_runs(slot, model, clip, target, [(method, params, key)], f"{method} on {model.name}")


def describe(record: RunRecord) -> str:
    """A run in one line: '3f2a9c01 · cnn_transformer-sides · gradcam · shapes:7 · 12-06 23:41'."""
    source = Path(record.source).name if "/" in record.source else record.source.split("?")[0]
    saved = time.strftime("%m-%d %H:%M", time.localtime(record.created))
    return f"{record.key[:8]} · {record.model} · {record.method} · {source or 'tensor'} · {saved}"


def runs_table(records: list[RunRecord]) -> pd.DataFrame:
    """The saved runs as a table (newest first), one row a run."""
    return pd.DataFrame(
        {
            "saved": [pd.Timestamp(r.created, unit="s").floor("s") for r in records],
            "kind": [r.kind for r in records],
            "model": [r.model for r in records],
            "method": [r.method for r in records],
            "clip": [r.source for r in records],
            "target": [r.target or "predicted" for r in records],
            "prediction": [r.prediction for r in records],
            "seconds": [round(r.seconds, 2) for r in records],
            "device": [r.device for r in records],
            "key": [r.key for r in records],
        }
    )


@dataclass(frozen=True)
class OpenedRun:
    """A saved run as the Runs page shows it: its record, explanation, and the clip's frames uint8
    [T,H,W,3] (grey when the run kept none), padded bool [T] and video frame indices [T]."""

    record: RunRecord
    expl: Explanation
    frames: np.ndarray
    padded: np.ndarray
    frame_indices: np.ndarray
    kept_frames: bool


def open_run(key: str) -> OpenedRun | None:
    """The saved run ``key`` with its clip's frames, or None when it is gone."""
    record = run_store().find(key)
    expl = stored_run(key)
    if record is None or expl is None:
        return None
    kept = _frames_of(str(run_store().root), key, record.created)
    if kept is None:
        count = expl.num_frames
        height, width = expl.spatial.shape[1:] if expl.spatial is not None else (32, 32)
        grey = np.full((count, height, width, 3), 128, np.uint8)
        return OpenedRun(record, expl, grey, np.zeros(count, bool), np.arange(count), False)
    return OpenedRun(record, expl, *kept, True)


@st.cache_data(show_spinner=False, max_entries=16)
def _frames_of(root: str, key: str, _created: float):
    return RunStore(root).clip_frames(key)


def delete_runs(keys: list[str]) -> list[str]:
    """Delete the runs ``keys`` from the store; the keys deleted."""
    return [run_store().delete(key).key for key in keys if run_store().find(key) is not None]


def explanation(model: VideoModel, clip: Clip, method: str, target, params: dict, device: str) -> Explanation:
    """``method``'s explanation as a saved run: served from the store when this request is saved,
    else computed (``caches.get_explanation``) and saved (a store that cannot be written only
    loses the saving: the explanation is still returned)."""
    resolved = get_method(method).resolve_params(params)
    stored = stored_run(run_key(model, clip, method, target, resolved))
    if stored is not None:
        return stored
    expl = caches.get_explanation(model, clip, method, target, params, device)
    try:
        save_run(model, clip, expl, target, resolved)
    except OSError:
        pass
    return expl


def document(key: str) -> dict | None:
    """The result kept by an evaluation run ``key`` (None when it is gone or is an explanation)."""
    record = run_store().find(key)
    if record is None:
        return None
    found = run_store().get_document(record.request)
    return None if found is None else found[1]
