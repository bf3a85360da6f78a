"""The session's training run (Models page): one at a time, started in the background into the zoo's folder."""

from __future__ import annotations

import streamlit as st

from xai_core.models.training_runs import RunRequest, TrainingRun
from xai_core.models.zoo import checkpoints_dir

from .state import TRAINING_RUN, session_folder


def training_run() -> TrainingRun | None:
    """This session's training run (running or finished), if any."""
    return st.session_state.get(TRAINING_RUN)


def start_training(request: RunRequest) -> TrainingRun:
    """Start ``request`` in the background, into the zoo's folder; one run a session (raises
    ValueError for a second one while the first runs, or for a name in use)."""
    current = training_run()
    if current is not None and current.running:
        raise ValueError(f"{current.request.name} is still training: stop it first")
    run = TrainingRun.start(request, checkpoints_dir(), session_folder() / "runs" / request.name)
    st.session_state[TRAINING_RUN] = run
    return run
