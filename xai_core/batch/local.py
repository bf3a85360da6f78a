"""The local engine: worker processes on this machine, each loading a model once and running
the items of one clip at a time (``clip_groups``: the clip read once for its methods), sending
each row back as it is done.  A worker that dies in the middle (killed, out of memory, a crash in
native code) is replaced and the items it had not finished are given to the next free worker,
up to ``MAX_ATTEMPTS`` times each; their rows then record the failure.  A worker says when it has
loaded a model, so that a death while loading is charged to the model: after ``MAX_ATTEMPTS`` its
items are recorded as not run (``faults``).  No extra dependency:
``multiprocessing``, forking the workers from a server process that imported torch and the
library once (``forkserver``): a worker starts in a fraction of a second, with the driver's
environment, and no CUDA state or thread pool is inherited from the driver."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from .config import RunnerConfig
from .faults import MAX_ATTEMPTS, LethalModels, died_row
from .items import WorkItem, clip_groups

READY = "ready"
LOADED = "loaded"  # (LOADED, model): the worker survived loading the model (its items come next)
START_SECONDS = 300.0
# what the fork server imports once for every worker (torch, the library), and, last, what makes it
# end without a slow clean-up (server_exit)
PRELOAD = ["xai_core.batch.runner", "xai_core.batch.server_exit"]


def start_worker_server() -> None:
    """Start the fork server now (it imports ``PRELOAD`` while the driver lists the clips); the
    engine's first worker connects to it once it is ready."""
    from multiprocessing import forkserver

    mp.get_context("forkserver").set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()


class WorkerStartError(RuntimeError):
    """A worker process died before it could take an item."""


def _worker(conn: Connection, config: RunnerConfig, environ: dict[str, str]) -> None:
    """A worker process: items in, rows out, until told to stop (None); before the first item of
    each model, (LOADED, model) once it has loaded it.  ``environ``: the driver's environment as it
    is now (the fork server's may be older)."""
    from .runner import ItemRunner  # torch and the library: imported once by the fork server (preload)

    os.environ.clear()
    os.environ.update(environ)
    runner = ItemRunner(config)
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        for data in message:
            item = WorkItem.from_dict(data)
            if item.model not in runner.models:
                with contextlib.suppress(Exception):  # a model that raises says so in each of its rows
                    runner.model(item.model)
                conn.send((LOADED, item.model))
            conn.send(runner.run(item))


@dataclass
class _Slot:
    process: mp.process.BaseProcess
    conn: Connection
    items: list[WorkItem] = field(default_factory=list)  # handed to it and not finished, in order


