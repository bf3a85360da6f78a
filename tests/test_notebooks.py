"""Every notebook runs top to bottom on the CPU (nbclient), so none can rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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
        assert "refused:" in text and "this would have run" not in text  # the pickle's code never ran
