"""How well a zoo model's explanation maps find the moving shape: ``python benchmarks/localization.py``.

A quality measurement, not a speed one: the pointing game of ``xai_core.evaluate`` on clips of both
generators. For every frame of held-out Moving Shapes clips (noise 8, two static distractors) and
every spatial method asked for, it takes the peak of the map as the method declares it is read
(its magnitude for the plain gradients, whose sign flips from pixel to pixel; its positive part
for the others) and records

* ``pointing``: the pointing game's hit: the peak lies within 7.5 pixels of the true shape (Zhang
  et al. 2016's 15 pixels, scaled to 15 per 224 of the frame's side: ``xai_core.evaluate.scores``);
* ``pointing_chance``: the share of the frame within that tolerance of the shape (what a peak placed
  at random would score in the pointing game);
* ``inside``: the peak lies on the true shape itself;
* ``within_2px`` / ``within_4px``: the peak is at most 2 / 4 pixels from the shape;
* ``on_distractor``: the peak lies on a static distractor;
* ``mass_on_shape``: the share of the map's positive part (magnitude for the gradients) on the shape;
* ``area_share``: the fraction of the frame the shape covers (what a random peak would score on the
  shape itself);
* the same scores for a copy of the model with every weight randomised (``random_...``): a map
  that finds the shape as well without the trained weights does not explain the model.

Each figure is the mean over the clips of each clip's frame mean; ``..._se`` is its standard
error over the clips.

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

import xai_core
from xai_core.data.moving_shapes import generate
from xai_core.evaluate import pointing_game, randomized_copy, read_map
from xai_core.evaluate.suites import summarise
from xai_core.methods.machinery.registry import get_method

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from independent_shapes import make_clip  # noqa: E402

DEFAULT_MODELS = ("cnn_transformer-sides", "cnn_transformer-sides-gated", "r3d-sides")
SIDES_LABELS = {3: "triangle", 4: "square", 5: "pentagon"}


def measure(model_name: str, clips: int, methods: list[str], first_seed: int = 50_000) -> list[dict]:
    """One result per method: for each generator, the scores of the trained and of the fully
    randomised model, each the mean over ``clips`` clips (of the frames 1..T-1) with its standard
    error."""
    model = xai_core.load_model(model_name, device="cpu")
    randomised = randomized_copy(model, "all", seed=first_seed)
    if methods == ["all"]:
        methods = [s.name for s in xai_core.method_specs(model) if s.family == "spatial"]
    data = []
    for seed in range(first_seed, first_seed + clips):
        sample = generate(seed, noise=8, distractors=2)
        data.append(("ours", sample.video, sample.target_masks, sample.distractor_masks, sample.sides))
        clip = make_clip(seed, noise=8, distractors=2)
        data.append(("independent", clip.video, clip.target_masks, None, clip.sides))
    results = []
    for method in methods:
        reading = get_method(method).reading
        rows: dict[str, dict[str, list]] = {"ours": {}, "independent": {}}
        for source, video, target, distractors, sides in data:
            # both models explain the clip's true class (the randomised one has no prediction worth explaining)
            label = SIDES_LABELS[sides] if list(model.labels) == list(SIDES_LABELS.values()) else None
            for prefix, net in (("", model), ("random_", randomised)):
                expl = xai_core.explain(net, video, method, target=label)
                view = read_map(expl.spatial, reading)[1:]
                scores = pointing_game(view, target[1:], None if distractors is None else distractors[1:])
                for key, value in scores.items():
                    rows[source].setdefault(prefix + key, []).append(value)
            rows[source].setdefault("area_share", []).append(target[1:].mean())
        result = {"model": model_name, "method": method}
        for source in ("ours", "independent"):
            result[source] = {"clips": clips}
            for key, values in rows[source].items():
                mean, se, _ = summarise(values)
                result[source] |= {key: mean, f"{key}_se": se}
        results.append(result)
    return results


def _pct(s: dict, key: str) -> str:
    return f"{s[key]:.1%} ± {s[key + '_se']:.1%}" if key in s else "n/a"


def to_markdown(results: list[dict]) -> str:
    lines = [
        "| model | method | clips from | pointing game | randomised: pointing game | pointing game by chance "
        "| peak on shape | randomised: peak on shape | within 4 px | randomised: within 4 px | on a distractor "
        "| map mass on shape | randomised: mass on shape | shape's area share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for source in ("ours", "independent"):
            s = r[source]
            lines.append(
                f"| {r['model']} | {r['method']} | {source} ({s['clips']} clips) | {_pct(s, 'pointing')} | "
                f"{_pct(s, 'random_pointing')} | {_pct(s, 'pointing_chance')} | {_pct(s, 'inside')} | "
                f"{_pct(s, 'random_inside')} | {_pct(s, 'within_4px')} | {_pct(s, 'random_within_4px')} | "
                f"{_pct(s, 'on_distractor')} | "
                f"{_pct(s, 'mass_on_shape')} | {_pct(s, 'random_mass_on_shape')} | {s['area_share']:.1%} |"
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
