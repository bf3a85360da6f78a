"""Saved runs from the command line: `xai explain` saves and serves runs; `xai runs list | show |
export | delete`; `xai strip` writes a film strip (issue 19, points 1, 2 and 4)."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import av
import numpy as np
import pytest
from PIL import Image

from xai_core.cli import main
from xai_core.runs import RunStore

EXPLAIN = ["explain", "--model", "tiny_cnn_transformer", "--video", "shapes:4"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_explain_saves_a_run_and_serves_it_again(tiny_checkpoints, runs_dir, capsys):
    code, out, _ = run(capsys, *EXPLAIN, "--method", "gradcam")
    assert code == 0
    [record] = RunStore(runs_dir).records()
    assert f"saved as run {record.key} in {runs_dir}" in out
    assert record.model == "tiny_cnn_transformer" and record.source == "shapes:4" and record.method == "gradcam"
    code, out, _ = run(capsys, *EXPLAIN, "--method", "gradcam")
    assert code == 0 and f"from saved run {record.key[:10]}" in out
    code, out, _ = run(capsys, *EXPLAIN, "--method", "gradcam", "--recompute")
    assert code == 0 and "saved as run" in out and len(RunStore(runs_dir).records()) == 1
    code, out, _ = run(capsys, *EXPLAIN, "--method", "saliency", "--no-store", "--out", str(runs_dir.parent / "e"))
    assert code == 0 and "saved as run" not in out and len(RunStore(runs_dir).records()) == 1
    code, _, err = run(capsys, *EXPLAIN, "--method", "saliency", "--no-store")
    assert code == 2 and "--no-store needs --out" in err


def test_runs_list_show_export_delete(tiny_checkpoints, runs_dir, capsys, tmp_path):
    for method in ("gradcam", "frame_mask"):
        assert run(capsys, *EXPLAIN, "--method", method)[0] == 0
    store = RunStore(runs_dir)
    by_method = {r.method: r for r in store.records()}
    code, out, _ = run(capsys, "runs", "list")
    assert code == 0 and "2 runs in" in out and all(r.key[:12] in out for r in by_method.values())
    code, out, _ = run(capsys, "runs", "list", "--method", "frame_mask", "--json")
    listed = json.loads(out)
    assert [r["key"] for r in listed] == [by_method["frame_mask"].key]
    assert listed[0]["weights"] == by_method["frame_mask"].weights and listed[0]["device"] == "cpu"
    code, out, _ = run(capsys, "runs", "show", by_method["gradcam"].key[:8], "--json")
    assert json.loads(out)["params"] == by_method["gradcam"].params

    zip_path = tmp_path / "gradcam.zip"
    code, out, _ = run(capsys, "runs", "export", by_method["gradcam"].key[:8], "--out", str(zip_path))
    assert code == 0 and str(zip_path) in out
    expl = store.load(by_method["gradcam"].key)
    frames, padded, indices = store.clip_frames(by_method["gradcam"].key)
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        assert names == {"explanation.npz", "explanation.json", "run.json", "curve.csv", "overlay.mp4", "strip.png"}
        rows = list(csv.DictReader(io.StringIO(archive.read("curve.csv").decode())))
        assert [int(r["frame"]) for r in rows] == list(range(len(frames)))
        assert [int(r["video_frame"]) for r in rows] == list(indices)
        np.testing.assert_allclose([float(r["gradcam"]) for r in rows], expl.temporal, rtol=1e-6)
        with av.open(io.BytesIO(archive.read("overlay.mp4"))) as video:
            stream = video.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in video.decode(stream)) == len(frames)
        strip = Image.open(io.BytesIO(archive.read("strip.png")))
        assert strip.format == "PNG" and strip.width > 1500  # print resolution
        assert json.loads(archive.read("run.json"))["key"] == by_method["gradcam"].key
    code, out, _ = run(capsys, "runs", "export", by_method["frame_mask"].key, "--out", str(tmp_path / "fm.zip"))
    with zipfile.ZipFile(tmp_path / "fm.zip") as archive:  # a curve and no map: no overlay video
        assert "overlay.mp4" not in archive.namelist() and "curve.csv" in archive.namelist()

    code, out, _ = run(capsys, "runs", "delete", by_method["gradcam"].key[:8])
    assert code == 0 and by_method["gradcam"].key in out
    assert [r.method for r in RunStore(runs_dir).records()] == ["frame_mask"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["runs", "show", "abcdef0123"], "no run abcdef0123"),
        (["runs", "show", "not-a-key"], "not a run key"),
        (["runs", "delete"], "needs a run key"),
        (["runs", "export", "abc"], "--out FILE.zip"),
        (["strip", "--model", "tiny_r3d", "--video", "shapes:1", "--methods", "gradcam", "--out", "s.jpg"], ".png"),
        (
            [
                "strip",
                "--model",
                "tiny_r3d",
                "--video",
                "shapes:1",
                "--methods",
                "gradcam",
                "--curve",
                "lrp",
                "--out",
                "s.png",
            ],
            "--curve lrp must be one of",
        ),  # fmt: skip
    ],
)
def test_run_errors_are_one_line(tiny_checkpoints, runs_dir, capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_strip_writes_a_figure_and_saves_its_runs(tiny_checkpoints, runs_dir, capsys, tmp_path, suffix):
    out_file = tmp_path / f"strip{suffix}"
    code, out, _ = run(capsys, "strip", "--model", "tiny_cnn_transformer", "--video", "shapes:2", "--methods",
                       "gradcam,saliency,attention_cls", "--frames", "4", "--pick", "top", "--dpi", "120",
                       "--out", str(out_file))  # fmt: skip
    assert code == 0 and f"wrote {out_file}" in out
    head = out_file.read_bytes()[:5]
    assert head == {".png": b"\x89PNG\r", ".svg": b"<?xml", ".pdf": b"%PDF-"}[suffix]
    assert {r.method for r in RunStore(runs_dir).records()} == {"gradcam", "saliency", "attention_cls"}


def test_evaluations_from_the_command_line_are_saved_runs(tiny_checkpoints, runs_dir, capsys, tmp_path):
    code, out, _ = run(capsys, "evaluate", "--suite", "localization", "--model", "tiny_cnn_transformer",
                       "--methods", "gradcam", "--n", "1", "--out", str(tmp_path / "e"), "--quiet")  # fmt: skip
    assert code == 0
    [record] = RunStore(runs_dir).records(kind="evaluation")
    assert record.method == "localization suite" and f"saved as run {record.key}" in out
    assert record.params["methods"] == ["gradcam"] and record.source == "1 Moving Shapes clip from seed 50000"
    code, out, _ = run(capsys, "evaluate-model", "--model", "tiny_cnn_transformer", "--n", "4",
                       "--out", str(tmp_path / "q"), "--quiet")  # fmt: skip
    assert code == 0 and {r.method for r in RunStore(runs_dir).records(kind="evaluation")} == {
        "localization suite", "model quality"}  # fmt: skip
    code, out, _ = run(capsys, "evaluate-model", "--model", "tiny_cnn_transformer", "--n", "4", "--no-store",
                       "--out", str(tmp_path / "q2"), "--quiet")  # fmt: skip
    assert code == 0 and "saved as run" not in out and len(RunStore(runs_dir).records()) == 2
