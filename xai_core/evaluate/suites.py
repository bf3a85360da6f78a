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

import itertools
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from ..api import explain, predict
from ..data.moving_shapes import TASK_LABELS, ShapesSample, clip_shape, generate
from ..explanation import Target
from ..methods.flow import warp
from ..methods.machinery.optical_flow import FARNEBACK_PARAMS, clip_flows
from ..methods.machinery.perturbation import baseline_clip
from ..methods.machinery.registry import MethodError, method_specs
from ..models.base import VideoModel
from .randomize import randomized_copy
from .scores import (
    partial_spearman,
    pointing_game,
    pointing_tolerance,
    rank_scores,
    read_map,
    shape_nearness,
    size_trend,
    spearman,
    spearman_per_frame,
    temporal_scores,
)
from .temporal import deletion_insertion, key_frame_overlap, key_frames, masked_accuracy

SUITES = ("localization", "sanity", "temporal")
SUITE_FAMILIES = {  # the method families each suite scores: those whose maps it can read
    "localization": ("spatial", "motion"),
    "sanity": ("spatial", "temporal", "motion"),
    "temporal": ("spatial", "temporal"),
}
SURVIVES = 0.5  # Spearman above this: the maps survive randomising the model, and the app says so
SANITY_GOAL = 0.3  # at most this for an explanation that depends on the weights (issue 16's goal)
ON_REQUEST = ("tsr", "tsr_onestep")  # minutes per clip on a CPU: evaluated when named, not by default
RANDOM_ORDERS = 5  # random frame orders per clip, the reference of the deletion / insertion AUCs
FIRST_SEED = 50_000  # far from the training (0...), validation (2e9) and test (3e9) seeds
# The methods issue 16's goal binds (at most SANITY_GOAL for every gradient and CAM method); for
# them the sanity suite also measures how far output layers drawn at random agree
# (``readout_heads_scores``), a reference for the output-layer test on the model.
GOAL_METHODS = (
    "gradcam",
    "gradcam_pp",
    "saliency",
    "smoothgrad",
    "input_x_gradient",
    "integrated_gradients",
    "lrp",
    "flow_gradient",
    "smoothflow",
    "trajectories",
)
PAIR = "logits_pair"  # the second output-layer copy (seed + 1)
# The output-layer copies the sanity suite draws for a gradient or CAM method (seeds seed, seed + 1,
# seed + 2): ``readout_heads_scores`` compares the trained model's maps with each and the copies'
# maps with each other, the spread of the output-layer test over random output layers.
HEADS = ("logits", PAIR, "logits_2")
# Where the three leave a view of the test open (``heads_unsettled``: the trained model's maps agree
# with theirs above the goal on average while some pair of them agrees within it), five more are
# drawn (seeds seed + 3 to seed + 7) and the figures are read over the eight: a figure whose sign
# or size three draws cannot settle.  The eight can only show the first copy's figure to be its
# draw's (the trained model's mean within the goal) or leave the view open: their least agreeing
# pair agrees no more than the three's.
MORE_HEADS = tuple(f"logits_{k}" for k in range(len(HEADS), 8))
ALL_HEADS = HEADS + MORE_HEADS
HEADS_DRAWN = "logits_heads_drawn"  # the number of output layers a row's figures were read over
# A second copy with every weight randomised (seed + 1) for a gradient or CAM method
# (``random_twin_scores``): how far two random networks' maps agree, a reference for the
# all-weights test as the random output layers are for the output-layer test.
TWIN = "all_2"
BY_DRAW = "spearman_logits_heads_by_draw"  # the trained model against each random output layer, over the draws
# Methods whose map multiplies a gradient by a part of the input (``input_contrast``): the input's
# difference from a reference (x - x'), or for the flow gradients the warp's derivative with
# respect to the flow.  The sanity suite also measures how far each model's map agrees with that
# part alone.
FLOW_METHODS = ("flow_gradient", "smoothflow")
INPUT_METHODS = ("input_x_gradient", "integrated_gradients", *FLOW_METHODS)

Progress = Callable[[int, int, str], None]


def shapes_task(model: VideoModel) -> str | None:
    """The Moving Shapes task whose labels the model has (None: not a Moving Shapes model)."""
    for task, labels in TASK_LABELS.items():
        if list(model.labels) == labels:
            return task
    return None


def _saved_suite(store, suite: str, model: VideoModel, methods, n, seed, noise, distractors, params, progress,
                 randomised, slow_clips, earlier_rows, on_row) -> dict:  # fmt: skip
    """``run_suite`` through the run store: the saved result of these settings, else a new one, saved."""
    from ..api import open_store
    from .saved import clips_text, save_evaluation, saved_evaluation, suite_settings

    runs = open_store(store)
    names = [spec.name for spec in suite_methods(model, suite, methods)]
    settings = suite_settings(suite, names, n, seed, noise, distractors, randomised, params, slow_clips)
    found = saved_evaluation(runs, model, f"{suite} suite", settings)
    if found is not None:
        return {**found[1], "saved_run": found[0].key}
    result = run_suite(suite, model, methods, n, seed, noise, distractors, params, progress, randomised, slow_clips,
                       earlier_rows, on_row)  # fmt: skip
    summary = to_markdown(result).splitlines()[0].lstrip("# ")
    record = save_evaluation(runs, model, f"{suite} suite", settings, result, float(result["seconds"]), summary,
                             clips_text(n, seed))  # fmt: skip
    return {**result, "saved_run": record.key}


def evaluation_clips(
    model: VideoModel,
    n: int,
    seed: int = FIRST_SEED,
    noise: float = 8.0,
    distractors: int = 2,
    pause: bool | str = False,
) -> list[ShapesSample]:
    """``n`` clips (seeds ``seed``..) at the model's input size, with their ground truth.
    ``pause``: every clip pauses (True), none (False), or every second one ("half")."""
    spec = model.input_spec
    if spec.height != spec.width:
        raise ValueError(f"Moving Shapes clips are square; {model.name} takes {spec.height}x{spec.width} frames")
    if n < 1:
        raise ValueError("evaluate needs at least one clip")
    shape = clip_shape(spec.frames, spec.height)
    pauses = [i % 2 == 1 if pause == "half" else bool(pause) for i in range(n)]
    return [generate(seed + i, noise=noise, distractors=distractors, pause=p, **shape) for i, p in enumerate(pauses)]


