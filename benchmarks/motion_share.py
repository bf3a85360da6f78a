"""Which motion-vs-appearance figure tells a model that cannot see motion from one that needs it?
``python benchmarks/motion_share.py``.

A quality measurement behind issue 6's point 5 (paper 001 expects a model of the number of sides
to rest on appearance and a model of the angle on motion).  On clips of the independent Moving
Shapes implementation without distractors (one frame tells the number of sides), it compares,
for a sides model that cannot see motion (``controls/cnn_lstm_still-sides``) and the zoo, five
ways to split the score between the flows and the appearance (the errors; in one, also I_0):

* ``first_order``: ``motion_share`` as ``flow_gradient`` gives it, per frame: |f_i . dS/df_i|
  against |E_i . dS/dE_i| summed over pixels (gradient x value), averaged over the moving frames;
* ``integrated``: the same with integrated gradients (Captum, ``--steps`` Gauss-Legendre points)
  along the straight path from the clip standing still (every flow and error zero, I_0 kept) to
  the clip, per frame |sum_p A_flow| against |sum_p A_error|;
* ``stepwise``: per frame, finite: the score's change when frame i's flow is put back after the
  flows from i on were zero, against the same for the errors (the changes add up to the
  whole-clip ablations), |.| compared per frame and averaged;
* ``with_first_frame``: clip level, first order, the flows' part against I_0's and the errors'
  parts together (paper 001: the sides task can be done from the first frame);
* ``motion_reliance``: clip level, finite: every flow zero against every error zero
  (``xai_core.methods.flow.motion_reliance``, what the Motion page shows).

A figure separates the models when the motion-blind control sits well below the angle models.
Usage: ``python benchmarks/motion_share.py [--clips 10] [--steps 128] [--out DIR]``: writes
motion_share.json and motion_share.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients

import xai_core
from xai_core.api import prepare
from xai_core.evaluate.motion import mean_motion_share
from xai_core.methods.flow import (
    Decomposition,
    attribution_parts,
    decompose,
    decomposition_gradients,
    motion_reliance,
    motion_share,
    rebuild,
    share_of,
)
from xai_core.methods.machinery.optical_flow import clip_flows
from xai_core.methods.machinery.scoring import TargetScore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from independent_shapes import make_clip  # noqa: E402

CONTROL = Path(__file__).resolve().parent / "controls" / "cnn_lstm_still-sides"
DEFAULT_MODELS = (str(CONTROL), "cnn_transformer-angle", "r3d-angle", "cnn_transformer-sides", "r3d-sides")
FIRST_SEED = 70_000
FIGURES = ("first_order", "integrated", "stepwise", "with_first_frame", "motion_reliance")


def integrated_attributions(model, target, d: Decomposition, steps: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Captum's integrated gradients of the score w.r.t. the flows and the errors (I_0 held), from
    the still clip (both zero) to d -> per frame [T-1] the flows' and the errors' attributions
    (summed over pixels), and the convergence delta (their total minus the score's change)."""
    score = TargetScore(model, target)

    def forward(flows: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
        return score(rebuild(Decomposition(d.first.expand(len(flows), *d.first.shape[1:]), flows, errors)))

    (flow_attr, error_attr), delta = IntegratedGradients(forward).attribute(
        (d.flows, d.errors),
        baselines=(torch.zeros_like(d.flows), torch.zeros_like(d.errors)),
        target=score.captum_target,
        n_steps=steps,
        internal_batch_size=1,
        return_convergence_delta=True,
    )
    return flow_attr[0].flatten(1).sum(1), error_attr[0].flatten(1).sum(1), float(delta.sum())


def stepwise_changes(model, target, d: Decomposition, batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame [T-1] each: the score's change when flow i is put back with flows 1..i-1 kept and
    the later ones zero, and the same for error i.  Each adds up over the frames to the score minus
    its value with every flow (error) zero, ``motion_reliance``'s two ablations."""
    frames = d.flows.shape[1]
    clips = []
    for kept in range(frames + 1):  # the first ``kept`` flows (errors) kept, the rest zero
        keep = (torch.arange(frames) < kept).view(1, frames, 1, 1, 1).to(d.flows.dtype)
        clips += [
            rebuild(Decomposition(d.first, d.flows * keep, d.errors)),
            rebuild(Decomposition(d.first, d.flows, d.errors * keep)),
        ]
    score = TargetScore(model, target)
    with torch.no_grad():
        scores = torch.cat([score(torch.cat(clips[i : i + batch]))[:, 0] for i in range(0, len(clips), batch)])
    return scores[0::2].diff(), scores[1::2].diff()


def with_first_frame(d: Decomposition, grads: tuple[torch.Tensor, ...]) -> float:
    """Clip level, first order: the flows' gradient x value against I_0's and the errors'."""
    first_grad, flow_grad, error_grad = grads
    flow_part, error_part = attribution_parts(d, flow_grad, error_grad)
    rest = (d.first * first_grad).sum(1).abs().sum() + error_part.sum()
    return float(share_of(flow_part.sum(), rest))


def measure(model_name: str, clips: int, steps: int) -> dict:
    model = xai_core.load_model(model_name, device="cpu")  # in eval mode
    figures: dict[str, list[float]] = {name: [] for name in FIGURES}
    gaps = []  # integrated gradients: |convergence delta| and |score - still clip's score|
    start = time.perf_counter()
    for k in range(clips):
        clip = make_clip(FIRST_SEED + k, distractors=0)
        moving = ~clip.paused[1:]
        prepared = prepare(model, clip.video)
        x, target = prepared.x, prepared.target
        d = decompose(x, clip_flows(model, x))
        score, *grads = decomposition_gradients(model, target, d)
        figures["first_order"].append(mean_motion_share(motion_share(d, grads[1], grads[2])[0].numpy(), moving))
        flow_attr, error_attr, delta = integrated_attributions(model, target, d, steps)
        figures["integrated"].append(mean_motion_share(share_of(flow_attr, error_attr).numpy(), moving))
        with torch.no_grad():
            still = float(TargetScore(model, target)(rebuild(Decomposition(d.first, 0 * d.flows, 0 * d.errors)))[0, 0])
        gaps.append((abs(delta), abs(float(score[0]) - still)))
        figures["stepwise"].append(mean_motion_share(share_of(*stepwise_changes(model, target, d)).numpy(), moving))
        figures["with_first_frame"].append(with_first_frame(d, tuple(grads)))
        figures["motion_reliance"].append(motion_reliance(model, target, d, float(score[0]))["motion_reliance"])
    return {
        "model": model.name,
        "task": model.task,
        "clips": clips,
        "seconds": time.perf_counter() - start,
        **{name: {"mean": float(np.mean(v)), "median": float(np.median(v))} for name, v in figures.items()},
        "integrated_delta": float(np.mean([g[0] for g in gaps])),
        "score_change_still": float(np.mean([g[1] for g in gaps])),
    }


def to_markdown(rows: list[dict], steps: int) -> str:
    lines = [
        f"Clips without distractors, {rows[0]['clips']} a model; mean (median). Integrated gradients: {steps} steps.",
        "",
        "| model | first order, per frame | integrated, per frame | stepwise ablation, per frame | "
        "first order, flows vs I_0 + errors | motion reliance | integrated gradients: mean abs. convergence delta, "
        "against the mean abs. change of the score from the still clip |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = " | ".join(f"{r[name]['mean']:.2f} ({r[name]['median']:.2f})" for name in FIGURES)
        lines.append(f"| `{r['model']}` | {cells} | {r['integrated_delta']:.3g} / {r['score_change_still']:.3g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rows = []
    for name in args.models:
        rows.append(measure(name, args.clips, args.steps))
        print(json.dumps(rows[-1]), flush=True)
    text = to_markdown(rows, args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "motion_share.json").write_text(json.dumps({"steps": args.steps, "models": rows}, indent=2) + "\n")
    (out / "motion_share.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
