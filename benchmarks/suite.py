"""The performance suite as a script: ``python benchmarks/suite.py [--quick] --out DIR [--markdown FILE]``
runs ``python -m xai_core bench`` with the same options.

The suite itself is the installed package's (``xai_core.bench``); the names below are those that
scripts and notes import from here (``to_markdown`` and ``quality_markdown`` rebuild BENCHMARKS.md
from benchmarks/results without measuring again).
"""

from __future__ import annotations

import sys

from xai_core.bench.methods import target_status
from xai_core.bench.peers import captum_frame_ablation, captum_occlusion
from xai_core.bench.report import QUALITY, quality_markdown, to_markdown
from xai_core.bench.subjects import DEFAULT_MODEL, subject
from xai_core.bench.suite import main

__all__ = [
    "DEFAULT_MODEL",
    "QUALITY",
    "captum_frame_ablation",
    "captum_occlusion",
    "main",
    "quality_markdown",
    "subject",
    "target_status",
    "to_markdown",
]

if __name__ == "__main__":
    from xai_core.cli import main as command_line

    raise SystemExit(command_line(["bench", *sys.argv[1:]]))
