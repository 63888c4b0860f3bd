"""Evidently's data drift report (``DataDriftPreset``) on a bounded random sample of each side.

The sketch-based :func:`~mlscale.monitoring.drift.compare_profiles` decides on the full data; this report
is the human-readable companion (HTML with per-column distributions) and a cross-check. Sampling keeps
its cost and memory bounded whatever the day's size. Evidently is imported inside the function (its
import takes seconds).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

logger = logging.getLogger(__name__)

VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"


def _sample(data: pd.DataFrame | pa.Table, columns: Sequence[str] | None, rows: int | None,
            seed: int) -> pd.DataFrame:
    if isinstance(data, pa.Table):
        if rows is not None and data.num_rows > rows:
            import numpy as np

            take = np.sort(np.random.default_rng(seed).choice(data.num_rows, rows, replace=False))
            data = data.take(pa.array(take))
        frame = data.to_pandas()
    else:
        frame = data if rows is None or len(data) <= rows else data.sample(n=rows, random_state=seed)
    return frame[list(columns)] if columns is not None else frame


def evidently_drift_report(reference_df: pd.DataFrame | pa.Table, current_df: pd.DataFrame | pa.Table,
                           html_path: str | os.PathLike[str] | None = None, *, sample_rows: int | None = 50_000,
                           seed: int = 0, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``Report([DataDriftPreset()])`` on at most ``sample_rows`` random rows of each side.

    Parameters
    ----------
    html_path
        Where to write the HTML report (a local path; copy it into the lake afterwards), or None.
    sample_rows
        Rows drawn without replacement from each side (seeded by ``seed``, so reruns draw the same rows);
        None runs on all rows.
    columns
        Columns to compare (default: every column of ``reference_df``).

    Returns
    -------
    dict
        ``{"drifted_columns": [...sorted], "share_drifted": float, "n_columns": int,
        "columns": {name: {"method", "threshold", "score", "drifted"}}, "reference_rows": int,
        "current_rows": int, "html_path": str | None}``, JSON-serialisable. A column is drifted when
        Evidently's per-column drift test fails (its default method per column type and size).
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = _sample(reference_df, columns, sample_rows, seed)
    cur = _sample(current_df, columns if columns is not None else list(ref.columns), sample_rows, seed + 1)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(reference_data=ref, current_data=cur)
    report = snapshot.dict()
    per_column: dict[str, dict[str, Any]] = {}
    share = 0.0
    for metric in report["metrics"]:
        config = metric["config"]
        if config["type"] == VALUE_DRIFT:
            per_column[config["column"]] = {"method": str(config.get("method")),
                                            "threshold": float(config.get("threshold")),
                                            "score": float(metric["value"]), "drifted": False}
        elif config["type"] == DRIFTED_COUNT:
            share = float(metric["value"]["share"])
    for test in report["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type") == VALUE_DRIFT and params.get("column") in per_column:
            per_column[params["column"]]["drifted"] = test["status"] == "FAIL"
    if html_path is not None:
        snapshot.save_html(str(html_path))
    drifted = sorted(name for name, c in per_column.items() if c["drifted"])
    logger.info("evidently: %d/%d columns drifted on %d/%d sampled rows", len(drifted), len(per_column),
                len(ref), len(cur))
    return {"drifted_columns": drifted, "share_drifted": share, "n_columns": len(per_column),
            "columns": per_column, "reference_rows": len(ref), "current_rows": len(cur),
            "html_path": None if html_path is None else str(html_path)}