class LocalEngine:
    """``workers`` processes; ``on_dispatch(item, pid)`` is called as an item is handed to a worker."""

    name = "local"

    def __init__(
        self,
        config: RunnerConfig,
        workers: int = 1,
        on_dispatch: Callable[[WorkItem, int], None] | None = None,
        target: Callable | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.config, self.workers, self.on_dispatch = config, workers, on_dispatch
        self.target = target or _worker  # a worker's main: (conn, config, environ), speaking _worker's protocol
        self.context = mp.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.restarts = 0

    def _start(self) -> _Slot:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=self.target, args=(theirs, self.config, dict(os.environ)), daemon=True)
        process.start()
        theirs.close()
        return _Slot(process, ours)

    @staticmethod
    def _ready(slot: _Slot) -> _Slot:
        """``slot`` once its worker said it is ready; WorkerStartError when it died first."""
        if slot.conn.poll(START_SECONDS):
            try:
                if slot.conn.recv() == READY:
                    return slot
            except (EOFError, OSError):
                pass
        slot.process.join(timeout=5)
        raise WorkerStartError(
            f"a worker process could not start (exit code {slot.process.exitcode}; its error is printed above). "
            "Worker processes re-import the script that started them: run batches from the command line, a "
            "script file or a notebook, not from standard input"
        )

    def run(self, items: Iterable[WorkItem]) -> Iterator[dict]:
        """Rows as items finish (in the order they finish).  A worker's death is charged to the
        item it was running (the first it had not finished); the items after it go back as they were.
        A model no worker has loaded is loaded by one worker alone (the others wait for its word, or
        take it up if it dies), and a death before that word is charged to the model instead: its
        items are recorded as not run once its loading killed MAX_ATTEMPTS workers (``LethalModels``)."""
        pending = deque(clip_groups(list(items)))
        deaths: dict[str, int] = {}
        lethal = LethalModels()
        slots = [self._start() for _ in range(min(self.workers, max(1, len(pending))))]
        try:
            slots = [self._ready(slot) for slot in slots]
            while pending or any(s.items for s in slots):
                for i, slot in enumerate(slots):
                    while pending and lethal.given_up(pending[0][0].model):
                        yield from (lethal.not_run_row(item, deaths.get(item.id, 0)) for item in pending.popleft())
                    if not slot.items and pending and not self._loading(pending[0][0].model, slots, lethal):
                        if not slot.process.is_alive():  # died idle (killed between clips): nothing to charge
                            slots[i] = slot = self._replace(slot)
                        if not self._dispatch(slot, pending[0]):  # died just now: replaced, given them next round
                            slots[i] = self._replace(slot)
                            continue
                        pending.popleft()
                busy = [s for s in slots if s.items]
                if busy:  # none: nothing handed out this round (given-up models, a worker replaced)
                    wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=5.0)
                for i, slot in enumerate(slots):
                    alive = slot.process.is_alive()  # before reading: a dead worker's pipe holds all it sent
                    for row in self._rows(slot, lethal):
                        row["attempts"] = deaths.get(row["item"], 0) + 1
                        yield row
                    if slot.items and not alive:
                        running, rest, how = slot.items[0], slot.items[1:], f"exit code {slot.process.exitcode}"
                        slots[i] = self._replace(slot)
                        if running.model not in lethal.loaded:  # died loading it, the first to: the model's
                            lethal.load_death(running.model, how)
                            again = [running, *rest]
                        else:
                            deaths[running.id] = deaths.get(running.id, 0) + 1
                            if deaths[running.id] >= MAX_ATTEMPTS:
                                yield died_row(running, deaths[running.id], how)
                                again = rest
                            else:
                                again = [running, *rest]
                        if again:
                            pending.appendleft(again)  # the next free worker takes them
        finally:
            for slot in slots:
                self._stop(slot)

    def _replace(self, dead: _Slot) -> _Slot:
        """A new worker in a dead one's place (counted in ``restarts``)."""
        dead.conn.close()
        self.restarts += 1
        return self._ready(self._start())

    def _dispatch(self, slot: _Slot, group: list[WorkItem]) -> bool:
        """Hand ``group`` to ``slot``'s worker; False (nothing handed) when it has died."""
        try:
            slot.conn.send([item.to_dict() for item in group])
        except (BrokenPipeError, OSError):
            return False
        slot.items = list(group)
        if self.on_dispatch is not None:
            self.on_dispatch(group[0], slot.process.pid)
        return True

    @staticmethod
    def _loading(model: str, slots: list[_Slot], lethal: LethalModels) -> bool:
        """Whether a worker is loading ``model`` for the first time (none has said it loaded it)."""
        return model not in lethal.loaded and any(s.items and s.items[0].model == model for s in slots)

    @staticmethod
    def _rows(slot: _Slot, lethal: LethalModels) -> list[dict]:
        """The rows the worker has sent (each its next unfinished item's), taken off its list; the
        models it said it loaded, marked in ``lethal``."""
        rows = []
        try:
            while slot.items and slot.conn.poll():
                row = slot.conn.recv()
                if isinstance(row, tuple) and row[0] == LOADED:
                    lethal.mark_loaded(row[1])
                    continue
                if row["item"] != slot.items[0].id:
                    raise RuntimeError(f"a worker answered item {row['item']} for {slot.items[0].id}")
                slot.items.pop(0)
                rows.append(row)
        except (EOFError, OSError):
            pass
        return rows

    @staticmethod
    def _stop(slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        slot.process.join(timeout=10)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()
