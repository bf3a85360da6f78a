"""Saved runs: the store (an SQLite index and one folder a run) and what identifies a run's
inputs (the model's weights and the clip as content hashes)."""

from .identity import tensor_hash, weights_hash
from .store import KEY_FORMAT, RunNotFound, RunRecord, RunRequest, RunStore, default_root, request

__all__ = [
    "KEY_FORMAT",
    "RunNotFound",
    "RunRecord",
    "RunRequest",
    "RunStore",
    "default_root",
    "request",
    "tensor_hash",
    "weights_hash",
]
