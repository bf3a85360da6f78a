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


def test_the_time_left_is_the_current_stages_from_its_own_pace():
    """A slow first stage (the gradient engine's rows) must not make the fast second one look slow,
    nor the other way round: a report with another total begins a stage with its own pace."""
    import time

    gate, go_on = threading.Event(), threading.Event()

    def work(report):
        for i in range(1, 3):
            time.sleep(0.2)  # slow: 0.2 s a step
            report(i, 10, "stage one")
        gate.set()
        go_on.wait(5)
        report(0, 1000, "stage two")
        for i in range(1, 3):
            time.sleep(0.002)  # fast: 2 ms a step
            report(i * 10, 1000, "stage two")
        gate.clear()
        go_on.clear()
        gate.set()
        go_on.wait(5)
        return "done"

    job = Job(work, name="two stages").start()
    gate.wait(5)
    first = job.status()
    assert first.what == "stage one" and 1.0 <= first.seconds_left <= 3.0  # 8 steps of about 0.2 s
    gate.clear()
    go_on.set()
    gate.wait(5)
    second = job.status()
    assert second.what == "stage two" and second.done == 20
    assert second.seconds_left < 20  # 980 fast steps; at the first stage's pace they would take 196 s
    go_on.set()
    assert job.wait(5).state == "done"


def test_tsr_reports_progress_from_its_first_step():
    """Issue 18: TSR's progress read "0 of 0" while the gradient engine built its Jacobians."""
    from conftest import small_input, small_model

    import xai_core
    from xai_core.methods.machinery.relevance_change import JACOBIAN_STAGE, gradient_change_applies

    model = small_model("cnn_transformer")
    assert gradient_change_applies(model, "saliency")
    seen = []
    original = Job.report

    def spy(self, done, total, what=""):
        seen.append((done, total, what))
        return original(self, done, total, what)

    try:
        Job.report = spy
        job = Job(lambda report: xai_core.explain(model, small_input(), "tsr", block=16), name="tsr").start()
        assert job.wait(120).state == "done"
    finally:
        Job.report = original
    assert seen[0][:1] == (0,) and seen[0][2] == JACOBIAN_STAGE and seen[0][1] > 0
    stages = [what for _, _, what in seen]
    assert stages.index("tsr") > 0 and set(stages[stages.index("tsr") :]) == {"tsr"}


def test_the_server_does_not_collect_all_garbage_after_every_script_run():
    """Streamlit's default gc.collect(2) after each run (0.4 s over the server's objects, holding
    the GIL), twice a second while a job's progress is redrawn, made TSR ten times slower from a
    page than through the API; .streamlit/config.toml turns it off."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_the_plans_clock_waits_for_cuda_and_only_for_cuda(monkeypatch):
    """Timings of GPU work must include the work, not only its launch: on CUDA the clock
    synchronises first; on the CPU it never does."""
    import torch

    from xai_core.methods.machinery import clock

    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(str(device)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    first = clock.now("cpu")
    assert synced == [] and clock.now(None) >= first
    clock.now(torch.device("cuda", 0))
    assert synced == ["cuda:0"]
