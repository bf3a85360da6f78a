"""Motion explanations against the ground truth: ``python benchmarks/motion.py``.

A quality measurement (issue 6, paper 001).  On held-out clips of the independent Moving Shapes
implementation (``tests/independent_shapes.py``: noise 8, two static distractors), for each model
it runs ``flow_gradient`` with its defaults and records

* ``motion_share``: the flows' share of the gradient x value attribution, averaged over the
  frames the shape moved into (``xai_core.evaluate.motion.mean_motion_share``); a model of the
  movement angle should rely on the flows, a model of the number of sides on appearance (001's
  expectation, which this measures);
* ``direction_error`` (angle models): the mean angular error, in degrees, between the true angle
  and the flow at each frame's 20 pixels of largest |d score / d flow| (001's "most important
  angles"); a random direction scores 90.  ``slow_share``: the share of those pixels whose flow is
  slower than 0.25 px a frame (left out of the error);
* ``random_pixels``: the same two figures for 20 pixels a frame picked at random (a baseline:
  most of the frame does not move, and Farneback's window spreads the shape's motion around it);
* ``farneback_error``: the same error for the flow on the shape's own pixels, i.e. how well
  Farneback itself recovers the motion (a floor for the line above).

Usage: ``python benchmarks/motion.py [--models A B] [--clips 100] [--out benchmarks/results]``:
writes motion.json and motion.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import xai_core
from xai_core.evaluate.motion import angular_difference, flow_direction_error, mean_motion_share, screen_angle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from independent_shapes import make_clip  # noqa: E402

DEFAULT_MODELS = ("cnn_transformer-angle", "cnn_transformer-sides", "r3d-angle", "r3d-sides")
FIRST_SEED = 70_000
TOP = 20


def farneback_error(flows: np.ndarray, masks: np.ndarray, angle: float, moving: np.ndarray) -> float:
    """Mean angular error of the flow on the shape's pixels (frames the shape moved into)."""
    errors = []
    for i in np.flatnonzero(moving):
        vectors = flows[i][:, masks[i + 1]].T
        fast = np.hypot(vectors[:, 0], vectors[:, 1]) >= 0.25
        if fast.any():
            errors.append(angular_difference(screen_angle(vectors[fast]), angle))
    return float(np.concatenate(errors).mean()) if errors else float("nan")


def measure(model_name: str, clips: int) -> dict:
    model = xai_core.load_model(model_name, device="cpu")
    angle_model = model.task == "regression"
    shares, directions, randoms, floors, seconds = [], [], [], [], []
    for k in range(clips):
        clip = make_clip(FIRST_SEED + k)
        moving = ~clip.paused[1:]
        start = time.perf_counter()
        expl = xai_core.explain(model, clip.video, "flow_gradient")
        seconds.append(time.perf_counter() - start)
        shares.append(mean_motion_share(expl.extras["motion_share"], moving))
        if angle_model:
            flows = expl.extras["flows"]
            result = flow_direction_error(flows, expl.extras["flow_grad_magnitude"], clip.angle, moving, TOP)
            directions.append((result["error"], result["slow_share"]))
            blind = np.random.default_rng(FIRST_SEED + k).random(flows[:, 0].shape)
            chance = flow_direction_error(flows, blind, clip.angle, moving, TOP)
            randoms.append((chance["error"], chance["slow_share"]))
            floors.append(farneback_error(flows, clip.target_masks, clip.angle, moving))
    row = {
        "model": model_name,
        "task": model.task,
        "clips": clips,
        "motion_share": {"mean": float(np.mean(shares)), "sd": float(np.std(shares))},
        "seconds_per_clip": statistics.median(seconds),
    }
    if angle_model:
        errors, slow = np.array(directions).T
        row["direction_error"] = {"mean": float(np.nanmean(errors)), "median": float(np.nanmedian(errors))}
        row["slow_share"] = float(np.mean(slow))
        chance_errors, chance_slow = np.array(randoms).T
        row["random_pixels"] = {
            "direction_error": float(np.nanmean(chance_errors)),
            "slow_share": float(np.mean(chance_slow)),
        }
        row["farneback_error"] = float(np.nanmean(floors))
    return row


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| model | clips | motion share (mean ± sd) | direction error, top-20 flow-gradient pixels (slow) | "
        "the same, 20 random pixels (slow) | Farneback's error on the shape | s / clip |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = f"{r['motion_share']['mean']:.2f} ± {r['motion_share']['sd']:.2f}"
        if "direction_error" in r:
            d, chance = r["direction_error"], r["random_pixels"]
            direction = f"{d['mean']:.1f}° (median {d['median']:.1f}°; {r['slow_share']:.0%})"
            blind = f"{chance['direction_error']:.1f}° ({chance['slow_share']:.0%})"
            floor = f"{r['farneback_error']:.1f}°"
        else:
            direction = blind = floor = "–"
        lines.append(
            f"| `{r['model']}` | {r['clips']} | {share} | {direction} | {blind} | {floor} | "
            f"{r['seconds_per_clip']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = [measure(name, args.clips) for name in args.models]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "motion.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "motion.md").write_text(to_markdown(rows))
    print(to_markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
