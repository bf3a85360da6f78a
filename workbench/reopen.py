"""A saved run opened back into the page that made it: the sidebar's model, clip and device, the
page's method, target and parameters set to the run's, so that the page asks for the same run
and is served it from the store without computing."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from xai_core.data.moving_shapes import parse_source
from xai_core.methods.machinery.planning import LONG_METHODS
from xai_core.methods.machinery.registry import MethodError, get_method
from xai_core.runs import RunRecord
from xai_core.video import sample_clips

from .sidebar import CLIP_KINDS
from .state import KEPT, keep_choice

KIND_NAMES = {kind: name for name, kind in CLIP_KINDS.items()}
SETTABLE = ("int", "float", "choice", "bool")  # parameter widgets that open on the value last chosen


def page_of(record: RunRecord) -> str:
    """The page that shows this run: Temporal for the long masking methods, else Explain (or Motion)."""
    if record.method in LONG_METHODS:
        return "pages/temporal.py"
    try:
        family = get_method(record.method).family
    except MethodError:
        family = "spatial"
    return "pages/motion.py" if family == "motion" else "pages/explain.py"


def why_not(record: RunRecord, models: list[str]) -> str | None:
    """Why this run cannot be opened in its page (None: it can)."""
    if record.kind != "explanation":
        return "only explanations open in a page"
    if record.model not in models:
        return f"its model {record.model} is not loaded in this session (the Models page loads it)"
    if not (record.source.startswith("shapes:") or _sample_name(record.source)):
        return "its clip was an upload or a tensor, which the page cannot pick again: it is shown here"
    try:
        spec = get_method(record.method)
    except MethodError:
        return f"{record.method} is not a registered method here"
    fixed = [
        p.name
        for p in spec.params
        if p.kind not in (*SETTABLE, "layer") and not _same(record.params.get(p.name), p.default)
    ]
    if fixed:
        return f"its {', '.join(fixed)} differ from the defaults, which the page opens with: it is shown here"
    return None


def _same(a, b) -> bool:
    """Equal values, a tuple and the list JSON makes of it counting as the same."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return a == b


def _sample_name(source: str) -> str | None:
    name = Path(source).name
    samples = sample_clips()
    return name if name in samples and Path(samples[name]).resolve() == Path(source).resolve() else None


def open_in_page(record: RunRecord) -> str:
    """Set this session's sidebar and the run's page to the run's settings; returns the page's path
    (``why_not`` must have said None)."""
    state = st.session_state
    state["model_name"] = record.model
    state["device"] = "cuda" if record.device.startswith("cuda") else "cpu"
    if record.source.startswith("shapes:"):
        seed, options = parse_source(record.source)
        keep_choice("clip_kind", KIND_NAMES["shapes"])
        state["clip_kind"] = KIND_NAMES["shapes"]
        state["shapes_seed"] = seed
        state["shapes_noise"] = int(round(options.get("noise", 0.0)))
        state["shapes_distractors"] = int(options.get("distractors", 0))
        state["shapes_white"] = bool(options.get("white_distractors", False))
        state["shapes_pause"] = bool(options.get("pause", False))
    else:
        keep_choice("clip_kind", KIND_NAMES["sample"])
        state["clip_kind"] = KIND_NAMES["sample"]
        state["sample_name"] = _sample_name(record.source)
    model = record.model
    page = page_of(record)
    if page == "pages/temporal.py":
        state["temporal_method"] = record.method
    elif page == "pages/motion.py":
        state["motion_method"] = record.method
    else:
        keep_choice("methods", [record.method])
        state.pop(f"methods_{model}", None)
    if record.target is None:
        state.pop(f"target_{model}", None)
    elif record.target.lstrip("-").isdigit():
        state[f"target_{model}"] = int(record.target)
    spec = get_method(record.method)
    kept = state.setdefault(KEPT, {})
    for p in spec.params:
        key, value = f"param_{spec.name}_{p.name}_{model}", record.params.get(p.name, p.default)
        state.pop(key, None)
        if p.kind in SETTABLE:
            kept[f"param_{spec.name}_{p.name}"] = value
        elif p.kind == "layer" and value is not None:
            state[key] = value
    return page
