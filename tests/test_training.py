"""Training: a tiny run end to end (card, checkpoint, resume), and its building blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import small_model

from xai_core.cli import main
from xai_core.data.moving_shapes import ShapesOptions, generate
from xai_core.models.base import ModelError
from xai_core.models.checkpoint import load_checkpoint
from xai_core.models.training import (
    ROBUSTNESS_CONDITIONS,
    StopRequest,
    TrainSettings,
    add_noise,
    held_out_clips,
    recalibrate_batchnorm,
    retest,
    train,
    training_batch,
    training_options,
)

TINY = dict(steps=4, batch_size=2, validate_every=2, validation_clips=4, test_clips=4, robustness_clips=2)


def test_train_command_writes_a_loadable_checkpoint_with_its_card(tmp_path, capsys):
    out = tmp_path / "tiny-sides"
    code = main(
        [
            "train",
            "--arch",
            "cnn_lstm",
            "--task",
            "sides",
            "--out",
            str(out),
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--validate-every",
            "2",
            "--validation-clips",
            "4",
            "--test-clips",
            "4",
            "--robustness-clips",
            "2",
        ]
    )
    assert code == 0
    card = json.loads((tmp_path / "tiny-sides.json").read_text())
    assert card["arch"] == "cnn_lstm" and card["labels"] == ["triangle", "square", "pentagon"]
    assert [p["step"] for p in card["training"]["curve"]] == [2, 4]
    assert card["training"]["command"].startswith("python -m xai_core train ")
    assert set(card["metrics"]["robustness"]) == set(ROBUSTNESS_CONDITIONS)
    assert card["training"]["device"] == "cpu"
    assert 0 <= card["metrics"]["test"]["noise8_distractors2"]["accuracy"] <= 1
    model = load_checkpoint(out)
    assert model.name == "tiny-sides" and not (tmp_path / "tiny-sides.resume.pt").exists()
    assert not (tmp_path / "tiny-sides-best.safetensors").exists()
    assert "accuracy" in capsys.readouterr().out


def test_a_run_can_start_from_another_checkpoints_frame_encoder(tmp_path):
    from xai_core.evaluate.report import weights_sha256
    from xai_core.models.checkpoint import make_card, save_checkpoint
    from xai_core.models.training import init_from_checkpoint

    source = small_model("cnn_transformer")
    with torch.no_grad():  # "trained" weights, unlike any fresh model's
        for tensor in source.net.parameters():
            tensor.add_(torch.randn_like(tensor))
    save_checkpoint(source, tmp_path / "src", make_card(source))
    fresh, target = small_model("cnn_lstm"), small_model("cnn_lstm")
    facts = init_from_checkpoint(target.net, tmp_path / "src", "frame_encoder.")
    assert facts["sha256"] == weights_sha256(tmp_path / "src.safetensors") and facts["source"] == str(tmp_path / "src")
    mine, theirs, before = target.net.state_dict(), source.net.state_dict(), fresh.net.state_dict()
    assert facts["tensors"] == sorted(k for k in theirs if k.startswith("frame_encoder."))
    assert all(torch.equal(mine[k], theirs[k]) for k in facts["tensors"])
    assert not torch.equal(
        before["frame_encoder.backbone.features.0.0.weight"], theirs["frame_encoder.backbone.features.0.0.weight"]
    )
    assert all(torch.equal(mine[k], before[k]) for k in mine if not k.startswith("frame_encoder."))  # the rest as built
    with pytest.raises(ValueError, match="no weight of src.safetensors named 'lstm.'"):
        init_from_checkpoint(target.net, tmp_path / "src", "lstm.")
    wide = small_model("cnn_lstm", widths=[16, 16, 16, 16])
    with pytest.raises(ValueError, match="src.safetensors has frame_encoder.* with another shape"):
        init_from_checkpoint(wide.net, tmp_path / "src", "frame_encoder.")
    with pytest.raises(ValueError, match="--init-from: no checkpoint"):
        init_from_checkpoint(target.net, tmp_path / "missing")
    out = tmp_path / "lstm-pause"
    command = ["train", "--arch", "cnn_lstm", "--task", "pause", "--out", str(out), "--frames", "8", "--size", "64",
               "--steps", "2", "--lr", "0", "--batch-size", "2", "--validate-every", "2", "--validation-clips", "2",
               "--test-clips", "2", "--robustness-clips", "2", "--init-from", str(tmp_path / "src"),
               "--init-prefix", "frame_encoder."]  # fmt: skip
    assert main(command) == 0
    training = json.loads((tmp_path / "lstm-pause.json").read_text())["training"]
    assert training["init_from"] == json.loads(json.dumps(facts)) and "--init-from" in training["command"]
    assert training["settings"]["init_prefix"] == "frame_encoder."
    trained = load_checkpoint(out).net.state_dict()  # lr 0: the saved model is where the run started
    convs = [k for k in facts["tensors"] if k.endswith(".0.weight")]  # (batch-norm statistics are recalibrated)
    assert convs and all(torch.equal(trained[k], theirs[k]) for k in convs)
    assert main(["train", "--arch", "cnn_lstm", "--task", "pause", "--out", str(tmp_path / "x"),
                 "--init-prefix", "frame_encoder."]) == 2  # fmt: skip


def test_a_resumed_run_keeps_the_record_of_the_weights_it_started_from(tmp_path):
    from xai_core.models.checkpoint import make_card, save_checkpoint

    source = small_model("cnn_lstm")
    save_checkpoint(source, tmp_path / "src", make_card(source))
    settings = TrainSettings(arch="cnn_lstm", task="pause", out=str(tmp_path / "p"), frames=8, size=64,
                             init_from=str(tmp_path / "src"), init_prefix="frame_encoder.", **TINY)  # fmt: skip

    def stop_after_first_validation(message: str) -> None:
        if '"step": 2' in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(settings, log=stop_after_first_validation)
    first = json.loads(torch.load(tmp_path / "p.resume.pt", weights_only=True)["init_from"])
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"src{suffix}").unlink()  # the source is gone: the resumed run does not need it
    said = []
    card = train(settings, log=said.append)
    assert said[0] == "resuming p at step 2" and card["training"]["init_from"] == first
    assert first["sha256"] and first["tensors"][0].startswith("frame_encoder.")


def test_robustness_covers_the_apps_conditions_at_the_ends_of_their_ranges():
    conditions = ROBUSTNESS_CONDITIONS.values()
    assert {c["noise"] for c in conditions} >= {0.0, 20.0} and {c["distractors"] for c in conditions} >= {0, 3}
    assert any(c.get("white_distractors") for c in conditions)
    low, high = ShapesOptions().radius
    assert min(c.get("radius", (low, high))[0] for c in conditions) == low
    assert max(c.get("radius", (low, high))[1] for c in conditions) == high
    assert ShapesOptions().pause_length == (3, 14)  # the app's pauses, and the training range
    short = ROBUSTNESS_CONDITIONS["noise8_distractors2_pause3to5"]
    clips, labels = held_out_clips("pause", 0, 6, **short)
    lengths = [int(generate(i, pause=True, **short, ground_truth=True).pause_frames.sum()) for i in range(1, 6, 2)]
    assert list(labels) == [0, 1] * 3 and all(3 <= n <= 5 for n in lengths)
    seen = {int(generate(i, pause=True, size=32, ground_truth=False).pause_frames.sum()) for i in range(300)}
    assert min(seen) == 3 and max(seen) == 14


def test_training_refuses_an_architecture_prior_under_an_honest_name(tmp_path, capsys):
    gated = '{"motion_gate": "object", "object_readout": true}'
    code = main(["train", "--arch", "cnn_lstm", "--task", "sides", "--out", str(tmp_path / "m-sides")]
                + ["--steps", "1", "--config", gated])  # fmt: skip
    assert code == 2 and "only didactic models whose names end in '-gated'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_retest_measures_a_checkpoint_again_and_keeps_its_weights(tmp_path):
    settings = TrainSettings(arch="cnn_lstm", task="pause", out=str(tmp_path / "p"), **TINY)
    train(settings, log=lambda message: None)
    card = json.loads((tmp_path / "p.json").read_text())
    weights = (tmp_path / "p.safetensors").read_bytes()
    card["metrics"]["robustness"] = {"old": {"accuracy": 1.0}}
    (tmp_path / "p.json").write_text(json.dumps(card))
    again = retest(tmp_path / "p", robustness_clips=2)
    assert set(again["metrics"]["robustness"]) == set(ROBUSTNESS_CONDITIONS)
    assert again["metrics"]["measured"]["by"] == "retest" and again["training"] == card["training"]
    assert again["metrics"]["test"] == card["metrics"]["test"]  # the same clips, the same weights
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads(json.dumps(again))
    assert (tmp_path / "p.safetensors").read_bytes() == weights


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    settings = TrainSettings(arch="cnn_lstm", task="angle", out=str(tmp_path / "a"), **TINY)

    def stop_after_first_validation(message: str) -> None:
        if '"step": 2' in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(settings, log=stop_after_first_validation)
    assert (tmp_path / "a.resume.pt").exists()
    said = []
    card = train(settings, log=said.append)
    assert said[0] == "resuming a at step 2"
    assert [p["step"] for p in card["training"]["curve"]] == [2, 4]
    assert "mae_degrees" in card["metrics"]["test"]["noise8_distractors2"]


@pytest.mark.parametrize(
    "content, said",
    [
        ("pickle", "is refused: it is not a resume file this command wrote (its pickle needs code to load: xai_core"),
        (b"<html>not found</html>", "is not a resume file this command wrote (UnpicklingError"),
        ({"step": 3}, "is not a resume file this command wrote; delete it to start over"),
    ],
    ids=["code", "damaged", "foreign"],
)
def test_a_resume_file_that_is_not_ours_is_refused_in_one_line(tmp_path, content, said, recwarn):
    """A stale or planted resume file: one line naming it, no torch advice to disable weights_only."""
    resume = tmp_path / "a.resume.pt"
    if content == "pickle":
        torch.save({"net": {}, "hook": TrainSettings(arch="r3d", task="sides", out="x")}, resume)
    elif isinstance(content, bytes):
        resume.write_bytes(content)
    else:
        torch.save(content, resume)
    settings = TrainSettings(arch="cnn_lstm", task="angle", out=str(tmp_path / "a"), **TINY)
    with pytest.raises(ModelError) as caught:
        train(settings, log=lambda message: None)
    message = str(caught.value)
    assert message.startswith("a.resume.pt ") and said in message, message
    assert "\n" not in message and "weights_only" not in message
    assert not [w for w in recwarn if "torch" in str(w.filename)]


def test_a_killed_run_continues_from_its_last_resume_file_between_validations(tmp_path, monkeypatch):
    """A hard kill runs no handler: the resume file written every ``checkpoint_every`` steps is
    all that is left, and the same settings continue from it with the same batches."""
    import xai_core.models.training as training

    settings = TrainSettings(
        arch="cnn_lstm",
        task="angle",
        out=str(tmp_path / "k"),
        **{**TINY, "steps": 5, "validate_every": 100},
        checkpoint_every=2,
    )
    real_batch, seen = training.training_batch, []

    def dies_at_step_four(task, step, s):
        if step == 3 and "restart" not in seen:
            raise SystemExit("killed")
        if step < s.steps:  # not the batch-norm recalibration batches
            seen.append(step)
        return real_batch(task, step, s)

    monkeypatch.setattr(training, "training_batch", dies_at_step_four)
    with pytest.raises(SystemExit):
        train(settings, log=lambda _: None)
    assert seen == [0, 1, 2]
    assert torch.load(tmp_path / "k.resume.pt", weights_only=True)["step"] == 2
    seen.append("restart")
    said = []
    card = train(settings, log=said.append)
    assert said[0] == "resuming k at step 2"
    assert seen == [0, 1, 2, "restart", 2, 3, 4]  # step 2's update is redone, nothing else
    assert card["training"]["steps_done"] == 5 and not (tmp_path / "k.resume.pt").exists()


def test_batches_are_deterministic_and_follow_the_curriculum():
    s = TrainSettings(arch="r3d", task="pause", out="x", steps=100, batch_size=4)
    a, b = training_batch("pause", 7, s), training_batch("pause", 7, s)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    rng = np.random.default_rng(0)
    easy = [training_options(rng, "sides", 0.05, s) for _ in range(200)]
    hard = [training_options(rng, "sides", 0.5, s) for _ in range(200)]
    assert max(o.distractors for o, _ in easy) <= 1 and max(n for _, n in easy) <= 4
    assert max(o.distractors for o, _ in hard) == 3 and max(n for _, n in hard) > 10
    assert 0.35 < np.mean([o.pause for o, _ in (training_options(rng, "pause", 0.5, s) for _ in range(400))]) < 0.65


def test_noise_added_in_torch_has_the_asked_strength():
    clean = torch.full((2, 4, 32, 32, 3), 128, dtype=torch.uint8)
    noisy = add_noise(clean, torch.tensor([0.0, 10.0]))
    assert torch.equal(noisy[0], clean[0])
    assert abs((noisy[1].float() - 128).std().item() - 10) < 0.5


def test_held_out_clips_mix_pauses_for_the_pause_task():
    _, labels = held_out_clips("pause", 5, 6, noise=0.0, distractors=0)
    assert labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_batchnorm_recalibration_gives_exact_batch_statistics():
    """Recalibrated on one batch, the stem BatchNorm's running mean is that batch's mean of the
    stem conv's output (its input)."""
    from xai_core.models.training import RECALIBRATION_STEP0, to_input

    model = small_model("r3d")
    s = TrainSettings(arch="r3d", task="sides", out="x", batch_size=2)
    bn = model.net.stem[1]
    bn.running_mean.fill_(5.0)  # stale statistics
    clean, sigma, _ = training_batch("sides", RECALIBRATION_STEP0, s)
    torch.manual_seed(3)
    x = to_input(model, add_noise(clean, sigma)).transpose(1, 2)  # [B,C,T,H,W]
    motion = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
    with torch.no_grad():
        expected = model.net.stem[0](model.net.pool(torch.cat([x, motion], dim=1))).mean((0, 2, 3, 4))
    torch.manual_seed(3)
    recalibrate_batchnorm(model, "sides", s, batches=1)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert bn.momentum == 0.1  # the usual momentum is back for training


