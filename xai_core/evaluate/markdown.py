"""EVALUATION.md's text: the zoo's evaluation (``report.evaluate_zoo``) laid out as report 001's
tables, methods as rows, with the methods above the sanity goal named and the reason where it is
known.  Layout only: it computes no figure, so a change here keeps stored results valid (the code
fingerprint leaves this file out)."""

from __future__ import annotations

import numpy as np
from scipy.stats import t as student_t

from ..models.priors import GATED_SUFFIX
from .suites import (
    BY_DRAW,
    FLOW_METHODS,
    GOAL_METHODS,
    INPUT_METHODS,
    PAIR,
    PAUSE_TEXT,
    SANITY_GOAL,
    SURVIVES,
    cell,
    frame_correlation,
    heads_drawn,
    scope_correlation,
    survival,
)

# Why a method's maps may stay alike when the weights are randomised (named in the report when
# the method's correlation is above the goal).
KNOWN_REASONS = {
    "guided_gradcam": "guided backpropagation keeps only positive gradients through every ReLU and so "
    "reconstructs the input's edges whatever the weights (Adebayo et al. 2018; Nie et al. 2018)",
    "input_x_gradient": "the gradient is multiplied by the input, whose structure is the same for both models",
    "integrated_gradients": "the path integral is multiplied by the input minus the baseline, whose structure "
    "is the same for both models",
    "occlusion": "a patch over an object moves any network's output more than a patch over the flat "
    "background, so both models' maps follow the objects",
    "flow_gradient": "the gradient with respect to the flow passes through the warp of the previous frame, so "
    "it carries that frame's image gradient: the edges of every shape, whatever the weights",
    "smoothflow": "the gradient with respect to the flow passes through the warp of the previous frame, so "
    "it carries that frame's image gradient: the edges of every shape, whatever the weights",
    "trajectories": "its map is its base method's (Grad-CAM by default) read as a magnitude, so it stands or "
    "falls with that method",
}
# Randomising a network from the top leaves the layers below it trained, and the size of their
# activations decides much of what any read-out's maps show (Binder et al. 2023): why the
# output-layer test can leave maps alike however the output layer is drawn.
TOP_DOWN = (
    "randomising a network from the top keeps the scale of the activations below it, so maps can only differ so "
    "far (Binder et al. 2023)"
)
# Methods built on another method's map (their base, by default), how their map is made from it,
# and whether only the base's magnitudes enter it (a map made of changes of the base's map).
BASED_ON = {
    "tsr_onestep": ("saliency", "its map is saliency's (its base method's) times each frame's time relevance", False),
    "tsr": (
        "saliency",
        "its map is built from saliency's (its base method's), as how far masking each block changes the saliency "
        "map, times the frame's time relevance",
        True,
    ),
}
# Why a perturbation method's maps may follow the shapes with every weight randomised.
MASKED_BLOCKS = {
    "tsr": "as for occlusion, masking a block over a shape changes the saliency map of the trained and of the "
    "randomised network more than masking the flat background, so both models' blocks follow the shapes",
}
# Said of an output-layer line outside the goal that no figure explains: a caveat on the test, not
# a reason measured for the method.
READOUT_CAVEAT = (
    "no reason measured for this method; a caveat on any output-layer test: with only the output layer randomised, "
    "the layers below it are the trained model's"
)
FRAME_CAVEAT = ", so the frames whose masking moves their features most tend to move a random read-out most too"


SANITY_COLUMNS = [
    ("spearman_logits", "output layer", "ratio"),
    ("spearman_logits_signed", "(signed)", "ratio"),
    ("spearman_logits_read", "(as read)", "ratio"),
    ("spearman_logits_pairs", "random output layers", "ratio"),
    ("spearman_all", "all weights", "ratio"),
    ("spearman_all_signed", "(signed)", "ratio"),
    ("spearman_all_read", "(as read)", "ratio"),
    ("spearman_all_given_objects", "(nearness to the shapes held fixed)", "ratio"),
    ("spearman_all_other_clip", "(another clip)", "ratio"),
    ("spearman_all_twin", "(two random copies)", "ratio"),
    ("spearman_all_frames", "all weights, frame by frame", "ratio"),
    ("spearman_all_frames_signed", "(signed)", "ratio"),
]
LOCALISATION_COLUMNS = [
    ("pointing", "pointing game", "pct"),
    ("pointing_chance", "(by chance)", "pct"),
    ("inside", "peak on shape", "pct"),
    ("target_over_union", "target / shapes", "ratio"),
    ("target_over_all", "target / all", "ratio"),
]
TEMPORAL_COLUMNS = [
    ("evidence_rank", "pause frames' mean rank", "ratio"),
    ("top_k_share", "pause frames in the top k", "pct"),
    ("pause_share", "(chance: the pause share)", "pct"),
]


def _fewer_clips(evaluation: dict) -> bool:
    """Whether some model's sanity rows hold a method measured on fewer clips than the rest."""
    return any(
        row.get("spearman_all_n", entry["sanity"]["clips"]) < entry["sanity"]["clips"]
        for entry in evaluation["models"].values()
        for row in entry["sanity"]["rows"]
    )


def _table(rows: list[dict], groups: list[tuple[str, list, str]], clips: int) -> list[str]:
    """Markdown table: methods as rows; each group's columns under its heading (prefix: key prefix)."""
    header = ["method"]
    keys = []
    for title, columns, prefix in groups:
        for key, name, kind in columns:
            header.append(f"{title}: {name}")
            keys.append((prefix + key, kind))
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
    for row in rows:
        mark = " ⚠" if survival(row) > SURVIVES else ""
        cells = [cell(row, key, kind, clips) for key, kind in keys]
        lines.append(f"| `{row['method']}`{mark} | " + " | ".join(cells) + " |")
    return lines


SCOPE_TEXT = {"all": "all weights randomised", "logits": "output layer randomised"}


def flagged(rows: list[dict]) -> list[tuple[dict, str, float]]:
    """(row, scope, its largest Spearman correlation with that copy) for each method and copy
    above the goal, highest first."""
    out = []
    for row in rows:
        for scope in ("all", "logits"):
            value = scope_correlation(row, scope)
            if np.isfinite(value) and value > SANITY_GOAL:
                out.append((row, scope, value))
    return sorted(out, key=lambda item: -item[2])


def unmeasured(rows: list[dict]) -> list[str]:
    """Methods with no correlation with the fully randomised copy (constant maps on every clip): not a pass."""
    return [r["method"] for r in rows if not np.isfinite(survival(r))]


TREND = 0.5  # both models' map sizes follow the frame index at least this closely: a shared time course


def shared_trend(row: dict, scope: str) -> tuple[float, float] | None:
    """(trained, randomised) Spearman correlations of the maps' size per frame with the frame
    index, when both have the same sign and are at least ``TREND`` in size: the two models' maps
    grow (or shrink) alike through the clip; else None."""
    trained, randomised = row.get("size_trend_trained"), row.get(f"size_trend_{scope}")
    if trained is None or randomised is None or not (np.isfinite(trained) and np.isfinite(randomised)):
        return None
    if min(abs(trained), abs(randomised)) < TREND or np.sign(trained) != np.sign(randomised):
        return None
    return trained, randomised


def time_course(trend: tuple[float, float]) -> str:
    trained, randomised = trend
    way = "grows toward the last frame" if trained > 0 else "shrinks toward the last frame"
    return (
        f"in both models the maps' size {way} (Spearman of the size per frame with the frame index: trained "
        f"{trained:.2f}, randomised {randomised:.2f}), a time course the two maps share"
    )


PAIR_MARGIN = 0.1  # two random output layers this close to the trained one's figure: the layer cannot change it
VIEW_TEXT = {"": "magnitudes", "_signed": "signed maps", "_read": "maps as read"}


def _finite(value) -> bool:
    return value is not None and bool(np.isfinite(value))


def _decided(finite: dict) -> str:
    """Where the trained output layer's effect shows: the views at or under the goal."""
    low = {k: v for k, v in finite.items() if v <= SANITY_GOAL}
    if low:
        return "; what the trained output layer decides shows in the " + ", ".join(
            f"{VIEW_TEXT[k]} (Spearman {v:.2f})" for k, v in low.items()
        )
    return "; no view of these maps (magnitudes, signed, as read) shows what the output layer decides"


def _drawn(row: dict) -> str:
    """How many random output layers the row's figures were read over, in words."""
    count = heads_drawn(row)
    return {3: "three", 8: "eight"}.get(count, str(count))


def _three_layers(row: dict, finite: dict, above: dict) -> str | None:
    """``readout_reference`` with random output layers (three, or eight where three leave the test
    open): each view above the goal for the first copy is either alike for any output layer (every
    pair of copies above the goal, and the trained model's mean over the copies above it too) or
    that copy's draw (the trained model's mean over the copies within the goal); a view that is
    neither leaves the figure unexplained."""
    drawn = _drawn(row)
    alike, draws = [], []
    for k in above:
        lowest, heads = row.get(f"spearman_logits_pairs_lowest{k}"), row.get(f"spearman_logits_heads{k}")
        if not (_finite(lowest) and _finite(heads)):
            return None
        if heads <= SANITY_GOAL:
            draws.append(k)
        elif lowest > SANITY_GOAL:
            alike.append(k)
        else:
            return None
    parts = []
    if alike:
        named = "; ".join(
            f"{VIEW_TEXT[k]} {row[f'spearman_logits_pairs{k}']:.2f} (pairs "
            f"{row[f'spearman_logits_pairs_lowest{k}']:.2f} to {row[f'spearman_logits_pairs_highest{k}']:.2f}), "
            "the trained model's with theirs "
            f"{row[f'spearman_logits_heads{k}']:.2f}"
            for k in alike
        )
        first = alike[0]
        trained, random = row[f"spearman_logits_heads{first}"], row[f"spearman_logits_pairs{first}"]
        expected = f", as expected where {TOP_DOWN}"
        if trained < random - PAIR_MARGIN:
            compared = "the trained output layer moves the maps further than a random one does, not under the goal"
            expected = ""
        elif trained > random + PAIR_MARGIN:
            compared = "the trained model's maps are nearer each random copy's than the copies' are to each other"
        else:
            compared = "the trained output layer moves the maps as far as a random one does"
        parts.append(
            f"any output layer leaves these maps alike: {drawn} copies whose output layers were drawn at random from "
            f"different seeds give maps that agree with each other above the goal in every pair, {named}; "
            f"{compared} ({VIEW_TEXT[first]}){expected}"
        )
    if draws:
        named = ", ".join(f"{VIEW_TEXT[k]} {row[f'spearman_logits_heads{k}']:.2f} (first copy {above[k]:.2f})"
                          for k in draws)  # fmt: skip
        parts.append(
            f"against {drawn} random output layers the trained model's maps agree on average within the goal, {named}: "
            "the first copy's figure is that draw's, and what the trained output layer decides shows there"
        )
    text = "; ".join(parts)
    if draws and all(v > SANITY_GOAL for v in finite.values()):
        return text  # the draws' sentence says where the trained output layer's effect shows
    return text + _decided(finite)


LEVEL = 0.05  # one-sided: the trained model's mean over the draws above the goal at this level, or inconclusive


def draws_test(row: dict, k: str) -> tuple[float, float, int, float] | None:
    """The trained model's output-layer figure in view ``k`` over the random output layers
    (``BY_DRAW``): (mean over the draws, its standard error over the draws, the draws, the
    one-sided p-value of Student's t test that the mean is above the goal, n - 1 degrees of
    freedom); None where the figure is not stored or fewer than three draws gave one."""
    mean, se, n = (row.get(f"{BY_DRAW}{k}{what}") for what in ("", "_se", "_n"))
    if not (_finite(mean) and _finite(se) and n is not None and n >= 3):
        return None
    if se == 0:
        return mean, se, int(n), 0.0 if mean > SANITY_GOAL else 1.0
    return mean, se, int(n), float(student_t.sf((mean - SANITY_GOAL) / se, int(n) - 1))


def _against_draws(row: dict, k: str, heads: float) -> str:
    """The trained model's mean over the random output layers in view ``k``, above the goal: with
    the t test over the draws where stored (``draws_test``), saying whether it is shown above the
    goal or the test is inconclusive."""
    tested = draws_test(row, k)
    if tested is None:
        return f"theirs at {heads:.2f} on average, above the goal"
    mean, se, n, p = tested
    said = (
        f"theirs at {mean:.2f} on average, ± {se:.2f} (standard error over the {n} draws, on these clips), "
        f"above the goal (one-sided t test, {n - 1} degrees of freedom, p = {p:.3f}"
    )
    if p <= LEVEL:
        return said + ")"
    return said + f" > {LEVEL}): inconclusive, the first copy's figure may be its draw's"


def readout_unsettled(row: dict) -> str | None:
    """The views above the goal for the first output-layer copy that the random output layers
    leave unexplained (``_three_layers``): the trained model's maps agree with theirs above the goal
    on average, while some pair of random output layers agrees within it, so the figure depends on
    which output layer is drawn.  The figures, or None."""
    if not _finite(row.get("spearman_logits_pairs")):
        return None
    parts = []
    for k in VIEW_TEXT:
        keys = ("", "_pairs_lowest", "_pairs_highest", "_heads")
        first, lowest, highest, heads = (row.get(f"spearman_logits{what}{k}") for what in keys)
        if all(_finite(v) for v in (first, lowest, highest, heads)) and min(first, heads) > SANITY_GOAL >= lowest:
            parts.append(
                f"in the {VIEW_TEXT[k]} the agreement depends on which output layer is drawn: {_drawn(row)} random "
                f"ones agree with each other from {lowest:.2f} to {highest:.2f}, and the trained model's maps with "
                f"{_against_draws(row, k, heads)}"
            )
    return "; ".join(parts) or None


def readout_reference(row: dict) -> str | None:
    """What random output layers show about a method whose maps stay alike when only the output
    layer is randomised.  With three of them (``spearman_logits_pairs*``, ``_heads*``): when every
    view above the goal (magnitudes, signed, as read) is explained (``_three_layers``).  Without
    them (results of older code), with the two of ``spearman_logits_pair*``: when they agree above
    the goal and at least as closely, within ``PAIR_MARGIN``, as the trained one with a random one.
    Else None."""
    views = {k: row.get(f"spearman_logits{k}") for k in VIEW_TEXT}
    finite = {k: v for k, v in views.items() if _finite(v)}
    above = {k: v for k, v in finite.items() if v > SANITY_GOAL}
    if not above:
        return None
    if _finite(row.get("spearman_logits_pairs")):
        return _three_layers(row, finite, above)
    pairs = {k: row.get(f"spearman_{PAIR}{k}") for k in above}
    if any(not _finite(p) or p <= SANITY_GOAL or p < above[k] - PAIR_MARGIN for k, p in pairs.items()):
        return None
    named = ", ".join(f"{VIEW_TEXT[k]} {pairs[k]:.2f} (trained with random {above[k]:.2f})" for k in above)
    text = (
        "any output layer leaves these maps alike: the maps of two copies whose output layers were drawn at "
        f"random from different seeds agree as closely or more, {named}"
    )
    return text + _decided(finite)


def _same_maps(row: dict, scope: str) -> list[str]:
    """The views above the goal whose figure is not the magnitudes' (a signed map that is not its
    own magnitude): what a figure measured on the magnitudes cannot speak for."""
    value = row.get(f"spearman_{scope}")
    return [
        k
        for k in ("_signed", "_read")
        if _finite(row.get(f"spearman_{scope}{k}"))
        and row[f"spearman_{scope}{k}"] > SANITY_GOAL
        and not (_finite(value) and abs(row[f"spearman_{scope}{k}"] - value) < 1e-9)
    ]


def shared_part(row: dict) -> str | None:
    """For a gradient or CAM method above the goal with every weight randomised: what its two maps
    share besides the model, measured on their magnitudes (``shared_part_scores``), when it accounts
    for their agreement.  Nearness to the shapes: when both maps follow it (each correlates with it
    above the goal), and with it held fixed (a partial Spearman correlation) the maps agree within
    the goal, at least ``PAIR_MARGIN`` under their own figure.  Or a pattern every clip gives: when
    the trained model's map of one clip agrees with the randomised one's of another as closely,
    within ``PAIR_MARGIN``, as on the same clip.  None when neither does, or when a signed view
    that is not the magnitudes stays above the goal too."""
    value = row.get("spearman_all")
    if not _finite(value) or value <= SANITY_GOAL or _same_maps(row, "all"):
        return None
    given, trained, randomised = (row.get(f"spearman_{k}") for k in ("all_given_objects", "trained_objects",
                                                                      "all_objects"))  # fmt: skip
    if (
        all(_finite(v) for v in (given, trained, randomised))
        and min(trained, randomised) > SANITY_GOAL
        and given <= min(SANITY_GOAL, value - PAIR_MARGIN)
    ):
        text = (
            "both maps follow the shapes: nearness to a shape (target or distractor) agrees with the trained "
            f"model's map at {trained:.2f} and with the randomised one's at {randomised:.2f}, and with it held "
            f"fixed (a partial Spearman correlation) the two maps agree at {given:.2f}, within the goal"
        )
        ours, theirs, spread = (row.get(k) for k in ("target_over_union", "random_target_over_union",
                                                     "target_over_union_se"))  # fmt: skip
        if all(_finite(v) for v in (ours, theirs, spread)) and ours > theirs + spread:
            text += (
                f"; what the trained model adds shows in how it ranks the target over the other shapes (target / "
                f"shapes {ours:.2f}, randomised {theirs:.2f})"
            )
        return text
    other = row.get("spearman_all_other_clip")
    if _finite(other) and other > SANITY_GOAL and other >= value - PAIR_MARGIN:
        return (
            f"what the two maps share does not depend on the clip: the trained model's map of one clip agrees with "
            f"the randomised one's of another at {other:.2f}, against {value:.2f} on the same clip (magnitudes), a "
            "pattern every clip gives (set by the architecture, or by where shapes lie in any clip), not what this "
            "clip shows"
        )
    return None


def shared_figures(row: dict) -> str | None:
    """``shared_part``'s figures for an all-weights line they do not account for, or None without them."""
    keys = ("all", "trained_objects", "all_objects", "all_given_objects", "all_other_clip")
    value, trained, randomised, given, other = (row.get(f"spearman_{k}") for k in keys)
    if not all(_finite(v) for v in (value, trained, randomised, given, other)):
        return None
    return (
        f"nearness to the shapes agrees with the trained model's map at {trained:.2f} and with the randomised one's "
        f"at {randomised:.2f}, with it held fixed the two maps agree at {given:.3f}, and the trained model's map of "
        f"one clip agrees with the randomised one's of another at {other:.2f}, against {value:.2f} on the same clip "
        "(magnitudes): neither the shapes nor a pattern of every clip accounts for the agreement"
    )


INPUT_PART_TEXT = {  # the part of the input each INPUT_METHODS map multiplies by a gradient
    "integrated_gradients": "the input's difference from the baseline alone, which the method weights by a gradient,",
    "input_x_gradient": "the input alone, which the method weights by a gradient,",
    "flow_gradient": "the warp's derivative with respect to the flow alone (the previous frame's image gradient "
    "where the flow samples it, which the chain rule multiplies into every flow gradient)",
    "smoothflow": "the warp's derivative with respect to the flow alone, on the clean clip (the previous frame's "
    "image gradient where the flow samples it, which the chain rule multiplies into each noisy sample's flow "
    "gradient)",
}


