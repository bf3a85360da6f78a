"""Whole datasets explained and evaluated: ``xai batch``.

* ``clips``: a SOURCE (a folder of videos, a CSV / Parquet manifest, a Moving Shapes range) as
  references to clips, read by the workers themselves;
* ``items``: the work items, one (model, clip, method, params, target) each, with a stable id;
* ``runner``: one item run in a worker (each model loaded once), as one row of the results table;
* ``results``: the results log (append-only, resumable) and ``results.parquet``;
* ``summary``: ``summary.md``, per model and per method;
* ``local`` and ``ray_engine``: the engines (worker processes here, or Ray tasks on a cluster);
* ``faults``: the rows of items whose worker died, and the models given up for killing their workers;
* ``driver``: ``run_batch``, which ties them together and reports progress.
"""

from .clips import ClipRef, clip_refs
from .driver import BatchSpec, run_batch
from .items import WorkItem, work_items
from .results import read_results

__all__ = ["BatchSpec", "ClipRef", "WorkItem", "clip_refs", "read_results", "run_batch", "work_items"]
