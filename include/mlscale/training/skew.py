"""Training/serving skew: the training set's feature values against what scoring saw for the same events.

Training reads the as-of feature tables as they are when it runs. A late event rebuilds the as-of tables of
the days it belongs to (see :mod:`mlscale.features`), so a training row can carry a value that scoring, which
ran before the late event arrived, never saw. Scoring logs the inputs of a sample of events
(``predictions/<model>_features/dt=D/``); this module compares those logged inputs with the training set's
values of the same events and says how many rows, and which columns, differ. The training report shows it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np

from mlscale.lake import Lake
from mlscale.layout import PREDICTIONS_ZONE, feature_log_dataset

logger = logging.getLogger(__name__)

MODE = ("latest as-of tables: values rebuilt by late events after an event was scored are what training reads; "
        "the skew below is measured against the inputs scoring logged")


def serving_skew(lake: Lake, spec: Any, training: Any, columns: list[str], first_day: dt.date,
                 last_day: dt.date) -> dict[str, Any]:
    """Compare the training set ``training`` (a partition ref; event key plus ``columns``) with the scoring feature
    logs of the days ``first_day`` .. ``last_day`` (and the days late events were scored on); reads only the
    training rows scoring logged."""
    import pandas as pd
    import pyarrow.dataset as pds

    first, last = first_day.isoformat(), (last_day + dt.timedelta(days=7)).isoformat()
    logs = [p for p in lake.partitions(PREDICTIONS_ZONE, feature_log_dataset(spec.name)) if first <= p.dt <= last]
    if not logs:
        return {"mode": MODE, "compared_rows": 0, "note": "no scoring feature log for these days: nothing to compare"}
    parts = []
    for ref in logs:
        table = lake.read_table(ref)
        shared = [c for c in columns if c in table.column_names]
        parts.append(table.select([spec.event_key, *shared]).to_pandas())
    served = pd.concat(parts, ignore_index=True).drop_duplicates(spec.event_key, keep="last")
    shared = [c for c in columns if c in served.columns]
    frame = lake.read_table(training, columns=[spec.event_key, *shared],
                            filter=pds.field(spec.event_key).isin(served[spec.event_key].tolist())).to_pandas()
    joined = frame.merge(served, on=spec.event_key, suffixes=("", "__served"))
    if joined.empty:
        return {"mode": MODE, "compared_rows": 0, "note": "no training row was among the events scoring logged"}
    differs = {c: ~np.isclose(joined[c].to_numpy(dtype=float), joined[f"{c}__served"].to_numpy(dtype=float),
                              rtol=1e-6, atol=1e-9, equal_nan=True) for c in shared}
    any_row = np.logical_or.reduce(list(differs.values())) if differs else np.zeros(len(joined), dtype=bool)
    by_column = {c: round(float(d.mean()), 6) for c, d in differs.items() if d.any()}
    worst = dict(sorted(by_column.items(), key=lambda kv: -kv[1])[:10])
    share = round(float(any_row.mean()), 6)
    logger.info("training/serving skew: %d of %d training rows scoring logged differ in at least one input (%.2f %%); "
                "most: %s", int(any_row.sum()), len(joined), 100 * share,
                ", ".join(f"{c} {v:.2%}" for c, v in list(worst.items())[:3]) or "none")
    return {"mode": MODE, "compared_rows": len(joined), "columns_compared": len(shared),
            "rows_differing": int(any_row.sum()), "share_differing": share, "columns_differing": worst}