SMALL_CLIPS = dict(TINY, frames=8, size=64)


def read_events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_progress_log_has_one_event_per_step_and_validation(tmp_path):
    progress = tmp_path / "progress.jsonl"
    settings = TrainSettings(
        arch="cnn_lstm", task="sides", out=str(tmp_path / "m"), progress=str(progress), **SMALL_CLIPS
    )
    card = train(settings, log=lambda m: None)
    events = read_events(progress)
    kinds = [e["event"] for e in events]
    assert kinds == ["start", "step", "step", "validation", "step", "step", "validation", "testing", "done"]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]
    assert all(np.isfinite(e["loss"]) for e in events if e["event"] == "step")
    assert events[0]["steps"] == 4 and events[0]["validate_every"] == 2
    assert events[-1]["stopped_early"] is False and events[-1]["steps_done"] == 4
    assert events[-1]["test"] == card["metrics"]["test"]
    assert card["input_spec"]["frames"] == 8 and card["input_spec"]["height"] == 64
    assert card["training"]["stopped_early"] is False and card["training"]["steps_done"] == 4


def test_sigterm_stops_gracefully_and_still_saves_a_tested_checkpoint(tmp_path, monkeypatch):
    """SIGTERM during step 3 of 40: the run finishes that step, validates it (step 3 is no
    validation step), tests and saves; the card says it stopped early."""
    import os
    import signal

    from xai_core.models.training import ProgressLog

    progress = tmp_path / "progress.jsonl"
    settings = TrainSettings(
        arch="cnn_lstm",
        task="angle",
        out=str(tmp_path / "stopped"),
        progress=str(progress),
        **{**SMALL_CLIPS, "steps": 40, "validate_every": 20},
    )
    handler_before = signal.getsignal(signal.SIGTERM)
    steps_seen = []
    write = ProgressLog.write

    def write_and_signal(self, event, **fields):  # the signal comes when the log records step 3
        write(self, event, **fields)
        if event == "step":
            steps_seen.append(fields["step"])
            if fields["step"] == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ProgressLog, "write", write_and_signal)
    card = train(settings, log=lambda m: None)
    assert steps_seen == [1, 2, 3]
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the handler is given back
    assert card["training"]["stopped_early"] is True and card["training"]["steps_done"] == 3
    assert [p["step"] for p in card["training"]["curve"]] == [3]
    assert "mae_degrees" in card["metrics"]["test"]["noise8_distractors2"]
    saved = json.loads((tmp_path / "stopped.json").read_text())
    assert saved["training"]["stopped_early"] is True and saved["training"]["steps_done"] == 3
    assert load_checkpoint(tmp_path / "stopped").name == "stopped"
    events = read_events(progress)
    assert [e["event"] for e in events][-4:] == ["stopping", "validation", "testing", "done"]
    assert events[-4]["signal"] == "SIGTERM" and events[-1]["stopped_early"] is True
    # the same settings continue the stopped run from step 3 (its resume state was kept)
    monkeypatch.undo()
    said = []
    card = train(settings, log=said.append)
    assert said[0] == "resuming stopped at step 3"
    assert [p["step"] for p in card["training"]["curve"]] == [3, 20, 40] and not card["training"]["stopped_early"]
    assert not (tmp_path / "stopped.resume.pt").exists() and not (tmp_path / "stopped-best.json").exists()
    assert [e["step"] for e in read_events(progress) if e["event"] == "step"][3:6] == [4, 5, 6]


