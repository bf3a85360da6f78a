"""Evaluation suites on Moving Shapes clips with ground truth (``python -m xai_core evaluate``).

* ``localization``: pointing game and ranks (``scores``) of each spatial method's maps on held-out
  clips (noise 8, two static distractors by default), frames 1..T-1 (frame 0 holds no motion).
* ``sanity``: Spearman correlation between each method's maps on the model and on randomised
  copies (output layer / all weights), and the ranks again on the fully randomised copy (report
  001's table): a method whose maps survive randomisation does not explain the model.
* ``temporal``: on clips with a pause, how high each method's frame curve ranks the pause frames
  (the evidence of the ``pause`` task), and the deletion / insertion AUCs of its frame order
  against random orders (``temporal.deletion_insertion``, black frames), and the share of 002's key
  frames among its top frames; and, for classifiers,
  002's accuracy over the clips with each frame masked (``temporal.masked_accuracy``).

``tsr`` and ``tsr_onestep`` take minutes a clip on a CPU: they are evaluated when named, not by default.

Clips are made at the model's frame count and size; the explained target is the clip's true
class (or angle output) when the model's labels are those of a Moving Shapes task, else the
predicted class.  Results are means over clips (and frames); ``to_markdown`` makes the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..api import explain, predict
from ..data.moving_shapes import TASK_LABELS, ShapesSample, clip_shape, generate
from ..explanation import Target
from ..methods.registry import MethodError, method_specs
from ..models.base import VideoModel
from .randomize import randomized_copy
from .scores import pointing_game, rank_scores, read_map, spearman, temporal_scores
from .temporal import deletion_insertion, key_frame_overlap, key_frames, masked_accuracy

SUITES = ("localization", "sanity", "temporal")
ON_REQUEST = ("tsr", "tsr_onestep")  # minutes per clip on a CPU: evaluated when named, not by default
RANDOM_ORDERS = 5  # random frame orders per clip, the reference of the deletion / insertion AUCs
FIRST_SEED = 50_000  # far from the training (0...), validation (2e9) and test (3e9) seeds

Progress = Callable[[int, int, str], None]


def shapes_task(model: VideoModel) -> str | None:
    """The Moving Shapes task whose labels the model has (None: not a Moving Shapes model)."""
    for task, labels in TASK_LABELS.items():
        if list(model.labels) == labels:
            return task
    return None


def evaluation_clips(
    model: VideoModel, n: int, seed: int = FIRST_SEED, noise: float = 8.0, distractors: int = 2, pause: bool = False
) -> list[ShapesSample]:
    """``n`` clips (seeds ``seed``..) at the model's input size, with their ground truth."""
    spec = model.input_spec
    if spec.height != spec.width:
        raise ValueError(f"Moving Shapes clips are square; {model.name} takes {spec.height}x{spec.width} frames")
    if n < 1:
        raise ValueError("evaluate needs at least one clip")
    shape = clip_shape(spec.frames, spec.height)
    return [generate(seed + i, noise=noise, distractors=distractors, pause=pause, **shape) for i in range(n)]


def suite_methods(model: VideoModel, suite: str, methods: list[str] | None) -> list:
    """The specs to evaluate: those asked for (checked), or every usable one of the suite's families."""
    families = ("spatial",) if suite == "localization" else ("spatial", "temporal")
    usable = [s for s in method_specs(model) if s.family in families]
    if not methods or methods == ["all"]:
        return [s for s in usable if s.name not in ON_REQUEST]
    chosen = []
    for name in methods:
        spec = next((s for s in method_specs() if s.name == name), None)
        if spec is None:
            raise MethodError(f"unknown method {name!r}")
        if spec not in usable:
            reason = spec.unavailable_reason(model) or f"the {suite} suite scores {' and '.join(families)} methods"
            raise MethodError(f"{name} cannot be evaluated here: {reason}")
        chosen.append(spec)
    return chosen


def _target(model: VideoModel, sample: ShapesSample):
    task = shapes_task(model)
    if task is None:
        return None
    return None if model.task == "regression" else int(sample.label(task))


