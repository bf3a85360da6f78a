"""Users' models with batch norm and dropout, loaded as a user would, before and after explanations
(issue 15): ``python benchmarks/modes.py``.

For each model: which modules are in training mode after loading and after one ``explain``; how
far two direct forward passes of the same clip differ after that explanation (a notebook's
``model(x)``); whether two explanations in a row are equal; and how far our occlusion is from
Captum's Occlusion run on the same model after the explanation, in float64, as
max |ours - Captum| / (max - min of Captum's).  The models: a ShuffleNet-style 3D CNN (grouped and
depthwise convs, channel shuffle, batch norm, dropout; running statistics from a few batches) and
ImageNet MobileNetV2 with its real weights (../shared/models) run on every frame of a real clip.
Writes results/modes.md (and .json).  Uses only the public API, so it also runs against an older
checkout (``PYTHONPATH=OLD python benchmarks/modes.py --out DIR``) to show what the issue was.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from captum.attr import Occlusion

import xai_core
from xai_core.video import sample_clips

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
BYO = TESTS / "byo_models.py"
sys.path.insert(0, str(TESTS))
import byo_models  # noqa: E402

IMAGENET = byo_models.IMAGENET


def training(model: torch.nn.Module) -> int:
    """How many modules are in training mode (written here: older checkouts have no models.modes)."""
    return sum(m.training for m in model.modules())


def shuffle_3d(folder: Path):
    net = byo_models.with_running_statistics(byo_models.shuffle_3d(), (2, 3, 16, 112, 112))
    torch.save(net.state_dict(), folder / "gesture.pth")
    (folder / "labels.txt").write_text("swipe left\nswipe right\nstop\nno gesture\n")
    model = xai_core.load_model(
        f"{BYO}:shuffle_3d", "cpu", weights=folder / "gesture.pth", labels_file=folder / "labels.txt",
        frames=16, height=112, width=112, mean=(0.43, 0.40, 0.38), std=(0.23, 0.22, 0.22),
    )  # fmt: skip
    return model, (2, 16, 16)


def mobilenet(folder: Path):
    return byo_models.load_imagenet_mobilenet(folder, frames=8), (1, 28, 28)


MODELS = {"ShuffleNet-style 3D CNN (factory)": shuffle_3d, "ImageNet MobileNetV2 per frame (factory)": mobilenet}


def measure(name: str, folder: Path) -> dict:
    model, window = MODELS[name](folder)
    after_load = training(model)
    clip = xai_core.load_video(sample_clips()["stgcn_ta_chi.mp4"], model=model)
    first = xai_core.explain(model, clip, "gradcam")
    after_explain = training(model)
    x = model.preprocess(clip)
    with torch.no_grad():
        passes = float((model(x) - model(x)).abs().max())
    second = xai_core.explain(model, clip, "gradcam")
    model = model.double()
    x = model.preprocess(clip)
    target = int(first.target["index"])
    black = model.pixel_value(0).to(x.dtype)[0, 0]
    captum = (
        Occlusion(model)
        .attribute(x, sliding_window_shapes=(window[0], 3, *window[1:]), strides=(window[0], 3, *window[1:]),
                   baselines=black, target=target)[0, :, 0]
        .numpy()
    )  # fmt: skip
    ours = xai_core.explain(model, clip, "occlusion", target=target, window=window, stride=window).spatial
    return {
        "model": name,
        "modules": sum(1 for _ in model.modules()),
        "training_after_load": after_load,
        "training_after_explain": after_explain,
        "two_passes_max_logit_difference": passes,
        "explanations_equal": bool(np.array_equal(first.spatial, second.spatial)),
        "occlusion_vs_captum": float(np.abs(ours - captum).max() / np.ptp(captum)),
        "occlusion_window": list(window),
    }


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| model | modules | in training mode after loading | after one explanation | two forward passes after it: max logit difference | two explanations equal | our occlusion vs Captum's after it (float64, of the range) |",  # noqa: E501
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['modules']} | {r['training_after_load']} | {r['training_after_explain']} | "
            f"{r['two_passes_max_logit_difference']:.2g} | {'yes' if r['explanations_equal'] else 'no'} | "
            f"{r['occlusion_vs_captum']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    names = [n for n in MODELS if IMAGENET.is_dir() or "MobileNet" not in n]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, Path(tmp)) for name in names]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "modes.json").write_text(json.dumps({"xai_core": xai_core.__version__, "rows": rows}, indent=2) + "\n")
    (out / "modes.md").write_text(to_markdown(rows))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
