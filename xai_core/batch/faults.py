"""Worker deaths: the row of an item whose worker process died on every attempt, and models whose
loading kills the process.  A model whose loading kills every worker that tries (a crash in
native code, more memory than the machine has) is given up after ``MAX_ATTEMPTS`` such deaths
(the local engine's; Ray's probe task counts its retries) while no worker has loaded it: its
items are recorded as not run instead of each costing ``MAX_ATTEMPTS`` deaths.  A model that
loads is never given up: a method that kills the worker on some clips (running out of memory)
fails item by item, and the model's other items run."""

from __future__ import annotations

from collections import Counter

from .items import WorkItem, item_columns

MAX_ATTEMPTS = 3  # deaths of its worker an item is given (and a model's loading) before it is recorded
DIED = "WorkerDied: "
NOT_RUN = DIED + "not run: "  # the error of an item of a given-up model begins so


def died_row(item: WorkItem, attempts: int, how: str) -> dict:
    """The row of an item whose worker process died on every attempt."""
    return {**item_columns(item), "status": "failed", "attempts": attempts,
            "error": f"{DIED}the worker process died on this item {attempts} times ({how})"}  # fmt: skip


class LethalModels:
    """Which models have loaded in a worker (a worker said so, or a row of theirs came back), and
    the models given up because loading them killed the worker process every time."""

    def __init__(self) -> None:
        self.loaded: set[str] = set()
        self.load_deaths: Counter[str] = Counter()
        self.why: dict[str, str] = {}  # given-up model -> how its loading ended

    def mark_loaded(self, model: str) -> None:
        self.loaded.add(model)

    def load_death(self, model: str, how: str, deaths: int = 1) -> None:
        """A worker died loading ``model`` (``deaths`` times); given up at MAX_ATTEMPTS unless a worker loaded it."""
        self.load_deaths[model] += deaths
        if model not in self.loaded and self.load_deaths[model] >= MAX_ATTEMPTS:
            self.why[model] = how

    def given_up(self, model: str) -> bool:
        return model in self.why

    def not_run_row(self, item: WorkItem, attempts: int = 0) -> dict:
        """The row of an item of a given-up model (``attempts``: deaths charged to it before)."""
        return {**item_columns(item), "status": "failed", "attempts": attempts,
                "error": f"{NOT_RUN}loading {item.model} killed the worker process "
                         f"{self.load_deaths[item.model]} times; fix the model, then run the batch again with "
                         f"--retry-failed ({self.why[item.model]})"}  # fmt: skip
