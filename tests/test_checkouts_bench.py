"""benchmarks/checkouts.py compares two checkouts' maps as it says and reports what it measured
(its timings are never asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "checkouts.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("checkouts_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_difference_is_the_largest_gap_over_the_baselines_range(bench):
    base = {"0_spatial": np.array([[0.0, 2.0], [4.0, 8.0]]), "0_temporal": np.array([1.0, 3.0])}
    same = {k: v.copy() for k, v in base.items()}
    assert bench.difference(same, base, 0) == 0
    moved = {"0_spatial": base["0_spatial"] + np.array([[0.0, 0.4], [0.0, 0.0]]), "0_temporal": base["0_temporal"]}
    assert bench.difference(moved, base, 0) == pytest.approx(0.4 / 8.0)
    curve = {"0_spatial": base["0_spatial"], "0_temporal": np.array([1.0, 4.0])}
    assert bench.difference(curve, base, 0) == pytest.approx(1.0 / 2.0)  # the curve's own range
    assert bench.difference({"0_temporal": np.zeros(3)}, base, 0) == float("inf")  # another shape
    assert bench.difference({}, base, 0) is None


def test_the_table_has_a_row_per_case_with_both_medians(bench):
    rows = [
        {"model": "m", "method": "gradcam", "median": {"new": 0.5, "old": 0.6}, "ratio": 1.2, "difference": 0.0},
        {"model": "m", "method": "tsr", "median": {"new": 20.0, "old": 25.0}, "ratio": 1.25, "difference": 2e-7},
    ]
    report = {"labels": ["new", "old"], "rows": rows, "runs": 3, "when": "now", "machine": "here",
              "load_average": [0.1, 0.2]}  # fmt: skip
    text = bench.to_markdown(report)
    assert "| m | `gradcam` | 0.50 s | 0.60 s | 1.20 | 0 |" in text
    assert "| m | `tsr` | 20.00 s | 25.00 s | 1.25 | 2.0e-07 |" in text
    assert "median of 3 processes per checkout" in text
