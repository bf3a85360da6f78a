"""Architectures, the VideoModel adapter, and checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import LABELS, SMALL_SPEC, small_input, small_model
from safetensors.torch import save_file

from xai_core.models.base import InputSpec, ModelError
from xai_core.models.checkpoint import load_checkpoint, make_card, save_checkpoint
from xai_core.models.registry import ARCHITECTURES, build_model
from xai_core.models.weights import read_state_dict
from xai_core.models.zoo import load_model

ZOO_ARCHS = ["cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "r3d", "convlstm"]
DECOUPLED = ["cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm"]


@pytest.mark.parametrize("arch", ZOO_ARCHS)
def test_every_architecture_classifies_and_regresses(arch):
    x = small_input(batch=2)
    with torch.no_grad():
        logits = small_model(arch)(x)
        value = small_model(arch, task="regression")(x)
    assert logits.shape == (2, len(LABELS)) and torch.isfinite(logits).all()
    assert value.shape == (2, 1) and torch.isfinite(value).all()


@pytest.mark.parametrize("arch", ZOO_ARCHS)
def test_capabilities(arch):
    caps = small_model(arch).capabilities
    assert "cam_layer" in caps
    assert ("frame_encoder" in caps) == (arch in DECOUPLED)
    assert ("temporal_head" in caps) == (arch in DECOUPLED)
    assert ("temporal_attention" in caps) == (arch in ("cnn_transformer", "cnn_lstm_attn"))


@pytest.mark.parametrize("arch", DECOUPLED)
def test_decoupled_models_are_encoder_then_head(arch):
    model, x = small_model(arch), small_input()
    with torch.no_grad():
        whole = model(x)
        parts = model.temporal_head(model.encode_frames(x))
    assert torch.allclose(whole, parts, atol=1e-6)


@pytest.mark.parametrize("arch", DECOUPLED)
def test_changing_one_frame_changes_only_the_features_it_feeds(arch):
    """Frame t's features depend on frames t and t-1 (motion input), no others: what makes
    masking fast later."""
    model, x = small_model(arch), small_input()
    assert model.frame_context == 2
    t = 3
    masked = x.clone()
    masked[:, t] = 0
    with torch.no_grad():
        f0, f1 = model.encode_frames(x), model.encode_frames(masked)
    changed = (f0 - f1).abs().flatten(2).amax(-1)[0] > 1e-6
    assert changed.tolist() == [i in (t, t + 1) for i in range(SMALL_SPEC.frames)]


def test_without_motion_input_each_frame_is_independent():
    model, x = small_model("cnn_lstm", motion_input=False, object_readout=False), small_input()
    assert model.frame_context == 1
    masked = x.clone()
    masked[:, 2] = 0
    with torch.no_grad():
        changed = (model.encode_frames(x) - model.encode_frames(masked)).abs().amax(-1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == [2]


@pytest.mark.parametrize("arch", ["cnn_transformer", "cnn_lstm_attn"])
def test_temporal_attention_is_a_distribution_over_frames(arch):
    model = small_model(arch)
    with torch.no_grad():
        a = model.temporal_attention(small_input(batch=2))
    assert a.shape == (2, SMALL_SPEC.frames)
    assert torch.all(a >= 0) and torch.allclose(a.sum(1), torch.ones(2), atol=1e-5)


def test_cls_attention_matches_the_transformer_weights():
    """temporal_attention = last layer's CLS row, mean over heads, without the CLS column, renormalised."""
    model, x = small_model("cnn_transformer"), small_input()
    with torch.no_grad():
        maps = model.net.attention_maps(model.encode_frames(x))
        expected = maps[-1][0, :, 0, 1:].mean(0)
        got = model.temporal_attention(x)[0]
    assert len(maps) == 4 and maps[0].shape == (1, 4, SMALL_SPEC.frames + 1, SMALL_SPEC.frames + 1)
    assert torch.allclose(got, expected / expected.sum(), atol=1e-6)


def test_regression_head_answers_in_task_units():
    model = small_model("cnn_transformer", task="regression", output_offset=135.0, output_scale=135.0)
    with torch.no_grad():
        z = model.net.head(model.net.norm(torch.zeros(1, 128)))
    assert model.net.output_scale(z).item() == pytest.approx(135.0 + 135.0 * z.item())


def test_ica_lstm_attends_only_to_the_past():
    model = small_model("ica_lstm")
    inputs = torch.randn(1, 6, 64)
    attention = model.net.input_cell_attention(inputs)  # [B,T,r,T]
    assert attention.shape == (1, 6, 4, 6)
    future = torch.ones(6, 6).triu(1).bool()
    assert torch.all(attention[0].permute(1, 0, 2)[:, future] == 0)
    assert torch.allclose(attention.sum(-1), torch.ones(1, 6, 4))


