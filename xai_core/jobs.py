"""Long computations in a background thread, with progress, an estimate of the time left and a
cancel that takes effect at the next progress report.

A computation may go through stages of different cost per step (TSR: the gradient engine's
Jacobian rows, then the masks): a report with another ``total`` begins a new stage, and the time
left is the current stage's, from its own pace, so that it does not swing between the stages.

``Job(fn)`` runs ``fn(report)`` in a daemon thread; ``fn`` calls ``report(done, total, what)`` as it
goes, and that call raises ``Cancelled`` once ``job.cancel()`` was asked for, so the work stops
between two steps and nothing half-made is returned.  Code deeper down (a method's engine) calls
the module's ``report()``, which reaches the job of the thread it runs in.  The result (or the error) is kept on the
job.  No Streamlit here: a page keeps the job in its session and polls ``job.status()``; a script
can do the same, or call ``job.wait()``.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STATES = ("waiting", "running", "done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside a job's function when the job was cancelled."""


_CURRENT: contextvars.ContextVar[Job | None] = contextvars.ContextVar("xai_job", default=None)


def report(done: int, total: int, what: str = "") -> None:
    """Progress from deep inside a computation (a method's engine): passed on to the job running
    in this thread, if any (which raises ``Cancelled`` when it was cancelled); else nothing."""
    job = _CURRENT.get()
    if job is not None:
        job.report(done, total, what)


def check() -> None:
    """Raise ``Cancelled`` if the job running in this thread was cancelled (no progress to report:
    for long steps between two reports)."""
    job = _CURRENT.get()
    if job is not None and job.cancel_requested:
        raise Cancelled(f"{job.name} cancelled")


@dataclass(frozen=True)
class JobStatus:
    state: str
    done: int
    total: int
    what: str
    seconds: float  # since the start
    seconds_left: float | None  # the current stage's time left, from its own pace (None before its first step)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


class Job:
    """``fn(report) -> result`` in a background thread.  ``report(done, total, what="")``."""

    def __init__(self, fn: Callable[[Callable[..., None]], Any], name: str = "job", key: str | None = None) -> None:
        self.fn = fn
        self.name = name
        self.key = key  # the caller's name for what is computed (e.g. a cache key)
        self.result: Any = None
        self.error: BaseException | None = None
        self._state = "waiting"
        self._done, self._total, self._what = 0, 0, ""
        self._stage: tuple[float, int] | None = None  # when the current stage began, and its progress then
        self._started: float | None = None
        self._ended: float | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def report(self, done: int, total: int, what: str = "") -> None:
        """Progress from inside ``fn``; raises ``Cancelled`` when a cancel was asked for."""
        with self._lock:
            if self._stage is None:  # the first stage began with the job
                self._stage = (self._started or time.monotonic(), 0)
            elif total != self._total or done < self._done:  # a new stage (another total): its own pace, from here
                self._stage = (time.monotonic(), done)
            self._done, self._total, self._what = done, total, what
        if self._cancel.is_set():
            raise Cancelled(f"{self.name} cancelled at {done} of {total}")

    def _run(self) -> None:
        _CURRENT.set(self)  # this thread's own context: methods reach the job through report() and check()
        try:
            result = self.fn(self.report)
            with self._lock:  # finished before it saw the cancel: the result is whole, keep it
                self.result, self._state = result, "done"
        except Cancelled:
            with self._lock:
                self._state = "cancelled"
        except BaseException as exc:  # kept for the caller to show; the thread ends quietly
            with self._lock:
                self.error, self._state = exc, "failed"
        finally:
            self._ended = time.monotonic()

    def start(self) -> Job:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was started already")
        self._started = time.monotonic()
        self._state = "running"
        self._thread = threading.Thread(target=self._run, name=f"xai-{self.name}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> JobStatus:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status()

    def status(self) -> JobStatus:
        with self._lock:
            state, done, total, what = self._state, self._done, self._total, self._what
            stage_start, stage_done = self._stage or (0.0, 0)
        now = self._ended or time.monotonic()
        seconds = now - self._started if self._started is not None else 0.0
        left = None
        if state == "running" and stage_start and done > stage_done and total >= done:  # the stage's own pace
            left = (now - stage_start) / (done - stage_done) * (total - done)
        return JobStatus(state, done, total, what, seconds, left)
