"""Replay a period day by day with the very functions the DAGs call: how a team replays history.

For each day D, in the order the DAGs run: ingestion of every contract, the features of every feature set,
the feature store sync; then, per declared model, training when its cron fires for D (the weekly retrain),
scoring with the champion (challenger in shadow), drift monitoring (data, prediction, labelled performance) and
the retrain decision — a drift retrain the policy allows trains as of D at once, as the ``drift_alert`` asset
starts ``train_model``; each new version gets its bias audit and promotion gate with a scripted reviewer
(approvals are recorded like a person's, naming the script); and the pipeline health report. One Dask client
serves every day; then the day's lifecycle run (retention deletes, the cold tier, the cost report). Compaction
(Spark) is not replayed: it rewrites files without changing what they hold. At the end, the timeline of the period
(:mod:`mlscale.reports.timeline`, ``reports/timeline/<last day>/``).

Resumable: the last finished day is recorded in ``_meta/simulation/progress.json``; a rerun continues after it
(every step is idempotent, so a day interrupted half-way is simply redone).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlscale.lake import Lake
from mlscale.usage.recording import recorded

logger = logging.getLogger(__name__)

PROGRESS_KEY = "_meta/simulation/progress.json"
REVIEWER = "scripted reviewer (mlscale simulate)"


@dataclass
class SimulationSettings:
    models: list[str]
    pii_key: bytes | str
    train_cron: str = "0 3 * * 0"        #: fires on D+1 for day D, as train_model's cron
    min_train_days: int = 28             #: no model is trained before this many days of events
    feast_root: str = ""
    tracking_uri: str = ""
    risk_policy: str = ""
    max_rounds: int | None = None
    lifecycle: bool = True               #: run lifecycle_cleanup (plan, apply, cost report) each day
    retention_policy: str = ""           #: its policy file (default: the configuration's policies/retention.yaml)


@dataclass
class DayOutcome:
    day: str
    ingested: dict[str, int] = field(default_factory=dict)
    trained: dict[str, str] = field(default_factory=dict)          # model -> version
    gate: dict[str, str] = field(default_factory=dict)             # "model v" -> decision
    failed: dict[str, str] = field(default_factory=dict)           # model -> why its training failed
    drift: dict[str, str] = field(default_factory=dict)            # model -> verdict
    lifecycle: dict[str, int] = field(default_factory=dict)        # objects deleted, bytes moved to cold
    seconds: float = 0.0

    def line(self) -> str:
        parts = [f"ingested {sum(self.ingested.values()):,}"]
        parts += [f"trained {m} v{v}" for m, v in self.trained.items()]
        parts += [f"gate {k}: {d}" for k, d in self.gate.items()]
        parts += [f"training of {m} failed: {why}" for m, why in self.failed.items()]
        parts += [f"drift {m}: {v}" for m, v in self.drift.items()]
        if any(self.lifecycle.values()):
            parts.append(f"lifecycle: {self.lifecycle['objects_deleted']} objects deleted, "
                         f"{self.lifecycle['bytes_moved_cold'] / 2**20:.1f} MiB to the cold tier")
        return f"{self.day}: " + "; ".join(parts) + f" ({self.seconds:.0f} s)"


def cron_fires_for(cron: str, day: str) -> bool:
    """Whether ``cron`` fires on day D+1 (a run on D+1 trains as of D, as ``train_model`` does)."""
    from croniter import croniter

    start = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), dt.UTC)
    nxt = croniter(cron, start - dt.timedelta(seconds=1)).get_next(dt.datetime)
    return bool(nxt < start + dt.timedelta(days=1))


def finished_day(lake: Lake) -> str | None:
    return lake.read_json(PROGRESS_KEY).get("last_day") if lake.exists(PROGRESS_KEY) else None


def simulate(*, lake: Lake, client: Any, first: str, last: str, settings: SimulationSettings,
             report: Callable[[DayOutcome], None] = lambda o: logger.info("%s", o.line())) -> list[DayOutcome]:
    """Run days ``first .. last`` (skipping those already finished); returns the outcomes of the days run."""
    done = finished_day(lake)
    day = dt.date.fromisoformat(first)
    if done and dt.date.fromisoformat(done) >= day:
        day = dt.date.fromisoformat(done) + dt.timedelta(days=1)
        logger.info("resuming after %s (finished earlier)", done)
    outcomes = []
    while day <= dt.date.fromisoformat(last):
        outcome = simulate_day(lake=lake, client=client, day=day.isoformat(), first=first, settings=settings)
        lake.write_json(PROGRESS_KEY, {"first_day": first, "last_day": outcome.day})
        report(outcome)
        outcomes.append(outcome)
        day += dt.timedelta(days=1)
    done = finished_day(lake)
    if done:
        from mlscale.contracts import contract_names
        from mlscale.features.definitions import feature_set_names
        from mlscale.reports.timeline import build_timeline

        build_timeline(lake, first, done, datasets=contract_names(), feature_sets=feature_set_names())
    return outcomes


def _data_pipelines(lake: Lake, client: Any, day: str, settings: SimulationSettings, outcome: DayOutcome) -> None:
    from mlscale.contracts import contract_names
    from mlscale.feature_store import sync_feature_store
    from mlscale.features import build_features
    from mlscale.features.definitions import feature_set_names
    from mlscale.ingest import ingest_partition

    run_id = f"simulate__{day}"
    for contract in contract_names():
        result = recorded(lake, client, ingest_partition, dag_id=f"ingest_{contract}", task_id="ingest", run_id=run_id,
                          day=day, dt=day, contract=contract, pii_key=settings.pii_key)
        outcome.ingested[contract] = int(getattr(result, "rows_written", 0))
    for name in feature_set_names():
        recorded(lake, client, build_features, dag_id="build_features", task_id=f"build_{name}", run_id=run_id,
                 day=day, dt=day, feature_set=name)
    sync_feature_store(lake=lake, dt=day, feast_root=settings.feast_root or None)


def _train_and_gate(lake: Lake, client: Any, model: str, day: str, why: str, settings: SimulationSettings,
                    outcome: DayOutcome) -> None:
    from mlscale.training import train_model

    run_id = f"simulate__{why}__{day}"
    trained = recorded(lake, client, train_model, dag_id="train_model", task_id="train", run_id=run_id, day=day,
                       dt=day, model=model, tracking_uri=settings.tracking_uri,
                       feast_root=settings.feast_root, max_rounds=settings.max_rounds)
    outcome.trained[model] = trained.version
    outcome.gate[f"{model} v{trained.version}"] = audit_and_gate(lake, model, trained.version, day, why, settings)


def audit_and_gate(lake: Lake, model: str, version: str, day: str, why: str, settings: SimulationSettings) -> str:
    """The bias audit of a new version, the gate, and the scripted reviewer (see :func:`reviewer_approves`), as
    ``audit_bias`` runs them after ``train_model``; returns the gate's decision."""
    from mlscale.governance.audit_run import audit_model
    from mlscale.governance.gate import ACCEPT_INSUFFICIENT_BIAS, promote_model, record_approval

    audited = audit_model(lake=lake, dt=day, run_id=f"simulate__audit__{day}", model=model, version=version,
                          tracking_uri=settings.tracking_uri, actor=REVIEWER)
    gate: dict[str, Any] = dict(lake=lake, dt=day, model=model, version=version,
                                tracking_uri=settings.tracking_uri, feast_root=settings.feast_root,
                                risk_policy=settings.risk_policy)
    decision = promote_model(run_id=f"simulate__gate__{day}", **gate)
    if reviewer_approves(decision):
        accepts = (ACCEPT_INSUFFICIENT_BIAS,) if audited.verdict == "insufficient_data" else ()
        record_approval(lake, model=model, version=version, approved_by=REVIEWER, accepts=accepts,
                        note=f"scripted review of the {why} retrain on {day}: approves what only lacks an approval "
                             "(accepting too little bias evidence to judge), never a failed condition")
        decision = promote_model(run_id=f"simulate__gate_approved__{day}", **gate)
    return str(decision.decision)


