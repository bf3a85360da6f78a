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

The names below are imported when first used (PEP 562), so that ``xai batch`` starts its workers'
fork server (``local.start_worker_server``) before the driver imports numpy and the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "BatchSpec": ".driver",
    "run_batch": ".driver",
    "ClipRef": ".clips",
    "clip_refs": ".clips",
    "WorkItem": ".items",
    "work_items": ".items",
    "read_results": ".results",
}

if TYPE_CHECKING:
    from .clips import ClipRef, clip_refs
    from .driver import BatchSpec, run_batch
    from .items import WorkItem, work_items
    from .results import read_results


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = ["BatchSpec", "ClipRef", "WorkItem", "clip_refs", "read_results", "run_batch", "work_items"]