def input_figures(row: dict, scope: str) -> tuple[str, bool] | None:
    """For a method that multiplies a gradient by a part of the input (``INPUT_METHODS``) above the
    goal with every weight randomised: its maps' agreement with that part alone
    (``spearman_trained_input``, ``spearman_all_input``), and whether both are at least as close,
    within ``PAIR_MARGIN``, as the two maps' own agreement (what they share is the input; if not,
    the text says the part does not account for it); None without the figures."""
    if scope != "all" or row["method"] not in INPUT_METHODS:
        return None
    value = scope_correlation(row, "all")
    trained, randomised = row.get("spearman_trained_input"), row.get("spearman_all_input")
    if trained is None or randomised is None or not (np.isfinite(trained) and np.isfinite(randomised)):
        return None
    shared = min(trained, randomised) >= value - PAIR_MARGIN
    text = (
        f"{INPUT_PART_TEXT[row['method']]} agrees with the randomised model's map at {randomised:.2f} and with the "
        f"trained model's at {trained:.2f} (Spearman of the magnitudes)"
    )
    if shared:
        text += ": what the two maps share is the input"
    else:
        text += (
            f": not both within {PAIR_MARGIN} of the two maps' agreement with each other ({value:.2f}), so it does "
            "not account for that"
        )
    signed = row.get("spearman_all_signed")
    if row["method"] not in FLOW_METHODS and signed is not None and np.isfinite(signed):  # flow maps: norms
        way = "change" if signed <= SANITY_GOAL else "stay alike too"
        text += f"; the signed maps, where the gradient's sign shows, {way} (Spearman {signed:.2f})"
    return text, shared


def built_on(row: dict, base: dict | None, scope: str, priors: list[str], task: str) -> str | None:
    """For a method built on a base method's map (``BASED_ON``): when, with the same copy, the
    base's line gives a reason and each view of the method above the goal is at most
    ``PAIR_MARGIN`` above the base's same view (its magnitudes, for a map made of changes of the
    base's map), the text saying it stands or falls with the base, with the figures; else None."""
    if row["method"] not in BASED_ON or base is None:
        return None
    name, how, magnitudes_only = BASED_ON[row["method"]]
    if base["method"] != name or "reason:" not in reason(base, scope, priors, task):
        return None
    pairs = []
    for k in VIEW_TEXT:
        own, theirs = row.get(f"spearman_{scope}{k}"), base.get(f"spearman_{scope}{'' if magnitudes_only else k}")
        if not _finite(own) or own <= SANITY_GOAL:
            continue
        if not _finite(theirs) or own > theirs + PAIR_MARGIN:
            return None
        pairs.append((k, own, theirs))
    if not pairs:
        return None
    named = ", ".join(f"{VIEW_TEXT[k]} {own:.2f} against {theirs:.2f}" for k, own, theirs in pairs)
    against = "its magnitudes" if magnitudes_only else "the same view"
    return (
        f"{how}; with this copy each of its figures above the goal is no more than {PAIR_MARGIN} above {name}'s "
        f"({against}; {row.get(f'spearman_{scope}_n', '?')} clips against {base.get(f'spearman_{scope}_n', '?')}): "
        f"{named}: it stands or falls with {name}, whose line gives the reason"
    )


def _unexplained(row: dict, scope: str, base: dict | None, priors: list[str], task: str) -> str | None:
    """What is said of a method outside the goal that no figure above explains: a likely reason
    from its base method (``built_on``) or, with every weight randomised, from masked blocks that
    follow the shapes within frames (``MASKED_BLOCKS``); with only the output layer randomised,
    the caveat on that test (``READOUT_CAVEAT``), which is not a reason.  None when none applies."""
    inherited = built_on(row, base, scope, priors, task)
    if inherited is not None:
        return f"a likely reason: {inherited}"
    within = row.get(f"spearman_{scope}_frames")
    if scope == "all" and row["method"] in MASKED_BLOCKS and _finite(within) and within > SANITY_GOAL:
        return f"a likely reason: {MASKED_BLOCKS[row['method']]} (frame by frame the maps agree at {within:.2f})"
    if scope == "logits":
        return READOUT_CAVEAT + (FRAME_CAVEAT if row.get("family") == "temporal" else f"; {TOP_DOWN}")
    return None


def _over_the_clip(row: dict, scope: str) -> str | None:
    """The text for maps alike over the clip only: frame by frame within the goal (and not
    anti-correlated, which is structure too), with a time course both models share
    (``shared_trend``); else None."""
    trend, within = shared_trend(row, scope), frame_correlation(row, scope)
    frames = [row.get(f"spearman_{scope}_frames{k}") for k in VIEW_TEXT]
    lowest = min((v for v in frames if _finite(v)), default=float("nan"))
    if trend is None or not (np.isfinite(within) and within <= SANITY_GOAL and lowest >= -SANITY_GOAL):
        return None
    return (
        f"frame by frame the maps change (the mean of each frame's Spearman correlation, magnitudes, signed and as "
        f"read, from {lowest:.2f} to {within:.2f}: within the goal in each frame); over the clip they stay alike "
        f"because {time_course(trend)}"
    )


TWIN_TEXT = (
    "a second copy with every weight drawn at random by the architecture's own initialisation (the next seed; one "
    "more draw)"
)


NORMS = "magnitudes (signed and as read the same: maps of norms)"


