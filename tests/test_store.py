"""The run store: a run is found again by what determines it (the model's weights, the clip's
content, the method, target, parameters and device), is written whole, survives a process killed
in the middle of a save or a delete, and a run saved under an earlier key format is not served
(issue 15: such runs of a user's model may have been computed partly in training mode)."""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

import xai_core
from xai_core.api import model_fingerprint, request_for
from xai_core.methods.machinery.registry import get_method
from xai_core.runs import KEY_FORMAT, RunNotFound, RunStore, request, tensor_hash, weights_hash

SETTINGS = {"window": 1, "baseline": "zero"}


def frame_mask_run(tmp_path, model=None):
    model = model or small_model("cnn_lstm")
    expl = xai_core.explain(model, small_input(), "frame_mask", **SETTINGS)
    store = RunStore(tmp_path)
    wanted = request_for(model, small_input(), "frame_mask", None, **SETTINGS)
    return model, expl, store, wanted


def test_a_run_is_served_by_its_settings_only(tmp_path):
    model, expl, store, wanted = frame_mask_run(tmp_path)
    record = store.put(expl, wanted)
    assert record.key == wanted.key and store.find(wanted.key) == record
    found = store.get(wanted)
    assert np.array_equal(found.temporal, expl.temporal) and found.method == "frame_mask"
    assert found.meta["run"] == record.key and found.meta["saved_at"] == pytest.approx(record.created)
    other = {
        "params": request_for(model, small_input(), "frame_mask", None, window=2, baseline="zero"),
        "clip": request_for(model, small_input() + 1, "frame_mask", None, **SETTINGS),
        "target": request_for(model, small_input(), "frame_mask", 1, **SETTINGS),
        "device": request(
            *[getattr(wanted, f) for f in ("model", "weights", "clip_hash", "method")], None, wanted.params, "cuda:0"
        ),  # fmt: skip
    }
    for what, req in other.items():
        assert req.key != wanted.key, what
        assert store.get(req) is None, what
    assert [r.key for r in store.records()] == [record.key]
    assert [r.key for r in store.records(model=model.name, method="frame_mask")] == [record.key]
    assert store.records(method="gradcam") == [] and store.records(model="other") == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_the_record_says_what_computed_the_run(tmp_path):
    model, expl, store, wanted = frame_mask_run(tmp_path)
    record = store.put(expl, wanted)
    assert record.model == model.name and record.weights == model_fingerprint(model)
    assert record.clip_hash == tensor_hash(small_input()) and record.source == "tensor"
    assert record.method == "frame_mask" and record.target is None
    assert record.params == get_method("frame_mask").resolve_params(SETTINGS)  # every parameter, defaults too
    assert record.device == "cpu" and record.seconds == pytest.approx(expl.seconds)
    assert record.prediction.split(" (")[0] in ("triangle", "square", "pentagon")
    assert record.versions == {"xai_core": xai_core.__version__, "torch": torch.__version__,
                               "python": expl.meta["python"]}  # fmt: skip
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_other_weights_under_the_same_name_are_not_served(tmp_path):
    model, expl, store, wanted = frame_mask_run(tmp_path)
    store.put(expl, wanted)
    retrained = copy.deepcopy(model)
    assert request_for(retrained, small_input(), "frame_mask", None, **SETTINGS).key == wanted.key
    with torch.no_grad():
        next(retrained.parameters()).add_(1e-3)
    changed = request_for(retrained, small_input(), "frame_mask", None, **SETTINGS)
    assert changed.model == wanted.model and changed.weights != wanted.weights
    assert store.get(changed) is None
    other_spec = copy.deepcopy(model)
    other_spec.input_spec = type(model.input_spec)(**{**vars(model.input_spec), "mean": (0.5, 0.5, 0.5)})
    assert request_for(other_spec, small_input(), "frame_mask", None, **SETTINGS).key != wanted.key


