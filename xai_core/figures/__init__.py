"""Figures and exports made from finished explanations: the film strip (frames, a frame
importance strip and one row of overlays per method, for a paper), a saved run as a zip, and
runs compared (maps on a common scale, their difference)."""

from .compare import difference, on_common_scale, shared_length
from .export import export_run
from .strip import film_strip, pick_frames, save_figure

__all__ = ["difference", "export_run", "film_strip", "on_common_scale", "pick_frames", "save_figure", "shared_length"]
