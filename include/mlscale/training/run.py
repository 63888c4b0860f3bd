"""One training run, as the ``train_model`` DAG runs it: data → sizing → train → evaluate → register.

Idempotent and resumable: the training set of D is rebuilt identically, a retried attempt resumes from the
last checkpoint of the same run, and the new version only gets the ``challenger`` alias (promotion to
``champion`` belongs to the governance gate).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.lake import Lake, PartitionRef, parse_day
from mlscale.reports.catalog import report_url
from mlscale.sizing import training_plan
from mlscale.tracing import annotate, span, traced
from mlscale.training import registry
from mlscale.training.ceiling import holdout_ceiling
from mlscale.training.checkpoint import CheckpointStore, run_key
from mlscale.training.data import CLASS_WEIGHTS, TrainingInputs, class_weight_params
from mlscale.training.dataset import LABEL, build_training_set, read_split, training_ref
from mlscale.training.evaluate import compare, holdout_metrics, metrics_of_version
from mlscale.training.inputs import feature_columns, model_inputs
from mlscale.training.model import StoredModel, model_prefix, write_reference_profile
from mlscale.training.report import write_training_report
from mlscale.training.skew import serving_skew
from mlscale.training.spec import load_model_spec

logger = logging.getLogger(__name__)

ALGORITHMS = ("xgboost", "lightgbm")


@dataclass(frozen=True)
class TrainingResult:
    model: str
    version: str
    dt: str
    algorithm: str
    training_set: str
    fingerprint: str
    plan: dict[str, Any]
    training: dict[str, Any]
    holdout: dict[str, float]
    champion_version: str | None
    vs_champion: dict[str, Any]
    report: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def asset_extra(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "dt": self.dt, "pr_auc": self.holdout.get("pr_auc"),
                "fingerprint": self.fingerprint}


@traced("train", keywords=("model", "dt", "algorithm", "run_id", "try_number"))
def train_model(*, client: Any, lake: Lake, dt: str, run_id: str, try_number: int = 1, model: str,
                algorithm: str = "xgboost", class_weight: str = "", max_rounds: int | None = None,
                mode: str = "auto", gpu: bool = False, tracking_uri: str = "", registry_home: str = "",
                feast_root: str = "", code_version: str = "", collective_timeout_s: int = 300) -> TrainingResult:
    """Train ``model`` for day ``dt`` on the Dask ``client`` and register it as the ``challenger``.
    ``class_weight``: the class-imbalance strategy (empty: the model specification's ``training.class_weight``)."""
    from mlscale.feature_store import feature_store_for

    started = time.perf_counter()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is not one of {ALGORITHMS}")
    spec = load_model_spec(model)
    settings = spec.training
    class_weight = class_weight or settings.class_weight
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight {class_weight!r} is not one of {CLASS_WEIGHTS}")
    rounds = int(max_rounds or settings.max_rounds)
    store = feature_store_for(lake, root=feast_root or None)
    with span("train.dataset", model=spec.name, dt=dt) as dataset_span:
        training_set = build_training_set(lake=lake, spec=spec, dt_=dt, run_id=run_id, store=store)
        annotate(dataset_span, rows=sum(training_set.rows.values()), train_rows=training_set.rows["train"],
                 positives=training_set.positives["train"])
    features = tuple(feature_columns(spec))
    data = TrainingInputs(lake, training_ref(spec, dt), features, class_weight, spec.event_key,
                          settings.negative_sample_rate)
    train_rows, train_pos = training_set.rows["train"], training_set.positives["train"]
    params = {**settings.params, **class_weight_params(class_weight, train_rows - train_pos, train_pos)}
    if class_weight == "downsample_negatives":  # what the trainer will hold: every positive, a share of negatives
        train_rows = train_pos + round((train_rows - train_pos) * settings.negative_sample_rate)
    plan = training_plan(train_rows, len(features), **_cluster(client), force=None if mode == "auto" else mode)
    for reason in plan.reasons:
        logger.info("sizing: %s", reason)
    checkpoints = CheckpointStore(lake, spec.name, run_key(run_id, training_set.fingerprint,
                                                           {"algorithm": algorithm, "rounds": rounds, **params}))
    trainer = _trainer(algorithm)
    outcome = trainer(client, data, params, mode=plan.mode, partitions=plan.partitions, max_rounds=rounds,
                      early_stopping_rounds=settings.early_stopping_rounds, checkpoints=checkpoints,
                      checkpoint_every=settings.checkpoint_every, gpu=gpu, collective_timeout_s=collective_timeout_s)
    logger.info("trained %s in %.1f s: %d rounds boosted (%d by this attempt, try %d), early stop at round %d, "
                "validation %s %.5f", algorithm, outcome.seconds, outcome.rounds_trained, outcome.rounds_this_attempt,
                try_number, outcome.rounds, outcome.metric, outcome.best_score)

    skew = serving_skew(lake, spec, data.ref, list(features), parse_day(training_set.first_event_day),
                        parse_day(training_set.last_event_day))
    holdout = read_split(lake, data.ref, "holdout").to_pandas()
    candidate = StoredModel(name=spec.name, version="candidate", algorithm=algorithm, features=features, raw=outcome.model)
    holdout_scores = candidate.predict(holdout)
    metrics = holdout_metrics(holdout[LABEL], holdout_scores, review_budget=settings.review_budget)
    ceiling = holdout_ceiling(lake, holdout[spec.event_key], holdout[spec.event_time], holdout[LABEL], holdout_scores)
    config = registry.RegistryConfig.default(registry_home) if registry_home \
        else registry.RegistryConfig.for_lake(lake, tracking_uri)
    client_ = registry.client_for(config)
    champion_version = registry.alias_version(client_, spec.name, registry.CHAMPION)
    champion_metrics = metrics_of_version(lake, spec.name, champion_version, holdout, settings.review_budget)
    vs_champion = compare(metrics.scalars(), champion_metrics)
    logger.info("holdout: %s", json.dumps(metrics.scalars()))
    logger.info("vs champion %s: %s", champion_version, json.dumps(vs_champion))

    tags = {"dataset_fingerprint": training_set.fingerprint, "training_set": training_set.partition,
            "feature_set_versions": json.dumps(training_set.feature_set_versions, sort_keys=True),
            "label_cutoff": training_set.label_cutoff, "spec_version": spec.version,
            "code_version": code_version or _code_version(),
            "airflow_run_id": run_id, "algorithm": algorithm, "class_weight": class_weight, "mode": plan.mode,
            "event_days": f"{training_set.first_event_day}..{training_set.last_event_day}",
            "params": json.dumps(params, sort_keys=True)}
    version = registry.register_version(
        client_, config, model=spec.name, algorithm=algorithm, booster_bytes=outcome.model,
        metrics=metrics.scalars(), params={**params, "algorithm": algorithm, "max_rounds": rounds}, tags=tags,
        run_name=f"{spec.name} {dt} {run_id}",
        artifacts={"training.json": outcome.summary(), "holdout.json": metrics.as_dict(), "plan.json": plan.as_dict(),
                   "training_set.json": training_set.as_dict(), "ceiling.json": ceiling})
    stored = StoredModel(name=spec.name, version=version, algorithm=algorithm, features=features, raw=outcome.model,
                         doc={"tags": tags, "holdout": metrics.as_dict(), "ceiling": ceiling, "serving_skew": skew,
                              "training": outcome.summary(),
                              "training_set": training_set.as_dict(), "spec": spec.as_dict(),
                              "inputs": [lake.uri(training_set.partition)], "registered_day": dt})
    prefix = stored.save(lake)
    compressed = _compressed_variant(lake, spec, stored, holdout, metrics.scalars().get("pr_auc"))
    # the drift reference: every event of the last day the model was trained on (all hours, labelled or not)
    reference_events = lake.read_table(PartitionRef.of("raw", spec.events_dataset, training_set.last_event_day),
                                       columns=spec.event_columns())
    write_reference_profile(lake, stored, model_inputs(store, reference_events, spec))
    registry.write_lineage_record(lake, model=spec.name, version=version,
                                  references=[training_set.partition, *registry.lake_keys(lake, list(training_set.inputs))],
                                  artifacts=[f"{prefix}/", *registry.lake_artifact_prefixes(lake, client_, spec.name,
                                                                                             version)])
    registry.set_alias(client_, spec.name, registry.CHALLENGER, version)
    report = write_training_report(lake, spec, version, metrics, outcome, plan, training_set, vs_champion,
                                   champion_version, ceiling, skew, compressed)
    checkpoints.finish("succeeded")
    result = TrainingResult(model=spec.name, version=version, dt=dt, algorithm=algorithm, training_set=training_set.partition,
                            fingerprint=training_set.fingerprint, plan=plan.as_dict(), training=outcome.summary(),
                            holdout=metrics.scalars(), champion_version=champion_version, vs_champion=vs_champion,
                            report=report, seconds=round(time.perf_counter() - started, 3))
    logger.info("registered %s version %s as %s (model files %s/, report %s; in the UI: %s)", spec.name, version,
                registry.CHALLENGER, model_prefix(spec.name, version), report,
                report_url("training", f"{spec.name}/{version}"))
    return result


def _compressed_variant(lake: Lake, spec: Any, stored: StoredModel, holdout: Any, pr_auc: float | None) -> dict[str, Any]:
    """The online-scoring variant within the PR-AUC drop the specification allows
    (``serving.compressed_max_pr_auc_drop``; the gate checks it against the risk tier's tolerance)."""
    from mlscale.training.compress import store_compressed_variant

    if pr_auc is None or pr_auc != pr_auc:
        return {"available": False, "why": "no holdout PR-AUC"}
    return store_compressed_variant(lake, stored, holdout, full_pr_auc=float(pr_auc),
                                    tolerance=spec.serving.compressed_max_pr_auc_drop,
                                    review_budget=spec.training.review_budget)


def _code_version() -> str:
    """The git commit of the running code (with ``+dirty`` for local changes), or the package version."""
    import subprocess
    from importlib.metadata import version
    from pathlib import Path

    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"mlscale {version('mlscale')}"


def _trainer(algorithm: str) -> Any:
    if algorithm == "xgboost":
        from mlscale.training.xgb_trainer import train_xgboost

        return train_xgboost
    from mlscale.training.lgbm_trainer import train_lightgbm

    return train_lightgbm


def _cluster(client: Any) -> dict[str, int]:
    workers = client.scheduler_info(n_workers=-1)["workers"] if _takes_n_workers(client) \
        else client.scheduler_info()["workers"]
    memory = min((int(w.get("memory_limit") or 0) for w in workers.values()), default=0) or 4 << 30
    return {"workers": max(1, len(workers)), "memory_per_worker_bytes": memory}


def _takes_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters
