"""Evaluation of explanation methods against Moving Shapes' ground truth: pointing game and ranks
(``localization``), randomisation sanity checks (``sanity``) and the pause frames' rank on frame
curves (``temporal``).  ``run_suite`` runs one; ``to_markdown`` makes its table.  ``temporal``:
deletion / insertion curves of a frame ranking, and key frames."""

from .randomize import randomized_copy
from .scores import pointing_game, pointing_tolerance, rank_scores, read_map, spearman, temporal_scores
from .suites import SUITES, evaluation_clips, run_suite, shapes_task, to_markdown
from .temporal import auc, deletion_insertion, frame_differences, key_frame_overlap, key_frames, masked_accuracy

__all__ = [
    "SUITES",
    "auc",
    "deletion_insertion",
    "frame_differences",
    "key_frame_overlap",
    "key_frames",
    "masked_accuracy",
    "evaluation_clips",
    "pointing_game",
    "pointing_tolerance",
    "randomized_copy",
    "rank_scores",
    "read_map",
    "run_suite",
    "shapes_task",
    "spearman",
    "temporal_scores",
    "to_markdown",
]
