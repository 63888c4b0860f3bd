"""Batch scoring of one day, as the ``score_batch`` DAG runs it: champion for decisions, challenger in shadow.

:func:`score_batch` guarantees, for day D:

* every event of ``raw/<events>/dt=D`` gets exactly one champion row (its decision) and, when a challenger
  other than the champion is registered, one shadow row, in ``predictions/<model>/dt=D`` (layout and columns:
  :mod:`mlscale.scoring.layout`). Nothing is dropped: the run log and the result count rows read, distinct
  inputs, rows written and rows sampled;
* events with identical model inputs are scored once (:mod:`mlscale.scoring.dedupe`) and share the score;
* each model is loaded once per Dask worker per run (:mod:`mlscale.scoring.workers`), whatever the number of
  partitions; the result reports the loads;
* the inputs of a deterministic ``sample_rate`` share of events (:mod:`mlscale.scoring.sampling`) are logged
  in ``predictions/<model>_features/dt=D``;
* idempotence per partition: the predictions manifest records a signature of everything the day depends on
  (the raw events partition's content checksum, the checksums of the as-of feature tables read, the model
  specification's version, the model versions, the thresholds and the sample rate). A rerun with the same
  signature reads nothing else and returns the recorded result (``status="unchanged"``); any change
  recomputes the day and replaces both partitions exactly through the lake's commit protocol.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.lake import Lake, PartitionNotFound, PartitionRef, file_name_of, parse_day
from mlscale.scoring.engine import score_inputs
from mlscale.scoring.layout import (
    features_ref,
    inputs_signature,
    manifest_checksum,
    predictions_ref,
    predictions_schema,
    predictions_table,
    role_subdir,
)
from mlscale.scoring.models import ScoringModel, resolve_models
from mlscale.scoring.sampling import check_rate, sample_mask
from mlscale.scoring.workers import ModelRef
from mlscale.tracing import annotate, span, traced
from mlscale.training import registry
from mlscale.training.inputs import feature_sets_of, model_inputs
from mlscale.training.model import model_prefix
from mlscale.training.spec import ModelSpec, load_model_spec

logger = logging.getLogger(__name__)

DEFAULT_ROWS_PER_PARTITION = 100_000


class ModelInputsMismatch(RuntimeError):
    """A model needs input columns the current feature definitions do not produce."""


@dataclass(frozen=True)
class ScoringResult:
    """What a scoring run of one day wrote (or found unchanged); small and JSON-serialisable, for XCom."""

    model: str
    dt: str
    status: str                       # "scored" or "unchanged" (the recorded result of an identical run)
    predictions: str                  # URI of predictions/<model>/dt=D
    features: str                     # URI of predictions/<model>_features/dt=D
    champion_version: str
    challenger_version: str | None
    threshold: float
    shadow_threshold: float | None
    rows_read: int
    distinct_inputs: int
    repeated_inputs: int              # rows scored with an identical earlier row
    scored: int                       # input vectors scored, per model
    written: int                      # champion rows
    shadow_written: int
    flagged: int                      # champion decisions (score >= threshold)
    shadow_flagged: int               # what the challenger would have flagged
    sampled: int
    sample_rate: float
    partitions: int
    workers: int
    model_loads: dict[str, int]       # loads per role during the computing run (= workers when all went well)
    signature: str
    run_id: str                       # the run that computed the partition
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ScoringResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})

    def asset_extra(self) -> dict[str, Any]:
        return {"model": self.model, "dt": self.dt, "status": self.status, "champion_version": self.champion_version,
                "challenger_version": self.challenger_version, "rows": self.written, "flagged": self.flagged,
                "signature": self.signature}


@traced("score", keywords=("model", "dt", "run_id", "gpu"))
def score_batch(*, client: Any, lake: Lake, dt: str, run_id: str, model: str,
                sample_rate: float = 0.01, tracking_uri: str = "", feast_root: str = "",
                threshold: float | None = None, rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION,
                force: bool = False, gpu: bool = False) -> ScoringResult:
    """Score day ``dt`` with the champion (and the challenger in shadow) on the Dask ``client``.

    See the module docstring for what is guaranteed. ``threshold`` overrides both models' holdout
    ``threshold_at_budget``; ``rows_per_partition`` sizes the Dask partitions (at least one per worker);
    ``force`` recomputes even when the recorded signature matches; ``gpu`` predicts on the workers' GPUs (the
    client must be a GPU cluster: ``dask_gpu_default``).
    """
    started = time.perf_counter()
    day = parse_day(dt).isoformat()
    rate = check_rate(sample_rate)
    spec = load_model_spec(model)
    config = registry.RegistryConfig.for_lake(lake, tracking_uri)
    champion, challenger = resolve_models(registry.client_for(config), lake, spec.name, threshold=threshold,
                                          registry_uri=config.tracking_uri)
    models = [m for m in (champion, challenger) if m is not None]
    events_ref = PartitionRef.of("raw", spec.events_dataset, day)
    events_manifest = lake.manifest(events_ref)
    if events_manifest is None:
        raise PartitionNotFound(f"{lake.uri(events_ref.key)} has no committed manifest: run ingest_"
                                f"{spec.events_dataset} for {day} first, then re-run score_batch for {day}")
    feature_parts = feature_partitions(lake, spec, day)
    signature = inputs_signature(
        events=manifest_checksum(events_manifest), features={r.key: c for r, c in feature_parts},
        spec_version=spec.version, models={m.role: m.version for m in models},
        thresholds={m.role: m.threshold for m in models}, sample_rate=rate)
    pred_ref, feat_ref = predictions_ref(spec.name, day), features_ref(spec.name, day)
    logger.info("score_batch %s %s: %s", spec.name, day, "; ".join(m.describe() for m in models))
    if not force:
        previous = _unchanged(lake, pred_ref, feat_ref, signature)
        if previous is not None:
            result = dataclasses.replace(previous, status="unchanged",
                                         seconds=round(time.perf_counter() - started, 3))
            logger.info("%s unchanged (signature %s, computed by run %s): %d rows, %d flagged; nothing recomputed",
                        lake.uri(pred_ref.key), signature, previous.run_id, previous.written, previous.flagged)
            annotate(status=result.status, rows=result.written)
            return result

    from mlscale.feature_store import feature_store_for

    with span("score.read", dataset=spec.events_dataset, dt=day, bytes=events_manifest.bytes) as read_span:
        events = lake.read_table(events_ref, columns=spec.event_columns())
        logger.info("read %d events from %s", events.num_rows, lake.uri(events_ref.key))
        frame = model_inputs(feature_store_for(lake, root=feast_root or None), events, spec)
        annotate(read_span, rows=events.num_rows, feature_tables=len(feature_parts))
    columns = _input_columns(models, frame, spec)
    scored = score_inputs(client, lake, frame, columns, [ModelRef(m.name, m.version, m.role) for m in models],
                          rows_per_partition=rows_per_partition,
                          token=f"{file_name_of(run_id)}-{uuid.uuid4().hex[:8]}", gpu=gpu)
    groups = scored.groups

    keys, times = events.column(spec.event_key).combine_chunks(), events.column(spec.event_time).combine_chunks()
    order = pc.sort_indices(keys).to_numpy()
    keys, times = keys.take(pa.array(order)), times.take(pa.array(order))
    hashes = groups.hashes[order]
    sampled = sample_mask(keys, rate)
    scores = {role: values[order] for role, values in scored.scores.items()}
    schema = predictions_schema(spec, keys.type, times.type)
    inputs = [lake.uri(events_ref.key), *(lake.uri(r.key) for r, _ in feature_parts),
              *(lake.uri(f"{model_prefix(m.name, m.version)}/") for m in models)]

    champion_scores = scores[champion.role]
    flagged = int((champion_scores >= champion.threshold).sum())
    shadow_flagged = int((scores[challenger.role] >= challenger.threshold).sum()) if challenger else 0
    result = ScoringResult(
        model=spec.name, dt=day, status="scored", predictions=lake.uri(pred_ref.key), features=lake.uri(feat_ref.key),
        champion_version=champion.version, challenger_version=challenger.version if challenger else None,
        threshold=champion.threshold, shadow_threshold=challenger.threshold if challenger else None,
        rows_read=events.num_rows, distinct_inputs=groups.distinct, repeated_inputs=groups.repeats,
        scored=groups.distinct, written=events.num_rows, shadow_written=events.num_rows if challenger else 0,
        flagged=flagged, shadow_flagged=shadow_flagged, sampled=int(sampled.sum()), sample_rate=rate,
        partitions=scored.partitions, workers=scored.workers, model_loads=scored.loads, signature=signature,
        run_id=run_id, seconds=round(time.perf_counter() - started, 3))
    extra = {"model": spec.name, "signature": signature, "spec_version": spec.version,
             "models": {m.role: m.version for m in models}, "thresholds": {m.role: m.threshold for m in models},
             "sample_rate": rate, "events_checksum": manifest_checksum(events_manifest),
             "feature_tables": {r.key: c for r, c in feature_parts}}

    features = _feature_log(frame.iloc[order], sampled, keys, times, columns, spec, champion, champion_scores,
                            hashes)
    with span("score.write", model=spec.name, dt=day, rows=events.num_rows * len(models), sampled=features.num_rows):
        with lake.writer(feat_ref, run_id=run_id, schema=features.schema, inputs=inputs,
                         extra={**extra, "rows": features.num_rows, "predictions": pred_ref.key}) as writer:
            writer.write(features)
        with lake.writer(pred_ref, run_id=run_id, schema=schema, inputs=inputs,
                         extra={**extra, "features_partition": feat_ref.key, "result": result.as_dict()}) as writer:
            for m in models:
                writer.write(predictions_table(schema, keys, times, model=m.name, version=m.version,
                                               scores=scores[m.role], threshold=m.threshold, shadow=m is not champion,
                                               hashes=hashes, sampled=sampled), subdir=role_subdir(m.role))
    result = dataclasses.replace(result, seconds=round(time.perf_counter() - started, 3))
    annotate(status=result.status, rows=result.rows_read, partitions=result.partitions, flagged=result.flagged)
    _log_summary(result)
    return result


def feature_partitions(lake: Lake, spec: ModelSpec, day: str) -> list[tuple[PartitionRef, str]]:
    """The as-of feature tables a lookup for events of ``day`` reads, with their content checksums.

    Events of D are looked up in the latest table valid at D 00:00: the table of D-1, or, when that day is
    missing, the latest committed one before it (the run log warns).
    """
    previous = (parse_day(day) - dt.timedelta(days=1)).isoformat()
    found = []
    for fs in feature_sets_of(spec):
        ref = PartitionRef.of("features", fs.table, previous)
        manifest = lake.manifest(ref)
        if manifest is None:
            older = [r for r in lake.partitions("features", fs.table) if r.dt < previous and not r.keys]
            if not older:
                logger.warning("no as-of table of %s before %s: its features are missing (NaN) for %s",
                               fs.table, day, day)
                continue
            ref = older[-1]
            manifest = lake.require_manifest(ref)
            logger.warning("as-of table %s is missing: the feature store serves %s (older) for %s",
                           lake.uri(PartitionRef.of("features", fs.table, previous).key), ref.dt, day)
        found.append((ref, manifest_checksum(manifest)))
    return found


def _unchanged(lake: Lake, pred_ref: PartitionRef, feat_ref: PartitionRef, signature: str) -> ScoringResult | None:
    previous = lake.manifest(pred_ref)
    if previous is None or previous.extra.get("signature") != signature or "result" not in previous.extra:
        return None
    features = lake.manifest(feat_ref)
    if features is None or features.extra.get("signature") != signature:
        return None
    return ScoringResult.from_dict(dict(previous.extra["result"]))


def _input_columns(models: list[ScoringModel], frame: Any, spec: ModelSpec) -> list[str]:
    """Every input column of the models (champion's order first); a clear error if one is not produced."""
    columns = list(dict.fromkeys(c for m in models for c in m.model.features))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        who = [m.describe() for m in models if set(m.model.features) & set(missing)]
        raise ModelInputsMismatch(
            f"{', '.join(who)} needs {len(missing)} input columns that the current definitions of {spec.name} do not "
            f"produce (e.g. {missing[:3]}): it was trained on other feature-set versions. Retrain it, or move the "
            "alias to a version trained on the current features")
    return columns


def _feature_log(frame: Any, sampled: np.ndarray, keys: pa.Array, times: pa.Array, columns: list[str],
                 spec: ModelSpec, champion: ScoringModel, scores: np.ndarray, hashes: np.ndarray) -> pa.Table:
    """The sampled events' model inputs, in the predictions' row order (``frame`` already in that order)."""
    picked = pa.array(sampled)
    n = int(sampled.sum())
    values = pa.Table.from_pandas(frame.loc[:, columns].iloc[np.flatnonzero(sampled)].astype("float64"),
                                  preserve_index=False)
    head = {spec.event_key: keys.filter(picked), spec.event_time: times.filter(picked),
            "model_version": pa.array([champion.version] * n, pa.string()),
            "score": pa.array(scores[sampled], pa.float64()), "input_hash": pa.array(hashes[sampled].view(np.int64))}
    return pa.Table.from_arrays([*head.values(), *values.columns], names=[*head, *values.column_names])


def _log_summary(r: ScoringResult) -> None:
    logger.info("score_batch %s %s summary: rows read %d, distinct inputs %d (%d repeats), scored %d per model in %d "
                "partitions on %d workers, model loads %s", r.model, r.dt, r.rows_read, r.distinct_inputs,
                r.repeated_inputs, r.scored, r.partitions, r.workers, r.model_loads)
    logger.info("champion v%s threshold %.6g: wrote %d rows, %d flagged -> %s", r.champion_version, r.threshold,
                r.written, r.flagged, r.predictions)
    if r.challenger_version is not None:
        logger.info("challenger v%s (shadow, never used for decisions) threshold %.6g: wrote %d rows, would flag %d",
                    r.challenger_version, r.shadow_threshold or 0.0, r.shadow_written, r.shadow_flagged)
    logger.info("sampled %d events (rate %g) with their inputs -> %s; signature %s; %.1f s", r.sampled, r.sample_rate,
                r.features, r.signature, r.seconds)
