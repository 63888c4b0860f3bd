"""Model specifications (``include/models/<model>.yaml``): what a model predicts, from which data, how it trains.

A specification is data, so a team plugs in its own model (events, label, feature sets, event features,
protected attributes, training settings) without touching pipeline code. Its version is a hash of the file's
content and is recorded with every training set and registered model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from mlscale.config_schema import StrictModel, validated
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

EVENT_FEATURE_KINDS = ("numeric", "log1p", "hour", "one_hot", "ratio", "recent_count", "bucket_distinct")
SPLITS = ("train", "validation", "holdout")


class ModelSpecError(ValueError, NotRetryable):
    """A model specification is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class EventFeature:
    name: str
    kind: str
    column: str
    values: tuple[str, ...] = ()
    over: str = ""               # ratio: "<feature_set>.<feature>", the denominator
    minutes: int = 0             # recent_count: the trailing window; bucket_distinct: the clock-aligned bucket
    of: str = ""                 # bucket_distinct: the column whose distinct values are counted

    def columns(self) -> list[str]:
        """The model input columns this feature produces."""
        return [f"{self.name}_{v}" for v in self.values] if self.kind == "one_hot" else [self.name]


#: class-imbalance strategies (see :func:`mlscale.training.data.class_weight_params`)
CLASS_WEIGHTS = ("sqrt_scale_pos_weight", "scale_pos_weight", "downsample_negatives", "none")


@dataclass(frozen=True)
class TrainingSettings:
    history_days: int = 90
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    review_budget: float = 0.005
    max_rounds: int = 400
    early_stopping_rounds: int = 25
    checkpoint_every: int = 10
    params: dict[str, Any] = field(default_factory=dict)
    class_weight: str = "none"              # the class-imbalance strategy (see mlscale.training.data)
    negative_sample_rate: float = 0.2       # downsample_negatives: the share of negatives kept
    drift_retrain_cooldown_days: int = 7    # no drift-triggered retrain within N days of the last one
    drift_retrain_budget: int = 2           # drift-triggered retrains at most per 30 days
    retrain_every_days: int | None = None   # scheduled retraining only once the latest version is N days old


@dataclass(frozen=True)
class ServingSettings:
    latency_slo_p99_ms: float = 10.0        # online scoring: the p99 latency the service must keep
    slo_window_s: float = 60.0              # over windows of this many seconds (a breach for a window alerts)
    compressed_max_pr_auc_drop: float = 0.01  # the compressed variant may lose at most this much holdout PR-AUC


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    description: str
    intended_use: str
    owner: str
    events_dataset: str
    event_key: str
    event_time: str
    label_dataset: str
    label_key: str
    label_column: str
    label_time: str
    feature_sets: tuple[str, ...]
    event_features: tuple[EventFeature, ...]
    protected_dataset: str
    protected_key: str
    protected_columns: tuple[str, ...]
    intersections: tuple[tuple[str, ...], ...]
    training: TrainingSettings
    serving: ServingSettings = ServingSettings()
    path: str = ""

    def event_columns(self) -> list[str]:
        """Raw event columns needed to build the model's inputs (keys, time, entity and event-feature columns)."""
        from mlscale.features import load_feature_set

        cols = {self.event_key, self.event_time}
        for name in self.feature_sets:
            fs = load_feature_set(name)
            cols.update(fs.entity_from or (fs.entity,))
        cols.update(f.column for f in self.event_features)
        cols.update(f.of for f in self.event_features if f.of)
        return sorted(cols)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name, "spec_version": self.version, "feature_sets": list(self.feature_sets),
                "events": self.events_dataset, "label": f"{self.label_dataset}.{self.label_column}"}


class EventFeatureDoc(StrictModel):
    kind: str | None = None
    column: str | None = None
    values: list[str] | None = None
    over: str | None = None
    minutes: Any = 0               # a whole number >= 1, checked by _event_feature
    of: str | None = None


class EventsDoc(StrictModel):
    dataset: str
    key: str
    event_time: str


