"""The explanation methods per clip: every registered method a model supports, with default
parameters, the registered function and the whole ``explain()`` call, each against its peer when
one computes the same map (its agreement checked first), all timed side by side."""

from __future__ import annotations

from ..api import explain
from ..methods.machinery.planning import LONG_METHODS
from ..methods.machinery.registry import get_method, method_specs
from .peers import NO_PEER, peer_for
from .subjects import DEFAULT_MODEL, Subject
from .timing import relative_difference, side_by_side

ALL_METHODS_MODELS = (DEFAULT_MODEL, "r3d-sides")  # every method they support, with peers
LRP_MODELS = ("r3d-sides", "cnn_lstm-sides", "cnn_lstm-pause")  # lrp, default and epsilon composites
LRP_COMPOSITES = (None, "epsilon")  # None: the method's default composite

# Issue 4's speed target, judged on the whole explain() call for the default zoo model.
TARGET_SECONDS = 1.0
TARGET_EXEMPT = ("integrated_gradients", "smoothgrad")
TARGET_TEXT = (
    "every spatial method except integrated_gradients and smoothgrad under 1 s per clip on this CPU "
    "for the default zoo model"
)
# Issue 6: Farneback flows, the decomposition and one gradient pass through the rebuild under 1 s.
MOTION_TARGET_METHODS = ("flow_gradient",)
AGREEMENT = 1e-3  # a peer is timed only when max |peer - ours| / max |ours| is at most this


def method_cases(model, all_methods: bool) -> list[tuple[str, dict]]:
    """(method, user parameters) to measure on ``model``: every method it supports with default
    parameters (or only ``lrp``), and ``lrp`` with each of LRP_COMPOSITES."""
    supported = [spec.name for spec in method_specs(model) if spec.name not in LONG_METHODS]
    cases = [(name, {}) for name in supported if all_methods or name == "lrp"]
    if "lrp" in supported:
        default = get_method("lrp").resolve_params({})["composite"]
        cases += [("lrp", {"composite": c}) for c in LRP_COMPOSITES if c is not None and c != default]
    return cases


def bench_method(s: Subject, method: str, user_params: dict, repeats: int, whole_call: bool) -> dict:
    """One method on one model: the registered function (and the whole explain() call), its peer's
    agreement and, when they agree, the peer's time, all timed side by side."""
    spec = get_method(method)
    params = spec.resolve_params(user_params)
    model, x, target = s.model, s.x, s.target

    def ours():
        return spec.fn(model, x, target, **params)

    row = {
        "model": s.name,
        "method": method,
        "family": spec.family,
        "params": params,
        "target": target.describe(),
    }
    expl = ours()  # warm-up, and the map the peer is checked against
    timed = {"ours": ours}
    if whole_call:
        timed["explain_call"] = lambda: explain(model, s.clip, method, **user_params)
    peer = peer_for(method, model) if target.kind == "class" and expl.spatial is not None else None
    if peer is not None:
        peer_params = {k: params[k] for k in peer.params}

        def run_peer():
            return peer.fn(model, x, target.index, **peer_params)

        difference = relative_difference(expl.spatial, run_peer())  # also the peer's warm-up
        row["peer"] = {"name": peer.name, "max_relative_difference": difference, "timed": difference <= AGREEMENT}
        if difference <= AGREEMENT:
            timed["peer"] = run_peer
    elif method in NO_PEER:
        row["no_peer"] = NO_PEER[method]
    times = side_by_side(timed, repeats)
    row["ours"] = times["ours"]
    if whole_call:
        row["explain_call"] = times["explain_call"]
    if "peer" in times:
        row["peer"]["seconds"] = times["peer"]
        row["peer"]["ratio"] = times["peer"]["median"] / times["ours"]["median"]
    return row


def target_status(row: dict) -> str:
    """Issue 4's target for a row of the default model: meets / misses / exempt / n/a (temporal);
    issue 6's for ``flow_gradient`` (the decomposition and one gradient pass under 1 s)."""
    if row["method"] in MOTION_TARGET_METHODS:
        verdict = "meets" if row["explain_call"]["median"] < TARGET_SECONDS else "misses"
        return f"{verdict} (issue 6)"
    if row["family"] != "spatial":
        return f"n/a ({row['family']})"
    if row["method"] in TARGET_EXEMPT:
        return "exempt"
    return "meets" if row["explain_call"]["median"] < TARGET_SECONDS else "misses"


def bench_methods(
    subjects: dict[str, Subject],
    default_model: str,
    all_methods: tuple[str, ...],
    lrp_models: list[str],
    repeats: int,
) -> list[dict]:
    rows = []
    for name, s in subjects.items():
        if name not in all_methods and name not in lrp_models:
            continue
        for method, params in method_cases(s.model, all_methods=name in all_methods):
            row = bench_method(s, method, params, repeats, whole_call=name == default_model)
            if name == default_model:
                row["speed_target"] = target_status(row)
            rows.append(row)
    return rows
