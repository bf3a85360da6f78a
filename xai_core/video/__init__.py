"""Video in and out: read any clip source into a :class:`Clip`, sample, pad and resize it; write
H.264 mp4 and GIF.

* ``clip``: the Clip type (uint8 frames [T,H,W,3] RGB and where each came from) and VideoError;
* ``sampling``: uniform sampling to T frames (padding short videos) and resizing (crop, pad, stretch);
* ``sources``: ``load_video`` and ``check_source`` for files, folders, arrays and ``shapes:SEED``;
* ``shapes``: a ``shapes:SEED`` source as a Clip, its ground truth sampled and resized like the frames;
* ``decoders``: PyAV, then OpenCV; ``streaming``: a video file decoded once, streaming; ``probe_video``;
* ``writer``: ``write_video`` / ``encode_video``.

Moving Shapes clips and their ground truth are generated in ``xai_core.data.moving_shapes``, which
imports nothing from here (video reads data, never the other way).  Nothing here imports torch.
"""

from ..data.moving_shapes import DEFAULT_SHAPES_OPTIONS, SHAPES_FPS
from .clip import DEFAULT_FPS, Clip, VideoError
from .decoders import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .sampling import FITS, resize_frames, sample_indices
from .sources import SAMPLES_DIR, check_source, load_video, sample_clips
from .streaming import probe_video
from .writer import encode_video, write_video

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_SHAPES_OPTIONS",
    "FITS",
    "IMAGE_SUFFIXES",
    "SAMPLES_DIR",
    "SHAPES_FPS",
    "VIDEO_SUFFIXES",
    "Clip",
    "VideoError",
    "check_source",
    "encode_video",
    "load_video",
    "probe_video",
    "resize_frames",
    "sample_clips",
    "sample_indices",
    "write_video",
]
