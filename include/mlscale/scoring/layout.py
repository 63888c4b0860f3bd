"""Where predictions live in the lake, their columns, and the identity of what produced them.

::

    predictions/<model>/dt=D/_manifest.json                 the commit point of the day (both roles)
    predictions/<model>/dt=D/role=champion/part-….parquet   every event of D scored by the champion
    predictions/<model>/dt=D/role=shadow/part-….parquet     every event of D scored by the challenger
    predictions/<model>_features/dt=D/part-….parquet        the model inputs of the sampled events

Prediction columns (one schema for both roles): the event key and time (named as in the model
specification), ``model``, ``model_version``, ``score`` (probability, float64), ``threshold``,
``decision`` (champion rows: ``score >= threshold``; always null on shadow rows), ``shadow_decision``
(shadow rows: what the challenger would have decided; always null on champion rows, never acted on),
``input_hash`` (64-bit hash of the input vector, as int64: equal inputs, equal hash) and ``sampled``
(whether the event's inputs are in the features partition). ``role`` is the Hive sub-partition and reads
as a column. A reader of decisions reads ``role=champion`` only (:func:`champion_filter`); a reader that
forgets still finds no decision on a shadow row.

The feature log is a dataset of its own (not a sub-partition) because its columns are the model's inputs,
which change with the model, while the predictions schema stays fixed. It holds, per sampled event, the
event key and time, the champion's version and score, ``input_hash``, and every input column of the
champion and challenger. Both partitions go through the lake's commit protocol; the predictions manifest
is written last and names the feature partition in its ``extra``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pds

from mlscale.lake import Manifest, PartitionRef, parse_day
from mlscale.layout import PREDICTIONS_ZONE, feature_log_dataset
from mlscale.training.spec import ModelSpec

ROLE_KEY = "role"
#: Bump when the layout or the way scores are computed changes: every day is then recomputed on rerun.
LAYOUT_VERSION = 1


def predictions_ref(model: str, day: str | dt.date) -> PartitionRef:
    return PartitionRef.of(PREDICTIONS_ZONE, model, parse_day(day))


def features_ref(model: str, day: str | dt.date) -> PartitionRef:
    return PartitionRef.of(PREDICTIONS_ZONE, feature_log_dataset(model), parse_day(day))


def role_subdir(role: str) -> str:
    return f"{ROLE_KEY}={role}"


def champion_filter() -> pds.Expression:
    """The filter a reader of decisions applies: champion rows only."""
    return pds.field(ROLE_KEY) == "champion"


def predictions_schema(spec: ModelSpec, key_type: pa.DataType, time_type: pa.DataType) -> pa.Schema:
    return pa.schema([
        (spec.event_key, key_type), (spec.event_time, time_type), ("model", pa.string()),
        ("model_version", pa.string()), ("score", pa.float64()), ("threshold", pa.float64()),
        ("decision", pa.bool_()), ("shadow_decision", pa.bool_()), ("input_hash", pa.int64()),
        ("sampled", pa.bool_()),
    ])


def predictions_table(schema: pa.Schema, keys: pa.Array, times: pa.Array, *, model: str, version: str,
                      scores: np.ndarray, threshold: float, shadow: bool, hashes: np.ndarray,
                      sampled: np.ndarray) -> pa.Table:
    """One role's rows (see the module docstring for the columns)."""
    n = len(scores)
    flags = pa.array(scores >= threshold, pa.bool_())
    nulls = pa.nulls(n, pa.bool_())
    return pa.Table.from_arrays([
        keys, times, pa.array(np.full(n, model, dtype=object), pa.string()),
        pa.array(np.full(n, version, dtype=object), pa.string()), pa.array(scores, pa.float64()),
        pa.array(np.full(n, threshold, dtype=np.float64)), nulls if shadow else flags, flags if shadow else nulls,
        pa.array(hashes.view(np.int64)), pa.array(sampled, pa.bool_()),
    ], schema=schema)


def manifest_checksum(manifest: Manifest) -> str:
    """The content identity of a committed partition: its files' checksums and row counts, and its schema.

    A rewrite with identical content (another attempt, another run id) keeps the checksum.
    """
    doc = {"files": sorted((f.sha256, f.rows) for f in manifest.files), "schema": manifest.schema_fingerprint}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def inputs_signature(*, events: str, features: Mapping[str, str], spec_version: str, models: Mapping[str, str],
                     thresholds: Mapping[str, float], sample_rate: float) -> str:
    """What a day's predictions depend on: same signature, same predictions (see ``score_batch``)."""
    doc: dict[str, Any] = {"layout": LAYOUT_VERSION, "events": events, "features": dict(sorted(features.items())),
                           "spec": spec_version, "models": dict(sorted(models.items())),
                           "thresholds": {k: repr(float(v)) for k, v in sorted(thresholds.items())},
                           "sample_rate": repr(float(sample_rate))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