def clip_pauses(model: VideoModel, suite: str) -> bool | str:
    """Which clips pause: all in the temporal suite; for a model of the pause task every second
    one elsewhere (so both of its classes are explained); else none."""
    if suite == "temporal":
        return True
    return "half" if shapes_task(model) == "pause" else False


def suite_methods(model: VideoModel, suite: str, methods: list[str] | None) -> list:
    """The specs to evaluate: those asked for (checked), or every usable one of the suite's families."""
    families = SUITE_FAMILIES[suite]
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


def _clip_mean(value) -> float:
    """One clip's value: a scalar, or the mean over its frames (NaN frames left out)."""
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def summarise(values: list) -> tuple[float, float, int]:
    """Per-clip values (scalars or per-frame arrays) -> (mean over the clips of each clip's mean,
    its standard error over the clips, the number of clips with a value).  The standard error is
    NaN with fewer than two clips."""
    per_clip = np.array([_clip_mean(v) for v in values])
    finite = per_clip[np.isfinite(per_clip)]
    if finite.size == 0:
        return float("nan"), float("nan"), 0
    se = float(finite.std(ddof=1) / np.sqrt(finite.size)) if finite.size > 1 else float("nan")
    return float(finite.mean()), se, int(finite.size)


def _put(row: dict, key: str, values: list) -> None:
    """``row[key]`` the mean over clips, ``row[key + "_se"]`` its standard error, ``row[key + "_n"]`` the clips."""
    row[key], row[f"{key}_se"], row[f"{key}_n"] = summarise(values)