def reviewer_approves(decision: Any) -> bool:
    """The scripted reviewer approves a version the gate holds only for an approval, or refuses only because the
    bias audit had too little data to judge (which a reviewer may accept explicitly); never one that failed a
    condition (metrics, a bias failure, drift)."""
    from mlscale.governance.gate import PENDING, REFUSED

    if decision.decision == PENDING:
        return True
    return decision.decision == REFUSED and bool(decision.reasons) and all(
        r.startswith("bias: too little data") for r in decision.reasons)


def _model_day(lake: Lake, client: Any, model: str, day: str, first: str, settings: SimulationSettings,
               outcome: DayOutcome) -> None:
    from mlscale.governance.monitor import monitor_drift
    from mlscale.governance.retrain_policy import decide_retrain
    from mlscale.scoring import compare_shadow, score_batch
    from mlscale.training import load_model_spec
    from mlscale.training import registry as reg
    from mlscale.training.dataset import TrainingDataError

    old_enough = (dt.date.fromisoformat(day) - dt.date.fromisoformat(first)).days + 1 >= settings.min_train_days
    drift_retrain = False
    mlflow = reg.client_for(reg.RegistryConfig.for_lake(lake, settings.tracking_uri))
    champion = reg.alias_version(mlflow, model, reg.CHAMPION)
    if champion or reg.alias_version(mlflow, model, reg.CHALLENGER):  # a version exists: score and monitor
        if champion:
            recorded(lake, client, score_batch, dag_id="score_batch", task_id="score", run_id=f"simulate__{day}",
                     day=day, dt=day, model=model, tracking_uri=settings.tracking_uri,
                     feast_root=settings.feast_root)
            compare_shadow(lake=lake, dt=day, run_id=f"simulate__{day}", model=model)
        check = monitor_drift(lake=lake, dt=day, run_id=f"simulate__{day}", model=model,
                              tracking_uri=settings.tracking_uri, feast_root=settings.feast_root,
                              risk_policy=settings.risk_policy)
        outcome.drift[model] = check.verdict
        training = load_model_spec(model).training
        drift_retrain = decide_retrain(lake, model=model, dt_=day, drift_detected=check.drift_detected,
                                       drifted=list(check.drifted_features),
                                       cooldown_days=training.drift_retrain_cooldown_days,
                                       budget=training.drift_retrain_budget).retrain
    why = "cron" if cron_fires_for(settings.train_cron, day) else "drift" if drift_retrain else ""
    if old_enough and why:  # the cron fires on D+1, after D's scoring; a drift alert right after the check
        try:
            _train_and_gate(lake, client, model, day, why, settings, outcome)
        except TrainingDataError as exc:  # the train_model run would fail; the other pipelines go on
            outcome.failed[model] = str(exc)
            logger.warning("training of %s for %s failed: %s", model, day, exc)


