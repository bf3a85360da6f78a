"""Widgets the pages share: the frame scrubber (and the frame it starts on), the target to
explain, and one widget per declared parameter of a method."""

from __future__ import annotations

import numpy as np
import streamlit as st

from xai_core.citations import full_reference
from xai_core.method_catalog import card_markdown
from xai_core.methods.machinery.registry import MethodSpec, Param
from xai_core.models.base import VideoModel

from .state import KEPT, keep_choice, kept_choice


def peak_frame(temporal: np.ndarray, padded: np.ndarray | None = None) -> int:
    """The frame a page shows first: the one with the most evidence on the importance curve
    (temporal [T]), padding frames excluded; the first frame when the curve is flat."""
    scores = np.asarray(temporal, dtype=np.float64).copy()
    if padded is not None and len(padded) == len(scores) and not np.all(padded):
        scores[np.asarray(padded, bool)] = -np.inf
    return int(np.argmax(scores)) if np.isfinite(scores).any() else 0


def frame_slider(key: str, first: int, last: int, start: int, shown_for: str, help: str) -> int:
    """The page's Frame scrubber over [first, last].  It starts at ``start`` (where the evidence
    is) the first time, and again whenever the model or clip it was showing (``shown_for``)
    changes; a value left outside the range (a shorter clip) is moved into it."""
    start = min(max(start, first), last)
    initial = {}
    if key not in st.session_state:  # the first run, or Streamlit dropped the scrubber (an error page)
        initial = {"value": start}
    elif st.session_state.get(f"{key}_shown_for") != shown_for:
        st.session_state[key] = start
    elif not first <= st.session_state[key] <= last:
        st.session_state[key] = min(max(st.session_state[key], first), last)
    st.session_state[f"{key}_shown_for"] = shown_for
    return st.slider("Frame", first, last, key=key, help=help, persist_state="page", **initial)


def target_widget(model: VideoModel, prediction: dict) -> int | str | None:
    """The target chosen by the user: None (predicted / output), a class index, or 'ref=VALUE'."""
    if model.task == "classification":
        # -1 stands for the predicted class (a None option would read as "nothing chosen" in the browser)
        options = [-1, *range(len(model.labels))]

        def name(option):  # no option names the prediction: a browser may keep an option's old text
            return "the predicted class" if option == -1 else f"{option}: {model.labels[option]}"

        chosen = st.selectbox(
            "Explain the class", options, format_func=name, key=f"target_{model.name}", persist_state="page"
        )
        if chosen == -1:  # drawn anew on every run, so it always names this clip's prediction
            st.caption(f"The predicted class on this clip: **{prediction['label']}**")
        return None if chosen == -1 else chosen
    kind = st.radio(
        "Explain",
        ["the output", "the error against a reference value"],
        key=f"regression_{model.name}",
        persist_state="page",
    )
    if kind == "the output":
        return None
    value = st.number_input(
        "Reference value", value=float(round(prediction["value"])), key=f"reference_{model.name}", persist_state="page"
    )
    return f"ref={value}"


def param_widgets(spec: MethodSpec, model: VideoModel, skip: tuple[str, ...] = ()) -> dict:
    """One widget per declared parameter of the method (those of the CAM layer first)."""
    params = {}
    for p in spec.params:
        if p.name in skip:
            continue
        key = f"param_{spec.name}_{p.name}_{model.name}"
        shared = f"param_{spec.name}_{p.name}"  # the setting as last chosen for any model, on any page
        if p.kind == "layer":
            layers = list(model.conv_layers())
            default = model.cam_layer_name
            ordered = [default] + [name for name in layers if name != default] if default else layers
            chosen = st.selectbox(
                p.name,
                ordered,
                key=key,
                help=p.help,
                format_func=lambda n, d=default: f"{n} (default)" if n == d else n,
                persist_state="page",
            )
            params[p.name] = None if chosen == default else chosen
        elif p.kind == "choice":
            choices = list(p.choices)
            params[p.name] = st.selectbox(
                p.name,
                choices,
                index=choices.index(kept_choice(shared, choices, p.default)),
                key=key,
                help=p.help,
                persist_state="page",
            )
        elif p.kind == "bool":
            value = kept_choice(shared, [True, False], bool(p.default))
            params[p.name] = st.checkbox(p.name, value=value, key=key, help=p.help, persist_state="page")
        elif p.kind == "float" and p.default is None:  # optional: empty means "not set"
            text = st.text_input(p.name, value="", key=key, help=p.help, persist_state="page").strip()
            try:
                params[p.name] = float(text) if text else None
            except ValueError:
                st.error(f"{p.name} must be a number (or empty), not {text!r}", icon=":material/error:")
                params[p.name] = None
        elif p.kind in ("int", "float"):
            cast = int if p.kind == "int" else float
            params[p.name] = st.number_input(
                p.name,
                value=cast(_kept_number(shared, p)),
                min_value=None if p.minimum is None else cast(p.minimum),
                max_value=None if p.maximum is None else cast(p.maximum),
                key=key,
                help=p.help,
                persist_state="page",
            )
        elif p.kind == "ints":
            columns = st.columns(p.size or len(p.default))
            values = []
            for i, (column, v) in enumerate(zip(columns, p.default, strict=True)):
                values.append(
                    column.number_input(
                        f"{p.name} [{i}]", value=int(v), min_value=int(p.minimum or 0), key=f"{key}_{i}", help=p.help,
                        persist_state="page",
                    )
                )  # fmt: skip
            params[p.name] = tuple(int(v) for v in values)
        else:
            params[p.name] = (
                st.text_input(p.name, value=p.default or "", key=key, help=p.help, persist_state="page") or None
            )
        if p.kind in ("choice", "bool", "int", "float") and params[p.name] is not None:
            keep_choice(shared, params[p.name])
    return params


def _kept_number(shared: str, p: Param) -> float:
    """A numeric parameter's last chosen value (for any model, on any page) where it is a number
    within the parameter's range, else its default."""
    value = st.session_state.get(KEPT, {}).get(shared, p.default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return p.default
    if (p.minimum is not None and value < p.minimum) or (p.maximum is not None and value > p.maximum):
        return p.default
    return value


def method_choice(model: VideoModel, names: list[str], default: list[str], **kwargs) -> list[str]:
    """The methods multiselect for ``model`` (a copy per model): it opens on the methods last chosen,
    for any model and on any page, that ``model`` can use, else on ``default``."""
    kept = [m for m in st.session_state.get(KEPT, {}).get("methods", []) if m in names]
    chosen = st.multiselect("Methods", names, default=kept or default, key=f"methods_{model.name}", **kwargs)
    keep_choice("methods", list(chosen))
    return chosen


def method_card(spec: MethodSpec, sanity_line: str | None = None) -> None:
    """The method's card in an expander (what it computes, the paper, what it needs, cannot show,
    how it fails, its cost), with the sanity result for the loaded model when there is one."""
    if spec.card is None:
        return
    with st.expander(f"About {spec.name}: what it computes, what it cannot show, how it fails"):
        st.markdown(card_markdown(spec.to_dict()).split("\n", 2)[2])  # the title is the expander's
        if sanity_line:
            st.caption(sanity_line)


def method_help(spec: MethodSpec, note: str = "") -> None:
    """What ``spec`` computes (its description, with ``note`` after it) and the full reference of
    every paper or library it cites (docs/references.md), one line each."""
    st.caption(spec.description + note)
    if spec.references:
        lines = [f"- {full_reference(name) or name}" for name in spec.references]
        st.markdown("**References**\n" + "\n".join(lines))
