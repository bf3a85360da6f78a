"""What the app keeps in ``st.session_state`` (its keys), and what the sidebar picked (``Selection``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

USER_MODELS = "user_models"  # {name: the load request as JSON}
TRAINING_RUN = "training_run"  # the session's TrainingRun
JOBS = "jobs"  # {slot: Job}
RESULTS = "results"  # {slot: {run key: result}}, what finished jobs computed
SESSION_FOLDER = "session_folder"  # the session's temporary folder


@dataclass(frozen=True)
class Selection:
    """What the sidebar picked: a model, a clip source and a device."""

    model: str
    clip_kind: str  # "shapes" | "sample" | "upload"
    clip_source: str  # "shapes:SEED?..." | a sample path | an uploaded file's name
    device: str = "cpu"
    upload: bytes | None = None

    @property
    def clip_label(self) -> str:
        """The clip in a few words: a file's name, or the Moving Shapes source."""
        return Path(self.clip_source).name if self.clip_kind != "shapes" else self.clip_source


def session_folder() -> Path:
    """A temporary folder of this session (uploaded model files, training logs)."""
    if SESSION_FOLDER not in st.session_state:
        st.session_state[SESSION_FOLDER] = tempfile.mkdtemp(prefix="xai-session-")
    return Path(st.session_state[SESSION_FOLDER])


KEPT = "kept_choices"  # {widget key: the value last chosen}, for the choices every page and model share
UPLOADED_CLIP = "uploaded_clip"  # (file name, bytes) of the last clip uploaded in this session


def kept_choice(key: str, options: list, default: Any) -> Any:
    """The value last chosen in widget ``key`` if it is still one of ``options``, else ``default``:
    what a page draws the widget with when Streamlit has dropped its state (on a page change, for
    a widget drawn by every page, or for another model's copy of it)."""
    value = st.session_state.get(KEPT, {}).get(key, default)
    return value if value in options else default


def keep_choice(key: str, value: Any) -> None:
    """Remember ``value`` as the last choice of widget ``key`` for ``kept_choice``."""
    st.session_state.setdefault(KEPT, {})[key] = value
