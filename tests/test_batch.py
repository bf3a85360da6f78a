"""`xai batch` (issue 21): sources listed, results equal to single explain calls, resumed after an
interruption, a failing item recorded, a killed worker's item retried, the Ray engine on a local
cluster, the table and summary read back with pandas."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xai_core.api import explain
from xai_core.batch import BatchSpec, WorkItem, clip_refs, read_results, run_batch
from xai_core.batch.clips import SourceError
from xai_core.batch.results import ROWS, ResultLog
from xai_core.batch.summary import aggregates
from xai_core.cli import main
from xai_core.models.zoo import load_model
from xai_core.runs import RunStore
from xai_core.video import load_video

MODEL = "tiny_cnn_transformer"


def quiet(_text: str) -> None:
    pass


def write_array(path: Path, frames: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.save(path, rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8))
    return path


# ---------------------------------------------------------------------------- sources
def test_sources_folder_manifest_and_shapes_range(tmp_path):
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    write_array(folder / "b.npy")
    write_array(folder / "sub" / "a.npy")
    (folder / "notes.txt").write_text("not a clip")
    refs = clip_refs(str(folder))
    assert [r.id for r in refs] == ["b.npy", "sub/a.npy"]
    assert all(Path(r.source).is_file() for r in refs)

    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,start,end\nclips/b.npy,square,0.1,0.4\nclips/sub/a.npy,,,\n")
    refs = clip_refs(str(manifest))
    assert [(r.id, r.label, r.start, r.end) for r in refs] == [
        ("clips/b.npy@0.1-0.4", "square", 0.1, 0.4),
        ("clips/sub/a.npy", None, None, None),
    ]
    assert refs[0].source == str(tmp_path / "clips" / "b.npy")
    pd.read_csv(manifest).to_parquet(tmp_path / "list.parquet")
    assert clip_refs(str(tmp_path / "list.parquet")) == refs

    refs = clip_refs("shapes:3..6?noise=4&distractors=1")
    assert [r.source for r in refs] == [f"shapes:{s}?noise=4&distractors=1" for s in (3, 4, 5)]


@pytest.mark.parametrize(
    "source, message",
    [
        ("shapes:5..5", "the range is empty"),
        ("shapes:1..3?colour=red", "unknown Moving Shapes option"),
        ("shapes:1-3", "shapes:FIRST..END"),
        ("nowhere/", "no such folder or manifest"),
    ],
)
def test_sources_that_cannot_be_listed_say_why(source, message):
    with pytest.raises(SourceError, match=message):
        clip_refs(source)


def test_manifest_errors_name_the_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,start,end\na.npy,2,1\n")
    with pytest.raises(SourceError, match=r"bad.csv row 2: end \(1 s\) is not after start"):
        clip_refs(str(bad))
    (tmp_path / "nopath.csv").write_text("file\na.npy\n")
    with pytest.raises(SourceError, match="needs a 'path' column"):
        clip_refs(str(tmp_path / "nopath.csv"))


def test_a_manifest_window_is_the_clip_the_worker_reads(tmp_path):
    """start / end select the source's frames: the clip equals load_video of that window."""
    from xai_core.video.sampling import sample_indices

    array = write_array(tmp_path / "long.npy", frames=50)  # 25 fps: 2 s
    clip = load_video(array, frames=8, window=(1.0, 1.6))  # frames 25 to 39: 1.0 s <= t < 1.6 s
    assert clip.frame_indices.tolist() == (25 + sample_indices(15, 8)).tolist()
    exact = load_video(array, window=(0.2, 0.36))  # frames at 0.2, 0.24, 0.28, 0.32 s; 0.36 s is the end
    assert exact.frame_indices.tolist() == [5, 6, 7, 8]
    whole = np.load(array)
    assert np.array_equal(clip.frames[0], whole[clip.frame_indices[0]])


def test_a_video_window_samples_only_its_seconds():
    from xai_core.video import probe_video, sample_clips

    path = sample_clips()["mmaction2_demo_demo.mp4"]
    fps = probe_video(path)["fps"]
    clip = load_video(path, frames=8, window=(1.0, 2.0))
    assert clip.frame_indices.min() >= round(1.0 * fps) and clip.frame_indices.max() < round(2.0 * fps)
    whole = load_video(path, frames=None)
    for frame, index in zip(clip.frames, clip.frame_indices, strict=True):
        assert np.array_equal(frame, whole.frames[index])
    with pytest.raises(ValueError, match="no frame in 100-101 s"):
        load_video(path, frames=8, window=(100.0, 101.0))


