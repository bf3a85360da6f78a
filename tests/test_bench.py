"""The performance suite (``python -m xai_core bench``: the package's xai_core/bench/, also run by
benchmarks/suite.py) on a zoo of small random models: what it measures, the peers' agreement and the
report.  Speed itself is never asserted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import small_model

import xai_core
from xai_core.cli import main
from xai_core.methods.machinery.registry import get_method
from xai_core.models.checkpoint import make_card, save_checkpoint

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "suite.py"
ZOO = {"cnn_transformer-sides": "cnn_transformer", "r3d-sides": "r3d", "cnn_lstm-sides": "cnn_lstm"}
PEERS = {
    "gradcam",
    "gradcam_pp",
    "guided_gradcam",
    "saliency",
    "input_x_gradient",
    "smoothgrad",
    "integrated_gradients",
}
TARGET = (
    "every spatial method except integrated_gradients and smoothgrad under 1 s per clip on this CPU "
    "for the default zoo model"
)


def load_suite():
    spec = importlib.util.spec_from_file_location("bench_suite_under_test", SUITE)
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    return suite


@pytest.fixture
def small_zoo(tmp_path, monkeypatch):
    """The zoo's names for small random models (8 frames of 64x64); no cnn_lstm-pause."""
    folder = tmp_path / "zoo"
    for name, arch in ZOO.items():
        model = small_model(arch)
        model.info.name = name
        save_checkpoint(model, folder / name, make_card(model))
    monkeypatch.setenv("XAI_CHECKPOINTS", str(folder))
    return folder


def test_quick_bench_measures_every_method_of_the_default_model(small_zoo, tmp_path, capsys):
    threads = torch.get_num_threads()
    out, markdown = tmp_path / "bench", tmp_path / "REPORT.md"
    assert main(["bench", "--quick", "--threads", "1", "--out", str(out), "--markdown", str(markdown)]) == 0
    assert torch.get_num_threads() == threads  # restored
    results = json.loads((out / "bench.json").read_text())
    assert results["quick"] is True and results["machine"]["torch_threads"] == 1
    methods = results["methods"]

    supported = xai_core.list_methods(xai_core.load_model("cnn_transformer-sides", device="cpu"))
    assert {"gradcam", "smoothgrad", "integrated_gradients", "attention_rollout"} <= set(supported)
    assert methods["supported_by_default_model"] == supported
    rows = [r for r in methods["rows"] if r["model"] == "cnn_transformer-sides"]
    long = {"frame_mask", "occlusion", "tsr", "tsr_onestep"}  # measured in the temporal section
    supported = [name for name in supported if name not in long]
    assert sorted(r["method"] for r in rows) == sorted(supported)
    for r in rows:
        assert r["ours"]["median"] > 0 and r["explain_call"]["median"] > 0 and r["ours"]["runs"] == 1
        assert r["params"] == get_method(r["method"]).resolve_params({})  # defaults
        exempt = r["method"] in ("integrated_gradients", "smoothgrad")
        if r["method"] == "flow_gradient":
            verdict = "meets" if r["explain_call"]["median"] < 1.0 else "misses"
            assert r["speed_target"] == f"{verdict} (issue 6)"
            assert "optical-flow decomposition" in r["no_peer"]
        elif r["family"] != "spatial":
            assert r["speed_target"] == f"n/a ({r['family']})"
        elif exempt:
            assert r["speed_target"] == "exempt"
        else:
            assert r["speed_target"] == ("meets" if r["explain_call"]["median"] < 1.0 else "misses")

    # Peers computing the same map agree with ours before they are timed.
    by_method = {r["method"]: r for r in rows}
    peers = {name: r["peer"] for name, r in by_method.items() if "peer" in r}
    assert set(peers) == PEERS
    for name, peer in peers.items():
        if name != "gradcam_pp":  # pytorch-grad-cam's epsilon may decide its weights on some models
            assert peer["timed"] and peer["max_relative_difference"] <= 1e-3, name
        if peer["timed"]:
            ours = by_method[name]["ours"]["median"]
            assert peer["ratio"] == pytest.approx(peer["seconds"]["median"] / ours)
    r3d = [r for r in methods["rows"] if r["model"] == "r3d-sides"]
    assert {r["method"] for r in r3d if "peer" in r} == PEERS
    assert all(r["peer"]["timed"] for r in r3d if "peer" in r and r["method"] != "gradcam_pp")

    # LRP: both composites on each zoo model with LRP rules; a missing checkpoint is skipped quietly.
    lrp = {(r["model"], r["params"]["composite"]) for r in methods["rows"] if r["method"] == "lrp"}
    assert lrp == {(m, c) for m in ("r3d-sides", "cnn_lstm-sides") for c in ("epsilon_plus_flat", "epsilon")}
    assert methods["lrp_models"] == ["r3d-sides", "cnn_lstm-sides"]
    assert methods["lrp_models_missing"] == ["cnn_lstm-pause"]
    assert {r["model"] for r in results["models"]} == set(ZOO)

    text = markdown.read_text()
    assert text == (out / "BENCHMARKS.md").read_text()
    assert TARGET in text
    section = text.split("### cnn_transformer-sides (default model)")[1].split("###")[0]
    for name in supported:
        line = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
        status = next(r["speed_target"] for r in rows if r["method"] == name)
        assert line.endswith(f"| {status} |")
    assert "no checkpoint for `cnn_lstm-pause`" in text
    assert "**Target (issue 6)" in text and {"flow_gradient", "smoothflow", "trajectories"} <= set(by_method)
    assert "wrote" in capsys.readouterr().out

    # Temporal: each method against its slow peer on the default model and r3d, the same values.
    temporal = {(r["model"], r["method"]): r for r in results["temporal"]}
    assert set(temporal) == {
        (m, k) for m in ("cnn_transformer-sides", "r3d-sides") for k in ("occlusion", "frame_mask", "tsr")
    }
    for (model, method), r in temporal.items():
        assert r["ratio"] == pytest.approx(r["peer_seconds"]["median"] / r["ours"]["median"])
        assert r["max_difference_over_range"] < 1e-2, (model, method)  # float32 on tiny score ranges
        assert (r["target_ratio"] is not None) == (model == "cnn_transformer-sides")
    assert temporal[("cnn_transformer-sides", "occlusion")]["evaluations"] == 8 * 7 * 7  # 64 px in 10-px windows
    assert temporal[("cnn_transformer-sides", "occlusion")]["engine"] == "split"
    assert temporal[("r3d-sides", "tsr")]["engine"] == "BatchedGradients"  # several masked clips a backward pass
    assert "## Temporal saliency" in text and "| r3d-sides | `tsr` |" in text
    assert "kept from that run" not in text

    # --keep: the slow sections come from this run's bench.json, with its date; the rest is new.
    assert main(["bench", "--quick", "--threads", "1", "--out", str(out), "--keep", "temporal,video"]) == 0
    again = json.loads((out / "bench.json").read_text())
    assert again["temporal"] == results["temporal"] and again["video"] == results["video"]
    assert again["methods"]["rows"] != results["methods"]["rows"]  # measured again (times differ)
    stamp = f"{results['when']} on {results['machine']['cpu']}, 1 torch threads"
    assert again["kept"] == {"temporal": stamp, "video": stamp}
    report = (out / "BENCHMARKS.md").read_text()
    assert report.count(f"Measured {stamp} (kept from that run with `--keep`).") == 2
    capsys.readouterr()
    assert main(["bench", "--out", str(out), "--keep", "models"]) != 0
    assert "--keep takes temporal, video, not models" in capsys.readouterr().err
    assert main(["bench", "--out", str(tmp_path / "empty"), "--keep", "video"]) != 0
    assert "run the whole suite once" in capsys.readouterr().err