def _twin_views(row: dict) -> list[tuple[str, float, float, float]] | None:
    """(view name, trained vs the first random copy, the two random copies, trained vs the second)
    for each view above the goal with every weight randomised; a view whose figures are the
    magnitudes' is said once, with the magnitudes (``NORMS`` when both are); None without the
    second copy's figures."""
    out, same = [], []
    for k in VIEW_TEXT:
        value = row.get(f"spearman_all{k}")
        if not _finite(value) or value <= SANITY_GOAL:
            continue
        twin, other = row.get(f"spearman_all_twin{k}"), row.get(f"spearman_all_trained_twin{k}")
        if not (_finite(twin) and _finite(other)):
            return None
        if out and out[0][0] == "" and np.allclose((value, twin, other), out[0][1:], atol=1e-9, rtol=0):
            same.append(k)
            continue
        out.append((k, value, twin, other))
    if not out:
        return None
    return [(NORMS if k == "" and len(same) == 2 else VIEW_TEXT[k], *figures) for k, *figures in out]


def random_twins(row: dict) -> str | None:
    """For a gradient or CAM method above the goal with every weight randomised: when, in every
    view above the goal, the maps of two copies with every weight randomised (``random_twin_scores``)
    agree with each other above the goal and at least as closely, within ``PAIR_MARGIN``, as the
    trained model's with the first, and the trained model's agree with the second above the goal
    too: the text saying that random networks of this architecture share that part of the maps on
    this input (one more draw); else None."""
    views = _twin_views(row)
    if views is None or any(
        twin <= SANITY_GOAL or other <= SANITY_GOAL or twin < value - PAIR_MARGIN for _, value, twin, other in views
    ):
        return None
    named = "; ".join(
        f"{name} {twin:.2f}, the trained model's with the two {value:.2f} and {other:.2f}"
        for name, value, twin, other in views
    )
    further = all(twin > max(value, other) + PAIR_MARGIN for _, value, twin, other in views)
    trained = (
        "training moves the maps away from it, but not within the goal"
        if further
        else "the trained model's maps are as near it as a random copy's"
    )
    return (
        f"random networks share part of these maps: {TWIN_TEXT} agrees with the first above the goal and as closely "
        f"as the trained model does (within {PAIR_MARGIN}) or more, {named}: the agreement the test finds is a part of "
        f"the maps that random networks of this architecture give on this input; {trained}"
    )


def twin_figures(row: dict) -> str | None:
    """``random_twins``' figures for an all-weights line they do not account for, or None."""
    views = _twin_views(row)
    if views is None or random_twins(row) is not None:
        return None
    named = "; ".join(
        f"{name} {twin:.2f} (the trained model's with the two {value:.2f} and {other:.2f})"
        for name, value, twin, other in views
    )
    return f"{TWIN_TEXT} agrees with the first: {named}: random networks do not share it in every view"


def reason(row: dict, scope: str, priors: list[str], task: str = "sides", base: dict | None = None) -> str:
    """Why a method's maps stay alike under a randomisation, as far as the figures show it; a
    gradient or CAM method above the goal over the clip is said to miss it unless it meets it
    frame by frame and the two models share a time course (``shared_trend``).  ``base``: the row
    of the method it is built on (``BASED_ON``), if any."""
    method = row["method"]
    if priors:
        return f"the model's architecture prior ({priors[0]}) puts the maps where the mask is, whatever the weights"
    known = KNOWN_REASONS.get(method)
    trend, within = shared_trend(row, scope), frame_correlation(row, scope)
    over_the_clip = _over_the_clip(row, scope)
    if over_the_clip is not None:
        label = "**misses the goal** over the clip for gradient and CAM methods; " if method in GOAL_METHODS else ""
        return label + over_the_clip
    if trend is not None and not np.isfinite(within):  # a frame curve: its time course is all there is
        known = time_course(trend)
    measured = readout_reference(row) if scope == "logits" else None
    on_input = input_figures(row, "all")
    inputs = on_input if scope == "all" else None
    if scope == "logits" and on_input is not None and not on_input[1]:
        known = None  # the guess is that the input part is shared, and the figures say it is not
    if inputs is not None and inputs[1]:
        measured = inputs[0]
    elif scope == "all" and method in GOAL_METHODS:
        measured = shared_part(row) or random_twins(row)
        if measured is not None and inputs is not None:
            measured += f"; {inputs[0]}"
    if measured is not None:
        label = "**misses the goal** for gradient and CAM methods; " if method in GOAL_METHODS else ""
        return f"{label}measured reason: {measured}"
    twins = twin_figures(row) if scope == "all" else None
    if inputs is not None:  # measured, and the input does not account for the agreement: no guess beside it
        known = f"measured: {inputs[0]}" + (f"; {twins}" if twins else "")
    if scope == "logits" and task != "angle" and row.get("family") in ("spatial", "motion"):
        values = {k: row.get(f"spearman_logits{k}") for k in ("", "_signed", "_read")}
        finite = {k: v for k, v in values.items() if v is not None and np.isfinite(v)}
        everything = survival(row)
        if (
            finite
            and max(finite, key=finite.get) == ""
            and finite.get("_read", 1.0) <= SANITY_GOAL
            and finite.get("_signed", 1.0) <= SANITY_GOAL
            and np.isfinite(everything)
            and everything <= SANITY_GOAL
        ):
            known = (
                ("" if method in GOAL_METHODS else "a likely reason: ")
                + "only the magnitudes stay alike (the signed map and the map as read change), and with every weight "
                f"randomised the map moves (at most {everything:.2f}); the features fire on the moving shape, so "
                "the magnitude of any read-out of them is large there"
            )
    unsettled = readout_unsettled(row) if scope == "logits" else None
    if scope == "all" and inputs is None and trend is None:
        unsettled = "; ".join(t for t in (shared_figures(row), twins) if t) or None
    if method in GOAL_METHODS:
        if inputs is not None:
            return f"**misses the goal** for gradient and CAM methods; {known}"
        text = f"**misses the goal** for gradient and CAM methods{'; a likely reason: ' + known if known else ''}"
        return text + (f"; measured: {unsettled}" if unsettled else "")
    said = known or _unexplained(row, scope, base, priors, task)
    return said or "no known reason: treat its maps with suspicion on this model"