def test_a_stop_before_the_first_step_still_saves_the_untrained_model(tmp_path):
    stop = StopRequest()
    stop.requested = True
    card = train(TrainSettings(arch="r3d", task="sides", out=str(tmp_path / "r"), **SMALL_CLIPS), log=print, stop=stop)
    assert card["training"]["steps_done"] == 0 and card["training"]["stopped_early"] is True
    assert card["training"]["curve"][0]["step"] == 0 and card["training"]["curve"][0]["loss"] is None
    assert (tmp_path / "r.safetensors").exists()


def test_small_clips_need_eight_frames_and_scale_the_pauses():
    with pytest.raises(ValueError, match="at least 8 frames"):
        TrainSettings(arch="cnn_lstm", task="pause", out="x", frames=4)
    s = TrainSettings(arch="cnn_lstm", task="pause", out="x", frames=8, size=48, batch_size=6)
    clean, _, labels = training_batch("pause", 3, s)
    assert tuple(clean.shape) == (6, 8, 48, 48, 3) and set(labels.tolist()) <= {0, 1}
    assert s.clip_shape()["pause_length"][1] < 8 - 4
    assert TrainSettings(arch="cnn_lstm", task="pause", out="x").clip_shape() == {"frames": 32, "size": 112}


def test_max_distractors_caps_training_validation_and_test_clips(tmp_path):
    """--max-distractors 0: a task one frame can solve (the moving shape is the only one) in every
    clip the run sees; the held-out conditions are renamed where they were capped."""
    s = TrainSettings(arch="cnn_lstm", task="sides", out=str(tmp_path / "still-sides"), max_distractors=0, **TINY)
    rng = np.random.default_rng(0)
    assert {training_options(rng, "sides", p, s)[0].distractors for p in np.linspace(0, 1, 200)} == {0}
    assert s.validation_options() == {"noise": 8.0, "distractors": 0}
    assert TrainSettings(arch="r3d", task="sides", out="x", max_distractors=1).validation_options()["distractors"] == 1
    with pytest.raises(ValueError, match="max_distractors takes 0 to 3"):
        TrainSettings(arch="r3d", task="sides", out="x", max_distractors=4)
    card = train(s, log=lambda _: None)
    assert card["training"]["validation"]["options"] == {"noise": 8.0, "distractors": 0}
    assert card["metrics"]["test"]["noise8_distractors0"]["options"] == {"noise": 8.0, "distractors": 0}
    assert set(card["metrics"]["robustness"]) == {
        "clean", "noise20_distractors0", "noise8_white_distractors0", "noise8_distractors0_radius9to10",
        "noise8_distractors0_radius15to16", "noise8_distractors0_pause3to5", "noise8_distractors0_pause12to14",
    }  # fmt: skip
    assert all(m["options"]["distractors"] == 0 for m in card["metrics"]["robustness"].values())
    assert card["training"]["settings"]["max_distractors"] == 0