def test_speed_target_status_and_report():
    suite = load_suite()
    row = {"family": "spatial", "method": "gradcam", "explain_call": {"median": 0.999}}
    assert suite.target_status(row) == "meets"
    assert suite.target_status({**row, "explain_call": {"median": 1.0}}) == "misses"
    assert suite.target_status({**row, "method": "smoothgrad"}) == "exempt"
    assert suite.target_status({**row, "family": "temporal"}) == "n/a (temporal)"
    assert suite.target_status({**row, "family": "motion", "method": "flow_gradient"}) == "meets (issue 6)"
    assert suite.target_status({**row, "family": "motion", "method": "smoothflow"}) == "n/a (motion)"
    with pytest.raises(ValueError, match="--threads"):
        suite.main("unused", threads=0)


def test_the_report_copies_the_quality_tables_under_their_commands(tmp_path):
    """BENCHMARKS.md carries the quality measurements found in the results folder, each under the
    command that makes it; a folder without any adds nothing."""
    suite = load_suite()
    assert suite.quality_markdown(tmp_path) == []
    (tmp_path / "motion.md").write_text("| model | motion reliance |\n|---|---|\n| m | 0.97 |\n")
    text = "\n".join(suite.quality_markdown(tmp_path))
    assert text.count("### ") == 1 and "### Motion explanations against the ground truth" in text
    assert "`python benchmarks/motion.py` (benchmarks/results/motion.md)" in text and "| m | 0.97 |" in text
    stems = [stem for stem, _, _ in suite.QUALITY]
    root = Path(suite.__file__).resolve().parent
    for _, _, command in suite.QUALITY:  # every command names a script that exists
        assert (root.parent / command.split()[1]).is_file(), command
    for stem in stems:  # and the committed report has every table the repository holds
        if (root / "results" / f"{stem}.md").is_file():
            assert (root / "results" / f"{stem}.md").read_text().strip() in (root.parent / "BENCHMARKS.md").read_text()