def model_section(name: str, entry: dict) -> list[str]:
    sanity = entry["sanity"]
    clips = sanity["clips"]
    kind = "didactic, with an architecture prior" if entry["priors"] else "no architecture prior"
    lines = [f"## {name}", "", f"`{entry['arch']}` on the {entry['task']} task, {kind}; {entry['headline']}."]
    for prior in entry["priors"]:
        lines.append(f"Architecture prior: {prior}.")
    pause = PAUSE_TEXT[sanity["options"].get("pause", False)]
    lines += [
        "",
        f"Sanity and localisation on {clips} clips (seed {sanity['seed']}, noise "
        f"{sanity['options']['noise']:g}, {sanity['options']['distractors']} distractors{pause}), explaining "
        f"{sanity['target']}; Spearman of the magnitudes, of the signed maps and of the maps as read, over the "
        "whole clip (— where a method ignores the target, so the output layer cannot change it), and frame by "
        "frame (the mean over frames of each frame's correlation: where in the frame, not which frame); "
        "pointing and ranks on frames 1 to T-1.",
        "",
    ]
    lines += _table(
        sanity["rows"],
        [
            ("Spearman", SANITY_COLUMNS, ""),
            ("trained", LOCALISATION_COLUMNS, ""),
            ("randomised", [c for c in LOCALISATION_COLUMNS if c[0] != "pointing_chance"], "random_"),
        ],
        clips,
    )
    over, missing = flagged(sanity["rows"]), unmeasured(sanity["rows"])
    by_method = {r["method"]: r for r in sanity["rows"]}
    lines.append("")
    if not over and not missing:
        lines.append(f"Every method's maps change with the weights (every correlation at most {SANITY_GOAL}).")
    for row, scope, value in over:
        sign = "⚠ survives randomisation" if scope == "all" and value > SURVIVES else f"above {SANITY_GOAL}"
        base = by_method.get(BASED_ON.get(row["method"], ("",))[0])
        why = reason(row, scope, entry["priors"], entry.get("task", "sides"), base)
        lines.append(f"- `{row['method']}`, {SCOPE_TEXT[scope]} ({sign}, Spearman up to {value:.2f}): {why}.")
    for method in missing:
        lines.append(f"- `{method}`: not measured (its maps were constant on every clip), so not a pass.")
    if entry.get("skipped"):
        lines.append(f"Not run on this model: {', '.join(f'`{m}`' for m in entry['skipped'])}.")
    temporal = entry.get("temporal")
    if temporal:
        frames = entry.get("frames", 32)
        lines += [
            "",
            f"Temporal truth on {temporal['clips']} clips with a pause (seed {temporal['seed']}): how high each "
            f"frame curve ranks the pause frames. Chance: a mean rank of (T+1)/2T = {(frames + 1) / (2 * frames):.2f} "
            "and the pause share of the clip in the top k.",
            "",
        ]
        lines += _table(temporal["rows"], [("curve", TEMPORAL_COLUMNS, "")], temporal["clips"])
    return lines + [""]


