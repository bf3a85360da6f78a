"""The command line: each command's output, files and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from xai_core.cli import main
from xai_core.data.moving_shapes import generate


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_the_zoo(tiny_checkpoints, capsys):
    code, out, _ = run(capsys, "models", "--json")
    names = {m["name"] for m in json.loads(out)}
    assert code == 0 and names == {"tiny_cnn_transformer", "tiny_r3d"}
    code, out, _ = run(capsys, "models")
    assert "tiny_r3d" in out and "classification" in out


def test_methods_by_model(tiny_checkpoints, capsys):
    code, out, _ = run(capsys, "methods", "--json")
    assert code == 0 and "gradcam" in {m["name"] for m in json.loads(out)}
    code, out, _ = run(capsys, "methods", "--model", "tiny_r3d", "--json")
    gradcam = next(m for m in json.loads(out) if m["name"] == "gradcam")
    assert gradcam["available"] is True and gradcam["params"][0]["name"] == "layer"


def test_predict_json(tiny_checkpoints, capsys):
    code, out, _ = run(capsys, "predict", "--model", "tiny_cnn_transformer", "--video", "shapes:3", "--json")
    result = json.loads(out)
    assert code == 0 and result["label"] in result["labels"]
    assert sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert len(result["frame_indices"]) == 8  # sampled to the tiny model's 8 frames


def test_explain_writes_explanation_and_h264_overlay(tiny_checkpoints, tmp_path, capsys):
    out_dir, overlay = tmp_path / "e", tmp_path / "overlay.mp4"
    code, out, err = run(
        capsys,
        "explain",
        "--model",
        "tiny_r3d",
        "--video",
        "shapes:4",
        "--method",
        "gradcam",
        "--target",
        "square",
        "--out",
        str(out_dir),
        "--overlay",
        str(overlay),
    )
    assert code == 0, err
    record = json.loads((out_dir / "explanation.json").read_text())
    assert record["target"]["label"] == "square" and record["method"] == "gradcam"
    assert len(record["frame_indices"]) == 8
    with np.load(out_dir / "explanation.npz") as npz:
        assert npz["spatial"].shape == (8, 64, 64) and npz["temporal"].shape == (8,)
    with av.open(str(overlay)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    assert len(decoded) == 8
    # drawn in the default style, 3x enlarged, each frame with its colour bar (H.264 is lossy)
    import xai_core
    from xai_core.display import Style
    from xai_core.render import styled_overlays

    model = xai_core.load_model("tiny_r3d", device="cpu")
    clip = xai_core.load_video("shapes:4", model=model)
    with np.load(out_dir / "explanation.npz") as npz:
        expected = styled_overlays(clip.frames, npz["spatial"], Style(), zoom=3)
    assert decoded.shape == expected.shape == (8, 192, 192 + 4 + 64, 3)
    assert np.abs(decoded.astype(float) - expected).mean() < 6
    assert "wrote" in out


def test_explain_overlay_style_is_checked_before_the_model_loads(tiny_checkpoints, tmp_path, capsys):
    argv = [
        "explain",
        "--model",
        "tiny_r3d",
        "--video",
        "shapes:4",
        "--method",
        "gradcam",
        "--out",
        str(tmp_path / "e"),
    ]
    argv += ["--overlay", str(tmp_path / "o.gif")]
    code, _, err = run(capsys, *argv, "--show", "signed", "--cmap", "turbo")
    assert code != 0 and "signed maps need a diverging colour map (bwr, orange-purple)" in err
    code, _, err = run(capsys, *argv, "--contrast", "99")
    assert code != 0 and "--contrast takes LOW,HIGH percentiles (e.g. 5,99), got '99'" in err
    assert not (tmp_path / "e").exists()  # refused before anything ran
    code, _, err = run(capsys, *argv, "--show", "signed", "--scale", "clip", "--contrast", "0,100", "--no-colorbar")
    assert code == 0, err
    from PIL import Image

    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.size == (192, 192) and gif.n_frames == 8  # no colour bar


def test_explain_gif_and_params(tiny_checkpoints, tmp_path, capsys):
    code, _, err = run(
        capsys,
        "explain",
        "--model",
        "tiny_cnn_transformer",
        "--video",
        "shapes:4",
        "--method",
        "gradcam",
        "--param",
        "layer=net.frame_encoder.backbone.features.1",
        "--out",
        str(tmp_path / "e"),
        "--overlay",
        str(tmp_path / "o.gif"),
    )
    assert code == 0, err
    assert (tmp_path / "o.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    record = json.loads((tmp_path / "e" / "explanation.json").read_text())
    assert record["params"]["layer"] == "net.frame_encoder.backbone.features.1"


@pytest.mark.parametrize(
    ("model", "method", "params", "expected"),
    [
        ("tiny_r3d", "lrp", ["composite=epsilon", "epsilon=0.5"], {"composite": "epsilon", "epsilon": 0.5}),
        ("tiny_r3d", "integrated_gradients", ["steps=4", "baseline=blur"], {"steps": 4, "baseline": "blur"}),
        ("tiny_cnn_transformer", "smoothgrad", ["samples=2", "sigma=0.1"], {"samples": 2, "sigma": 0.1}),
        ("tiny_cnn_transformer", "attention_rollout", ["keep=0.5"], {"keep": 0.5}),
        ("tiny_cnn_transformer", "flow_gradient", ["winsize=9"], {"winsize": 9}),
    ],
)
def test_explain_every_method_family(tiny_checkpoints, tmp_path, capsys, model, method, params, expected):
    argv = ["explain", "--model", model, "--video", "shapes:4", "--method", method, "--out", str(tmp_path / "e")]
    code, out, err = run(capsys, *argv, *[a for p in params for a in ("--param", p)])
    assert code == 0, err
    record = json.loads((tmp_path / "e" / "explanation.json").read_text())
    assert record["method"] == method and {k: record["params"][k] for k in expected} == expected
    with np.load(tmp_path / "e" / "explanation.npz") as npz:
        assert npz["temporal"].shape == (8,) and np.isfinite(npz["temporal"]).all()
        assert ("spatial" in npz.files) == (method != "attention_rollout")
    if method == "flow_gradient":  # the decomposition's parts come with the maps
        with np.load(tmp_path / "e" / "explanation.npz") as npz:
            assert npz["flows"].shape == (7, 2, 64, 64) and npz["motion_share"].shape == (7,)
        said = re.search(r"motion reliance (\d+)%: score (\S+), nothing moving (\S+), no warp errors (\S+)", out)
        reliance, score, still, exact = (float(v) for v in said.groups())
        meta = record["meta"]
        assert abs(reliance - 100 * meta["motion_reliance"]) <= 0.5 + 1e-9
        assert score == pytest.approx(meta["score"], rel=1e-3)
        assert (still, exact) == pytest.approx((meta["without_motion"], meta["without_errors"]), rel=1e-3)
    if method == "attention_rollout":  # a temporal method has no map to overlay: one clear line
        code, _, err = run(capsys, *argv, "--overlay", str(tmp_path / "o.mp4"))
        assert code != 0 and "attention_rollout gives no spatial map to overlay" in err
    if method == "lrp":  # not for the transformer, and the CLI says why
        argv[2] = "tiny_cnn_transformer"
        code, _, err = run(capsys, *argv)
        assert code != 0 and "lrp needs a model with lrp rules" in err


def test_shapes_writes_clips_and_ground_truth(tmp_path, capsys):
    code, _, _ = run(
        capsys, "shapes", "--out", str(tmp_path), "--n", "2", "--seed", "5", "--noise", "8", "--distractors", "2"
    )
    assert code == 0
    reference = generate(6, noise=8, distractors=2)
    assert np.array_equal(np.load(tmp_path / "shapes_6.npy"), reference.video)
    with np.load(tmp_path / "shapes_6_truth.npz") as truth:
        assert np.array_equal(truth["target_masks"], reference.target_masks)
        assert truth["flow"].shape == (31, 2, 112, 112)
    meta = json.loads((tmp_path / "shapes_6.json").read_text())
    assert meta["sides"] == reference.sides and meta["angle"] == pytest.approx(reference.angle)
    assert [c["seed"] for c in json.loads((tmp_path / "index.json").read_text())] == [5, 6]
    with av.open(str(tmp_path / "shapes_5.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--model", "tiny_r3d", "--video", "missing.mp4"], "missing.mp4"),
        (["predict", "--model", "nope", "--video", "shapes:1"], "unknown model 'nope'"),
        (
            ["explain", "--model", "tiny_r3d", "--video", "shapes:1", "--method", "lrp_magic", "--out", "x"],
            "unknown method 'lrp_magic'",
        ),
        (
            [
                "explain",
                "--model",
                "tiny_r3d",
                "--video",
                "shapes:1",
                "--method",
                "gradcam",
                "--target",
                "9",
                "--out",
                "x",
            ],
            "out of range",
        ),
        (
            [
                "explain",
                "--model",
                "tiny_r3d",
                "--video",
                "shapes:1",
                "--method",
                "gradcam",
                "--param",
                "layer",
                "--out",
                "x",
            ],
            "key=value",
        ),
        (
            [
                "explain",
                "--model",
                "tiny_r3d",
                "--video",
                "shapes:1",
                "--method",
                "gradcam",
                "--out",
                "x",
                "--overlay",
                "o.avi",
            ],
            ".mp4 or .gif",
        ),
        (["predict", "--model", "tiny_r3d", "--video", "shapes:x"], "integer"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(tiny_checkpoints, capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_corrupt_video_is_one_line(tiny_checkpoints, capsys, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(5000))
    code, _, err = run(capsys, "predict", "--model", "tiny_r3d", "--video", str(bad))
    assert code == 2 and "broken.mp4" in err and err.count("\n") == 1


def test_module_entry_point_exit_code(tiny_checkpoints, tmp_path):
    """The real `python -m xai_core` process: stderr one line, status 2."""
    env = {**os.environ, "XAI_CHECKPOINTS": str(tiny_checkpoints)}
    result = subprocess.run(
        [sys.executable, "-m", "xai_core", "predict", "--model", "tiny_r3d", "--video", str(tmp_path / "none.avi")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "none.avi" in result.stderr


def test_explain_with_the_temporal_methods(tiny_checkpoints, tmp_path, capsys):
    """frame_mask (temporal: no overlay), occlusion with window and stride triples, tsr with its
    extras; a malformed triple is one clear line."""
    out = tmp_path / "fm"
    code, _, err = run(capsys, "explain", "--model", "tiny_cnn_transformer", "--video", "shapes:4", "--method",
                       "frame_mask", "--param", "window=2", "--param", "baseline=previous",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    with np.load(out / "explanation.npz") as npz:
        assert npz["temporal"].shape == (8,) and npz["window_drops"].shape == (7,) and "spatial" not in npz.files
    code, _, err = run(capsys, "explain", "--model", "tiny_cnn_transformer", "--video", "shapes:4", "--method",
                       "occlusion", "--param", "window=1,16,16", "--param", "stride=1,16,16", "--out",
                       str(tmp_path / "oc"), "--overlay", str(tmp_path / "oc.gif"))  # fmt: skip
    assert code == 0, err
    record = json.loads((tmp_path / "oc" / "explanation.json").read_text())
    assert record["params"]["window"] == [1, 16, 16] and record["meta"]["evaluations"] == 8 * 4 * 4
    code, _, err = run(capsys, "explain", "--model", "tiny_r3d", "--video", "shapes:4", "--method", "tsr",
                       "--param", "block=32", "--out", str(tmp_path / "tsr"))  # fmt: skip
    assert code == 0, err
    with np.load(tmp_path / "tsr" / "explanation.npz") as npz:
        assert npz["spatial"].shape == (8, 64, 64) and npz["feature_relevance"].shape == (8, 4)
    code, _, err = run(capsys, "explain", "--model", "tiny_r3d", "--video", "shapes:4", "--method", "occlusion",
                       "--param", "window=1,10", "--out", str(tmp_path / "bad"))  # fmt: skip
    assert code == 2 and err.strip() == (
        "error: parameter 'window' of occlusion must be 3 integers (e.g. 1,10,10), got '1,10'"
    )
    code, _, err = run(capsys, "explain", "--model", "tiny_r3d", "--video", "shapes:4", "--method", "frame_mask",
                       "--out", str(tmp_path / "fm2"), "--overlay", str(tmp_path / "x.gif"))  # fmt: skip
    assert code == 2 and "frame_mask gives no spatial map to overlay" in err


# ---------------------------------------------------------------------------- start-up: what a command imports
ROOT = Path(__file__).resolve().parents[1]
# Runs `python -m xai_core ARGS` inside a fresh interpreter, then says which heavy packages it imported.
PROBE = r"""
import json, runpy, sys
sys.argv = ["xai", *json.loads(sys.argv[1])]
try:
    runpy.run_module("xai_core", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "captum", "zennit"})
