"""The Models page, driven headless with AppTest: the zoo table and cards, loading your own
model (a mistake, then a model the Explain page explains), and a training run stopped from the page."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from conftest import write_app_zoo
from streamlit.testing.v1 import AppTest
from test_model_upload import USER_NET, tiny_net

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
APP = str(Path(__file__).resolve().parents[1] / "app.py")
ZOO = ["a_cnn_transformer", "b_r3d", "c_cnn_lstm-angle"]


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """The app tests' small zoo; b_r3d's card gets a training record (stopped early) and held-out figures."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    write_app_zoo(folder)
    card = json.loads((folder / "b_r3d.json").read_text())
    card["training"] = {
        "command": "python -m xai_core train --arch r3d --task sides --out checkpoints/b_r3d --steps 400",
        "settings": {"task": "sides", "steps": 400, "batch_size": 8},
        "wall_clock_seconds": 95.0,
        "best_step": 100,
        "steps_done": 150,
        "stopped_early": True,
        "curve": [{"step": 100, "loss": 0.9, "accuracy": 0.6, "clips": 20}],
    }
    card["metrics"] = {"test": {"noise8_distractors2": {"accuracy": 0.625, "clips": 40, "options": {"noise": 8.0}}}}
    (folder / "b_r3d.json").write_text(json.dumps(card))
    monkeypatch.setenv("XAI_CHECKPOINTS", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the session's folder (uploads, run logs) goes here
    return folder


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/models.py")
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def table_names(at: AppTest) -> list[str]:
    return at.dataframe[0].value["name"].tolist()


def test_the_table_lists_the_zoo_and_the_selected_models_card(zoo):
    at = start()
    assert at.title[0].value == "Models"
    table = at.dataframe[0].value
    assert table["name"].tolist() == ZOO
    row = table.set_index("name").loc["b_r3d"]
    assert (row["architecture"], row["task"], row["held-out"]) == ("r3d", "sides (classification)", "accuracy 62.5%")
    assert row["training time"] == "1 min 35 s (stopped early)" and row["capabilities"] == "cam_layer"
    assert "frame_encoder" in table.set_index("name").loc["a_cnn_transformer", "capabilities"]  # from the loaded model
    assert at.subheader[0].value == "a_cnn_transformer"  # the first model's card
    at.selectbox(key="card_model").set_value("b_r3d").run()
    assert_clean(at)
    assert at.subheader[0].value == "b_r3d"
    assert any(m.value.startswith("r3d: small 3D ResNet") for m in at.markdown)
    assert any("**Labels:** triangle, square, pentagon" in m.value for m in at.markdown)
    assert "after 150 of 400 steps" in at.warning[0].value
    assert at.code[0].value.startswith("python -m xai_core train --arch r3d")
    assert at.dataframe[1].value.to_dict("records") == [
        {"set": "test", "clips": "noise 8, no distractors", "result": "accuracy 62.5%", "n": 40}
    ]
    assert [c.proto.id for c in at.get("plotly_chart")]  # the validation curve is drawn


def test_a_bad_upload_shows_one_error_in_place_and_the_page_still_works(zoo):
    at = start()
    at.radio(key="upload_kind").set_value("TorchScript file").run()
    at.file_uploader(key="up_model_torchscript").upload("holiday.pt", b"\x80\x04 this is no model")
    at.button[0].click().run()  # the form's submit button
    assert_clean(at)
    assert len(at.error) == 1 and "holiday.pt is not a TorchScript file" in at.error[0].value
    assert at.sidebar.selectbox(key="model_name").options == ZOO  # nothing was added
    at.selectbox(key="card_model").set_value("c_cnn_lstm-angle").run()
    assert_clean(at)
    assert at.subheader[0].value == "c_cnn_lstm-angle" and len(at.error) == 1  # still shown, under the form


def test_your_own_model_joins_the_sidebar_and_the_explain_page_explains_it(zoo):
    from safetensors.torch import save

    at = start()
    at.radio(key="upload_kind").set_value("Python file + factory").run()
    at.file_uploader(key="up_model_factory").upload("nets.py", USER_NET)
    at.file_uploader(key="up_weights_factory").upload("tiny.safetensors", save(tiny_net().state_dict()))
    at.text_input(key="up_factory").input("TinyNet")
    at.text_area(key="up_labels").input("triangle\nsquare\npentagon")
    for key, value in (("up_frames", 8), ("up_height", 32), ("up_width", 32)):
        at.number_input(key=key).set_value(value)
    at.button[0].click().run()
    assert_clean(at)
    assert not at.error and "Loaded **TinyNet**" in at.success[0].value
    model_list = at.sidebar.selectbox(key="model_name")
    assert model_list.options == [*ZOO, "TinyNet (yours)"] and model_list.value == "TinyNet"
    assert table_names(at) == [*ZOO, "TinyNet"] and at.subheader[0].value == "TinyNet"
    at.switch_page("pages/explain.py").run()
    # AppTest's first run of a page file it switches to uses the sidebar's default model while
    # showing the chosen one; a browser runs the chosen one at once (tests/test_browser.py)
    at.run()
    assert_clean(at)
    assert not at.error and at.title[0].value == "Explain"
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert len(captions) == 2 and captions[1].startswith("gradcam for class ")
    assert any(c.value.startswith("TinyNet · Moving Shapes #7") for c in at.caption)


def wait_for(at: AppTest, condition, what: str, timeout: float = 90.0) -> None:
    """Rerun the page until ``condition()`` holds (the fragment polls the same way in a browser),
    then once more, so that the page shows a state no earlier than the one the condition saw (a
    step may land between the page's last run and the check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            run = at.session_state["training_run"]
            pytest.fail(f"timed out waiting for {what}: {run.log_path.read_text()[-2000:]}")
        time.sleep(0.3)
        at.run()
        assert_clean(at)
    at.run()
    assert_clean(at)


def test_training_from_the_page_shows_the_live_curve_and_stop_saves_the_model(zoo):
    at = start()
    settings = {
        "train_steps": 3000,
        "train_batch": 2,
        "train_frames": 8,
        "train_size": 64,
        "train_validate_every": 1000,
        "train_validation_clips": 4,
        "train_test_clips": 4,
        "train_robustness_clips": 2,
        "train_threads": 1,
    }
    for key, value in settings.items():
        at.number_input(key=key).set_value(value)
    at.selectbox(key="train_arch").set_value("cnn_lstm")
    at.text_input(key="train_name").input("tiny-run").run()
    assert any("No cnn_lstm model has been trained here yet" in c.value for c in at.caption)
    at.button(key="start_training").click().run()
    assert_clean(at)
    run = at.session_state["training_run"]
    try:
        assert at.button(key="stop_training") and not at.button(key="stop_training").disabled
        assert not [b for b in at.button if b.key == "start_training"]  # one run at a time
        wait_for(at, lambda: len(run.progress().steps) >= 3, "three training steps")
        assert at.get("progress")[0].proto.text.startswith("Step ")
        assert [c for c in at.get("plotly_chart") if c.key == "training_curve"]  # the live curve
        assert any(c.value.startswith("About ") and "s a step" in c.value for c in at.caption)
        # leaving the page and coming back: the run is still shown
        at.switch_page("pages/explain.py").run()
        at.switch_page("pages/models.py").run()
        assert_clean(at)
        assert at.button(key="stop_training")
        at.button(key="stop_training").click().run()
        assert_clean(at)
        assert run.stop_requested
        wait_for(at, lambda: not run.running and any("Saved **tiny-run**" in s.value for s in at.success), "the end")
    finally:
        if run.running:
            run.kill()
    assert run.returncode == 0
    success = [s.value for s in at.success if "tiny-run" in s.value][0]
    assert "stopped early after" in success
    card = json.loads((zoo / "tiny-run.json").read_text())
    assert card["training"]["stopped_early"] is True and card["input_spec"]["frames"] == 8
    assert table_names(at) == [*ZOO, "tiny-run"]
    assert "tiny-run" in at.sidebar.selectbox(key="model_name").options
    at.selectbox(key="card_model").set_value("tiny-run").run()
    assert_clean(at)
    assert "Training was stopped early" in at.warning[0].value
    assert at.button(key="start_training")  # ready for another run


def test_a_model_in_several_files_and_one_on_this_machine(zoo, tmp_path):
    """Issue 18, point 2: a factory importing a sibling module, uploaded as two files; the same
    code loaded from where it lies on the disk."""
    from test_model_upload import SPLIT_NET, split_weights

    at = start()
    at.radio(key="upload_kind").set_value("Python file + factory").run()
    at.file_uploader(key="up_model_factory").set_value(
        [(name, data, "text/x-python") for name, data in SPLIT_NET.items()]
    )
    at.file_uploader(key="up_weights_factory").upload("w.safetensors", split_weights().data)
    at.text_input(key="up_factory").input("net.py:build")
    for key, value in (("up_frames", 4), ("up_height", 16), ("up_width", 16)):
        at.number_input(key=key).set_value(value)
    at.selectbox(key="up_layout").set_value("BCTHW")
    at.button[0].click().run()
    assert_clean(at)
    assert not at.error, at.error[0].value
    assert "Loaded **build**" in at.success[0].value
    code = tmp_path / "project"
    code.mkdir()
    for name, data in SPLIT_NET.items():
        (code / name).write_bytes(data)
    at.radio(key="upload_kind").set_value("A path on this machine").run()
    at.text_input(key="up_local_path").input(f"{code / 'net.py'}:build")
    at.text_input(key="up_name").input("from-disk")
    for key, value in (("up_frames", 4), ("up_height", 16), ("up_width", 16)):
        at.number_input(key=key).set_value(value)
    at.button[0].click().run()
    assert_clean(at)
    assert not at.error, at.error[0].value
    assert "Loaded **from-disk**" in at.success[0].value
    assert at.sidebar.selectbox(key="model_name").options == [*ZOO, "build (yours)", "from-disk (yours)"]
    assert not list(code.glob("__pycache__"))  # the user's folder is left as it was


def test_code_on_this_machine_edited_between_two_loads_is_another_model(tmp_path):
    """A model loaded where it lies: its files' identity is part of the cache key, so an edit is
    never served from the cache of the code before it."""
    import json as json_

    from test_model_upload import SPLIT_NET

    from workbench.caches import model_key, user_model

    for name, data in SPLIT_NET.items():
        (tmp_path / name).write_bytes(data)
    request = json_.dumps(
        {"spec": f"{tmp_path / 'net.py'}:build", "kwargs": {"frames": 4, "height": 16, "width": 16}, "name": "m"}
    )
    first = user_model(request, "cpu")
    assert user_model(request, "cpu") is first
    layers = tmp_path / "layers.py"
    layers.write_bytes(
        SPLIT_NET["layers.py"].replace(b"nn.Conv3d(3, 4,", b"nn.Conv3d(3, 4, bias=False, kernel_size=3, padding=1) #")
    )
    os.utime(layers, ns=(layers.stat().st_atime_ns, layers.stat().st_mtime_ns + 10**9))
    second = user_model(request, "cpu")
    assert second is not first and model_key(second, "cpu") != model_key(first, "cpu")
    assert second.net[0].conv.bias is None and first.net[0].conv.bias is not None


def test_an_image_classifier_over_frames_is_loaded_from_the_page(tmp_path):
    """Issue 20, point 2: the Models page's choice for an image classifier run on every frame."""
    from safetensors.torch import save_file

    torch = pytest.importorskip("torch")
    import torchvision

    torch.manual_seed(0)
    save_file(torchvision.models.resnet18(num_classes=2).state_dict(), tmp_path / "net.safetensors")
    at = start()
    at.radio(key="upload_kind").set_value("An image classifier, run on every frame").run()
    at.text_input(key="up_image_net").input("resnet18")
    at.text_input(key="up_weights_name").input(str(tmp_path / "net.safetensors"))
    at.text_area(key="up_labels").input("cat, dog")
    for key, value in (("up_frames", 4), ("up_height", 64), ("up_width", 64)):
        at.number_input(key=key).set_value(value)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Loaded **resnet18**" in at.success[0].value
    assert "resnet18 (yours)" in at.sidebar.selectbox(key="model_name").options
