"""Every notebook runs top to bottom on the CPU (nbclient), so none can rot."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import xai_core

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def run_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    # Importing streamlit (the app tests do) sets MPLBACKEND=Agg in this process; a kernel that
    # inherited it would draw no inline figures, unlike a user's Jupyter.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["00_quickstart.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    nb = run_notebook(path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.name == "00_quickstart.ipynb":
        text = outputs_text(nb)
        assert "(32, 112, 112)" in text  # the explanation's spatial map [T,H,W]
        assert "explanation.npz" in text and "gradcam.mp4" in text
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) >= 4  # frames, curve, overlays, real clip
    if path.name == "01_models.ipynb":
        text = outputs_text(nb)
        assert "cnn_transformer-sides" in text and "python -m xai_core train" in text  # the zoo and a card
        assert "'layout': 'BTCHW'" in text and "'cam_layer': 'net.features.3'" in text  # inferred for the factory
        assert text.count("Grad-CAM map (16, 64, 64)") == 2  # a Moving Shapes clip and a real clip
        assert "BCTHW net.layer4" in text  # torchvision r3d_18 by name
        assert "modules in training mode after loading: []" in text
        assert "same map: True | set-up kept: True" in text  # eval-mode maps; each module's flag handed back
        assert "refused:" in text and "this would have run" not in text  # the pickle's code never ran
    if path.name == "06_your_model.ipynb":
        text = outputs_text(nb)
        assert "frames:mobilenet_v2" in text and "net.image_net.features.18.0" in text
        assert re.search(r"^clip: .+ \(\d+\.\d%\)$", text, re.MULTILINE) and "each frame: [" in text
        for method in ("gradcam", "integrated_gradients", "occlusion", "frame_mask", "tsr", "flow_gradient", "lrp"):
            assert re.search(rf"^{method} +[\d.]+ s (map|curve)$", text, re.MULTILINE), method
        assert "BCTHW" in text and "gradcam: map (8, 64, 64)" in text and "lrp: map (8, 64, 64)" in text
        # LRP through networks it has no rules written for: the graph pass, nothing left without a rule
        assert text.count("graph pass: the network's forward traced") == 2 and "no rule for: nothing" in text
        score, shares = re.search(r"^score (-?[\d.]+) = frames' shares \[.*\] \(sum (-?[\d.]+)\)$", text, re.M).groups()
        assert float(score) == pytest.approx(float(shares), abs=2e-3)
    if path.name == "07_batch.ipynb":
        text = outputs_text(nb)
        assert "48 done before; 0 computed" in text  # started again: nothing recomputed
        assert "48 rows; {'ok': 48}" in text
        assert "same curve: True" in text and "same map: True" in text
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) == 1
    if path.name == "05_runs_and_figures.ipynb":
        text = outputs_text(nb)
        assert "served from the store: True | same run: True | same map: True" in text
        assert text.count("cpu") >= 3 and "wrote strip.pdf" in text  # three runs listed; the strip written
        assert "'curve.csv', 'explanation.json', 'explanation.npz', 'overlay.mp4', 'run.json', 'strip.png'" in text
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) == 2  # the strip and the comparison, inline
        assert "difference map (32, 112, 112)" in text
    if path.name == "03_temporal.ipynb":
        text = outputs_text(nb)
        # what the notebook's text says of its clip: masking one frame at a time, with any baseline, ranks the
        # 14 pause frames below chance (the answer survives losing any one of them); TSR ranks them high
        masked = re.findall(r"(blur|zero|previous): 32 clips in [\d.]+ s; pause frames' mean rank ([\d.]+)", text)
        assert [b for b, _ in masked] == ["blur", "zero", "previous"] and all(float(r) < 0.5 for _, r in masked)
        tsr = re.findall(
            r"tsr(?:_onestep)?: \d+ saliency maps' worth in [\d.]+ s \(GradientChange\); pause frames' mean rank "
            r"([\d.]+)",
            text,
        )
        assert len(tsr) == 2 and all(float(r) > 0.65 for r in tsr)  # well above chance, the fast exact engine
        assert re.search(r"tsr: [\d,]+ model evaluations, about [\d.]+ s here \(gradient engine: \d+ Jacobian", text)
        insertion = re.search(r"insertion AUC ([\d.]+) \(random ([\d.]+)\)", text)
        assert insertion and float(insertion[1]) > float(insertion[2])
        assert "| `frame_mask` (positive) |" in text
        assert re.search(r"accuracy \d+% as they are; with one frame masked: lowest \d+%", text)
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) >= 4  # frames, curves, the TSR map, deletion / insertion
    if path.name == "04_motion.ipynb":
        text = outputs_text(nb)
        rebuilt = re.search(r"rebuild error: ([\d.e+-]+) \(float32\)", text)
        assert rebuilt and float(rebuilt[1]) < 1e-4  # the decomposition gives the clip back
        direction = re.search(r"direction error at the top flow-gradient pixels: ([\d.]+) deg", text)
        assert direction and float(direction[1]) < 45  # a random direction: 90 on average
        angle = re.search(r"angle model: motion share ([\d.]+)", text)
        sides = re.search(r"sides model: motion share ([\d.]+)", text)
        assert angle and sides
        lone = dict(re.findall(r"(angle model|sides model without motion): motion share [\d.]+, motion reliance "
                               r"[\d.]+, score change without motion ([\d.]+)%", text))  # fmt: skip
        assert float(lone["sides model without motion"]) < 5 < float(lone["angle model"])  # a still clip
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) >= 3  # the maps, the motion-share curves, the trajectories
    if path.name == "02_methods.ipynb":
        text = outputs_text(nb)
        model = xai_core.load_model("cnn_transformer-sides", device="cpu")
        # every method the model supports explained the clip, in the notebook's own checks
        assert f"explained by: {', '.join(xai_core.list_methods(model))}\n" in text
        assert f"{len(xai_core.list_methods(model))} methods, every map (32, 112, 112), every curve 32 points" in text
        # the unsupported ones are named with their reason, and explain() refuses them
        assert "unavailable: lrp needs a model with lrp rules; cnn_transformer-sides has none" in text
        assert "explain() refused: lrp needs" in text
        lrp_models = [n for n in ("cnn_lstm-sides", "r3d-sides") if n in xai_core.zoo_names()]
        assert lrp_models and all(f"{n}: predicts" in text for n in lrp_models)
        assert text.count("LRP curves of 32 points, conservation") == len(lrp_models)
        if any(n in xai_core.zoo_names() for n in ("cnn_transformer-angle", "r3d-angle")):
            found = re.search(r"= ([-+][\d.]+); correlation of the two signed maps: ([-+][\d.]+)", text)
            assert found and abs(float(found[2])) > 0.999  # Grad-CAM for a reference: the output's map, rescaled
            assert (float(found[1]) > 0) == (float(found[2]) > 0)
        else:
            assert "skipped: the zoo has no angle model" in text
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) >= 4  # the maps, the shared timeline, the LRP curves, the conservation bars
        # the evaluation suites: Grad-CAM on the shape, the attention on the pause
        # localisation beside the randomised model: the learned weights find the shape, a random copy does not
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("| `gradcam` (positive) | "))
        header = next(lines[i] for i in range(at, -1, -1) if lines[i].startswith("| method | "))
        titles, values = ([c.strip() for c in line.strip("|").split("|")] for line in (header, lines[at]))
        cells = dict(zip(titles, values, strict=True))
        percent = {title: float(value.split("%")[0]) for title, value in cells.items() if "%" in value}
        assert percent["peak on shape"] >= percent["randomised: peak on shape"] + 20, cells
        assert percent["pointing game"] >= 80 and percent["pointing game"] >= percent["randomised: pointing game"] + 20
        learned_and_gated = r"gradcam: trained vs randomised maps, Spearman ([-\d.]+) \(learned\) against ([-\d.]+)"
        found = re.search(learned_and_gated, text)
        assert found and float(found[1]) < 0.3 and float(found[2]) > 0.5  # the gated model's maps survive
        found = re.search(r"pause frames' mean rank: attention ([\d.]+), Grad-CAM ([\d.]+)", text)
        assert found and float(found[1]) > 0.65 and float(found[2]) > 0.65  # both see the pause (0.85 each)
