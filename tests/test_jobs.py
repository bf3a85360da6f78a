"""Background jobs: result, progress and estimate, cancel at the next report, failure kept."""

from __future__ import annotations

import threading

import pytest

from xai_core.jobs import Cancelled, Job


def test_a_job_returns_its_result_and_reports_progress():
    step = threading.Event()
    seen = []

    def work(report):
        for i in range(1, 4):
            report(i, 3, f"step {i}")
            seen.append(i)
            if i == 1:
                step.wait(5)
        return "made"

    job = Job(work, name="three steps", key="k").start()
    while job.status().done < 1:
        pass
    status = job.status()
    assert status.state == "running" and status.total == 3 and status.what == "step 1" and not status.finished
    assert status.seconds_left is not None and status.seconds_left >= 0
    step.set()
    final = job.wait(5)
    assert final.state == "done" and final.finished and final.fraction == 1.0 and final.seconds_left is None
    assert job.result == "made" and seen == [1, 2, 3] and job.key == "k"
    with pytest.raises(RuntimeError, match="started already"):
        job.start()


def test_cancel_stops_at_the_next_report_and_keeps_no_result():
    gate = threading.Event()
    steps = []

    def work(report):
        for i in range(100):
            report(i, 100)
            steps.append(i)
            gate.wait(5)
        return "whole"

    job = Job(work).start()
    while not steps:
        pass
    job.cancel()
    gate.set()
    status = job.wait(5)
    assert status.state == "cancelled" and job.result is None and len(steps) <= 2


def test_a_failure_is_kept_for_the_caller():
    def work(report):
        report(0, 1)
        raise ValueError("bad clip")

    job = Job(work).start()
    status = job.wait(5)
    assert status.state == "failed" and isinstance(job.error, ValueError) and str(job.error) == "bad clip"
    assert not isinstance(job.error, Cancelled)