@pytest.mark.parametrize("arch", ["cnn_lstm", "ica_lstm"])
def test_a_forget_bias_lets_the_last_step_hear_the_first_frame(arch):
    plain, biased = small_model(arch), small_model(arch, forget_bias=3.0)
    hidden = plain.net.lstm.hidden_size
    forget = slice(hidden, 2 * hidden)
    assert torch.equal(biased.net.lstm.bias_ih_l0[forget], torch.full((hidden,), 3.0))
    assert torch.equal(biased.net.lstm.bias_hh_l0[forget], torch.zeros(hidden))
    other = torch.cat([torch.arange(hidden), torch.arange(2 * hidden, 4 * hidden)])
    assert torch.equal(biased.net.lstm.bias_ih_l0[other], plain.net.lstm.bias_ih_l0[other])  # only that gate

    def first_over_last(model) -> float:
        """|d output / d features of frame 0| over the same for the last frame (the head's reach back)."""
        feats = model.net.encode_frames(small_input()).detach().requires_grad_(True)
        model.net.temporal_head(feats)[0].sum().backward()
        return float(feats.grad[0, 0].norm() / feats.grad[0, -1].norm())

    assert first_over_last(biased) > 5 * first_over_last(plain)


def test_layout_bcthw_is_transposed_by_the_adapter():
    spec = InputSpec(frames=8, height=64, width=64)
    model = build_model("r3d_18", labels=LABELS, input_spec=spec).eval()
    assert model.layout == "BCTHW" and model.cam_layer_name == "net.layer4"
    x = small_input()
    with torch.no_grad():
        assert torch.allclose(model(x), model.net(x.transpose(1, 2)))


def test_preprocess_normalises_and_checks_frame_count():
    model = small_model("cnn_lstm")
    frames = np.full((8, 64, 64, 3), 255, np.uint8)
    x = model.preprocess(frames)
    spec = model.input_spec
    assert x.shape == (1, 8, 3, 64, 64)
    assert torch.allclose(x[0, 0, :, 0, 0], (1 - torch.tensor(spec.mean)) / torch.tensor(spec.std))
    big = np.zeros((8, 128, 96, 3), np.uint8)
    assert model.preprocess(big).shape == (1, 8, 3, 64, 64)
    with pytest.raises(ModelError, match="takes 8"):
        model.preprocess(np.zeros((5, 64, 64, 3), np.uint8))
    assert torch.allclose(model.pixel_value(0).flatten(), -torch.tensor(spec.mean) / torch.tensor(spec.std))


def test_unknown_architecture_and_bad_config():
    with pytest.raises(ModelError, match="unknown architecture"):
        build_model("resnet9000")
    with pytest.raises(ModelError, match="bad configuration"):
        build_model("cnn_lstm", config={"wings": 2})
    assert set(ZOO_ARCHS) <= set(ARCHITECTURES)


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    model = small_model("cnn_transformer")
    save_checkpoint(model, tmp_path / "m", make_card(model, metrics={"x": 1}))
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    x = small_input()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.labels == LABELS and loaded.input_spec == SMALL_SPEC and loaded.info.card["metrics"] == {"x": 1}
    assert not loaded.training


def test_card_for_another_architecture_is_refused(tmp_path):
    model = small_model("cnn_lstm")
    save_checkpoint(model, tmp_path / "m", make_card(model))
    card = json.loads((tmp_path / "m.json").read_text())
    card["arch"] = "cnn_transformer"
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit architecture 'cnn_transformer'.*missing"):
        load_checkpoint(tmp_path / "m")


def test_card_with_other_sizes_is_refused(tmp_path):
    model = small_model("cnn_lstm")
    save_checkpoint(model, tmp_path / "m", make_card(model))
    card = json.loads((tmp_path / "m.json").read_text())
    card["labels"] = ["a", "b"]
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="other shapes"):
        load_checkpoint(tmp_path / "m")


