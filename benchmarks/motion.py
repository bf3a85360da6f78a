"""Motion explanations against the ground truth: ``python benchmarks/motion.py``.

A quality measurement (issue 6, paper 001).  On held-out clips of the independent Moving Shapes
implementation (``tests/independent_shapes.py``: noise 8, two static distractors), for each model
it runs ``flow_gradient`` with its defaults and records

* ``motion_reliance``: how much the score changes when every flow is set to zero (nothing moves)
  against when every error is (``xai_core.methods.flow.motion_reliance``);
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
  Farneback itself recovers the motion (a floor for the line above);
* ``trajectories_on_shape``: the share of ``trajectories``' top 10 (default base) that are within
  3 px of the shape in the middle of their best window;
* ``accuracy`` (sides models): on the clips as they are and with the first frame repeated (no
  motion at all): does the model need motion to tell the number of sides?
* ``controls``: the motion share of scores that cannot use motion (each frame read on its own),
  the level the share takes without any use of motion;
* without distractors: the same figures on clips where the moving shape is the only one, for the
  zoo and for ``controls/cnn_lstm_still-sides`` (a frame CNN + LSTM without motion channels, trained
  on such clips with ``xai train --max-distractors 0``; its card has the command): a sides model
  that can only use appearance, which 001 expects to have a low motion share.

Usage: ``python benchmarks/motion.py [--models A B] [--clips 100] [--control STEM] [--out DIR]``:
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
import torch

import xai_core
from xai_core.angles import angular_difference, screen_angle
from xai_core.api import model_input
from xai_core.evaluate.motion import flow_direction_error, mean_motion_share, trajectories_on_target
from xai_core.methods.flow import Decomposition, decompose, motion_share, rebuild
from xai_core.methods.machinery.optical_flow import clip_flows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from independent_shapes import make_clip  # noqa: E402

DEFAULT_MODELS = ("cnn_transformer-angle", "cnn_transformer-sides", "r3d-angle", "r3d-sides")
FIRST_SEED = 70_000
TOP = 20
CONTROL = Path(__file__).resolve().parent / "controls" / "cnn_lstm_still-sides"


def farneback_error(flows: np.ndarray, masks: np.ndarray, angle: float, moving: np.ndarray) -> float:
    """Mean angular error of the flow on the shape's pixels (frames the shape moved into)."""
    errors = []
    for i in np.flatnonzero(moving):
        vectors = flows[i][:, masks[i + 1]].T
        fast = np.hypot(vectors[:, 0], vectors[:, 1]) >= 0.25
        if fast.any():
            errors.append(angular_difference(screen_angle(vectors[fast]), angle))
    return float(np.concatenate(errors).mean()) if errors else float("nan")


def measure(model_name: str, clips: int, distractors: int = 2) -> dict:
    """One model (a zoo name or a checkpoint path) on ``clips`` held-out clips with ``distractors``
    static distractor shapes."""
    model = xai_core.load_model(model_name, device="cpu")
    angle_model = model.task == "regression"
    shares, directions, randoms, floors, seconds, on_target = [], [], [], [], [], []
    right_moving = right_static = 0
    reliance = []
    for k in range(clips):
        clip = make_clip(FIRST_SEED + k, distractors=distractors)
        moving = ~clip.paused[1:]
        start = time.perf_counter()
        expl = xai_core.explain(model, clip.video, "flow_gradient")
        seconds.append(time.perf_counter() - start)
        shares.append(mean_motion_share(expl.extras["motion_share"], moving))
        reliance.append(expl.meta["motion_reliance"])
        paths = xai_core.explain(model, clip.video, "trajectories")
        on_target.append(
            trajectories_on_target(paths.extras["trajectories"], paths.extras["trajectory_windows"], clip.target_masks)
        )
        if not angle_model:  # can the model tell the sides without motion (the first frame repeated)?
            static = np.repeat(clip.video[:1], len(clip.video), axis=0)
            right_moving += xai_core.predict(model, clip.video)["index"] == clip.sides - 3
            right_static += xai_core.predict(model, static)["index"] == clip.sides - 3
        if angle_model:
            flows = expl.extras["flows"]
            result = flow_direction_error(flows, expl.extras["flow_grad_magnitude"], clip.angle, moving, TOP)
            directions.append((result["error"], result["slow_share"]))
            blind = np.random.default_rng(FIRST_SEED + k).random(flows[:, 0].shape)
            chance = flow_direction_error(flows, blind, clip.angle, moving, TOP)
            randoms.append((chance["error"], chance["slow_share"]))
            floors.append(farneback_error(flows, clip.target_masks, clip.angle, moving))
    row = {
        "model": model.name,
        "task": model.task,
        "clips": clips,
        "distractors": distractors,
        "motion_share": {"mean": float(np.mean(shares)), "sd": float(np.std(shares))},
        "motion_reliance": {"mean": float(np.mean(reliance)), "median": float(np.median(reliance))},
        "seconds_per_clip": statistics.median(seconds),
        "trajectories_on_shape": float(np.mean(on_target)),
        "trajectory_base": paths.meta["base"],
    }
    if not angle_model:
        row["accuracy"] = {"moving": right_moving / clips, "first_frame_repeated": right_static / clips}
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