# ---------------------------------------------------------------------------- the local engine
@pytest.fixture
def batch_zoo(tiny_checkpoints):
    return tiny_checkpoints


def test_local_batch_equals_single_explain_calls(batch_zoo, tmp_path):
    spec = BatchSpec([MODEL], ["gradcam", "saliency"], "shapes:0..3?noise=4", target="label", suite="localization")
    out = tmp_path / "batch"
    counts = run_batch(spec, out, workers=2, report=quiet)
    assert (counts["total"], counts["ok"], counts["failed"]) == (6, 6, 0)
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 6 and table["item"].is_unique
    assert set(table["worker"]) and table["attempts"].eq(1).all()
    assert table.groupby("clip")["worker"].nunique().eq(1).all()  # a clip's methods: one worker, one read
    model = load_model(MODEL)
    store = RunStore(out / "runs")
    for _, row in table.iterrows():
        clip = load_video(row["source"], model=model)
        single = explain(model, clip, row["method"], target=row["label"])
        assert np.allclose(row["curve"], single.temporal, rtol=1e-5, atol=1e-7)
        assert row["prediction"] == single.prediction["label"]
        assert row["target"] == single.meta["target_description"]
        saved = store.load(row["run"])
        assert np.allclose(saved.spatial, single.spatial, rtol=1e-5, atol=1e-7)
        assert row["peak_frame"] == int(np.argmax(single.temporal))
    # the suite's scores are the evaluation's per-clip scores
    assert table["localization.pointing"].between(0, 1).all()
    per_method = {r["method"]: r for r in aggregates(table, ["method"])}
    mean = table[table["method"] == "gradcam"]["localization.pointing"].mean()
    assert per_method["gradcam"]["localization.pointing"][0] == pytest.approx(mean)
    summary = (out / "summary.md").read_text()
    assert "| tiny_cnn_transformer | gradcam | 3 | 0 |" in summary


def test_a_manifest_s_labels_and_windows_are_explained_as_single_calls(batch_zoo, tmp_path):
    write_array(tmp_path / "a.npy", frames=50)
    write_array(tmp_path / "b.npy", frames=20, seed=2)
    (tmp_path / "m.csv").write_text("path,label,start,end\na.npy,square,0.4,1.8\nb.npy,2,,\n")
    counts = run_batch(BatchSpec([MODEL], ["saliency"], str(tmp_path / "m.csv"), target="label"), tmp_path / "o",
                       report=quiet)  # fmt: skip
    assert counts["ok"] == 2
    table = read_results(tmp_path / "o").set_index("clip")
    model = load_model(MODEL)
    for clip_id, window, label in [("a.npy@0.4-1.8", (0.4, 1.8), "square"), ("b.npy", None, "pentagon")]:
        row = table.loc[clip_id]
        clip = load_video(tmp_path / clip_id.split("@")[0], model=model, window=window)
        single = explain(model, clip, "saliency", target=label)
        assert row["label"] == label and row["target"] == single.meta["target_description"]
        assert row["correct"] == (single.prediction["label"] == label)
        assert np.allclose(row["curve"], single.temporal, rtol=1e-5, atol=1e-7)