def test_the_weights_hash_follows_every_change():
    model = small_model("cnn_lstm")
    first = weights_hash(model)
    assert weights_hash(model) == first == weights_hash(copy.deepcopy(model))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        next(model.parameters()).mul_(2)  # an in-place update bumps the tensor's version
    assert weights_hash(model) != first
    model.load_state_dict(state)
    assert weights_hash(model) == first
    next(model.parameters()).data[0] += 1  # a write through .data bumps no version: only a fresh hash sees it
    assert weights_hash(model, fresh=True) != first


def test_runs_of_an_earlier_format_are_not_served(tmp_path):
    assert KEY_FORMAT >= 3
    model, expl, store, wanted = frame_mask_run(tmp_path)
    record = store.put(expl, wanted)
    with store._db() as db:  # a row whose key is not this format's key of its settings
        db.execute("UPDATE runs SET key = ? WHERE key = ?", ("0" * 24, record.key))
    assert store.records() == [] and store.find("0" * 24) is None
    # an index written by an earlier version of the store (other columns): dropped on opening, the folders stay
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        db.execute("DROP TABLE runs")
        db.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, model TEXT, folder TEXT)")
        db.execute("INSERT INTO runs VALUES (?, ?, ?)", (record.key, "m", record.key))
    reopened = RunStore(tmp_path)
    assert reopened.records() == [] and reopened.get(wanted) is None and record.folder.is_dir()
    assert reopened.put(expl, wanted).key == record.key and reopened.get(wanted) is not None


def test_keys_prefixes_and_delete(tmp_path):
    model, expl, store, wanted = frame_mask_run(tmp_path)
    record = store.put(expl, wanted)
    assert store.record(record.key[:6]).key == record.key
    with pytest.raises(RunNotFound, match="no run"):
        store.record("ffffffffff" if not record.key.startswith("f") else "0000000000")
    with pytest.raises(RunNotFound, match="not a run key"):
        store.record("../etc")
    deleted = store.delete(record.key[:8])
    assert deleted.key == record.key and not record.folder.exists() and store.records() == []


def test_explain_serves_a_saved_run_and_recomputes_on_request(tmp_path):
    model = small_model("cnn_transformer")
    clip = small_input()
    first = xai_core.explain(model, clip, "gradcam", store=tmp_path)
    assert "saved_at" not in first.meta and len(first.meta["run"]) == 24
    again = xai_core.explain(model, clip, "gradcam", store=tmp_path)
    assert again.meta["run"] == first.meta["run"] and "saved_at" in again.meta
    assert np.array_equal(again.spatial, first.spatial)
    fresh = xai_core.explain(model, clip, "gradcam", store=RunStore(tmp_path), recompute=True)
    assert "saved_at" not in fresh.meta and len(RunStore(tmp_path).records()) == 1
    xai_core.explain(model, clip, "saliency", store=tmp_path)
    assert {r.method for r in RunStore(tmp_path).records()} == {"gradcam", "saliency"}


