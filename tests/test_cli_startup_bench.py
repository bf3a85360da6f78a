"""benchmarks/cli_startup.py reads ``python -X importtime`` correctly and reports what it measured
(its timings are never asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cli_startup.py"
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:       300 |      14000 | site
import time:     40000 |      40000 |     torch._C
import time:    900000 |    1500000 |   torch
import time:      2000 |    1600000 | xai_core
import time:       500 |        500 |   xai_core.cli
"""


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cli_startup_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_largest_packages_at_any_depth(bench):
    rows, torch_loaded = bench.top_imports(IMPORTTIME, count=2)
    assert rows == [{"module": "xai_core", "ms": 1600.0}, {"module": "torch", "ms": 1500.0}] and torch_loaded
    rows, torch_loaded = bench.top_imports(IMPORTTIME.replace("|   torch\n", "|   numpy\n"))
    assert [r["module"] for r in rows] == ["xai_core", "numpy", "site"] and not torch_loaded


def test_the_table_has_a_row_per_checkout_and_command(bench):
    case = {"median": 0.2, "min": 0.1, "max": 0.3, "exit": 0, "torch_imported": False, "stderr_last_line": ""}
    profile = [{"module": "site", "ms": 14.0}]
    report = {
        "when": "today",
        "machine": "a CPU",
        "runs": 3,
        "load_average": [1.0, 2.0],
        "checkouts": {
            label: {"cases": {name: {**case, "top_imports": profile} for name in bench.CASES}}
            for label in ("after", "before")
        },
    }
    report["checkouts"]["before"]["cases"]["predict, empty file"]["stderr_last_line"] = "error: EMPTY.mp4: empty"
    text = bench.to_markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| after") or line.startswith("| before")]
    assert len(rows) == 2 * len(bench.CASES)
    assert "| after | `--help` | 0.20 s (0.10-0.30) | 0 | no | site 14 ms |" in rows
    assert "median of 3 runs" in text and "`error: EMPTY.mp4: empty`" in text
