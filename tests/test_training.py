"""Training: a tiny run end to end (card, checkpoint, resume), and its building blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import small_model

from xai_core.cli import main
from xai_core.models.checkpoint import load_checkpoint
from xai_core.models.training import (
    TrainSettings,
    add_noise,
    held_out_clips,
    recalibrate_batchnorm,
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
    assert set(card["metrics"]["robustness"]) == {"clean", "noise16_distractors3", "noise8_white_distractors2"}
    assert 0 <= card["metrics"]["test"]["noise8_distractors2"]["accuracy"] <= 1
    model = load_checkpoint(out)
    assert model.name == "tiny-sides" and not (tmp_path / "tiny-sides.resume.pt").exists()
    assert not (tmp_path / "tiny-sides-best.safetensors").exists()
    assert "accuracy" in capsys.readouterr().out


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