print("PROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def probe(argv: list[str]) -> tuple[dict, str]:
    """Run the command line in a fresh interpreter of this checkout: ({"code", "heavy"}, stderr)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))
    return json.loads(line[len("PROBE ") :]), done.stderr


def test_help_and_the_method_list_import_no_torch():
    for argv in (["--help"], ["methods"], ["methods", "--json"], ["methods", "--cards"], ["predict", "--help"]):
        result, err = probe(argv)
        assert result == {"code": 0, "heavy": []}, (argv, err)


@pytest.mark.parametrize("kind", ["empty", "corrupt", "missing", "bad shapes spec"])
@pytest.mark.parametrize("command", ["predict", "explain"])
def test_a_video_that_cannot_be_read_is_said_before_torch_is_imported(tmp_path, command, kind):
    video = {"empty": tmp_path / "empty.mp4", "corrupt": tmp_path / "broken.mp4", "missing": tmp_path / "none.mp4"}
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    source = str(video.get(kind, "shapes:seven"))
    argv = [command, "--model", "cnn_transformer-sides", "--video", source]
    argv += ["--method", "gradcam", "--out", str(tmp_path / "out")] if command == "explain" else []
    result, err = probe(argv)
    said = {
        "empty": "the file is empty",
        "corrupt": "not a readable video (corrupt or unknown format)",
        "missing": "no such file or folder",
        "bad shapes spec": "the seed after 'shapes:' must be an integer",
    }[kind]
    assert result == {"code": 2, "heavy": []}
    assert err.startswith("error: ") and err.count("\n") == 1 and said in err and source in err


def test_the_probe_sees_torch_when_a_command_loads_a_model():
    """The checks above can fail: a command that gets as far as the zoo imports torch."""
    result, err = probe(["predict", "--model", "no-such-model", "--video", "shapes:1"])
    assert result["code"] == 2 and "torch" in result["heavy"] and "unknown model 'no-such-model'" in err


def test_methods_without_a_model_lists_every_registered_method(capsys):
    from xai_core.methods.machinery.registry import method_specs

    code, out, _ = run(capsys, "methods")
    rows = out.splitlines()[1:]
    assert code == 0 and [row.split()[0] for row in rows] == [s.name for s in method_specs()]
    occlusion = next(row for row in rows if row.startswith("occlusion "))
    assert "window=(1, 10, 10), stride=(1, 10, 10)" in occlusion  # defaults as the registry states them


class _Remover:
    """Unpickling this would delete the marker file (posix.remove)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.remove, (str(self.marker),))


