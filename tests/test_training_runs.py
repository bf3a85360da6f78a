"""Background training runs: the command line they start, reading their progress log, the
estimate, and one real run in a subprocess stopped with SIGTERM."""

from __future__ import annotations

import json
import time

import pytest

from xai_core.cli import build_parser
from xai_core.models.checkpoint import load_checkpoint
from xai_core.models.training_runs import RunRequest, TrainingRun, check_name, estimate_seconds, read_progress

TINY = dict(
    steps=3000, batch_size=2, frames=8, size=64, validate_every=1000, validation_clips=4, test_clips=4,
    robustness_clips=2, threads=1,
)  # fmt: skip


def write_log(path, events) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def step(n: int, t: float, loss: float = 1.0) -> dict:
    return {"event": "step", "time": t, "step": n, "loss": loss, "seconds": t - 100}


def test_the_command_is_what_the_train_command_parses(tmp_path):
    request = RunRequest(arch="r3d", task="pause", name="m", **TINY)
    command = request.command(tmp_path / "m", tmp_path / "p.jsonl")
    assert command[1:4] == ["-m", "xai_core", "train"]
    args = build_parser().parse_args(command[3:])
    assert (args.arch, args.task, args.out, args.progress) == (
        "r3d",
        "pause",
        str(tmp_path / "m"),
        str(tmp_path / "p.jsonl"),
    )
    assert (args.steps, args.batch_size, args.frames, args.size, args.threads) == (3000, 2, 8, 64, 1)
    assert (args.validate_every, args.validation_clips, args.test_clips, args.robustness_clips) == (1000, 4, 4, 2)
    default = build_parser().parse_args(RunRequest(arch="r3d", task="sides", name="m").command("o", "p")[3:])
    assert default.frames is None and default.size is None  # Moving Shapes' own clip size


def test_names_are_checked_against_the_folder(tmp_path):
    (tmp_path / "taken.json").write_text("{}")
    (tmp_path / "halfway.resume.pt").write_bytes(b"")
    assert check_name("fresh-model_1.0", tmp_path) is None
    assert "exists already" in check_name("taken", tmp_path)
    assert "exists already" in check_name("halfway", tmp_path)
    for bad in ("", "../escape", "with space", ".hidden", "a/b"):
        assert "not a usable model name" in check_name(bad, tmp_path)
    assert "-best" in check_name("model-best", tmp_path)


def test_progress_of_a_running_log(tmp_path):
    path = tmp_path / "p.jsonl"
    events = [{"event": "start", "time": 100.0, "steps": 10, "start_step": 0, "validate_every": 4}]
    events += [step(i, 100.0 + 0.5 * i, loss=2.0 / i) for i in range(1, 5)]
    events += [{"event": "validation", "time": 105.0, "step": 4, "seconds": 5.0, "loss": 0.9, "accuracy": 0.5}]
    events += [step(5, 105.5), step(6, 106.0)]
    write_log(path, events)
    with open(path, "a") as f:
        f.write('{"event": "step", "time": 10')  # the line being written
    p = read_progress(path)
    assert p.phase == "training" and p.step == 6 and p.total_steps == 10
    assert p.steps == [1, 2, 3, 4, 5, 6] and p.losses[:2] == [2.0, 1.0]
    assert p.validation == [{"step": 4, "seconds": 5.0, "loss": 0.9, "accuracy": 0.5}] and p.metric == "accuracy"
    assert p.step_seconds == pytest.approx(0.5)  # the median gap: the validation pause does not count
    assert p.validation_seconds == pytest.approx(3.0)  # 102.0 -> 105.0
    assert p.fraction == pytest.approx(0.6)
    # 4 steps at 0.5 s, and validations at steps 8 and 10 (the last step) at 3 s each
    assert p.eta_seconds() == pytest.approx(4 * 0.5 + 2 * 3.0)