def appearance_controls(clips: int, reference_model: str = DEFAULT_MODELS[1]) -> dict[str, float]:
    """Mean motion share of scores that cannot use motion (each reads every frame on its own), on
    the same clips in ``reference_model``'s input: the level of the share without any use of motion."""
    model = xai_core.load_model(reference_model, device="cpu")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 5, padding=2)

    def saturation(x: torch.Tensor) -> torch.Tensor:  # [B,T,C,H,W] -> [B]: colourful pixels, squared
        return ((x.amax(2) - x.amin(2)) ** 2).mean((1, 2, 3))

    def random_features(x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return torch.relu(conv(x.flatten(0, 1))).mean((1, 2, 3)).view(b, t).mean(1)

    controls = {
        "colour saturation squared, every frame": saturation,
        "random 5x5 conv + ReLU, every frame": random_features,
    }
    shares = {name: [] for name in controls}
    for k in range(clips):
        clip = make_clip(FIRST_SEED + k)
        x, _ = model_input(model, clip.video)
        d = decompose(x, clip_flows(model, x))
        for name, score in controls.items():
            leaves = [t.detach().clone().requires_grad_(True) for t in (d.first, d.flows, d.errors)]
            grads = torch.autograd.grad(score(rebuild(Decomposition(*leaves))).sum(), leaves)
            share = motion_share(d, grads[1], grads[2])[0].numpy()
            shares[name].append(mean_motion_share(share, ~clip.paused[1:]))
    return {name: float(np.mean(values)) for name, values in shares.items()}


def to_markdown(rows: list[dict], controls: dict[str, float] | None = None) -> str:
    lines = [
        "| model | clips | motion share (mean ± sd) | motion reliance (mean, median) | "
        "direction error, top-20 flow-gradient pixels (slow) | "
        "the same, 20 random pixels (slow) | Farneback's error on the shape | top-10 trajectories on the shape | "
        "accuracy: moving / first frame repeated | s / clip |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
        tracks = f"{r['trajectories_on_shape']:.0%} ({r['trajectory_base']})"
        reliance = f"{r['motion_reliance']['mean']:.2f}, {r['motion_reliance']['median']:.2f}"
        accuracy = (
            f"{r['accuracy']['moving']:.0%} / {r['accuracy']['first_frame_repeated']:.0%}" if "accuracy" in r else "–"
        )
        lines.append(
            f"| `{r['model']}` | {r['clips']} | {share} | {reliance} | {direction} | {blind} | {floor} | {tracks} | "
            f"{accuracy} | {r['seconds_per_clip']:.2f} |"
        )
    if controls:
        lines += ["", "| score that cannot use motion | motion share |", "|---|---|"]
        lines += [f"| {name} | {value:.2f} |" for name, value in controls.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument(
        "--control",
        default=str(CONTROL),
        help="a sides model that cannot use motion, measured with the zoo on clips without distractors ('' to skip)",
    )
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rows = [measure(name, args.clips) for name in args.models]
    controls = appearance_controls(args.clips)
    one_frame = []
    if args.control:
        one_frame = [measure(name, args.clips, distractors=0) for name in [args.control, *args.models]]
    text = to_markdown(rows, controls)
    if one_frame:
        text += (
            "\nClips without distractors (the moving shape is the only one, so one frame tells its sides); "
            f"`{Path(args.control).name}` sees no motion (a frame CNN without motion channels, trained on such "
            "clips):\n\n" + to_markdown(one_frame)
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"models": rows, "controls": controls, "without_distractors": one_frame}
    (out / "motion.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "motion.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