class LabelDoc(StrictModel):
    dataset: str
    key: str
    column: str
    reported_at: str


class ProtectedDoc(StrictModel):
    dataset: str = ""
    key: str = ""
    columns: list[str] | None = None
    intersections: list[list[str]] | None = None


class SplitDoc(StrictModel):
    train: float
    validation: float
    holdout: float


class DriftRetrainDoc(StrictModel):
    cooldown_days: int = 7
    max_per_30_days: int = 2


class TrainingDoc(StrictModel):
    history_days: int = 90
    split: SplitDoc | None = None
    review_budget: float = 0.005
    max_rounds: int = 400
    early_stopping_rounds: int = 25
    checkpoint_every: int = 10
    drift_retrain: DriftRetrainDoc | None = None
    class_weight: str = "none"
    negative_sample_rate: float = 0.2
    params: dict[str, Any] | None = None   # passed to the learner as they are
    retrain_every_days: int | None = None  # the retrain cadence report's recommendation, adopted


class ServingDoc(StrictModel):
    latency_slo_p99_ms: float = Field(default=10.0, gt=0)
    slo_window_s: float = Field(default=60.0, gt=0)
    compressed_max_pr_auc_drop: float = Field(default=0.01, ge=0, le=1)


class ModelSpecDoc(StrictModel):
    """The shape of a model specification (values are checked by :func:`load_model_spec`)."""

    model: str
    description: str = ""
    intended_use: str = ""
    owner: str = ""
    events: EventsDoc
    label: LabelDoc
    feature_sets: list[str]
    event_features: dict[str, EventFeatureDoc | None] | None = None
    protected_attributes: ProtectedDoc | None = None
    training: TrainingDoc | None = None
    serving: ServingDoc | None = None


def model_names() -> list[str]:
    """The models declared in the configuration folder (``models/*.yaml``), by name."""
    return sorted(p.stem for p in config_dir("models").glob("*.yaml"))


def model_spec_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    return path if path.suffix in (".yaml", ".yml") else config_dir("models") / f"{name_or_path}.yaml"


def load_model_spec(name_or_path: str | Path) -> ModelSpec:
    """Load and validate a model specification by name (``include/models/<name>.yaml``) or path."""
    path = model_spec_path(name_or_path)
    if not path.exists():
        available = ", ".join(model_names())
        raise ModelSpecError(f"no model specification {str(name_or_path)!r} ({path}); available: {available}")
    text = path.read_bytes()
    where = str(path)
    m = validated(ModelSpecDoc, yaml.safe_load(text) or {}, where, ModelSpecError)
    protected, training = m.protected_attributes or ProtectedDoc(), m.training or TrainingDoc()
    split = training.split or SplitDoc(train=0.7, validation=0.15, holdout=0.15)
    retrain = training.drift_retrain or DriftRetrainDoc()
    spec = ModelSpec(
        name=m.model, version=hashlib.sha256(text).hexdigest()[:8], description=m.description,
        intended_use=m.intended_use, owner=m.owner,
        events_dataset=m.events.dataset, event_key=m.events.key, event_time=m.events.event_time,
        label_dataset=m.label.dataset, label_key=m.label.key, label_column=m.label.column,
        label_time=m.label.reported_at, feature_sets=tuple(m.feature_sets),
        event_features=tuple(_event_feature(where, n, s or EventFeatureDoc())
                             for n, s in (m.event_features or {}).items()),
        protected_dataset=protected.dataset, protected_key=protected.key,
        protected_columns=tuple(protected.columns or ()),
        intersections=tuple(tuple(i) for i in protected.intersections or ()),
        training=TrainingSettings(
            history_days=training.history_days, split=(split.train, split.validation, split.holdout),
            review_budget=training.review_budget, max_rounds=training.max_rounds,
            early_stopping_rounds=training.early_stopping_rounds, checkpoint_every=training.checkpoint_every,
            params=dict(training.params or {}), class_weight=training.class_weight,
            negative_sample_rate=training.negative_sample_rate, drift_retrain_cooldown_days=retrain.cooldown_days,
            drift_retrain_budget=retrain.max_per_30_days, retrain_every_days=training.retrain_every_days),
        serving=ServingSettings(**(m.serving or ServingDoc()).model_dump()),
        path=where,
    )
    _check(where, spec)
    return spec


