"""Figures and exports made from finished explanations: the film strip (frames, a frame
importance strip and one row of overlays per method, for a paper) and a saved run as a zip."""

from .export import export_run
from .strip import film_strip, pick_frames, save_figure

__all__ = ["export_run", "film_strip", "pick_frames", "save_figure"]