def test_progress_phases_and_a_resumed_log(tmp_path):
    path = tmp_path / "p.jsonl"
    assert read_progress(path).phase == "starting"  # no file yet
    first = [{"event": "start", "time": 1.0, "steps": 10, "start_step": 0}, step(1, 2.0), {"event": "interrupted"}]
    write_log(path, first)
    assert read_progress(path).phase == "interrupted"
    resumed = [{"event": "start", "time": 10.0, "steps": 10, "start_step": 4}, step(5, 11.0)]
    write_log(path, first + resumed + [{"event": "stopping", "time": 12.0, "step": 5}])
    p = read_progress(path)
    assert p.phase == "stopping" and p.steps == [5] and p.start_step == 4 and p.eta_seconds() is None
    write_log(path, first + resumed + [{"event": "testing", "time": 12.0}])
    assert read_progress(path).phase == "testing"
    write_log(path, first + resumed + [{"event": "done", "time": 13.0, "stopped_early": True, "steps_done": 5}])
    p = read_progress(path)
    assert p.phase == "done" and p.result == {"stopped_early": True, "steps_done": 5}
    write_log(path, resumed + [{"event": "error", "time": 12.0, "message": "ValueError: bad"}])
    assert (read_progress(path).phase, read_progress(path).error) == ("failed", "ValueError: bad")


def test_estimate_scales_a_measured_run_by_clip_size_and_batch():
    card = {
        "name": "ref",
        "arch": "r3d",
        "training": {"wall_clock_seconds": 1000.0, "settings": {"steps": 100, "batch_size": 10}},
    }  # 32 frames of 112x112: 1 s per clip-step
    request = RunRequest(arch="r3d", task="sides", name="x", steps=50, batch_size=4, frames=16, size=56)
    seconds, source = estimate_seconds([card, {**card, "arch": "cnn_lstm", "name": "other"}], request)
    assert source == "ref" and seconds == pytest.approx(50 * 4 * 1.0 / 8)
    assert estimate_seconds([card], RunRequest(arch="cnn_lstm", task="sides", name="x")) is None
    stopped = {**card, "training": {**card["training"], "steps_done": 50}}  # a run stopped halfway took 2 s a step
    assert estimate_seconds([stopped], request)[0] == pytest.approx(2 * seconds)


def wait_for(condition, timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_background_run_stopped_with_sigterm_saves_its_checkpoint(tmp_path):
    run = TrainingRun.start(
        RunRequest(arch="cnn_lstm", task="sides", name="bg", **TINY), tmp_path / "zoo", tmp_path / "work"
    )
    try:
        wait_for(lambda: len(run.progress().steps) >= 3 or not run.running, what="three training steps")
        assert run.running, run.log_path.read_text()[-2000:]
        run.stop()
        assert run.stop_requested
        run.process.wait(timeout=90)
    finally:
        if run.running:
            run.kill()
    assert run.returncode == 0 and run.failure() is None, run.log_path.read_text()[-2000:]
    assert run.saved()
    card = json.loads((tmp_path / "zoo" / "bg.json").read_text())
    assert card["training"]["stopped_early"] is True and 3 <= card["training"]["steps_done"] < 3000
    assert card["training"]["curve"][-1]["step"] == card["training"]["steps_done"]
    progress = run.progress()
    assert progress.phase == "done" and progress.result["stopped_early"] is True
    assert progress.steps == list(range(1, card["training"]["steps_done"] + 1))  # every step, in order
    assert load_checkpoint(tmp_path / "zoo" / "bg").input_spec.frames == 8
    assert "stopped early at step" in run.log_path.read_text()


def test_a_run_that_fails_says_why(tmp_path):
    run = TrainingRun.start(
        RunRequest(arch="cnn_lstm", task="sides", name="bad", **{**TINY, "frames": None, "size": 16}),
        tmp_path / "zoo",
        tmp_path / "work",
    )
    run.process.wait(timeout=90)
    assert run.returncode == 2 and not run.saved()
    assert run.failure() == "training needs frames of at least 32x32 pixels"
    with pytest.raises(ValueError, match="exists already"):
        (tmp_path / "zoo" / "bad.json").write_text("{}")
        TrainingRun.start(RunRequest(arch="cnn_lstm", task="sides", name="bad"), tmp_path / "zoo", tmp_path / "w2")
