"""A batch's work items: one (model, clip, method, params, target) each, with an id that names
exactly what determines its result, so a batch started again finds what is done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from .clips import ClipRef

SUITES = ("localization", "sanity", "temporal")
TARGETS = ("predicted", "label")  # or a class index / label / regression target, as explain takes


@dataclass(frozen=True)
class WorkItem:
    """One explanation of a batch.  ``target``: "predicted" (the predicted class or the
    regression output), "label" (the manifest's label, or Moving Shapes' true class) or what
    ``explain`` takes (a class index or label, "output", "ref=VALUE"); ``suite``: the evaluation
    scored on the item (None: none)."""

    model: str
    clip: ClipRef
    method: str
    params: dict
    target: str
    suite: str | None = None

    @property
    def id(self) -> str:
        """16 hex digits of everything the item's row depends on: the clip by its id in the source
        (a path relative to the folder or as the manifest writes it), so that a dataset moved or a
        batch started from another folder keeps its ids."""
        what = [self.model, self.clip.id, self.clip.start, self.clip.end, self.clip.label,
                self.method, self.params, self.target, self.suite]  # fmt: skip
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"model": self.model, "clip": self.clip.to_dict(), "method": self.method, "params": self.params,
                "target": self.target, "suite": self.suite}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> WorkItem:
        return cls(data["model"], ClipRef(**data["clip"]), data["method"], dict(data["params"]), data["target"],
                   data.get("suite"))  # fmt: skip


def work_items(
    models: list[str],
    clips: list[ClipRef],
    methods: list[str],
    params: dict[str, dict] | None = None,
    target: str = "predicted",
    suite: str | None = None,
) -> Iterator[WorkItem]:
    """Every (model, clip, method), model by model and clip by clip (a worker keeps a model and
    reads a clip once for its methods).  ``params``: method name -> its parameters."""
    params = params or {}
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    stray = sorted(set(params) - set(methods))
    if stray:
        raise ValueError(f"--params names {stray[0]}, which is not among the methods ({', '.join(methods)})")
    models, methods = list(dict.fromkeys(models)), list(dict.fromkeys(methods))  # a name given twice: once
    for model in models:
        for clip in clips:
            for method in methods:
                yield WorkItem(model, clip, method, dict(params.get(method, {})), target, suite)


def clip_groups(items: list[WorkItem]) -> list[list[WorkItem]]:
    """Consecutive items of the same model and clip, together: a worker reads the clip once for
    all of its methods (the unit an engine hands to a worker)."""
    groups: list[list[WorkItem]] = []
    for item in items:
        if groups and (groups[-1][0].model, groups[-1][0].clip) == (item.model, item.clip):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def item_columns(item: WorkItem) -> dict:
    """The ids of an item's row."""
    return {
        "item": item.id,
        "model": item.model,
        "clip": item.clip.id,
        "source": item.clip.source,
        "start": item.clip.start,
        "end": item.clip.end,
        "method": item.method,
        "params": json.dumps(item.params, sort_keys=True),
        "target_asked": item.target,
        "suite": item.suite,
        "error": None,
    }
