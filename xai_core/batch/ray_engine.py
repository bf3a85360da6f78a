"""The Ray engine (``pip install -e .[ray]``): the items of each clip one Ray task, on a cluster given by its
address or on a local one this engine starts with ``workers`` CPUs.  Ray reuses its worker
processes, and each keeps the models it has loaded (``_RUNNERS``), so a model is loaded once per
worker.  A worker process that dies mid-item is Ray's to retry: the task runs again on another
worker (``MAX_RETRIES``).  What travels: the item (names and paths, a few hundred bytes) out and
its row back; the workers read the clips and the models themselves (a shared folder or the same
paths on every node) and write their runs into the run store's folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict

from .config import RunnerConfig
from .items import WorkItem, clip_groups
from .local import died_row

MAX_RETRIES = 3
_RUNNERS: dict[tuple, object] = {}  # the worker process's ItemRunner for each config


def ray_available() -> str | None:
    """None when Ray imports, else why not (one line)."""
    try:
        import ray  # noqa: F401
    except ImportError as err:
        return f"Ray is not installed ({err}); pip install -e .[ray]"
    return None


def run_on_worker(items: list[dict], config: dict) -> list[dict]:
    """A Ray task: the items of one clip on this worker process's runner (created at its first task)."""
    from .runner import ItemRunner

    key = tuple(sorted(config.items()))
    if key not in _RUNNERS:
        _RUNNERS[key] = ItemRunner(RunnerConfig(**config))
    return [_RUNNERS[key].run(WorkItem.from_dict(item)) for item in items]


class RayEngine:
    """Ray tasks (one a clip: its methods) at most ``2 * CPUs`` in flight; ``address``: a running cluster ("auto", or
    "ray://HOST:10001", or "HOST:6379"), None: a local cluster of ``workers`` CPUs, started here
    and shut down at the end."""

    name = "ray"

    def __init__(self, config: RunnerConfig, workers: int = 1, address: str | None = None) -> None:
        reason = ray_available()
        if reason:
            raise RuntimeError(reason)
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.config, self.workers, self.address = config, workers, address

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
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(run_on_worker)
        config = asdict(self.config)
        cpus = int(ray.cluster_resources().get("CPU", self.workers))
        limit = 2 * max(1, cpus)
        pending = clip_groups(list(items))
        pending.reverse()
        in_flight: dict = {}
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                group = pending.pop()
                in_flight[task.remote([item.to_dict() for item in group], config)] = group
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                group = in_flight.pop(ref)
                try:
                    rows = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died on every retry
                    why = " ".join(str(err).split())[:300]
                    rows = [died_row(item, MAX_RETRIES + 1, why) for item in group]
                yield from rows
