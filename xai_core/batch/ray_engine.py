"""The Ray engine (``pip install -e .[ray]``): the items of each clip one Ray task, on a cluster
given by its address or on a local one this engine starts with ``workers`` CPUs.  Ray reuses its
worker processes, and each keeps the models it has loaded (``_RUNNERS``), so a model is loaded
once per worker.  A worker process that dies mid-task is Ray's to retry: the task runs again on
another worker (``MAX_RETRIES``); a clip's task that kills its worker every time is split into one
task an item, so that only the item that does is recorded as failed.  Each model is first loaded
by one task alone (``load_on_worker``): a model whose loading kills its worker on every retry
costs those deaths, and its items are recorded as not run (``faults``).  What travels: the items
(names and paths, a few hundred bytes) out and their rows back; the workers read the clips and the
models themselves (a shared folder or the same paths on every node) and write their runs into the
run store's folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict

from .config import RunnerConfig
from .faults import LethalModels, died_row
from .items import WorkItem, clip_groups, item_columns

MAX_RETRIES = 3
_RUNNERS: dict[tuple, object] = {}  # the worker process's ItemRunner for each config


def ray_available() -> str | None:
    """None when Ray imports, else why not (one line)."""
    try:
        import ray  # noqa: F401
    except ImportError as err:
        return f"Ray is not installed ({err}); pip install -e .[ray]"
    return None


def _runner(config: dict):
    """This worker process's runner for ``config`` (created at its first task)."""
    from .runner import ItemRunner

    key = tuple(sorted(config.items()))
    if key not in _RUNNERS:
        _RUNNERS[key] = ItemRunner(RunnerConfig(**config))
    return _RUNNERS[key]


def run_on_worker(items: list[dict], config: dict) -> list[dict]:
    """A Ray task: the items of one clip on this worker process's runner."""
    runner = _runner(config)
    return [runner.run(WorkItem.from_dict(item)) for item in items]


def load_on_worker(model: str, config: dict) -> bool:
    """A Ray task: ``model`` loaded on this worker process's runner (kept for its items).  True when
    the process survived it; a model that raises says so in each of its rows."""
    with contextlib.suppress(Exception):
        _runner(config).model(model)
    return True


class RayEngine:
    """Ray tasks (one a clip: its methods) at most ``2 * CPUs`` in flight; ``address``: a running cluster ("auto", or
    "ray://HOST:10001", or "HOST:6379"), None: a local cluster of ``workers`` CPUs, started here
    and shut down at the end."""

    name = "ray"

    def __init__(
        self, config: RunnerConfig, workers: int = 1, address: str | None = None, task=None, probe=None
    ) -> None:
        reason = ray_available()
        if reason:
            raise RuntimeError(reason)
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.config, self.workers, self.address = config, workers, address
        self.task = task or run_on_worker  # (item dicts, config dict) -> rows, run as a Ray task
        self.probe = probe or load_on_worker  # (model, config dict) -> True, run as a Ray task

    def run(self, items: Iterable[WorkItem]) -> Iterator[dict]:
        import ray

        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, logging_level="error", log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, logging_level="error",
                         log_to_driver=False, configure_logging=False)  # fmt: skip
        try:
            yield from self._run(ray, items)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, items: Iterable[WorkItem]) -> Iterator[dict]:
        cpus = int(ray.cluster_resources().get("CPU", self.workers))
        share = gpu_share(self.config.device, ray.nodes())
        task = ray.remote(num_cpus=1, num_gpus=share, max_retries=MAX_RETRIES, retry_exceptions=False)(self.task)
        probe = ray.remote(num_cpus=1, num_gpus=share, max_retries=MAX_RETRIES, retry_exceptions=False)(self.probe)
        config = asdict(self.config)
        limit = 2 * max(1, cpus)
        pending = clip_groups(list(items))
        pending.reverse()  # a stack: the next group last
        in_flight: dict = {}  # ref -> its group, or the model name a probe loads
        waiting: dict[str, list] = {}  # model -> its groups, held until a worker has loaded it
        lethal = LethalModels()
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                group = pending.pop()
                model = group[0].model
                if lethal.given_up(model):
                    yield from (lethal.not_run_row(item) for item in group)
                elif model in lethal.loaded:
                    in_flight[task.remote([item.to_dict() for item in group], config)] = group
                else:  # its loading tried first, alone: a model whose loading kills workers costs one task
                    if model not in waiting:
                        in_flight[probe.remote(model, config)] = model
                    waiting.setdefault(model, []).append(group)
            if not in_flight:
                continue
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                what = in_flight.pop(ref)
                if isinstance(what, str):
                    yield from self._loaded(ray, ref, what, waiting.pop(what), pending, lethal)
                    continue
                group = what
                try:
                    rows = ray.get(ref)
                except ray.exceptions.RayTaskError as err:  # raised outside an item's own handler
                    rows = [failed_row(item, err) for item in group]
                except ray.exceptions.RayError as err:  # its worker died on every retry
                    if len(group) > 1:  # each item again on its own: only the one that kills its worker fails
                        pending.extend([item] for item in reversed(group))
                        continue
                    rows = [died_row(group[0], MAX_RETRIES + 1, " ".join(str(err).split())[:300])]
                yield from rows

    @staticmethod
    def _loaded(ray, ref, model: str, groups: list, pending: list, lethal: LethalModels) -> Iterator[dict]:
        """A probe done: ``model``'s held ``groups`` back on ``pending`` (in their order), or, when
        loading it killed its worker on every retry, their items recorded as not run."""
        try:
            ray.get(ref)
        except ray.exceptions.RayTaskError:  # raised (not died): its items will say why
            pass
        except ray.exceptions.RayError as err:
            lethal.load_death(model, " ".join(str(err).split())[:200], deaths=MAX_RETRIES + 1)
            for group in groups:
                yield from (lethal.not_run_row(item) for item in group)
            return
        lethal.mark_loaded(model)
        pending.extend(reversed(groups))


def gpu_share(device: str, nodes: list[dict]) -> float:
    """The share of a GPU each task asks for (Ray hides the GPUs from a task that asks for none):
    with --device cuda, one task per CPU of the GPU nodes shares their GPUs (the smallest share
    over them); with auto, the same only when every node has a GPU (else the tasks run on the CPUs
    of every node); cpu: none.  ValueError for cuda on a cluster without a GPU."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    with_gpu = [r for r in alive if r.get("GPU", 0) > 0 and r.get("CPU", 0) > 0]
    if device == "cuda" and not with_gpu:
        raise ValueError("--device cuda: no node of the Ray cluster has a GPU and a CPU for a task")
    if device == "cpu" or not with_gpu or (device == "auto" and len(with_gpu) < len(alive)):
        return 0.0
    return min(1.0, min(r["GPU"] / r["CPU"] for r in with_gpu))


def failed_row(item: WorkItem, err: BaseException) -> dict:
    """The row of an item whose task raised outside the item's own error handling."""
    cause = getattr(err, "cause", None) or err
    text = " ".join(str(cause).split())[:1000] or type(cause).__name__
    return {**item_columns(item), "status": "failed", "error": f"{type(cause).__name__}: {text}"}
