"""The models of a session: the zoo's, and those the user loads on the Models page.

A user's model is kept in the session as its load request (JSON of spec, keyword arguments and
name) and loaded through the cache; ``get_model`` finds either kind by name.
"""

from __future__ import annotations

import json

import streamlit as st

from xai_core.models.base import ModelError, VideoModel
from xai_core.models.zoo import zoo_cards, zoo_names

from .caches import user_model, zoo_model
from .state import USER_MODELS


def user_models() -> dict[str, str]:
    """The models loaded in this session: name -> load request (JSON of spec, keyword arguments, name)."""
    return st.session_state.setdefault(USER_MODELS, {})


def model_names() -> list[str]:
    """The zoo's models, then the ones loaded in this session."""
    zoo = zoo_names()
    return zoo + [name for name in user_models() if name not in zoo]


def unique_model_name(name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when the zoo or this session has it already."""
    taken = set(model_names())
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name}-{i}", i + 1
    return candidate


def add_user_model(spec: str, kwargs: dict, name: str) -> VideoModel:
    """Load the user's model (on the CPU, which checks it) and add it to this session's models
    under a unique name.  Raises ModelError (or the error of the user's own code)."""
    name = unique_model_name(name)
    request_json = json.dumps({"spec": spec, "kwargs": kwargs, "name": name}, sort_keys=True)
    model = user_model(request_json, "cpu")
    user_models()[name] = request_json
    return model


def get_model(name: str, device: str) -> VideoModel:
    """A zoo model or one of this session's (cached)."""
    request = user_models().get(name)
    if request is not None:
        return user_model(request, device)
    return zoo_model(name, device)


def model_cards() -> list[dict]:
    """The zoo's cards, then a card for each model loaded in this session (``make_user_card``)."""
    from xai_core.models.external import make_user_card

    cards = zoo_cards()
    for name in user_models():
        try:
            card = make_user_card(get_model(name, "cpu"))
        except ModelError as exc:
            card = {"name": name, "arch": "?", "task": "?", "description": f"cannot be loaded: {exc}"}
        weights = card.get("weights") or {}
        card.update(name=name, uploaded=True, file_bytes=weights.get("bytes"))
        cards.append(card)
    return cards


def model_capabilities(name: str) -> list[str] | str:
    """The capabilities of a model as loaded (cached), or why it cannot be loaded."""
    try:
        return sorted(get_model(name, "cpu").capabilities)
    except ModelError as exc:
        return f"cannot be loaded: {exc}"