def test_a_failing_item_is_recorded_and_the_batch_goes_on(batch_zoo, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_array(folder / "good.npy")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    spec = BatchSpec([MODEL, "no_such_model"], ["gradcam"], str(folder))
    counts = run_batch(spec, tmp_path / "out", report=quiet)
    table = read_results(tmp_path / "out").set_index(["model", "clip"])
    assert counts["total"] == 4 and counts["ok"] == 1
    assert table.loc[(MODEL, "good.npy"), "status"] == "ok"
    broken = table.loc[(MODEL, "broken.mp4")]
    assert (
        broken["status"] == "failed" and broken["error"].startswith("VideoError: ") and "broken.mp4" in broken["error"]
    )
    missing = table.loc[("no_such_model", "good.npy"), "error"]
    assert "no_such_model" in missing
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## Failed items" in summary
    assert "| no_such_model | 2 | broken.mp4 / gradcam | " in summary  # one line for the model's one error


def test_a_model_that_ran_out_of_memory_loading_is_loaded_again_for_the_next_item(batch_zoo, monkeypatch):
    """Out of memory while loading may pass (other workers were loading too): that item fails, the
    next loads the model again; any other loading error is kept, and said for each item."""
    from xai_core.batch import runner as runner_module
    from xai_core.batch.clips import ClipRef
    from xai_core.batch.config import RunnerConfig

    real, calls = runner_module.load_model, []

    def load_once_out_of_memory(name, device="auto"):
        calls.append(name)
        if len(calls) == 1:
            raise MemoryError("no room for the weights")
        if name == "broken":
            raise ValueError("broken: no such checkpoint")
        return real(name, device=device)

    monkeypatch.setattr(runner_module, "load_model", load_once_out_of_memory)
    runner = runner_module.ItemRunner(RunnerConfig(runs=None))
    rows = [runner.run(WorkItem(name, ClipRef("s", "shapes:3"), "saliency", {}, "predicted"))
            for name in (MODEL, MODEL, "broken", "broken")]  # fmt: skip
    assert [r["status"] for r in rows] == ["failed", "ok", "failed", "failed"]
    assert rows[0]["error"] == "MemoryError: no room for the weights"
    assert rows[2]["error"] == rows[3]["error"] and "no such checkpoint" in rows[3]["error"]
    assert calls == [MODEL, MODEL, "broken"]  # a model that raised otherwise is not loaded again


def test_a_killed_worker_s_items_are_retried_by_another_worker(batch_zoo, tmp_path):
    killed, dispatched = [], []

    def kill_first(item: WorkItem, pid: int) -> None:
        """The third clip handed out: its worker has loaded the model (a death while loading is the model's)."""
        dispatched.append(pid)
        if len(dispatched) == 3:
            killed.append(item.clip.id)
            os.kill(pid, signal.SIGKILL)

    spec = BatchSpec([MODEL], ["saliency", "gradcam"], "shapes:0..4")
    counts = run_batch(spec, tmp_path / "out", workers=2, report=quiet, on_dispatch=kill_first)
    table = read_results(tmp_path / "out")
    assert counts["ok"] == 8 and len(table) == 8 and table["item"].is_unique
    again = table[table["clip"] == killed[0]].set_index("method")
    assert len(again) == 2 and again["status"].eq("ok").all()
    assert again.loc["saliency", "attempts"] == 2 and again.loc["gradcam", "attempts"] == 1  # the one running
    assert table[table["clip"] != killed[0]]["attempts"].eq(1).all()
    lines = (tmp_path / "out" / ROWS).read_text().splitlines()
    assert len(lines) == 8  # written once each


def crashing_worker(conn, config, environ) -> None:
    """A worker speaking the local engine's protocol whose process dies on every item asking
    for it (params {"crash": true}), and on loading the model "bad"; the others answer a row at once."""
    conn.send("ready")
    loaded = set()
    while True:
        message = conn.recv()
        if message is None:
            return
        for data in message:
            if data["model"] not in loaded:
                if data["model"] == "bad":
                    os._exit(4)
                loaded.add(data["model"])
                conn.send(("loaded", data["model"]))
            if data["params"].get("crash"):
                os._exit(3)
            item = WorkItem.from_dict(data)
            conn.send(
                {"item": item.id, "status": "ok", "model": item.model, "clip": item.clip.id, "method": item.method}
            )


def test_a_death_is_charged_to_the_item_that_was_running(tmp_path):
    """A clip's items go to one worker; the one that kills its worker every time is recorded as
    died after three attempts, the items after it in the clip run once, nothing is written twice."""
    from xai_core.batch.clips import ClipRef
    from xai_core.batch.config import RunnerConfig
    from xai_core.batch.faults import MAX_ATTEMPTS
    from xai_core.batch.local import LocalEngine

    items = [WorkItem("m", ClipRef(f"c{c}", f"c{c}"), method, params, "predicted")
             for c in range(2) for method, params in [("a", {}), ("b", {"crash": True}), ("c", {})]]  # fmt: skip
    engine = LocalEngine(RunnerConfig(), workers=2, target=crashing_worker)
    rows = list(engine.run(items))
    assert sorted(r["item"] for r in rows) == sorted(i.id for i in items)
    by_method = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    assert all(r["status"] == "ok" and r["attempts"] == 1 for m in "ac" for r in by_method[m])
    assert all(r["status"] == "failed" and r["attempts"] == MAX_ATTEMPTS for r in by_method["b"])
    assert by_method["b"][0]["error"] == "WorkerDied: the worker process died on this item 3 times (exit code 3)"
    assert engine.restarts == 2 * MAX_ATTEMPTS


def test_a_model_whose_loading_kills_the_worker_is_given_up_and_a_method_that_does_is_not():
    """Loading "bad" kills its worker: after MAX_ATTEMPTS such deaths (charged to the model, not
    to an item; one worker at a time tries a model none has loaded) its items are recorded as not
    run.  In "m", which loads, method "b" kills the worker on every clip: each of its items dies
    MAX_ATTEMPTS times and the model's other items run."""
    from xai_core.batch.clips import ClipRef
    from xai_core.batch.config import RunnerConfig
    from xai_core.batch.faults import MAX_ATTEMPTS
    from xai_core.batch.local import LocalEngine

    items = [WorkItem(model, ClipRef(f"c{c}", f"c{c}"), method, {"crash": method == "b"}, "predicted")
             for model in ("bad", "m") for c in range(2) for method in ("a", "b", "c")]  # fmt: skip
    for workers in (1, 2):
        engine = LocalEngine(RunnerConfig(), workers=workers, target=crashing_worker)
        rows = {r["item"]: r for r in engine.run(items)}
        assert sorted(rows) == sorted(i.id for i in items)
        bad = [r for r in rows.values() if r["model"] == "bad"]
        assert all(r["status"] == "failed" and r["attempts"] == 0 for r in bad)
        pattern = (
            r"WorkerDied: not run: loading bad killed the worker process (\d) times; fix the model, then "
            r"run the batch again with --retry-failed \(exit code 4\)"
        )
        said = [re.fullmatch(pattern, r["error"]) for r in bad]
        assert all(said)
        assert {int(m[1]) for m in said} == {MAX_ATTEMPTS}  # one worker loads a new model, the others wait
        m = [r for r in rows.values() if r["model"] == "m"]
        assert all(r["status"] == "ok" and r["attempts"] == 1 for r in m if r["method"] != "b")
        assert all(r["status"] == "failed" and r["attempts"] == MAX_ATTEMPTS for r in m if r["method"] == "b")
        assert engine.restarts == MAX_ATTEMPTS + 2 * MAX_ATTEMPTS  # the model's loading, then each "b"


def test_what_would_fail_every_item_is_said_before_any_work(batch_zoo, tmp_path):
    write_array(tmp_path / "a.npy")
    cases = [
        (BatchSpec([MODEL], ["saliency"], "shapes:0..3", suite="temporal"), "does not pause: add pause=1"),
        (BatchSpec([MODEL], ["saliency"], str(tmp_path), suite="localization"), "a.npy is not a shapes: clip"),
        (BatchSpec([MODEL], ["frame_mask"], "shapes:0..2", suite="localization"), "frame_mask is a temporal method"),
    ]
    for spec, message in cases:
        with pytest.raises(ValueError, match=message):
            run_batch(spec, tmp_path / "never", report=quiet)
    assert not (tmp_path / "never" / ROWS).exists()


def test_a_folder_holds_one_batch_and_one_driver(batch_zoo, tmp_path):
    from xai_core.batch.driver import BatchLock

    out = tmp_path / "o"
    run_batch(BatchSpec([MODEL], ["saliency"], "shapes:0..1"), out, report=quiet)
    with pytest.raises(ValueError, match=r"holds another batch \(methods: \['saliency'\] then, \['gradcam'\] now\)"):
        run_batch(BatchSpec([MODEL], ["gradcam"], "shapes:0..1"), out, report=quiet)
    with BatchLock(out.resolve()), pytest.raises(ValueError, match="another xai batch is running in this folder"):
        run_batch(BatchSpec([MODEL], ["saliency"], "shapes:0..1"), out, report=quiet)
    assert run_batch(BatchSpec([MODEL], ["saliency"], "shapes:0..1"), out, report=quiet)["skipped"] == 1


def test_the_randomised_copies_explain_the_trained_model_s_class(batch_zoo, tmp_path):
    """--target predicted with a suite: each copy explains the class the trained model was
    explained for (not its own prediction), as xai evaluate keeps one target."""
    from xai_core.evaluate.randomize import randomized_copy
    from xai_core.evaluate.suites import FIRST_SEED, sanity_scores
    from xai_core.methods.machinery.registry import get_method

    run_batch(BatchSpec([MODEL], ["saliency"], "shapes:5..6", suite="sanity"), tmp_path / "o", report=quiet)
    row = read_results(tmp_path / "o").iloc[0]
    model = load_model(MODEL)
    clip = load_video("shapes:5", model=model)
    trained = explain(model, clip, "saliency")
    for scope in ("logits", "all"):
        copy = randomized_copy(model, scope, FIRST_SEED)
        other = explain(copy, clip, "saliency", target=trained.target["index"])
        expected = sanity_scores(get_method("saliency"), [trained], [other], scope)[f"spearman_{scope}_signed"]
        assert row[f"sanity.spearman_{scope}_signed"] == pytest.approx(expected, abs=1e-9)


def test_resumed_after_an_interruption_computes_only_what_is_missing(batch_zoo, tmp_path):
    """The command killed (SIGKILL) after its first rows, then started again: it counts what was
    done, runs the rest, and every item has exactly one row."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "xai_core", "batch", "--models", MODEL, "--methods", "saliency,gradcam",
            "--clips", "shapes:0..8", "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = (out / ROWS).read_text().splitlines() if (out / ROWS).exists() else []
        if len(rows) >= 2 or process.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    with open(out / ROWS, "a") as f:
        f.write('{"item": "torn')  # a line the killed driver was writing
    before = {json.loads(line)["item"] for line in (out / ROWS).read_text().splitlines()[:-1]}
    assert 2 <= len(before) < 16
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(before)} done before, {16 - len(before)} to run" in done.stdout
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 16 and table["item"].is_unique and table["status"].eq("ok").all()
    lines = (out / ROWS).read_text().splitlines()
    assert len(lines) == 16 and len({json.loads(line)["item"] for line in lines}) == 16
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert "16 done before, 0 to run" in again.stdout


def test_retry_failed_runs_the_failed_items_again(batch_zoo, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_array(folder / "a.npy")
    (folder / "later.npy").write_bytes(b"not yet")
    argv = ["batch", "--models", MODEL, "--methods", "saliency", "--clips", str(folder), "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    assert "1 ok, 1 failed" in capsys.readouterr().out
    write_array(folder / "later.npy", seed=3)
    assert main(argv) == 0
    assert "2 done before, 0 to run" in capsys.readouterr().out
    assert main([*argv, "--retry-failed"]) == 0
    out = capsys.readouterr().out
    assert "1 failed item(s) will be run again" in out and "2 ok, 0 failed" in out


def test_a_damaged_line_is_set_aside_once(tmp_path):
    (tmp_path / ROWS).write_text('{"item": "a", "status": "ok"}\n\x00\x00garbage\n{"item": "b", "status": "ok"}\n')
    log = ResultLog(tmp_path)
    assert log.done == {"a": "ok", "b": "ok"} and log.unreadable == 1
    log.close()
    assert (tmp_path / (ROWS + ".damaged")).read_text() == "\x00\x00garbage\n"
    assert ResultLog(tmp_path).unreadable == 0  # said once: the log no longer holds it


def test_gpu_shares_on_a_ray_cluster():
    from xai_core.batch.ray_engine import gpu_share

    gpu = {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 2.0}}
    cpu = {"Alive": True, "Resources": {"CPU": 32.0}}
    assert gpu_share("auto", [gpu]) == 0.25  # 8 tasks share 2 GPUs
    assert gpu_share("auto", [gpu, cpu]) == 0.0  # the CPU nodes would sit idle: run on every CPU
    assert gpu_share("cuda", [gpu, cpu]) == 0.25  # asked for: the GPU nodes only
    assert gpu_share("cpu", [gpu]) == 0.0
    with pytest.raises(ValueError, match="no node of the Ray cluster has a GPU"):
        gpu_share("cuda", [cpu])


def test_a_moved_dataset_resumes_and_the_output_inside_it_is_no_clip(batch_zoo, tmp_path):
    first = tmp_path / "data"
    first.mkdir()
    write_array(first / "a.npy")
    write_array(first / "b.npy", seed=1)
    spec = BatchSpec([MODEL], ["saliency"], str(first))
    assert run_batch(spec, first / "out", report=quiet)["ok"] == 2  # OUT/runs/*.npz inside the source
    assert run_batch(spec, first / "out", report=quiet)["total"] == 2  # its own files are not clips
    moved = tmp_path / "moved"
    first.rename(moved)
    counts = run_batch(BatchSpec([MODEL], ["saliency"], str(moved)), moved / "out", report=quiet)
    assert counts["skipped"] == 2 and counts["total"] == 2


def test_result_log_cuts_a_torn_line_and_never_writes_an_item_twice(tmp_path):
    log = ResultLog(tmp_path)
    assert log.append({"item": "a", "status": "ok", "x": float("nan")})
    assert not log.append({"item": "a", "status": "ok"})
    log.close()
    with open(tmp_path / ROWS, "a") as f:
        f.write('{"item": "b", "sta')
    log = ResultLog(tmp_path)
    assert log.done == {"a": "ok"}
    assert log.append({"item": "b", "status": "failed"})
    log.close()
    rows = [json.loads(line) for line in (tmp_path / ROWS).read_text().splitlines()]
    assert rows == [{"item": "a", "status": "ok", "x": None}, {"item": "b", "status": "failed"}]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--methods", "no_method"], "unknown method"),
        (["--params", "[1]"], "--params takes"),
        (["--params", '{"occlusion": {"window": 4}}'], "not among the methods"),
        (["--engine", "local", "--address", "auto"], "--address is for --engine ray"),
    ],
)
def test_batch_command_errors_are_one_line(batch_zoo, tmp_path, capsys, argv, message):
    base = {"--models": MODEL, "--methods": "saliency", "--clips": "shapes:0..2", "--out": str(tmp_path / "o")}
    for key, value in zip(argv[::2], argv[1::2], strict=True):
        base[key] = value
    code = main(["batch", *[x for kv in base.items() for x in kv]])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err


# ---------------------------------------------------------------------------- the Ray engine
def _ray_reason() -> str | None:
    from xai_core.batch.ray_engine import ray_available

    return ray_available()


@pytest.mark.skipif(_ray_reason() is not None, reason=str(_ray_reason()))
def test_ray_engine_on_a_local_cluster_equals_the_local_engine_and_survives_a_killed_worker(batch_zoo, tmp_path):
    spec = BatchSpec([MODEL], ["integrated_gradients", "gradcam"], "shapes:0..3",
                     params={"integrated_gradients": {"steps": 48}})  # fmt: skip
    local = run_batch(spec, tmp_path / "local", report=quiet)
    assert local["ok"] == 6

    killed: list[int] = []
    stop = threading.Event()

    def kill_a_busy_worker() -> None:  # kill -9 the first Ray worker seen running an item
        while not stop.is_set() and not killed:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if title.startswith("ray::run_on_worker"):
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    try:
        counts = run_batch(spec, tmp_path / "ray", engine="ray", workers=2, report=quiet)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running an item"
    assert counts["ok"] == 6 and counts["failed"] == 0
    ours = read_results(tmp_path / "ray").set_index("item").sort_index()
    theirs = read_results(tmp_path / "local").set_index("item").sort_index()
    assert list(ours.index) == list(theirs.index)
    assert len((tmp_path / "ray" / ROWS).read_text().splitlines()) == 6
    for item in ours.index:
        assert np.allclose(ours.loc[item, "curve"], theirs.loc[item, "curve"], rtol=1e-5, atol=1e-7)
        assert ours.loc[item, "prediction"] == theirs.loc[item, "prediction"]
    assert len(set(ours["worker"])) >= 2  # a second worker ran the killed worker's item, or took others


def test_a_sanity_batch_scores_each_clip_as_the_evaluation_does(tmp_path):
    """The batch's per-item sanity scores, averaged over its clips, are the sanity suite's figures
    for the same clips (held-out seeds, noise 8, 2 distractors, the true class, the same
    randomised copies)."""
    from xai_core.evaluate import run_suite

    methods = ["saliency", "gradcam"]
    spec = BatchSpec(["cnn_transformer-sides"], methods, "shapes:50000..50002?noise=8&distractors=2",
                     target="label", suite="sanity")  # fmt: skip
    counts = run_batch(spec, tmp_path / "out", report=quiet)
    assert counts["ok"] == 4
    table = read_results(tmp_path / "out")
    suite = run_suite("sanity", load_model("cnn_transformer-sides"), methods, n=2)
    for row in suite["rows"]:
        mine = table[table["method"] == row["method"]]
        for key in ("spearman_all", "spearman_logits_signed", "spearman_all_read", "pointing", "random_pointing"):
            assert mine[f"sanity.{key}"].mean() == pytest.approx(row[key], abs=1e-6), (row["method"], key)


@pytest.mark.skipif(_ray_reason() is not None, reason=str(_ray_reason()))
def test_ray_splits_a_clip_whose_task_kills_its_worker_and_tells_an_exception_from_a_death():
    """A clip's task whose worker dies on every retry runs again one item a task: only the item
    that kills its worker is recorded as died; a task that raises is recorded with its exception."""
    from xai_core.batch.clips import ClipRef
    from xai_core.batch.config import RunnerConfig
    from xai_core.batch.ray_engine import MAX_RETRIES, RayEngine

    def task(items: list[dict], config: dict) -> list[dict]:  # pickled by value into the workers
        import os as _os

        if any(i["params"].get("crash") for i in items):
            _os._exit(3)
        if any(i["params"].get("raise") for i in items):
            raise RuntimeError("no runner here")
        return [{"item": WorkItem.from_dict(i).id, "status": "ok", "model": i["model"], "method": i["method"]}
                for i in items]  # fmt: skip

    def item(clip: str, method: str, **params) -> WorkItem:
        return WorkItem("m", ClipRef(clip, clip), method, params, "predicted")

    items = [item("c0", "a"), item("c0", "b", crash=True), item("c0", "c"), item("c1", "a", **{"raise": True})]
    engine = RayEngine(RunnerConfig(), workers=2, task=task, probe=lambda model, config: True)
    rows = {r["item"]: r for r in engine.run(items)}
    assert sorted(rows) == sorted(i.id for i in items)
    assert rows[items[0].id]["status"] == rows[items[2].id]["status"] == "ok"
    assert rows[items[1].id]["status"] == "failed" and rows[items[1].id]["error"].startswith("WorkerDied: ")
    assert f"died on this item {MAX_RETRIES + 1} times" in rows[items[1].id]["error"]
    assert rows[items[3].id]["error"] == "RuntimeError: no runner here"


def test_ray_gives_up_a_model_whose_loading_kills_its_worker():
    """Each model is loaded by one task first: loading "bad" kills its worker on every retry, so
    its items are recorded as not run without one of them running; "m" runs."""
    from xai_core.batch.clips import ClipRef
    from xai_core.batch.config import RunnerConfig
    from xai_core.batch.ray_engine import MAX_RETRIES, RayEngine

    def probe(model: str, config: dict) -> bool:
        import os as _os

        if model == "bad":
            _os._exit(4)
        return True

    def task(items: list[dict], config: dict) -> list[dict]:
        return [{"item": WorkItem.from_dict(i).id, "status": "ok", "model": i["model"]} for i in items]

    items = [WorkItem(model, ClipRef(f"c{c}", f"c{c}"), "a", {}, "predicted") for model in ("bad", "m")
             for c in range(3)]  # fmt: skip
    rows = {r["item"]: r for r in RayEngine(RunnerConfig(), workers=2, task=task, probe=probe).run(items)}
    assert sorted(rows) == sorted(i.id for i in items)
    for item in items:
        row = rows[item.id]
        if item.model == "bad":
            assert row["status"] == "failed" and row["attempts"] == 0
            assert row["error"].startswith(f"WorkerDied: not run: loading bad killed the worker process "
                                           f"{MAX_RETRIES + 1} times")  # fmt: skip
        else:
            assert row["status"] == "ok"
