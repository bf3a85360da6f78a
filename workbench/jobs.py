"""Background jobs of a session, one per slot ("evaluate", "temporal", ...): starting one, its
progress bar and Cancel button while it runs, and the results the finished ones computed."""

from __future__ import annotations

import copy
from collections.abc import Callable

import streamlit as st

from xai_core.jobs import Job, JobStatus
from xai_core.models.base import VideoModel

from .state import JOBS, RESULTS


def job(slot: str) -> Job | None:
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


def start_job(slot: str, fn: Callable, name: str, key: str | None = None) -> Job:
    """Run ``fn(report)`` in the background as this session's job in ``slot`` (one at a time a
    slot: raises ValueError while the previous one runs); ``key`` names what it computes."""
    current = job(slot)
    if current is not None and not current.status().finished:
        raise ValueError(f"{current.name} is still running: cancel it first")
    st.session_state[JOBS][slot] = Job(fn, name=name, key=key).start()
    return st.session_state[JOBS][slot]


def results(slot: str) -> dict:
    """The finished results of ``slot`` in this session: {run key: result} (newest last)."""
    return st.session_state.setdefault(RESULTS, {}).setdefault(slot, {})


def job_progress(job: Job, status: JobStatus, cancel_key: str, detail: str = "") -> bool:
    """While ``job`` runs (``status``: its ``job.status()``): its progress bar (done of total,
    time left, ``detail``) and a Cancel button; returns whether it is still running."""
    if status.finished:
        return False
    left = f", about {status.seconds_left:.0f} s left" if status.seconds_left is not None else ""
    said = status.what and (status.what in job.name or status.what in detail)
    stage = f" ({status.what})" if status.what and not said else ""  # e.g. TSR's gradient engine before its masks
    st.progress(status.fraction, text=f"{job.name}{stage}: {status.done:,} of {status.total:,}{left}{detail}")
    st.button("Cancel", key=cancel_key, on_click=job.cancel, icon=":material/cancel:")
    return True
