"""Models that kill their workers: a model whose items killed the worker process on every attempt
(``died_row``), ``LETHAL_ITEMS`` of them, while none of its items has finished, is given up: its
other items are recorded as not run instead of each costing ``MAX_ATTEMPTS`` worker deaths (a
model whose loading crashes native code, or asks for more memory than the machine has)."""

from __future__ import annotations

from collections import Counter

from .items import WorkItem, item_columns

MAX_ATTEMPTS = 3  # deaths of its worker an item is given before it is recorded as died
LETHAL_ITEMS = 2  # items of a model died so, and none finished: the model is given up
DIED = "WorkerDied: "


def died_row(item: WorkItem, attempts: int, how: str) -> dict:
    """The row of an item whose worker process died on every attempt."""
    return {**item_columns(item), "status": "failed", "attempts": attempts,
            "error": f"{DIED}the worker process died on this item {attempts} times ({how})"}  # fmt: skip


class LethalModels:
    """What the rows so far say of each model: how many of its items died on every attempt, and
    whether any finished (ok, or failed with an exception of its own: the model loads and runs)."""

    def __init__(self) -> None:
        self.died: Counter[str] = Counter()
        self.finished: set[str] = set()

    def record(self, row: dict) -> None:
        if row.get("status") == "failed" and str(row.get("error") or "").startswith(DIED):
            self.died[row.get("model")] += 1
        else:
            self.finished.add(row.get("model"))

    def given_up(self, model: str) -> bool:
        return model not in self.finished and self.died[model] >= LETHAL_ITEMS

    def not_run_row(self, item: WorkItem) -> dict:
        """The row of an item of a given-up model."""
        return {**item_columns(item), "status": "failed", "attempts": 0,
                "error": f"{DIED}not run: the worker process died on every attempt at {self.died[item.model]} items "
                         f"of {item.model} and finished none of them (loading or running the model kills the "
                         "process); fix it, then run the batch again with --retry-failed"}  # fmt: skip
