"""Shared fixtures: small random models (fast on a 2-core CPU) and the trained zoo when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xai_core.models.base import InputSpec
from xai_core.models.registry import build_model

SMALL_SPEC = InputSpec(frames=8, height=64, width=64)
LABELS = ["triangle", "square", "pentagon"]


@pytest.fixture(autouse=True, scope="session")
def _run_store_outside_the_checkout(tmp_path_factory):
    """Explanations from the command line and the pages are saved in the run store: the tests'
    go to a temporary folder ($XAI_RUNS), never to runs/ in the checkout (a test may set its own)."""
    import os

    before = os.environ.get("XAI_RUNS")
    os.environ["XAI_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    yield
    if before is None:
        os.environ.pop("XAI_RUNS", None)
    else:
        os.environ["XAI_RUNS"] = before


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


def small_model(arch: str, task: str = "classification", **config):
    """A randomly initialised model on 8 frames of 64x64 (eval mode)."""
    labels = ["angle"] if task == "regression" else LABELS
    torch.manual_seed(0)
    return build_model(arch, task=task, labels=labels, input_spec=SMALL_SPEC, config=config).eval()


def small_input(batch: int = 1, spec: InputSpec = SMALL_SPEC) -> torch.Tensor:
    """A normalised random clip [B,T,3,H,W]."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, spec.frames, 3, spec.height, spec.width, generator=g)


APP_ZOO = [
    ("a_cnn_transformer", "cnn_transformer", "classification"),  # first name: the app's default
    ("b_r3d", "r3d", "classification"),
    ("c_cnn_lstm-angle", "cnn_lstm", "regression"),
]


def write_app_zoo(folder) -> None:
    """The app tests' small zoo: a per-frame classifier, a 3D CNN and a regression model."""
    from xai_core.models.checkpoint import make_card, save_checkpoint

    for name, arch, task in APP_ZOO:
        model = small_model(arch, task=task)
        model.info.name = name
        save_checkpoint(model, folder / name, make_card(model))


@pytest.fixture
def tiny_checkpoints(tmp_path, monkeypatch):
    """A checkpoints folder with one small random cnn_transformer and one r3d (the zoo is swapped
    for it through $XAI_CHECKPOINTS)."""
    from xai_core.models.checkpoint import make_card, save_checkpoint

    for arch in ("cnn_transformer", "r3d"):
        model = small_model(arch)
        model.info.name = f"tiny_{arch}"
        save_checkpoint(model, tmp_path / f"tiny_{arch}", make_card(model))
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    return tmp_path


APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def app_zoo(tmp_path, monkeypatch):
    """The app tests' small zoo in $XAI_CHECKPOINTS, and an empty run store in $XAI_RUNS."""
    write_app_zoo(tmp_path)
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("XAI_RUNS", str(tmp_path / "runs"))
    return tmp_path


def open_page(page: str):
    """AppTest of the app on ``page`` (e.g. "pages/temporal.py"), run once, without exceptions."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_job(at, seconds: float = 120) -> None:
    """Rerun the page until no progress bar is left (its background job finished)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if not at.get("progress"):
            return
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.3)


@pytest.fixture
def shown_images(monkeypatch):
    """The pictures an AppTest page showed, as arrays: ``shown_images(image_element)`` ->
    uint8 [H,W,3] RGB (every file the page hands to Streamlit's media store is kept by its id)."""
    import cv2
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, bytes):
            files[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)

    def read(element) -> np.ndarray:
        file_id = element.proto.imgs[0].url.rsplit("/", 1)[1].split(".")[0]
        image = cv2.imdecode(np.frombuffer(files[file_id], np.uint8), cv2.IMREAD_COLOR)
        return image[..., ::-1].copy()

    return read
