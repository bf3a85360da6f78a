"""The run store: a run is found again by what determines it, is written whole, and a run saved
under an earlier key format is not served (issue 15: such runs of a user's model may have been
computed partly in training mode)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
from conftest import small_input, small_model

import xai_core
from xai_core.store import KEY_FORMAT, RunStore, run_key

SETTINGS = {"window": 1, "baseline": "zero"}


def format_1_key(model: str, clip_hash: str, method: str, target, params: dict) -> str:
    """The key runs were saved under before KEY_FORMAT existed."""
    text = json.dumps([model, clip_hash, method, None if target is None else str(target), params], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def test_a_run_is_served_by_its_settings_only(tmp_path):
    model = small_model("cnn_lstm")
    expl = xai_core.explain(model, small_input(), "frame_mask", **SETTINGS)
    store = RunStore(tmp_path)
    record = store.put(expl, "m@cpu", "clip1", None, SETTINGS)
    assert record.key == run_key("m@cpu", "clip1", "frame_mask", None, SETTINGS)
    found = store.get("m@cpu", "clip1", "frame_mask", None, SETTINGS)
    assert np.array_equal(found.temporal, expl.temporal) and found.method == "frame_mask"
    assert store.get("m@cpu", "clip1", "frame_mask", None, {**SETTINGS, "window": 2}) is None
    assert store.get("m@cpu", "clip2", "frame_mask", None, SETTINGS) is None
    assert store.get("m@cpu", "clip1", "frame_mask", 1, SETTINGS) is None
    assert [r.key for r in store.records("m@cpu")] == [record.key]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_runs_of_an_earlier_key_format_are_not_served(tmp_path):
    assert KEY_FORMAT >= 2
    model = small_model("cnn_lstm")
    expl = xai_core.explain(model, small_input(), "frame_mask", **SETTINGS)
    store = RunStore(tmp_path)
    record = store.put(expl, "yours@cpu#request", "clip1", None, SETTINGS)
    old = format_1_key("yours@cpu#request", "clip1", "frame_mask", None, SETTINGS)
    assert old != record.key
    # the run as format 1 left it: its folder and index row under the old key
    shutil.move(record.folder, tmp_path / old)
    with store._db() as db:
        db.execute("UPDATE runs SET key = ?, folder = ? WHERE key = ?", (old, old, record.key))
    assert store.get("yours@cpu#request", "clip1", "frame_mask", None, SETTINGS) is None
    assert store.records() == [] and (tmp_path / old).is_dir()
