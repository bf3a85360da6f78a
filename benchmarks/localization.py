"""How well a zoo model's explanation maps find the moving shape: ``python benchmarks/localization.py``.

A quality measurement, not a speed one. For every frame of held-out Moving Shapes clips
(noise 8, two static distractors) and every spatial method asked for, it takes the peak of the
map (of its magnitude for the plain gradients, whose sign flips from pixel to pixel; of the
map itself for the others) and records

* ``inside``: the peak lies on the true shape (the pointing game);
* ``within_2px`` / ``within_4px``: the peak is at most 2 / 4 pixels from the shape;
* ``on_distractor``: the peak lies on a static distractor;
* ``mass_on_shape``: the share of the map's positive part (magnitude for the gradients) on the shape;
* ``area_share``: the fraction of the frame the shape covers (what a random peak would score).

Clips come from our generator (which also gives distractor masks) and from the independent
implementation in ``tests/independent_shapes.py`` (different code, same specification). Frame 0
is skipped: with a frame-difference input it carries no motion evidence.

Usage: ``python benchmarks/localization.py [--models A B] [--methods gradcam lrp ...|all] [--clips 24]
[--out benchmarks/results] [--name localization]``: writes NAME.json and NAME.md (``all``: every
spatial method the model supports, with its defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

import xai_core
from xai_core.data.moving_shapes import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from independent_shapes import make_clip  # noqa: E402

DEFAULT_MODELS = ("cnn_transformer-sides", "r3d-sides")
MAGNITUDE = ("saliency", "smoothgrad", "guided_gradcam")  # maps read by their magnitude


def shown(method: str, spatial: np.ndarray) -> np.ndarray:
    """The map as scored: its magnitude for the plain gradients, its positive part otherwise."""
    return np.abs(spatial) if method in MAGNITUDE else np.maximum(spatial, 0)


def peak_scores(spatial: np.ndarray, target: np.ndarray, distractors: np.ndarray | None) -> dict[str, np.ndarray]:
    """spatial: float [T,H,W] map; target / distractors: bool [T,H,W] -> per-frame bool arrays [T]."""
    frames = len(spatial)
    flat = spatial.reshape(frames, -1).argmax(1)
    ys, xs = np.unravel_index(flat, spatial.shape[1:])
    # Euclidean distance of every pixel to the nearest shape pixel (0 on the shape).
    distance = np.stack(
        [cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) for m in target]
    )
    at_peak = distance[np.arange(frames), ys, xs]
    scores = {"inside": at_peak == 0, "within_2px": at_peak <= 2, "within_4px": at_peak <= 4}
    if distractors is not None:
        scores["on_distractor"] = distractors[np.arange(frames), ys, xs]
    positive = np.maximum(spatial, 0)
    total = positive.sum((1, 2))
    scores["mass_on_shape"] = np.where(total > 0, (positive * target).sum((1, 2)) / np.maximum(total, 1e-30), 0.0)
    return scores


def measure(model_name: str, clips: int, methods: list[str], first_seed: int = 50_000) -> list[dict]:
    """One result per method: the scores averaged over the frames (frame 0 left out) of ``clips``
    clips from each generator."""
    model = xai_core.load_model(model_name, device="cpu")
    if methods == ["all"]:
        methods = [s.name for s in xai_core.method_specs(model) if s.family == "spatial"]
    data = []
    for seed in range(first_seed, first_seed + clips):
        sample = generate(seed, noise=8, distractors=2)
        data.append(("ours", sample.video, sample.target_masks, sample.distractor_masks))
        clip = make_clip(seed, noise=8, distractors=2)
        data.append(("independent", clip.video, clip.target_masks, None))
    results = []
    for method in methods:
        rows: dict[str, dict[str, list]] = {"ours": {}, "independent": {}}
        area: dict[str, list] = {"ours": [], "independent": []}
        for source, video, target, distractors in data:
            expl = xai_core.explain(model, video, method)
            for key, value in peak_scores(shown(method, expl.spatial), target, distractors).items():
                rows[source].setdefault(key, []).append(value[1:])
            area[source].append(target[1:].mean())
        result = {"model": model_name, "method": method}
        for source in ("ours", "independent"):
            result[source] = {key: float(np.mean(value)) for key, value in rows[source].items()}
            result[source]["area_share"] = float(np.mean(area[source]))
            result[source]["clips"] = clips
        results.append(result)
    return results


def to_markdown(results: list[dict]) -> str:
    lines = [
        "| model | method | clips from | peak on shape | within 2 px | within 4 px | on a distractor "
        "| map mass on shape | shape's area share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for source in ("ours", "independent"):
            s = r[source]
            distractor = f"{s['on_distractor']:.1%}" if "on_distractor" in s else "n/a"
            lines.append(
                f"| {r['model']} | {r['method']} | {source} ({s['clips']} clips) | {s['inside']:.1%} | "
                f"{s['within_2px']:.1%} | {s['within_4px']:.1%} | {distractor} | {s['mass_on_shape']:.1%} | "
                f"{s['area_share']:.1%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--methods", nargs="+", default=["gradcam"], help="spatial methods, or: all")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="localization", help="file stem of the results in --out")
    args = parser.parse_args(argv)
    results = [r for name in args.models for r in measure(name, args.clips, args.methods)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = to_markdown(results)
    (out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