def _listed(items: list[str]) -> str:
    """Items as a sentence lists them: a; a and b; a, b and c."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def provenance(models: dict) -> list[str]:
    """A paragraph naming the code (its fingerprint, ``report.code_fingerprint``) that measured
    the figures when they were not all measured by one code (stored results kept with
    ``--add-missing``); else nothing."""
    measured = sorted({(e.get("settings") or {}).get("code", "?") for e in models.values()})
    by_code: dict[str, set] = {}
    for entry in models.values():
        for record in entry.get("added") or []:
            by_code.setdefault(record["code"], set()).update(record["figures"])
    added = [f"{_listed(sorted(figures))} by code `{code[:12]}`" for code, figures in by_code.items()]
    if len(measured) <= 1 and not added:
        return []
    named = ", ".join(f"`{c[:12]}`" for c in measured)
    text = f"Not every figure was measured by the same code: the figures come from code {named}"
    if added:
        text += " (stored results kept with `--add-missing`); added to them: " + "; ".join(added)
    text += (
        " (fingerprints of xai_core's source, `report.code_fingerprint`); a run without `--add-missing` measures "
        "every figure again."
    )
    return ["", text]


def to_markdown(evaluation: dict, command: str) -> str:
    """EVALUATION.md: a summary of every model, then one section per model."""
    models = evaluation["models"]
    lines = [
        "# Evaluation of the model zoo",
        "",
        f"Generated by `{command}`. Each figure is the mean over "
        f"{evaluation['clips']} held-out Moving Shapes clips ± its standard error over the clips. "
        "Spearman: rank correlation between the maps of the trained model and of a copy with the output "
        "layer, or every weight, randomised (Adebayo et al. 2018); near 0 means the map depends on what was "
        f"randomised. Goal: at most {SANITY_GOAL} for every gradient and CAM method; above {SURVIVES} with every "
        "weight randomised (⚠) the app warns that the method's maps survive randomisation. Over the whole clip "
        "two maps also correlate when their size changes alike from frame to frame, so the correlation is given "
        "frame by frame as well, and a method above the goal over the clip but not within frames is named with "
        "the time course both models share. Pointing game: the "
        "share of frames whose map peaks within its tolerance of the moving shape (Zhang et al. 2016's 15 pixels, "
        "scaled to 15 per 224 of the frame's side: 7.5 on a 112-pixel frame; by chance: the share of the frame "
        "that close to the shape); peak on shape: on the shape itself; target / shapes and target / all: report "
        "001's rank ratios (1 = no preference). Random output layers: the correlation between the maps of "
        "copies whose output layers were drawn at random from different seeds, with each other (the mean over the "
        "pairs), a reference for the output-layer test: where every pair agrees above the goal, no output layer "
        "drawn at random moves the maps under it (randomising a network from the top keeps the scale of the "
        "activations below it: Binder et al. 2023); the trained model's maps against each copy's, averaged, "
        "tell whether the first copy's figure (the table's) is that draw's. Where three leave a view open (the "
        "trained model's maps agree with theirs above the goal on average while some pair agrees within it), five"
        " more are drawn and the figures are read over the eight; where the eight leave it open too, a one-sided t "
        "test over the draws (the trained model's figure against each) says whether the trained model's mean is above"
        f" the goal at the {LEVEL:g} level or the test is inconclusive. With every weight randomised, two more "
        "references, on the magnitudes: the two maps' correlation with nearness to the shapes held fixed (a partial"
        " Spearman correlation; nearness: minus the distance to the nearest shape, target or distractor), and the "
        "trained model's map of each clip against the randomised one's of the next clip (as high as on the same "
        "clip, what they share does not depend on the clip); and a second copy with every weight randomised (the next "
        "seed), its maps against the first copy's and the trained model's (where, in every view above the goal, the "
        "two random copies agree above it and as closely as the trained model does with the first, within "
        f"{PAIR_MARGIN}, or more, and the trained model with the second above it too, random networks of the "
        "architecture share that part of the maps; one more draw, read only where neither the figures before it nor "
        "the input part below accounts for the agreement). For the methods that multiply a gradient by a part of "
        "the input, each model's map is also compared with that part alone: the input's difference from the "
        "method's reference (input × gradient, integrated gradients), the warp's derivative with respect to the "
        "flow (the flow gradients). For the methods outside the goal, a figure above it is said to stand or fall with "
        f"the method's base (TSR's: saliency) where each of its views is within {PAIR_MARGIN} of the base's and the "
        "base's line gives a reason; an output-layer line that nothing explains gets the caveat that holds for any "
        "output-layer test, which is not a reason."
        + (
            f" TSR, which takes minutes a clip on a CPU, was run on the first {evaluation['slow_clips']} clips "
            "(its figures say n)."
            if evaluation.get("slow_clips") and _fewer_clips(evaluation)
            else ""
        ),
        *provenance(models),
        "",
        f"| model | prior | task figure | Grad-CAM pointing game, trained | randomised | peak on shape, trained "
        "| randomised "
        f"| above {SANITY_GOAL} (copy) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in models.items():
        rows = entry["sanity"]["rows"]
        gradcam = next((r for r in rows if r["method"] == "gradcam"), None)
        pointing, random, on_shape, random_on_shape = (
            cell(gradcam, key, "pct") if gradcam else "n/a"
            for key in ("pointing", "random_pointing", "inside", "random_inside")
        )
        over = ", ".join(
            [f"`{r['method']}` ({'all' if scope == 'all' else 'output layer'})" for r, scope, _ in flagged(rows)]
            + [f"`{m}` (not measured)" for m in unmeasured(rows)]
        )
        over = over or "none"
        prior = "yes" if entry["priors"] else "no"
        lines.append(
            f"| {name} | {prior} | {entry['headline']} | {pointing} | {random} | {on_shape} | {random_on_shape} "
            f"| {over} |"
        )
    lines += [
        "",
        "A model with a prior computes where to look by formula: its maps localise well and fail the sanity "
        f"check. Only didactic models, whose names end in `{GATED_SUFFIX}`, may have one (issue 16): the zoo refuses "
        "to load one under any other name.",
        "",
    ]
    for name, entry in models.items():
        lines += model_section(name, entry)
    return "\n".join(lines).rstrip() + "\n"