def _localization_row(spec, maps: list[np.ndarray], clips: list[ShapesSample], prefix: str = "") -> dict:
    per: dict[str, list] = {}
    for spatial, sample in zip(maps, clips, strict=True):
        view = read_map(spatial, spec.reading)[1:]
        target, distractors = sample.target_masks[1:], sample.distractor_masks[1:]
        scores = {**pointing_game(view, target, distractors), **rank_scores(view, target, target | distractors)}
        scores["area_share"] = target.mean((1, 2))
        for key, value in scores.items():
            per.setdefault(key, []).append(value)
    row: dict = {}
    for key, values in per.items():
        _put(row, prefix + key, values)
    return row


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
    randomised: bool = False,
    slow_clips: int | None = None,
    earlier_rows: dict[str, dict] | None = None,
    on_row: Callable[[dict], None] | None = None,
    store=None,
) -> dict:
    """Run one suite; returns {"suite", "model", "clips", "seed", "options", "target", "rows", "seconds"}
    (and the pointing game's ``pointing_tolerance`` in pixels for localisation and sanity),
    one row per method: for each score its mean over the clips (``KEY``), the standard error over
    the clips (``KEY_se``) and their number (``KEY_n``).  ``params``: method name -> parameters.
    ``randomised`` (localisation): also explain a copy with every weight randomised, whose scores
    come as ``random_KEY`` with the Spearman correlation of the two maps (``spearman_all``);
    the sanity suite always does.
    ``slow_clips``: the methods that take minutes a clip on a CPU (``ON_REQUEST``: TSR) are run on
    the first ``slow_clips`` clips only (their rows say how many, ``KEY_n``); default all ``n``.
    ``progress(done, total, what)`` is called after every explanation (it may raise to stop the run).
    ``on_row(row)`` is called as each method's row is complete; ``earlier_rows`` (method -> row,
    from such calls in a stopped run with the same arguments) are kept instead of measured again:
    every method seeds its own noise and the randomised copies come from ``seed``, so a row does
    not depend on the methods measured before it.
    ``store`` (a RunStore, a folder, or True for ``$XAI_RUNS``): a result saved there for this model
    and these settings is returned instead (its ``saved_run`` key names it), and a new one is saved."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    if store is not None and store is not False:
        return _saved_suite(store, suite, model, methods, n, seed, noise, distractors, params, progress, randomised,
                            slow_clips, earlier_rows, on_row)  # fmt: skip
    start = time.perf_counter()
    specs = suite_methods(model, suite, methods)
    if not specs:
        raise MethodError(f"{model.name} supports no method the {suite} suite scores")
    params = params or {}
    stray = sorted(set(params) - {s.name for s in specs})
    if stray:
        raise MethodError(f"parameters given for {stray[0]}, which this run does not evaluate")
    clips = evaluation_clips(model, n, seed, noise, distractors, pause=clip_pauses(model, suite))
    variants = [("trained", model)]
    if suite == "sanity":
        variants += [("logits", randomized_copy(model, "logits", seed)), ("all", randomized_copy(model, "all", seed))]
        variants += [(name, randomized_copy(model, "logits", seed + k)) for k, name in enumerate(HEADS) if k]
        variants += [(TWIN, randomized_copy(model, "all", seed + 1))]
    elif suite == "localization" and randomised:
        variants += [("all", randomized_copy(model, "all", seed))]
    if slow_clips is not None and slow_clips < 1:
        raise ValueError(f"slow_clips must be at least 1, got {slow_clips}")

    def clips_for(spec) -> list[ShapesSample]:
        return clips[:slow_clips] if spec.name in ON_REQUEST and slow_clips is not None else clips

    def variants_for(spec) -> list[tuple[str, VideoModel]]:
        return [
            (name, net)
            for name, net in variants
            if (name not in HEADS[1:] or pair_measured(spec)) and (name != TWIN or shared_measured(spec))
        ]

    earlier_rows = earlier_rows or {}
    to_measure = [spec for spec in specs if spec.name not in earlier_rows]
    count = {"done": 0, "total": sum(len(clips_for(spec)) * len(variants_for(spec)) for spec in to_measure)}

    def tick(spec, sample: ShapesSample, name: str) -> None:
        count["done"] += 1
        if progress is not None:
            progress(count["done"], count["total"], f"{spec.name} on clip {sample.seed} ({name} model)")

    more: list[tuple[str, VideoModel]] = []  # the five more output layers, drawn when first needed
    rows = []
    for spec in specs:
        if spec.name in earlier_rows:
            rows.append(earlier_rows[spec.name])
            continue
        results: dict[str, list] = {}
        _explain_each(model, spec, clips_for(spec), variants_for(spec), params, results, tick)
        row = _row(model, suite, spec, results, clips_for(spec))
        if suite == "sanity" and pair_measured(spec) and heads_unsettled(row):  # five more output layers
            more = more or [(name, randomized_copy(model, "logits", seed + k)) for k, name in enumerate(ALL_HEADS)
                            if name in MORE_HEADS]  # fmt: skip
            count["total"] += len(clips_for(spec)) * len(more)
            _explain_each(model, spec, clips_for(spec), more, params, results, tick)
            row |= readout_heads_scores(spec, results["trained"], [results[name] for name in ALL_HEADS])
        if suite == "sanity" and spec.name in INPUT_METHODS:
            row |= input_scores(model, spec, clips_for(spec), results["trained"], results["all"], params.get(spec.name))
        if suite == "sanity" and shared_measured(spec):
            row |= shared_part_scores(clips_for(spec), results["trained"], results["all"])
            row |= random_twin_scores(spec, results["trained"], results["all"], results[TWIN])
        rows.append(
            {
                "method": spec.name,
                "family": spec.family,
                "reading": spec.reading,
                "target_free": target_free(spec),
                **row,
            }
        )
        if on_row is not None:
            on_row(rows[-1])
    task = shapes_task(model)
    extra = {}
    if suite == "temporal" and model.task == "classification":
        labels = [_target(model, c) for c in clips]
        if None in labels:  # not a Moving Shapes model: the predicted classes stand for the truth
            labels = [int(p["index"]) for p in (predict(model, c.video) for c in clips)]
        masked = masked_accuracy(model, [c.video for c in clips], labels)
        extra["masked_accuracy"] = {"accuracy": masked["accuracy"], "masked": masked["masked"].tolist()}
    if suite in ("localization", "sanity"):
        extra["pointing_tolerance"] = pointing_tolerance(*clips[0].video.shape[1:3])
    return {
        "suite": suite,
        "model": model.name,
        "clips": n,
        "seed": seed,
        "options": {"noise": noise, "distractors": distractors, "pause": clip_pauses(model, suite)},
        "randomised": suite == "sanity" or (suite == "localization" and randomised),
        "target": f"the true {task}" if task else "the predicted class",
        "rows": rows,
        **extra,
        "seconds": round(time.perf_counter() - start, 2),
        "device": str(model.device),
    }


def _explain_each(
    model: VideoModel,
    spec,
    clips: list[ShapesSample],
    copies: list[tuple[str, VideoModel]],
    params: dict[str, dict],
    into: dict[str, list],
    tick: Callable[[object, ShapesSample, str], None] | None = None,
) -> None:
    """Each (name, copy) of ``copies`` explains each clip with ``spec``'s method for the trained
    ``model``'s target, appended to ``into[name]`` (one explanation per clip, in order);
    ``tick(spec, clip, name)`` after each."""
    for sample in clips:
        target = _target(model, sample)
        for name, net in copies:
            into.setdefault(name, []).append(explain(net, sample.video, spec.name, target=target,
                                                     **params.get(spec.name, {})))  # fmt: skip
            if tick is not None:
                tick(spec, sample, name)


def _maps(explanations: list) -> list[np.ndarray]:
    return [e.spatial if e.spatial is not None else e.temporal for e in explanations]


def _views(spec) -> dict[str, Callable]:
    """How a map is compared, by key suffix: magnitudes, signed, as the method is read."""
    return {"": np.abs, "_signed": np.asarray, "_read": lambda m: read_map(m, spec.reading)}


def _view_correlations(views: dict[str, Callable], pairs: list, prefix: str) -> dict:
    """``PREFIX{suffix}`` (with its spread): the Spearman correlation of each pair of maps in each view."""
    row: dict = {}
    for suffix, view in views.items():
        _put(row, f"{prefix}{suffix}", [spearman(view(a), view(b)) for a, b in pairs])
    return row


def sanity_scores(spec, trained: list, randomised: list, scope: str) -> dict:
    """Spearman correlations between the maps of the trained model and of a randomised copy
    (``scope``: "logits" or "all"), per clip: of the magnitudes (``spearman_SCOPE``), of the
    signed maps (``_signed``), of the maps as the method is read and shown (``_read``: the
    positive part for most) and of the magnitudes where either map is non-zero (``_support``);
    for spatial maps the first three again frame by frame, averaged over the frames (``_frames``,
    ``_frames_signed``, ``_frames_read``); and the copy's ``size_trend_SCOPE``, how the size of its
    maps follows the frame index."""
    pairs = list(zip(_maps(trained), _maps(randomised), strict=True))
    views = _views(spec)
    row = _view_correlations(views, pairs, f"spearman_{scope}")
    _put(row, f"spearman_{scope}_support", [spearman(np.abs(a), np.abs(b), support=True) for a, b in pairs])
    if all(a.ndim == 3 for a, _ in pairs):  # spatial maps: the same frame by frame
        for suffix, view in views.items():
            _put(row, f"spearman_{scope}_frames{suffix}", [spearman_per_frame(view(a), view(b)) for a, b in pairs])
    _put(row, f"size_trend_{scope}", [size_trend(b) for _, b in pairs])
    return row


def random_twin_scores(spec, trained: list, randomised: list, twin: list) -> dict:
    """The all-weights test against a second copy with every weight randomised (``twin``: its
    explanations, one per clip; from seed + 1), per clip, in each view (magnitudes, ``_signed``,
    ``_read``): the two random copies' maps against each other (``spearman_all_twin``) and the
    trained model's against the second copy's (``spearman_all_trained_twin``).  Random copies that
    agree with each other as closely as the trained model does with one say that random networks
    of the architecture share that part of the maps on this input (one more draw)."""
    views = _views(spec)
    twins = list(zip(_maps(randomised), _maps(twin), strict=True))
    row = _view_correlations(views, twins, "spearman_all_twin")
    return row | _view_correlations(
        views, list(zip(_maps(trained), _maps(twin), strict=True)), "spearman_all_trained_twin"
    )


def pair_measured(spec) -> bool:
    """Whether the sanity suite measures ``readout_heads_scores`` for a method: a gradient or CAM
    method (``GOAL_METHODS``) whose maps depend on the target."""
    return spec.name in GOAL_METHODS and not target_free(spec)


def readout_heads_scores(spec, trained: list, heads: list[list]) -> dict:
    """The output-layer test over several random output layers (``heads``: each copy's
    explanations, one per clip), per clip, in each view (magnitudes, ``_signed``, ``_read``): the
    trained model's maps against each copy's, averaged over the copies
    (``spearman_logits_heads``), and the copies' maps against each other, averaged over the pairs
    (``spearman_logits_pairs``), and the pairs that agree least and most over the clips
    (``spearman_logits_pairs_lowest``, ``_highest``); the first two copies' pair alone is
    ``spearman_logits_pair`` (the reference of results measured before the third copy); the number
    of copies is ``HEADS_DRAWN``.  ``spearman_logits_heads_by_draw`` is the trained model's mean
    over the clips against each copy, summarised over the copies: its ``_se`` is the standard error
    over the draws (how far the trained model's figure depends on which output layer is drawn),
    its ``_n`` the copies.  Copies
    whose maps agree with each other above the goal say that no output layer drawn at random moves
    the maps under it."""
    views = _views(spec)
    trained_maps, head_maps = _maps(trained), [_maps(h) for h in heads]
    pairs = list(itertools.combinations(range(len(heads)), 2))
    row: dict = {}
    for suffix, view in views.items():
        with_trained = [[spearman(view(t), view(h[c])) for h in head_maps] for c, t in enumerate(trained_maps)]
        between = np.array(  # [clips, pairs]
            [[spearman(view(maps[i]), view(maps[j])) for i, j in pairs] for maps in zip(*head_maps, strict=True)]
        )
        _put(row, f"spearman_logits_heads{suffix}", [np.array(v) for v in with_trained])
        with warnings.catch_warnings():  # a copy whose maps are constant on every clip: NaN, left out
            warnings.simplefilter("ignore", RuntimeWarning)
            per_draw = np.nanmean(np.array(with_trained, dtype=float), axis=0)  # [copies]
        _put(row, f"{BY_DRAW}{suffix}", list(per_draw))
        _put(row, f"spearman_logits_pairs{suffix}", list(between))
        _put(row, f"spearman_{PAIR}{suffix}", list(between[:, 0]))  # pairs[0]: the copies HEADS[0] and HEADS[1]
        per_pair = np.array([summarise(list(col))[0] for col in between.T])
        if np.isfinite(per_pair).any():  # the pairs that agree least and most, with their spread over the clips
            _put(row, f"spearman_logits_pairs_lowest{suffix}", list(between[:, np.nanargmin(per_pair)]))
            _put(row, f"spearman_logits_pairs_highest{suffix}", list(between[:, np.nanargmax(per_pair)]))
    row[HEADS_DRAWN] = len(heads)
    return row


def heads_drawn(row: dict) -> int:
    """How many random output layers a row's figures were read over (rows stored before the count
    was kept: three)."""
    return int(row.get(HEADS_DRAWN, len(HEADS)))


def heads_unsettled(row: dict) -> bool:
    """Whether the random output layers leave the output-layer test open in some view (magnitudes,
    signed, as read): the first copy's figure and the trained model's mean against the copies above
    the goal, while the pair of copies that agrees least agrees within it, so that the figure
    depends on which output layer is drawn."""
    for suffix in ("", "_signed", "_read"):
        first, lowest, trained = (row.get(f"spearman_logits{what}{suffix}") for what in ("", "_pairs_lowest", "_heads"))
        if all(v is not None and np.isfinite(v) for v in (first, lowest, trained)):
            if min(first, trained) > SANITY_GOAL >= lowest:
                return True
    return False


def shared_measured(spec) -> bool:
    """Whether the sanity suite measures ``shared_part_scores`` for a method: a gradient or CAM
    method (``GOAL_METHODS``) with spatial maps."""
    return spec.name in GOAL_METHODS and spec.family in ("spatial", "motion")


def shared_part_scores(clips: list[ShapesSample], trained: list, randomised: list) -> dict:
    """What the trained model's maps and the fully randomised copy's may share besides the model,
    per clip, magnitudes [T,H,W]: each map against nearness to the shapes (target and distractors,
    ``shape_nearness``: ``spearman_trained_objects``, ``spearman_all_objects``); the two maps
    against each other with that nearness held fixed (``spearman_all_given_objects``, a partial
    Spearman correlation: at most the goal, following the shapes accounts for their agreement);
    and the trained model's map of each clip against the copy's map of the next clip
    (``spearman_all_other_clip``; as high as on the same clip, what they share does not depend on
    the clip: a pattern every clip gives, from the architecture or from where shapes lie)."""
    first, second = [np.abs(m) for m in _maps(trained)], [np.abs(m) for m in _maps(randomised)]
    near = [shape_nearness(c.target_masks | c.distractor_masks) for c in clips]
    if any(m.shape != n.shape for m, n in zip(first, near, strict=True)):
        raise ValueError("the maps are not at the size of the clips' shape masks")
    row: dict = {}
    _put(row, "spearman_trained_objects", [spearman(a, n) for a, n in zip(first, near, strict=True)])
    _put(row, "spearman_all_objects", [spearman(b, n) for b, n in zip(second, near, strict=True)])
    _put(row, "spearman_all_given_objects", [partial_spearman(a, b, n) for a, b, n in zip(first, second, near)])
    others = [spearman(first[c], second[(c + 1) % len(first)]) for c in range(len(first))] if len(first) > 1 else []
    _put(row, "spearman_all_other_clip", others or [float("nan")])
    return row


def input_contrast(model: VideoModel, video: np.ndarray, method: str, params: dict | None = None) -> np.ndarray:
    """The part of an ``INPUT_METHODS`` map that is the input alone [T,H,W], x the clip as the
    model takes it (normalised): for input x gradient and integrated gradients |x - x'| summed over
    the colour channels, x' the method's reference (integrated gradients: its baseline, from
    ``params`` and the method's defaults; input x gradient: zero), which the method weights by a
    gradient; for the flow gradients the derivative of the warp of the previous frame by the flow
    with respect to the flow (``flows.warp``, the method's Farneback settings), by autograd: its
    norm per pixel, summed over the colour channels, frame 0 zero as in their maps.  That
    derivative is the previous frame's image gradient where the flow samples it (bilinear, as the
    method's backward pass differentiates it); the chain rule multiplies it into every flow
    gradient (smoothflow: into each noisy sample's, so there it stands in for it)."""
    if method not in INPUT_METHODS:
        raise ValueError(f"{method} does not multiply its gradient by the input")
    spec = next(s for s in method_specs() if s.name == method)
    params = spec.resolve_params(params or {})  # the method's own defaults
    x = model.preprocess(video)
    if method in FLOW_METHODS:
        farneback = {p.name: params[p.name] for p in FARNEBACK_PARAMS}
        flows = clip_flows(model, x, **farneback)[0].to(x.dtype).requires_grad_(True)  # [T-1,2,H,W]
        with torch.enable_grad():
            moved = warp(x[0, :-1].detach(), flows)  # [T-1,C,H,W]; pixel p depends on f(p) alone
            edges = sum(  # per colour channel: |d warp_c / d f| at each pixel, as the method's backward has it
                torch.autograd.grad(moved[:, c].sum(), flows, retain_graph=True)[0].norm(dim=1)
                for c in range(moved.shape[1])
            )
        return torch.cat([torch.zeros_like(edges[:1]), edges]).detach().float().cpu().numpy()
    if method == "integrated_gradients":
        reference = baseline_clip(model, x, params["baseline"], params["blur_sigma"])
    else:
        reference = x.new_zeros(x.shape)
    return (x - reference).abs().sum(2)[0].detach().float().cpu().numpy()


def input_scores(model: VideoModel, spec, clips: list[ShapesSample], trained: list, randomised: list,
                 params: dict | None = None) -> dict:  # fmt: skip
    """Spearman correlations of the magnitudes of the trained model's maps (``spearman_trained_input``)
    and of the fully randomised copy's (``spearman_all_input``) with ``input_contrast``, per clip:
    as high as the two maps' own correlation, they say what the maps share is the input."""
    contrasts = [input_contrast(model, c.video, spec.name, params) for c in clips]
    row: dict = {}
    for key, explanations in (("trained", trained), ("all", randomised)):
        maps = _maps(explanations)
        if any(m.shape != c.shape for m, c in zip(maps, contrasts, strict=True)):
            raise ValueError(f"{spec.name}'s maps are not at the size the model takes the clip")
        _put(row, f"spearman_{key}_input", [spearman(np.abs(m), c) for m, c in zip(maps, contrasts, strict=True)])
    return row


REPRODUCED = 1e-6  # a stored figure measured again must agree this closely to keep the stored results


def check_reproduced(model: VideoModel, row: dict, again: dict, scope: str = "all") -> None:
    """Raise when figures measured again (``again``, from ``sanity_scores`` for ``scope``) differ
    from the stored ``row``'s: its clips, randomised copies or method are not those of this code and
    device, so nothing may be added to it."""
    _check_stored(model, row, again, [f"spearman_{scope}", f"spearman_{scope}_signed"])


def check_heads_reproduced(model: VideoModel, row: dict, again: dict) -> None:
    """Raise when the output-layer figures over the random output layers measured again (``again``,
    from ``readout_heads_scores``) differ from the stored ``row``'s (as ``check_reproduced``); a
    view the method does not have (in neither) is skipped."""
    keys = [f"spearman_logits_{what}{k}" for what in ("heads", "pairs") for k in ("", "_signed", "_read")]
    _check_stored(model, row, again, [key for key in keys if key in row or again.get(key) is not None])


def _check_stored(model: VideoModel, row: dict, again: dict, keys: list[str]) -> None:
    """Raise unless each of ``keys`` is stored in ``row`` and measured again in ``again`` alike
    (within ``REPRODUCED``; NaN, stored as null, equals NaN)."""
    for key in keys:
        stored, now = row.get(key, "missing"), again.get(key)
        stored = float("nan") if stored is None else stored  # NaN is stored as null
        if stored == "missing" or now is None or not np.isclose(stored, now, atol=REPRODUCED, equal_nan=True):
            raise ValueError(
                f"the stored {key} of {row['method']} on {model.name} ({stored}) is not what this code measures "
                f"({now}): its results cannot be completed; measure them again (without --add-missing)"
            )


# What ``add_missing_figures`` can add: the key whose absence marks a row without the figures, and
# the copies whose maps they need ("trained", "all", and the output-layer copies ``HEADS``);
# "more_heads", the five more output layers where three leave the test open, is marked by
# ``heads_unsettled`` on a row read over three.
ADDABLE = {
    "heads": ("spearman_logits_pairs", ("trained", *HEADS)),
    "more_heads": (HEADS_DRAWN, ("trained", *ALL_HEADS)),
    "by_draw": (BY_DRAW, ("trained", *ALL_HEADS)),
    "input": ("spearman_all_input", ("trained", "all")),
    "shared": ("spearman_all_given_objects", ("trained", "all")),
    "twin": ("spearman_all_twin", ("trained", "all", TWIN)),
}


def _addable(spec) -> list[str]:
    """The figures of ``ADDABLE`` the sanity suite measures for a method ("more_heads" only where
    the three output layers leave the test open)."""
    measured = {"heads": pair_measured(spec), "input": spec.name in INPUT_METHODS, "shared": shared_measured(spec),
                "twin": shared_measured(spec)}  # fmt: skip
    return [name for name, yes in measured.items() if yes]


def _missing(spec, row: dict) -> list[str]:
    """What ``add_missing_figures`` adds to a stored row ("twin" only where the method's maps are
    above the goal with every weight randomised: the only rows whose report line reads it)."""
    missing = [name for name in _addable(spec) if ADDABLE[name][0] not in row and name != "twin"]
    if "twin" in _addable(spec) and ADDABLE["twin"][0] not in row and scope_correlation(row, "all") > SANITY_GOAL:
        missing.append("twin")
    if "heads" in _addable(spec) and "heads" not in missing and heads_unsettled(row):
        if heads_drawn(row) < len(ALL_HEADS):
            missing.append("more_heads")
        elif BY_DRAW not in row:  # the spread over the draws, where the eight leave the test open
            missing.append("by_draw")
    return missing


def add_missing_figures(
    model: VideoModel,
    rows: list[dict],
    n: int,
    seed: int = FIRST_SEED,
    noise: float = 8.0,
    distractors: int = 2,
    params: dict[str, dict] | None = None,
    slow_clips: int | None = None,
    progress: Progress | None = None,
) -> list[dict]:
    """Stored sanity ``rows`` (of ``run_suite`` with these arguments, on this device) with the
    figures added that a row lacks (rows measured before the suite measured them, ``ADDABLE``):
    ``readout_heads_scores`` (over five more output layers where three leave the test open:
    ``heads_unsettled``; again over the eight where they leave it open and the row lacks the spread
    over the draws, ``BY_DRAW``), ``input_scores``, ``shared_part_scores`` and, where the maps are
    above the goal with every weight randomised, ``random_twin_scores``, on the same clips and the same
    randomised copies (from ``seed``, and ``seed + k`` for the k-th output layer, ``seed + 1`` for
    the second copy with every weight randomised) as a fresh run.  Where the trained model's maps
    are explained again with a copy's, the stored figures of that copy are measured again and must
    agree (``check_reproduced``: other clips, copies or a method changed since raise)."""
    specs = {s.name: s for s in suite_methods(model, "sanity", None)}
    params = params or {}
    jobs = []
    for row in rows:
        if row["method"] in specs:
            missing = _missing(specs[row["method"]], row)
            if missing:
                jobs.append((row, missing))
    if not jobs:
        return rows
    clips = evaluation_clips(model, n, seed, noise, distractors, pause=clip_pauses(model, "sanity"))
    copies: dict[str, VideoModel] = {"trained": model, "all": randomized_copy(model, "all", seed)}
    copies |= {name: randomized_copy(model, "logits", seed + k) for k, name in enumerate(ALL_HEADS)}
    copies[TWIN] = randomized_copy(model, "all", seed + 1)
    what = {"trained": "trained model", "all": "all weights randomised", TWIN: "all weights randomised, copy 2"}
    what |= {name: f"output layer copy {k + 1}" for k, name in enumerate(ALL_HEADS)}

    def clips_for(spec) -> list[ShapesSample]:
        return clips[:slow_clips] if spec.name in ON_REQUEST and slow_clips is not None else clips

    def needed(missing: list[str]) -> list[str]:
        return [name for name in copies if any(name in ADDABLE[m][1] for m in missing)]

    count = {"done": 0, "total": sum(len(needed(m)) * len(clips_for(specs[r["method"]])) for r, m in jobs)}

    def tick(spec, sample: ShapesSample, name: str) -> None:
        count["done"] += 1
        if progress is not None:
            progress(count["done"], count["total"], f"{spec.name} on clip {sample.seed} ({what[name]})")

    def explain_with(spec, chosen: list[ShapesSample], names: list[str], maps: dict[str, list]) -> None:
        _explain_each(model, spec, chosen, [(name, copies[name]) for name in names], params, maps, tick)

    added: dict[str, dict] = {}
    for row, missing in jobs:
        spec = specs[row["method"]]
        chosen = clips_for(spec)
        maps: dict[str, list] = {}
        explain_with(spec, chosen, needed(missing), maps)
        for scope in ("all", "logits"):
            if "trained" in maps and scope in maps:
                check_reproduced(model, row, sanity_scores(spec, maps["trained"], maps[scope], scope), scope)
        scores: dict = {}
        if "heads" in missing:
            scores |= readout_heads_scores(spec, maps["trained"], [maps[name] for name in HEADS])
            if heads_unsettled({**row, **scores}):  # the three added leave it open: five more, as a fresh run
                count["total"] += len(chosen) * len(MORE_HEADS)
                missing.append("more_heads")
                explain_with(spec, chosen, list(MORE_HEADS), maps)
        if "more_heads" in missing:
            scores |= readout_heads_scores(spec, maps["trained"], [maps[name] for name in ALL_HEADS])
        elif "by_draw" in missing:  # the stored figures over the eight must come out the same; only the spread is new
            again = readout_heads_scores(spec, maps["trained"], [maps[name] for name in ALL_HEADS])
            check_heads_reproduced(model, row, again)
            scores |= {key: value for key, value in again.items() if key.startswith(BY_DRAW)}
        if "input" in missing:
            scores |= input_scores(model, spec, chosen, maps["trained"], maps["all"], params.get(spec.name))
        if "shared" in missing:
            scores |= shared_part_scores(chosen, maps["trained"], maps["all"])
        if "twin" in missing:
            scores |= random_twin_scores(spec, maps["trained"], maps["all"], maps[TWIN])
        added[spec.name] = scores
    return [{**r, **added.get(r["method"], {})} for r in rows]


def _row(model: VideoModel, suite: str, spec, results: dict[str, list], clips: list[ShapesSample]) -> dict:
    trained = results["trained"]
    if suite == "localization":
        row = _localization_row(spec, [e.spatial for e in trained], clips)
        if "all" in results:
            row |= _localization_row(spec, [e.spatial for e in results["all"]], clips, prefix="random_")
            row |= sanity_scores(spec, trained, results["all"], "all")
        return row
    if suite == "temporal":
        per: dict[str, list] = {}
        for expl, clip in zip(trained, clips, strict=True):
            curve = read_map(expl.temporal, spec.reading)
            scores = temporal_scores(curve, clip.pause_frames)
            scores["key_frame_overlap"] = key_frame_overlap(curve, key_frames(clip.video)[1])
            x = model.preprocess(clip.video)
            curves = deletion_insertion(model, x, Target.from_dict(expl.target), curve, random_orders=RANDOM_ORDERS)
            scores |= {k: v for k, v in curves.items() if k.endswith("_auc")}
            scores["pause_share"] = clip.pause_frames.mean()
            for key, value in scores.items():
                per.setdefault(key, []).append(value)
        row = {}
        for key, values in per.items():
            _put(row, key, values)
        return row
    row = {}
    for scope in ("logits", "all"):
        row |= sanity_scores(spec, trained, results[scope], scope)
    if all(results.get(name) for name in HEADS):
        row |= readout_heads_scores(spec, trained, [results[name] for name in HEADS])
    _put(row, "size_trend_trained", [size_trend(m) for m in _maps(trained)])
    if spec.family in ("spatial", "motion"):
        row |= _localization_row(spec, [e.spatial for e in trained], clips)
        row |= _localization_row(spec, [e.spatial for e in results["all"]], clips, prefix="random_")
    return row


def clip_scores(model: VideoModel, suite: str, spec, explanations: dict[str, object], sample) -> dict[str, float]:
    """One clip's scores in ``suite``, as ``run_suite`` measures them for each of its clips:
    ``explanations`` maps "trained" (and for sanity "logits" and "all", for localisation
    optionally "all") to the explanation of that model; ``sample`` has the clip's ``video``
    [T,H,W,3] and ground truth (``target_masks``, ``distractor_masks``, ``pause_frames``)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    row = _row(model, suite, spec, {name: [e] for name, e in explanations.items()}, [sample])
    return {k: v for k, v in row.items() if not k.endswith(("_se", "_n"))}


def target_free(spec) -> bool:
    """Whether a method's maps ignore the target: attention weights are computed before the output
    layer, so randomising that layer cannot change them (only the full randomisation tests them)."""
    return "temporal_attention" in spec.requires


def _largest(row: dict, keys: list[str]) -> float:
    values = [row[k] for k in keys if row.get(k) is not None and np.isfinite(row[k])]
    return max(values) if values else float("nan")


def scope_correlation(row: dict, scope: str) -> float:
    """The largest of a row's Spearman correlations with the ``scope`` copy ("all" or "logits"):
    magnitudes, signed maps, maps as read; NaN when there is none (and for the output-layer copy
    of a target-free method, which cannot change it)."""
    if scope == "logits" and row.get("target_free"):
        return float("nan")
    return _largest(row, [f"spearman_{scope}{suffix}" for suffix in ("", "_signed", "_read")])


def frame_correlation(row: dict, scope: str) -> float:
    """The largest of a row's frame-by-frame Spearman correlations with the ``scope`` copy
    (magnitudes, signed, as read): whether the maps survive within each frame; NaN for a method
    without spatial maps (or, for the output-layer copy, one that ignores the target)."""
    if scope == "logits" and row.get("target_free"):
        return float("nan")
    return _largest(row, [f"spearman_{scope}_frames{suffix}" for suffix in ("", "_signed", "_read")])


def survival(row: dict) -> float:
    """How far a method's maps survive randomising every weight: the largest Spearman correlation
    between the trained and the fully randomised model's maps (``scope_correlation`` "all"; NaN
    when the row has none).  Above ``SURVIVES`` the maps do not depend on what the model learned,
    and the app warns.  (The output-layer copy asks another question, whether a map depends on
    the class read out; the reports show it beside.)"""
    return scope_correlation(row, "all")


LOCALIZATION_COLUMNS = [
    ("pointing", "pointing game", "pct"),
    ("pointing_chance", "pointing game by chance", "pct"),
    ("inside", "peak on shape", "pct"),
    ("within_4px", "within 4 px", "pct"),
    ("on_distractor", "peak on a distractor", "pct"),
    ("mass_on_shape", "mass on shape", "pct"),
    ("target_over_union", "target / shapes rank", "ratio"),
    ("target_over_all", "target / all rank", "ratio"),
    ("area_share", "shape's area share", "pct"),
]
RANDOMISED_COLUMNS = [
    ("random_pointing", "randomised: pointing game", "pct"),
    ("random_inside", "randomised: peak on shape", "pct"),
    ("random_target_over_union", "randomised: target / shapes", "ratio"),
    ("random_target_over_all", "randomised: target / all", "ratio"),
    ("spearman_all", "Spearman with the randomised maps", "ratio"),
]
COLUMNS = {
    "localization": LOCALIZATION_COLUMNS,
    "sanity": [
        ("spearman_logits", "Spearman, output layer randomised", "ratio"),
        ("spearman_logits_signed", "output layer randomised, signed", "ratio"),
        ("spearman_logits_heads", "output layer randomised, mean over the random copies", "ratio"),
        ("spearman_logits_pairs", "random output layers with each other (reference)", "ratio"),
        ("spearman_all", "Spearman, all weights randomised", "ratio"),
        ("spearman_all_signed", "all weights randomised, signed", "ratio"),
        ("spearman_all_given_objects", "all randomised, nearness to the shapes held fixed", "ratio"),
        ("spearman_all_other_clip", "trained map vs randomised map of another clip", "ratio"),
        ("spearman_all_twin", "two randomised copies with each other (reference)", "ratio"),
        ("spearman_trained_input", "trained map vs the input alone", "ratio"),
        ("spearman_all_input", "randomised map vs the input alone", "ratio"),
        ("spearman_logits_frames", "output layer randomised, frame by frame", "ratio"),
        ("spearman_all_frames", "all weights randomised, frame by frame", "ratio"),
        ("size_trend_trained", "trained: map size vs frame index", "ratio"),
        ("size_trend_all", "all randomised: map size vs frame index", "ratio"),
        ("pointing", "pointing game", "pct"),
        ("random_pointing", "randomised: pointing game", "pct"),
        ("inside", "peak on shape", "pct"),
        ("random_inside", "randomised: peak on shape", "pct"),
        ("target_over_union", "target / shapes rank", "ratio"),
        ("random_target_over_union", "randomised: target / shapes", "ratio"),
        ("target_over_all", "target / all rank", "ratio"),
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


def result_columns(result: dict) -> list[tuple[str, str, str]]:
    """The (key, title, kind) columns of a suite's result (a randomised localisation adds its own)."""
    columns = list(COLUMNS[result["suite"]])
    if result["suite"] == "localization" and result.get("randomised"):
        columns += RANDOMISED_COLUMNS
    return columns


def jsonable(value):
    """A result with every non-finite float (NaN: no value) as None, for strict JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def format_value(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if kind == "score":
        return f"{value:.3g}"
    return f"{value:.1%}" if kind == "pct" else f"{value:.2f}"


def cell(row: dict, key: str, kind: str, clips: int | None = None) -> str:
    """A row's figure with its standard error over the clips: "0.72 ± 0.03" (no ± for one clip);
    "—" for the output-layer correlation of a target-free method (it is 1 by construction); with
    ``clips``, " (n=K)" after a figure that fewer than ``clips`` clips gave."""
    if row.get("target_free") and key.startswith("spearman_logits"):
        return "—"
    text = format_value(row.get(key), kind)
    if text == "n/a":
        return text
    se = row.get(f"{key}_se")
    if se is not None and np.isfinite(se):
        text = f"{text} ± {format_value(se, kind)}"
    counted = row.get(f"{key}_n")
    if clips is not None and counted is not None and counted < clips:
        text += f" (n={counted})"
    return text


def survival_warning(row: dict) -> str | None:
    """A line for a method whose maps survive randomisation (``survival`` above ``SURVIVES``), else None."""
    value = survival(row)
    if not np.isfinite(value) or value <= SURVIVES:
        return None
    within = frame_correlation(row, "all")
    if np.isfinite(within) and within <= SURVIVES:  # what survives is the maps' size from frame to frame
        return (
            f"{row['method']}: over the clip its maps survive randomising the model (Spearman {value:.2f} > "
            f"{SURVIVES}), frame by frame they do not ({within:.2f}): the maps' size from frame to frame is set by "
            "the architecture or the input, not by what this model learned; read each frame's map, not the frame curve"
        )
    return (
        f"{row['method']}: its maps survive randomising the model (Spearman {value:.2f} > {SURVIVES}), "
        "so they do not show what this model learned"
    )


PAUSE_TEXT = {True: ", with a pause", "half": ", every second clip with a pause", False: ""}


def pointing_text(result: dict) -> str | None:
    """What the pointing game's columns of a localisation or sanity result mean (None for other suites)."""
    if "pointing_tolerance" not in result:
        return None
    return (
        f"Pointing game: the share of frames whose map peaks within {result['pointing_tolerance']:g} pixels of the "
        "moving shape (Zhang et al. 2016's 15 pixels, scaled to 15 per 224 of the frame's side); by chance: the "
        "share of the frame that close to it; peak on shape: on the shape itself."
    )


def to_markdown(result: dict) -> str:
    """The suite's result as a markdown table (each figure: mean ± standard error over the clips),
    with a line saying what was measured and a warning under it for each method whose maps
    survive randomisation."""
    columns = result_columns(result)
    opts = result["options"]
    lines = [
        f"{result['suite']} suite, {result['model']}: {result['clips']} Moving Shapes clips from seed {result['seed']} "
        f"(noise {opts['noise']:g}, {opts['distractors']} distractors{PAUSE_TEXT[opts['pause']]}), "
        f"explaining {result['target']}; mean ± standard error over the clips; {result['seconds']:.0f} s.",
        "",
        "| method | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in result["rows"]:
        cells = [cell(row, key, kind, result.get("clips")) for key, _, kind in columns]
        lines.append(f"| `{row['method']}` ({row['reading']}) | " + " | ".join(cells) + " |")
    if pointing_text(result):
        lines += ["", pointing_text(result)]
    warnings = [w for w in (survival_warning(r) for r in result["rows"]) if w]
    if warnings:
        lines += [""] + [f"**Warning:** {w}." for w in warnings]
    if "masked_accuracy" in result:
        masked = np.asarray(result["masked_accuracy"]["masked"])
        lines += [
            "",
            f"Accuracy with one frame masked (black), 002's time contribution over the clips: "
            f"{result['masked_accuracy']['accuracy']:.1%} unmasked; lowest {masked.min():.1%} (frame "
            f"{int(masked.argmin())}), mean {masked.mean():.1%}.",
        ]
    return "\n".join(lines) + "\n"


def table_rows(result: dict) -> list[dict]:
    """The result as display rows (figures as text, "mean ± standard error"): one per method and,
    where a randomised copy was explained, the copy's row right under its method's, with the
    Spearman correlation of their maps and a warning sign where it is above ``SURVIVES``."""
    columns = result_columns(result)
    randomised = bool(result.get("randomised"))
    own = [(k, t, kind) for k, t, kind in columns if not k.startswith(("random_", "spearman_"))]
    if result["suite"] != "localization" or not randomised:
        own = columns
    rows = []
    for row in result["rows"]:
        trained = {"method": row["method"], **({"model": "trained"} if randomised else {})}
        trained |= {title: cell(row, key, kind, result.get("clips")) for key, title, kind in own}
        if randomised:
            value = survival(row)
            mark = "⚠ " if np.isfinite(value) and value > SURVIVES else ""
            trained["survives randomisation (Spearman)"] = mark + format_value(value, "ratio")
        rows.append(trained)
        if result["suite"] == "localization" and randomised:
            copy = {"method": row["method"], "model": "all weights randomised"}
            copy |= {title: cell(row, f"random_{key}", kind, result.get("clips")) for key, title, kind in own}
            copy["survives randomisation (Spearman)"] = ""
            rows.append(copy)
    return rows