def _lifecycle(lake: Lake, day: str, settings: SimulationSettings, outcome: DayOutcome) -> None:
    """The day's scheduled lifecycle_cleanup run: plan, apply (deletions and the cold tier), cost report."""
    from mlscale.lifecycle import load_policy
    from mlscale.lifecycle.run import apply_lifecycle, cost_report, plan_lifecycle

    policy = load_policy(settings.retention_policy or None)
    run_day = dt.date.fromisoformat(day)
    end_of_day = dt.datetime.combine(run_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    summary = plan_lifecycle(lake, run_id=f"simulate__lifecycle__{day}", day=run_day, logical_time=end_of_day,
                             dry_run=False, policy=policy)
    applied = apply_lifecycle(lake, summary, feast_root=settings.feast_root or None)
    cost_report(lake, summary, applied, policy=policy)
    outcome.lifecycle = {"objects_deleted": int(applied["objects_deleted"]),
                         "bytes_moved_cold": int(applied["bytes_moved_cold"])}


def simulate_day(*, lake: Lake, client: Any, day: str, first: str, settings: SimulationSettings) -> DayOutcome:
    """One day of every pipeline (see the module docstring)."""
    from mlscale.contracts import contract_names
    from mlscale.features.definitions import feature_set_names
    from mlscale.reports.health import build_health_report

    started = time.perf_counter()
    outcome = DayOutcome(day=day)
    _data_pipelines(lake, client, day, settings, outcome)
    for model in settings.models:
        _model_day(lake, client, model, day, first, settings, outcome)
    if settings.lifecycle:
        _lifecycle(lake, day, settings, outcome)
    build_health_report(lake, day, datasets=contract_names(), feature_sets=feature_set_names())
    outcome.seconds = time.perf_counter() - started
    return outcome