def _event_feature(where: str, name: str, spec: EventFeatureDoc) -> EventFeature:
    kind = spec.kind
    if kind not in EVENT_FEATURE_KINDS:
        raise ModelSpecError(f"{where}: event_features.{name}.kind {kind!r} is not one of {EVENT_FEATURE_KINDS}")
    if not spec.column:
        raise ModelSpecError(f"{where}: event_features.{name} needs a column")
    values = tuple(spec.values or ())
    if kind == "one_hot" and not values:
        raise ModelSpecError(f"{where}: event_features.{name}: one_hot needs its values")
    over = spec.over or ""
    if kind == "ratio" and "." not in over:
        raise ModelSpecError(f"{where}: event_features.{name}: ratio needs over: <feature_set>.<feature>")
    minutes = spec.minutes
    if kind in ("recent_count", "bucket_distinct") and (isinstance(minutes, bool) or not isinstance(minutes, int)
                                                        or minutes < 1):
        raise ModelSpecError(f"{where}: event_features.{name}: {kind} needs minutes: <a whole number >= 1>, "
                             f"got {minutes!r}")
    of = spec.of or ""
    if kind == "bucket_distinct" and not of:
        raise ModelSpecError(f"{where}: event_features.{name}: bucket_distinct needs of: <the column whose distinct "
                             "values are counted>")
    return EventFeature(name=name, kind=kind, column=spec.column, values=values, over=over,
                        minutes=int(minutes or 0), of=of)


def _check(where: str, spec: ModelSpec) -> None:
    t = spec.training
    if abs(sum(t.split) - 1.0) > 1e-6 or min(t.split) <= 0:
        raise ModelSpecError(f"{where}: training.split must be three positive shares summing to 1, got {t.split}")
    if not 0 < t.review_budget < 1:
        raise ModelSpecError(f"{where}: training.review_budget must be in (0, 1), got {t.review_budget}")
    if t.max_rounds < 1 or t.early_stopping_rounds < 1 or t.checkpoint_every < 1 or t.history_days < 1:
        raise ModelSpecError(f"{where}: training rounds, checkpoint interval and history_days must be positive")
    if t.class_weight not in CLASS_WEIGHTS:
        raise ModelSpecError(f"{where}: training.class_weight {t.class_weight!r} is not one of {CLASS_WEIGHTS}")
    if not 0 < t.negative_sample_rate <= 1:
        raise ModelSpecError(f"{where}: training.negative_sample_rate must be in (0, 1], got {t.negative_sample_rate}")
    if t.drift_retrain_cooldown_days < 0 or t.drift_retrain_budget < 0:
        raise ModelSpecError(f"{where}: training.drift_retrain cooldown_days and max_per_30_days must be >= 0")
    if t.retrain_every_days is not None and t.retrain_every_days < 1:
        raise ModelSpecError(f"{where}: training.retrain_every_days must be a whole number of days >= 1, "
                             f"got {t.retrain_every_days}")
    if not spec.feature_sets and not spec.event_features:
        raise ModelSpecError(f"{where}: a model needs feature_sets or event_features")
    for f in spec.event_features:
        if f.kind == "ratio" and f.over.split(".", 1)[0] not in spec.feature_sets:
            raise ModelSpecError(f"{where}: event_features.{f.name}.over names a feature set the model does not use")
    leaked = set(spec.protected_columns) & {f.column for f in spec.event_features}
    if leaked:
        raise ModelSpecError(f"{where}: protected attributes {sorted(leaked)} must never be model features")
    for combo in spec.intersections:
        unknown = set(combo) - set(spec.protected_columns)
        if unknown:
            raise ModelSpecError(f"{where}: protected_attributes.intersections names {sorted(unknown)}, "
                                 "which are not among its columns")
