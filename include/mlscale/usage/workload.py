"""What a task's result says about its workload: the rows it processed, the features per row, and the model.

Results are read by name, not by type, so any pipeline's result takes part: the rows are the first whole
number among :data:`ROW_KEYS` (top level, then the ``plan`` a training result carries), the feature count
the first among :data:`FEATURE_KEYS` (a number, or the length of a list of names), the model and version the
``model`` and ``version`` (or ``champion_version``) entries. What a result does not say stays ``None``:
the bottleneck model then fits time to what is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: where results report the rows they processed, most specific first
ROW_KEYS = ("rows_in", "rows_read", "rows", "train_rows", "entities")
#: ... and the features per row
FEATURE_KEYS = ("features", "feature_count", "n_features")


def _as_mapping(result: Any) -> Mapping[str, Any]:
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    return result if isinstance(result, Mapping) else {}


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        return None
    return int(value)


def _first(doc: Mapping[str, Any], keys: tuple[str, ...], *, lists: bool = False) -> int | None:
    for key in keys:
        value = doc.get(key)
        if lists and isinstance(value, list | tuple):
            return len(value)
        found = _whole(value)
        if found is not None:
            return found
    return None


def workload_of(result: Any) -> dict[str, Any]:
    """``{"rows", "features", "model", "model_version"}`` of a task's result (each ``None`` when not said)."""
    doc = _as_mapping(result)
    nested = [d for d in (doc, doc.get("plan")) if isinstance(d, Mapping)]
    rows = next((r for d in nested if (r := _first(d, ROW_KEYS)) is not None), None)
    features = next((f for d in nested if (f := _first(d, FEATURE_KEYS, lists=True)) is not None), None)
    model = doc.get("model") if isinstance(doc.get("model"), str) else None
    version = doc.get("version") or doc.get("champion_version")
    return {"rows": rows, "features": features, "model": model,
            "model_version": f"{model}/{version}" if model and isinstance(version, str | int) else None}
