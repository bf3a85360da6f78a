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


def start_job(slot: str, fn: Callable, name: str, key: str | None = None, step: dict | None = None) -> Job:
    """Run ``fn(report)`` in the background as this session's job in ``slot`` (one at a time a
    slot: raises ValueError while the previous one runs); ``key`` names what it computes (run
    keys joined by "|"); ``step``: a dict ``fn`` updates as it goes ("text": what it is on,
    "saved": the methods saved, "failed": (method, message) pairs), read by ``show_job``."""
    current = job(slot)
    if current is not None and not current.status().finished:
        raise ValueError(f"{current.name} is still running: cancel it first")
    new = Job(fn, name=name, key=key)
    new.step = step if step is not None else {}
    st.session_state[JOBS][slot] = new.start()
    return new


def results(slot: str) -> dict:
    """The finished results of ``slot`` in this session: {run key: result} (newest last)."""
    return st.session_state.setdefault(RESULTS, {}).setdefault(slot, {})


POLL_SECONDS = 0.5  # how often a running job's progress is redrawn
CANCEL_WAIT_SECONDS = 1.0  # how long a Cancel click waits for the job to stop before the page redraws


def show_job(slot: str, cancel_key: str, keys: set[str] | None = None) -> None:
    """This session's job in ``slot``, drawn where this is called: while it runs, its progress and
    Cancel, redrawn every ``POLL_SECONDS`` without rerunning the page; when it ends, one rerun of
    the page (its results appear with the rest), then what went wrong, if anything: its error,
    the methods that failed, or where it was cancelled; that outcome only while the page shows
    one of the runs it was for (``keys``: the page's run keys now; None: always)."""
    current = job(slot)
    if current is None:
        return
    finished = current.status().finished
    if finished and keys is not None and getattr(current, "shown", False):
        if not keys & set((current.key or "").split("|")):
            return  # another model, clip or settings now: the old outcome is not theirs

    def panel() -> None:
        status = current.status()
        step = getattr(current, "step", {})
        if job_progress(current, status, cancel_key, f" · {step['text']}" if step.get("text") else ""):
            return
        if not getattr(current, "shown", False):
            current.shown = True
            st.rerun()  # the finished results with the rest of the page, without polling
        if status.state == "failed":
            st.error(f"{current.name} failed: {current.error}", icon=":material/error:")
        elif status.state == "cancelled":
            saved = step.get("saved", [])
            where = f" during {step['text']}" if step.get("text") else f" after {status.done:,} of {status.total:,}"
            kept = f"saved before it: {', '.join(saved)}" if saved else "nothing was saved"
            st.warning(f"{current.name} was cancelled{where}; {kept}.")
        for method, message in step.get("failed", []):
            st.error(f"{method} failed: {message}", icon=":material/error:")

    st.fragment(panel, run_every=None if finished else POLL_SECONDS)()


def cancel_and_wait(job: Job, seconds: float = CANCEL_WAIT_SECONDS) -> None:
    """Ask ``job`` to stop, and give it up to ``seconds`` to reach its next progress report, so
    that the rerun the click starts already shows it stopped (not one more poll later)."""
    job.cancel()
    job.wait(seconds)


def job_progress(job: Job, status: JobStatus, cancel_key: str, detail: str = "") -> bool:
    """While ``job`` runs (``status``: its ``job.status()``): its progress bar (done of total,
    time left, ``detail``) and a Cancel button; returns whether it is still running."""
    if status.finished:
        return False
    left = f", about {status.seconds_left:.0f} s left" if status.seconds_left is not None else ""
    said = status.what and (status.what in job.name or status.what in detail)
    stage = f" ({status.what})" if status.what and not said else ""  # e.g. TSR's gradient engine before its masks
    st.progress(status.fraction, text=f"{job.name}{stage}: {status.done:,} of {status.total:,}{left}{detail}")
    st.button("Cancel", key=cancel_key, on_click=cancel_and_wait, args=(job,), icon=":material/cancel:")
    return True