def _mean(values: list) -> float:
    arr = np.concatenate([np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values])
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def _localization_row(spec, maps: list[np.ndarray], clips: list[ShapesSample]) -> dict:
    per: dict[str, list] = {}
    for spatial, sample in zip(maps, clips, strict=True):
        view = read_map(spatial, spec.reading)[1:]
        target, distractors = sample.target_masks[1:], sample.distractor_masks[1:]
        scores = {**pointing_game(view, target, distractors), **rank_scores(view, target, target | distractors)}
        scores["area_share"] = target.mean((1, 2))
        for key, value in scores.items():
            per.setdefault(key, []).append(value)
    return {key: _mean(value) for key, value in per.items()}


def run_suite(
    suite: str,
    model: VideoModel,
    methods: list[str] | None = None,
    n: int = 10,
    seed: int = FIRST_SEED,
    noise: float = 8.0,
    distractors: int = 2,
    params: dict[str, dict] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run one suite; returns {"suite", "model", "clips", "seed", "options", "target", "rows", "seconds"},
    one row per method (means over the clips).  ``params``: method name -> parameters.
    ``progress(done, total, what)`` is called after every explanation (it may raise to stop the run)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    start = time.perf_counter()
    specs = suite_methods(model, suite, methods)
    if not specs:
        raise MethodError(f"{model.name} supports no method the {suite} suite scores")
    params = params or {}
    stray = sorted(set(params) - {s.name for s in specs})
    if stray:
        raise MethodError(f"parameters given for {stray[0]}, which this run does not evaluate")
    clips = evaluation_clips(model, n, seed, noise, distractors, pause=(suite == "temporal"))
    variants = [("trained", model)]
    if suite == "sanity":
        variants += [("logits", randomized_copy(model, "logits", seed)), ("all", randomized_copy(model, "all", seed))]
    total, done = len(specs) * len(clips) * len(variants), 0
    rows = []
    for spec in specs:
        results: dict[str, list] = {name: [] for name, _ in variants}
        for sample in clips:
            for name, net in variants:
                expl = explain(net, sample.video, spec.name, target=_target(model, sample), **params.get(spec.name, {}))
                results[name].append(expl)
                done += 1
                if progress is not None:
                    progress(done, total, f"{spec.name} on clip {sample.seed} ({name} model)")
        rows.append(
            {
                "method": spec.name,
                "family": spec.family,
                "reading": spec.reading,
                **_row(model, suite, spec, results, clips),
            }
        )
    task = shapes_task(model)
    extra = {}
    if suite == "temporal" and model.task == "classification":
        labels = [_target(model, c) for c in clips]
        if None in labels:  # not a Moving Shapes model: the predicted classes stand for the truth
            labels = [int(p["index"]) for p in (predict(model, c.video) for c in clips)]
        masked = masked_accuracy(model, [c.video for c in clips], labels)
        extra["masked_accuracy"] = {"accuracy": masked["accuracy"], "masked": masked["masked"].tolist()}
    return {
        "suite": suite,
        "model": model.name,
        "clips": n,
        "seed": seed,
        "options": {"noise": noise, "distractors": distractors, "pause": suite == "temporal"},
        "target": f"the true {task}" if task else "the predicted class",
        "rows": rows,
        **extra,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _maps(explanations: list) -> list[np.ndarray]:
    return [e.spatial if e.spatial is not None else e.temporal for e in explanations]


def _row(model: VideoModel, suite: str, spec, results: dict[str, list], clips: list[ShapesSample]) -> dict:
    trained = results["trained"]
    if suite == "localization":
        return _localization_row(spec, [e.spatial for e in trained], clips)
    if suite == "temporal":
        rows = []
        for expl, clip in zip(trained, clips, strict=True):
            curve = read_map(expl.temporal, spec.reading)
            row = temporal_scores(curve, clip.pause_frames)
            row["key_frame_overlap"] = key_frame_overlap(curve, key_frames(clip.video)[1])
            x = model.preprocess(clip.video)
            curves = deletion_insertion(model, x, Target.from_dict(expl.target), curve, random_orders=RANDOM_ORDERS)
            row |= {k: v for k, v in curves.items() if k.endswith("_auc")}
            rows.append(row)
        return {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]} | {
            "pause_share": float(np.mean([c.pause_frames.mean() for c in clips]))
        }
    row = {}
    for name in ("logits", "all"):
        pairs = [
            (read_map(a, spec.reading), read_map(b, spec.reading)) for a, b in zip(_maps(trained), _maps(results[name]))
        ]
        row[f"spearman_{name}"] = _mean([spearman(a, b) for a, b in pairs])
        row[f"spearman_{name}_support"] = _mean([spearman(a, b, support=True) for a, b in pairs])
    if spec.family == "spatial":
        trained_ranks = _localization_row(spec, [e.spatial for e in trained], clips)
        random_ranks = _localization_row(spec, [e.spatial for e in results["all"]], clips)
        for key in ("target_over_union", "target_over_all"):
            row[key] = trained_ranks[key]
            row[f"random_{key}"] = random_ranks[key]
    return row


COLUMNS = {
    "localization": [
        ("inside", "peak on shape", "pct"),
        ("within_4px", "within 4 px", "pct"),
        ("on_distractor", "peak on a distractor", "pct"),
        ("mass_on_shape", "mass on shape", "pct"),
        ("target_over_union", "target / shapes rank", "ratio"),
        ("target_over_all", "target / all rank", "ratio"),
        ("area_share", "shape's area share", "pct"),
    ],
    "sanity": [
        ("spearman_logits", "Spearman, output layer randomised", "ratio"),
        ("spearman_logits_support", "(on the maps' support)", "ratio"),
        ("spearman_all", "Spearman, all weights randomised", "ratio"),
        ("spearman_all_support", "(on the maps' support)", "ratio"),
        ("target_over_union", "target / shapes rank", "ratio"),
        ("target_over_all", "target / all rank", "ratio"),
        ("random_target_over_union", "randomised: target / shapes", "ratio"),
        ("random_target_over_all", "randomised: target / all", "ratio"),
    ],
    "temporal": [
        ("evidence_rank", "pause frames' mean rank", "ratio"),
        ("top_k_share", "pause frames in the top k", "pct"),
        ("pause_share", "pause share of the clip", "pct"),
        ("key_frame_overlap", "key frames in the top k", "pct"),
        ("deletion_auc", "deletion AUC", "score"),
        ("random_deletion_auc", "(random order)", "score"),
        ("insertion_auc", "insertion AUC", "score"),
        ("random_insertion_auc", "(random order)", "score"),
    ],
}


def _cell(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if kind == "score":
        return f"{value:.3g}"
    return f"{value:.1%}" if kind == "pct" else f"{value:.2f}"


def to_markdown(result: dict) -> str:
    """The suite's result as a markdown table, with a line saying what was measured."""
    columns = COLUMNS[result["suite"]]
    opts = result["options"]
    lines = [
        f"{result['suite']} suite, {result['model']}: {result['clips']} Moving Shapes clips from seed {result['seed']} "
        f"(noise {opts['noise']:g}, {opts['distractors']} distractors{', with a pause' if opts['pause'] else ''}), "
        f"explaining {result['target']}; {result['seconds']:.0f} s.",
        "",
        "| method | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in result["rows"]:
        cells = [_cell(row.get(key), kind) for key, _, kind in columns]
        lines.append(f"| `{row['method']}` ({row['reading']}) | " + " | ".join(cells) + " |")
    if "masked_accuracy" in result:
        masked = np.asarray(result["masked_accuracy"]["masked"])
        lines += [
            "",
            f"Accuracy with one frame masked (black), 002's time contribution over the clips: "
            f"{result['masked_accuracy']['accuracy']:.1%} unmasked; lowest {masked.min():.1%} (frame "
            f"{int(masked.argmin())}), mean {masked.mean():.1%}.",
        ]
    return "\n".join(lines) + "\n"
