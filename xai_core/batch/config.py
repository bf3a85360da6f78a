"""What every worker of a batch is told (``RunnerConfig``); light, so that the driver imports no
torch: the workers do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunnerConfig:
    """The device ("auto", "cpu", "cuda"), the run store's folder (None: results are kept in the
    table only), the seed of the randomised copies (the sanity suite; None: the evaluation's,
    ``evaluate.suites.FIRST_SEED``, as ``xai evaluate`` seeds them), and the torch threads of each
    worker (None: torch's default)."""

    device: str = "auto"
    runs: str | None = None
    random_seed: int | None = None
    threads: int | None = None
