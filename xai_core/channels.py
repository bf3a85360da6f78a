"""Per-channel numbers (a model's normalisation mean and std, R, G, B) as users state them: text
from the command line or the app ("0.45, 0.45, 0.45", "0.45 0.45 0.45", "(0.45, ...)"), one
number for all three, or a sequence."""

from __future__ import annotations

import re
from collections.abc import Sequence


def parse_channels(
    value: str | float | Sequence[float] | None,
    what: str,
    *,
    positive: bool = False,
    error: type[Exception] = ValueError,
) -> tuple[float, float, float] | None:
    """``value`` -> (r, g, b); None or blank text -> None.  One number stands for all three;
    ``positive`` refuses values <= 0 (a std).  Anything else raises ``error`` with one line that
    names ``what`` (e.g. "--mean", "std")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        parts: Sequence = [p for p in re.split(r"[,\s]+", value.strip().strip("()[]")) if p]
    elif isinstance(value, (list, tuple)):
        parts = value
    else:
        parts = [value]
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) == 1:
        numbers *= 3
    if len(numbers) != 3:
        raise error(f"{what} takes three numbers (one per RGB channel, e.g. 0.45, 0.45, 0.45), got {value!r}")
    if positive and min(numbers) <= 0:
        raise error(f"{what} must be positive, got {value!r}")
    return numbers[0], numbers[1], numbers[2]