def test_a_clip_is_saved_with_its_frames(tmp_path):
    model = xai_core.load_model("cnn_transformer-sides") if xai_core.zoo_names() else None
    if model is None:
        pytest.skip("the zoo is not here")
    clip = xai_core.load_video("shapes:3", model=model)
    expl = xai_core.explain(model, clip, "gradcam", store=tmp_path)
    frames, padded, indices = RunStore(tmp_path).clip_frames(expl.meta["run"])
    assert np.array_equal(frames, clip.frames) and np.array_equal(padded, clip.padded)
    assert list(indices) == list(clip.frame_indices)
    assert RunStore(tmp_path).record(expl.meta["run"]).source == "shapes:3"


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from xai_core.explanation import Explanation
    from xai_core.runs import RunStore, request
    store = RunStore(sys.argv[1])
    rng = np.random.default_rng(0)
    i = 0
    print("ready", flush=True)
    while True:  # save and delete runs with large arrays until killed
        expl = Explanation("saliency", {}, {"kind": "class", "index": 0}, "classification", {},
                           spatial=rng.random((16, 96, 96), dtype=np.float32))
        store.put(expl, request("m", "w", f"clip{i % 7}", "saliency", None, {}, "cpu"),
                  frames=rng.integers(0, 255, (16, 96, 96, 3), dtype=np.uint8))
        if i % 3 == 2:
            for r in store.records()[:1]:
                store.delete(r.key)
        i += 1
    """
)


@pytest.mark.slow
def test_a_process_killed_while_saving_leaves_a_readable_store(tmp_path):
    rng = np.random.default_rng(1)
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        store = RunStore(tmp_path)
        listed = store.records()
        for record in listed:  # every run listed is whole
            expl = store.load(record.key)
            assert expl.spatial.shape == (16, 96, 96)
            assert store.clip_frames(record.key)[0].shape == (16, 96, 96, 3)
        keys = {r.key for r in listed}
        assert len(keys) == len(listed) <= 7
        assert all((r.folder / "run.json").is_file() and (r.folder / "clip.npz").is_file() for r in listed)


def test_a_replacement_stopped_between_its_renames_lists_no_half_run(tmp_path, monkeypatch):
    """A process killed after the old run was set aside and before the new one was renamed in:
    the run is not listed (nor served), the store reads, and the next save puts it back."""
    model, expl, store, wanted = frame_mask_run(tmp_path)
    store.put(expl, wanted)
    real = os.replace
    calls = []

    def killed_at_the_second_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")  # as a kill -9 would leave it: the first rename done
        return real(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_the_second_rename)
    with pytest.raises(KeyboardInterrupt):
        store.put(expl, wanted)
    monkeypatch.setattr(os, "replace", real)
    reopened = RunStore(tmp_path)
    assert reopened.records() == [] and reopened.get(wanted) is None
    assert reopened.put(expl, wanted).key == wanted.key and reopened.get(wanted) is not None


def test_the_sweep_removes_only_the_stores_own_stale_folders(tmp_path):
    RunStore(tmp_path)
    stale = [tmp_path / f".{'a' * 24}-x1", tmp_path / ".venv-old", tmp_path / ".cache-dir"]
    for folder in stale:
        folder.mkdir()
        os.utime(folder, (time.time() - 7200, time.time() - 7200))
    RunStore(tmp_path)
    assert [f.exists() for f in stale] == [False, True, True]


def test_the_grad_cam_layer_and_the_input_layout_are_part_of_the_key():
    model = small_model("cnn_transformer")
    clip = small_input()
    base = request_for(model, clip, "gradcam", None).key
    other_layer = copy.deepcopy(model)
    other_layer._cam_layer_name = "frame_encoder.features.0"
    assert request_for(other_layer, clip, "gradcam", None).key != base
    other_layout = copy.deepcopy(model)
    other_layout.layout = "BCTHW"
    assert request_for(other_layout, clip, "gradcam", None).key != base


def test_a_store_waits_while_other_processes_set_its_new_index_up(tmp_path, monkeypatch):
    """Several processes opening one new store together (a batch's workers): switching the index to
    write-ahead logging can answer "database is locked" at once, without SQLite's wait; the store
    waits and tries again (seen in CI).  Any other error is raised at once."""
    from xai_core.runs import store as store_module

    calls = []
    real = store_module.RunStore._set_up

    def locked_twice(self):
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        real(self)

    monkeypatch.setattr(store_module.RunStore, "_set_up", locked_twice)
    assert RunStore(tmp_path / "a").records() == [] and len(calls) == 3

    def broken(self):
        calls.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store_module.RunStore, "_set_up", broken)
    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        RunStore(tmp_path / "b")
    assert len(calls) == 1
    monkeypatch.setattr(store_module.RunStore, "_set_up", lambda self: (_ for _ in ()).throw(
        sqlite3.OperationalError("database is locked")))  # fmt: skip
    monkeypatch.setattr(store_module, "SETUP_SECONDS", 0.3)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        RunStore(tmp_path / "c")  # locked for good: said after SETUP_SECONDS
