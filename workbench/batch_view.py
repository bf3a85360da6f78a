"""The Evaluate page's view of a batch's results (``xai batch --out DIR``): its counts, the
per-model and per-method aggregates with their standard errors, one score's spread by method,
and the failed items.  Everything is read from ``DIR``; nothing is computed here."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from xai_core.batch import read_results
from xai_core.batch.results import PARQUET, ROWS
from xai_core.batch.summary import aggregates, mean_se_text, suite_columns

NUMERIC = ("seconds", "peak_share", "probability", "score")


def default_folder() -> str:
    """``$XAI_BATCH`` (a batch folder to open with the page), else empty."""
    return os.environ.get("XAI_BATCH", "")


def load(folder: str) -> pd.DataFrame | None:
    """The batch's table, or None with the reason shown (one line)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        st.error(f"{folder}: no such folder", icon=":material/error:")
        return None
    if not (path / PARQUET).exists() and not (path / ROWS).exists():
        st.error(f"{folder}: no batch results here ({PARQUET} or {ROWS}); run `xai batch --out {folder}` first",
                 icon=":material/error:")  # fmt: skip
        return None
    try:
        table = read_results(path)
    except Exception as exc:  # a Parquet file that does not read: said, the page goes on
        st.error(f"{folder}: the results do not read ({' '.join(str(exc).split())[:200]})", icon=":material/error:")
        return None
    if table.empty or "status" not in table.columns:
        st.info(f"{folder}: the batch has no finished items yet.")
        return None
    return table


def aggregate_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and method: items, failed, accuracy, median seconds and each score as mean ± SE."""
    rows = []
    for row in aggregates(table, ["model", "method"]):
        shown = {"model": row["model"], "method": row["method"], "items": row["items"], "failed": row["failed"]}
        shown["accuracy"] = "–" if not math.isfinite(row["accuracy"]) else f"{row['accuracy']:.1%}"
        shown["median s"] = "–" if not math.isfinite(row["median_seconds"]) else f"{row['median_seconds']:.3f}"
        for column in suite_columns(table):
            shown[column] = mean_se_text(*row[column][:2])
        rows.append(shown)
    return pd.DataFrame(rows).set_index(["model", "method"])


def batch_panel() -> None:
    """The expander: a folder, then its results."""
    folder = st.session_state.get("batch_folder") or default_folder()
    with st.expander("A batch's results (`xai batch`)", expanded=bool(folder)):
        folder = st.text_input(
            "Batch folder", value=default_folder(), key="batch_folder", placeholder="the --out folder of xai batch",
            help="Explain or evaluate a dataset from the command line: `python -m xai_core batch --models M "
            "--methods gradcam,saliency --clips FOLDER|MANIFEST.csv|shapes:0..64 --out DIR`; open DIR here.",
        )  # fmt: skip
        if not folder:
            return
        table = load(folder)
        if table is None:
            return
        ok = int((table["status"] == "ok").sum())
        models, methods = ", ".join(sorted(table["model"].unique())), ", ".join(sorted(table["method"].unique()))
        st.caption(f"{len(table)} items: {ok} ok, {len(table) - ok} failed; models {models}; methods {methods}")
        st.dataframe(aggregate_table(table), width="stretch", key="batch_table")
        choices = [c for c in [*suite_columns(table), *NUMERIC] if c in table.columns and table[c].notna().any()]
        if choices:
            column = st.selectbox("Spread of", choices, key="batch_column")
            shown = table[table["status"] == "ok"]
            figure = px.box(shown, x="method", y=column, color="model", points="all",
                            title=f"{column} per item, by method and model")  # fmt: skip
            st.plotly_chart(figure, key="batch_figure")
        failed = table[table["status"] != "ok"]
        if len(failed):
            st.warning(f"{len(failed)} item(s) failed; their errors:", icon=":material/warning:")
            st.dataframe(failed[["model", "clip", "method", "error"]], width="stretch", key="batch_failed")