def test_broken_checkpoints_give_clear_errors(tmp_path):
    model = small_model("r3d")
    save_checkpoint(model, tmp_path / "m", make_card(model))
    (tmp_path / "m.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "m")
    (tmp_path / "m.json").write_text("{broken")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_checkpoint(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps({"arch": "r3d"}))
    with pytest.raises(ModelError, match="lacks task, labels, input_spec"):
        load_checkpoint(tmp_path / "m")
    with pytest.raises(ModelError, match="no model card"):
        load_checkpoint(tmp_path / "nothing")


class _Payload:
    """Unpickling this runs code (it would create a file): what weights_only=True must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickles_that_need_code_are_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weights": _Payload(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.json").write_text(json.dumps(make_card(small_model("r3d"))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning text around the refusal
        with pytest.raises(ModelError, match="evil.pt is refused: it is a pickle that needs code") as refused:
            load_model(tmp_path / "evil.pt", device="cpu")
    assert not marker.exists()
    message = str(refused.value)
    assert "\n" not in message and "weights_only" not in message  # one line, no advice to switch the check off
    assert "(it calls io.open)" in message  # what the pickle would have run
    with pytest.raises(ModelError, match="model.pkl is refused: it is a pickle, which can run code when loaded"):
        load_model(tmp_path / "model.pkl", device="cpu")


class _Remover:
    """Unpickling this would delete the marker file; its function's module (posix) is one torch blocks outright."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.remove, (str(self.marker),))


def test_pickles_of_blocked_modules_and_plain_pickles_are_refused_by_name(tmp_path):
    """torch words a refusal of a blocked module's function (posix.remove) apart from other globals, and a
    pickle.dump file (not torch.save's format) fails on its first opcode: both are refused pickles."""
    marker = tmp_path / "keep"
    marker.write_text("")
    torch.save({"weights": _Remover(marker)}, tmp_path / "blocked.pt")
    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump({"weights": torch.zeros(2)}, f)
    cases = {"blocked.pt": f"a pickle that needs code to load (it calls {os.remove.__module__}.remove)",
             "plain.pt": "a plain pickle (pickle.dump, not torch.save), which can run code"}  # fmt: skip
    for name, what in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch's warning about the plain pickle's protocol stays inside
            with pytest.raises(ModelError) as refused:
                read_state_dict(tmp_path / name)
        assert str(refused.value).startswith(f"{name} is refused: it is {what}, not a safetensors checkpoint")
        assert "weights_only" not in str(refused.value) and "\n" not in str(refused.value)
    assert marker.exists()


def test_a_pt_file_that_is_no_pickle_is_called_unreadable_not_code(tmp_path):
    (tmp_path / "page.pt").write_text("<html><body>Sign in to download</body></html>")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(100))
    for name in ("page.pt", "noise.pt"):
        with pytest.raises(ModelError, match=f"{name} is not a readable PyTorch weights file") as refused:
            read_state_dict(tmp_path / name)
        message = str(refused.value)
        assert "needs code" not in message and "weights_only" not in message and "\n" not in message


def test_pt_without_tensors_is_refused(tmp_path):
    torch.save({"weights": [1, 2, 3]}, tmp_path / "m.pt")
    (tmp_path / "m.json").write_text(json.dumps(make_card(small_model("r3d"))))
    with pytest.raises(ModelError, match="does not hold a state_dict"):
        load_model(tmp_path / "m.pt", device="cpu")


def test_torchvision_video_weights_from_a_pt_file_with_a_card(tmp_path):
    """A user's own r3d_18 state_dict (torch.save) plus a card: loads strictly, same outputs."""
    spec = InputSpec(frames=8, height=64, width=64)
    model = build_model("r3d_18", labels=["a", "b", "c", "d"], input_spec=spec).eval()
    torch.save(model.net.state_dict(), tmp_path / "mine.pth")
    (tmp_path / "mine.json").write_text(json.dumps(make_card(model)))
    loaded = load_model(tmp_path / "mine.pth", device="cpu")
    x = small_input(spec=spec)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.info.arch == "r3d_18" and loaded.layout == "BCTHW"


def test_torchvision_frame_backbones_take_user_weights(tmp_path):
    import torchvision

    from xai_core.models.backbones import load_backbone_weights

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = small_model("cnn_lstm", backbone="resnet18", motion_input=False)
    skipped = load_backbone_weights(model.net.frame_encoder, tmp_path / "resnet18.pth")
    assert skipped == ["fc.weight", "fc.bias"]
    net = model.net.frame_encoder.backbone.net
    assert torch.equal(net.conv1.weight, reference.conv1.weight) and torch.equal(
        net.layer4[1].bn2.bias, reference.layer4[1].bn2.bias
    )
    assert model.frame_context == 1 and model.cam_layer_name == "net.frame_encoder.backbone.net.layer4"
    vgg = torchvision.models.vgg16(weights=None).state_dict()
    save_file({k: v.contiguous() for k, v in vgg.items()}, str(tmp_path / "vgg.safetensors"))
    with pytest.raises(ValueError, match="lacks"):
        load_backbone_weights(model.net.frame_encoder, tmp_path / "vgg.safetensors")


@pytest.mark.parametrize("backbone, cam_size", [("resnet18", 2), ("vgg16", 4)])
def test_per_frame_models_on_torchvision_backbones(backbone, cam_size):
    from xai_core import explain

    model = small_model("cnn_transformer", backbone=backbone, motion_input=False)
    expl = explain(model, small_input(), "gradcam", target=1)
    assert expl.spatial.shape == (8, 64, 64) and expl.extras["cam_lowres"].shape == (8, cam_size, cam_size)
    assert np.isfinite(expl.spatial).all()


def test_unknown_model_names_the_zoo(tiny_checkpoints):
    with pytest.raises(ModelError, match="unknown model 'nope'.*tiny_cnn_transformer"):
        load_model("nope", device="cpu")
    assert load_model("tiny_r3d", device="cpu").info.arch == "r3d"


def test_cuda_request_without_gpu_is_explained():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelError, match="no CUDA device"):
        load_model("anything", device="cuda")
