"""``summary.md``: a batch's results per model and per method (items, failures, accuracy,
seconds, and each suite score's mean with its standard error over the items)."""

from __future__ import annotations

import math

import numpy as np

SUITE_COLUMNS_SHOWN = 8  # the first scores of a suite in the per-method table (all are in the Parquet file)
FAILED_LINES = 50  # lines of the failed items (a model and an error each)
ERROR_CHARACTERS = 300  # of an error in its line (whole in the Parquet file)
HEADLINE_SCORES = ("pointing", "target_over_union", "target_over_all", "spearman_all", "spearman_logits",
                   "evidence_rank", "top_k_share")  # fmt: skip


def suite_columns(table) -> list[str]:
    """The table's score columns ("SUITE.KEY"), the headline scores first."""
    columns = [c for c in table.columns if "." in c]
    first = [c for key in HEADLINE_SCORES for c in columns if c.split(".", 1)[1] == key]
    return first + [c for c in columns if c not in first]


def mean_se(values) -> tuple[float, float, int]:
    """(mean, standard error, n) of the finite values (the evaluation's ``summarise`` for scalars,
    kept here so that the driver needs no torch)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan, 0
    se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else math.nan
    return float(arr.mean()), se, int(arr.size)


def mean_se_text(mean: float, se: float) -> str:
    """'0.412 ± 0.031' (the mean alone without a standard error; – without a mean)."""
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.3f}" if not math.isfinite(se) else f"{mean:.3f} ± {se:.3f}"


def aggregates(table, by: list[str]) -> list[dict]:
    """One dict per group of ``by``: items, ok, failed, accuracy, seconds (mean, median), and
    each score column's (mean, se, n) over the group's items that succeeded."""
    out = []
    if table.empty:
        return out
    scores = suite_columns(table)
    for key, group in table.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ok = group[group["status"] == "ok"]
        row = dict(zip(by, key, strict=True))
        row |= {"items": len(group), "ok": len(ok), "failed": int((group["status"] != "ok").sum())}
        correct = ok["correct"].dropna() if "correct" in ok else []
        row["accuracy"] = float(np.mean(correct.astype(float))) if len(correct) else math.nan
        seconds = ok["seconds"].dropna() if "seconds" in ok else []
        row["seconds"] = float(np.mean(seconds)) if len(seconds) else math.nan
        row["median_seconds"] = float(np.median(seconds)) if len(seconds) else math.nan
        for column in scores:
            row[column] = mean_se(ok[column]) if column in ok else (math.nan, math.nan, 0)
        out.append(row)
    return out


def summary_markdown(table, spec: dict, counts: dict) -> str:
    """The Markdown of ``summary.md``."""
    lines = [f"# Batch: {', '.join(spec.get('models', []))} × {', '.join(spec.get('methods', []))}", ""]
    lines.append(f"Clips: `{spec.get('clips')}`; target: {spec.get('target')}; suite: {spec.get('suite') or 'none'}; "
                 f"parameters: `{spec.get('params') or {}}`.")  # fmt: skip
    lines.append(f"Items: {counts.get('total', len(table))} ({counts.get('ok', 0)} ok, {counts.get('failed', 0)} "
                 f"failed); engine {counts.get('engine')}, {counts.get('workers')} worker(s).")  # fmt: skip
    lines.append("")
    lines += [
        "## Per model",
        "",
        "| model | items | ok | failed | accuracy | mean s / item |",
        "|---|---|---|---|---|---|",
    ]
    for row in aggregates(table, ["model"]):
        acc = "–" if not math.isfinite(row["accuracy"]) else f"{row['accuracy']:.1%}"
        secs = "–" if not math.isfinite(row["seconds"]) else f"{row['seconds']:.3f}"
        lines.append(f"| {row['model']} | {row['items']} | {row['ok']} | {row['failed']} | {acc} | {secs} |")
    scores = suite_columns(table)[:SUITE_COLUMNS_SHOWN]
    lines += ["", "## Per model and method", "",
              "Scores: mean ± standard error over the items that succeeded.", ""]  # fmt: skip
    header = ["model", "method", "items", "failed", "median s", *scores]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in aggregates(table, ["model", "method"]):
        med = "–" if not math.isfinite(row["median_seconds"]) else f"{row['median_seconds']:.3f}"
        cells = [row["model"], row["method"], str(row["items"]), str(row["failed"]), med]
        cells += [mean_se_text(*row[c][:2]) for c in scores]
        lines.append("| " + " | ".join(cells) + " |")
    failed = table[table["status"] != "ok"] if not table.empty else table
    if len(failed):
        lines += ["", "## Failed items", "", "Items of a model that failed with the same error are one line.", "",
                  "| model | items | first (clip / method) | error |", "|---|---|---|---|"]  # fmt: skip
        failed = failed.assign(error=failed["error"].fillna("").astype(str))
        groups = list(failed.groupby(["model", "error"], sort=False))
        for (model, error), group in groups[:FAILED_LINES]:
            first = group.iloc[0]
            text = error.replace("|", "\\|")[:ERROR_CHARACTERS]
            lines.append(f"| {model} | {len(group)} | {first['clip']} / {first['method']} | {text} |")
        if len(groups) > FAILED_LINES:
            lines.append(f"| … | {sum(len(g) for _, g in groups[FAILED_LINES:])} more in results.parquet | | |")
    return "\n".join(lines) + "\n"