def test_a_refused_pickle_checkpoint_is_one_line_and_nothing_else(tmp_path):
    """The whole output of `python -m xai_core` for a pickle that would run code: no torch warning, no advice
    to turn weights_only off, nothing on stdout."""
    import torch
    from conftest import small_model

    from xai_core.models.checkpoint import make_card

    marker = tmp_path / "keep"
    marker.write_text("")
    torch.save({"weights": _Remover(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.json").write_text(json.dumps(make_card(small_model("r3d"))))
    done = subprocess.run(
        [sys.executable, "-m", "xai_core", "predict", "--model", str(tmp_path / "evil.pt"), "--video", "shapes:1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: evil.pt is refused: it is a pickle that needs code to load (it calls {os.remove.__module__}.remove), "
        "not a safetensors checkpoint, and is not loaded. Convert it where you trust it: save its state_dict as "
        "NAME.safetensors (safetensors.torch.save_file), plus a NAME.json model card for a checkpoint\n"
    )
    assert marker.exists()


def test_explain_plan_prints_the_cost_of_a_long_method_and_writes_nothing(tiny_checkpoints, tmp_path, capsys):
    """`xai explain --plan`: the plan the Temporal page shows (evaluations, estimate, the engine
    timed), then stop; a method without a plan is one clear line."""
    code, out, err = run(capsys, "explain", "--model", "tiny_cnn_transformer", "--video", "shapes:4", "--method",
                         "tsr", "--param", "block=32", "--plan", "--out", str(tmp_path / "e"))  # fmt: skip
    assert code == 0, err
    assert re.fullmatch(
        r"tsr on tiny_cnn_transformer: \d+ model evaluations, about [\d.]+ s here \(gradient engine: \d+ Jacobian "
        r"passes \([\d.]+ s\), then \d+ masks of \d+ ms\)\n",
        out,
    ), out
    code, out, err = run(capsys, "explain", "--model", "tiny_r3d", "--video", "shapes:4", "--method", "occlusion",
                         "--param", "window=1,16,16", "--param", "stride=1,16,16", "--plan")  # fmt: skip
    assert code == 0 and out.startswith("occlusion on tiny_r3d: 128 model evaluations, about "), err
    code, out, err = run(capsys, "explain", "--model", "tiny_r3d", "--video", "shapes:4", "--method", "gradcam",
                         "--plan")  # fmt: skip
    assert code == 2 and err.strip() == (
        "error: no plan for gradcam: plans are made for frame_mask, occlusion, tsr_onestep, tsr"
    )
    assert not (tmp_path / "e").exists()  # --plan with --out: the plan only, nothing written
