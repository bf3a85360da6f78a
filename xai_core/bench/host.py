"""The machine a figure was measured on, read without torch (the start-up benchmark must not
import it): the CPU's name, and the CPU with its cores and Python's version in a line."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe() -> str:
    """E.g. "AMD EPYC, 2 cores, Python 3.11.7"."""
    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"
