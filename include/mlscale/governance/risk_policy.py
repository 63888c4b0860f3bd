"""Model risk policy: loaded from ``include/policies/model_risk.yaml`` and validated.

A policy names risk tiers (bias-audit thresholds, promotion settings, drift limits) and maps each model
to a tier. Loading guarantees a complete, consistent policy: every tier has every setting, shares and
ratios lie in 0..1, sizes are positive whole numbers, every model names a defined tier, and no key is
unknown (a typo is an error, not a silently ignored setting). Every error names the file and the key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import create_model

from mlscale.config_schema import StrictModel, validated
from mlscale.errors import NotRetryable
from mlscale.governance.bias_thresholds import JUDGED_ON, BiasThresholds
from mlscale.layout import config_dir
from mlscale.monitoring.rolling import RollingSettings

logger = logging.getLogger(__name__)


#: holdout metrics where smaller is better; every other primary metric is higher-is-better
LOWER_IS_BETTER = frozenset({"log_loss", "brier_score"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_METRIC = re.compile(r"^[a-z][a-z0-9_]*$")


class RiskPolicyError(ValueError, NotRetryable):
    """The model risk policy is invalid; the message names the file, the key and what to change."""


# The shape of a policy file: its keys (a key without a default is required) and nesting. Values are checked by
# parse_tier and parse_risk_policy, whose messages say what to change (hence ``Any``).
class BiasDoc(StrictModel):
    max_demographic_parity_difference: Any
    min_demographic_parity_ratio: Any
    max_equalized_odds_difference: Any
    min_group_size: Any
    min_class_count: Any
    ci_level: Any
    bootstrap_samples: Any
    judged_on: Any = None


class PromotionDoc(StrictModel):
    primary_metric: Any
    metric_tolerance: Any
    requires_human_approval: Any


_ROLLING_FIELDS: dict[str, Any] = {f.name: (Any, None) for f in fields(RollingSettings)}
#: the daily monitor's settings: any field of RollingSettings
RollingDoc = create_model("RollingDoc", __base__=StrictModel, **_ROLLING_FIELDS)


class DriftDoc(StrictModel):
    max_psi: Any
    max_drifted_share: Any
    monitor: RollingDoc | None = None  # type: ignore[valid-type]  # a model built from RollingSettings' fields
    evidently_report: Any = None


class TierDoc(StrictModel):
    description: Any = None
    bias: BiasDoc
    promotion: PromotionDoc
    drift: DriftDoc


class RiskPolicyDoc(StrictModel):
    version: Any = None
    default_tier: Any = None
    tiers: dict[Any, TierDoc]        # tier name -> settings (names checked by parse_risk_policy)
    models: dict[Any, Any] | None    # model name -> tier name


@dataclass(frozen=True)
class PromotionSettings:
    """Champion/challenger gate: a candidate may lose at most ``metric_tolerance`` of ``primary_metric``."""

    primary_metric: str
    metric_tolerance: float
    requires_human_approval: bool

    @property
    def higher_is_better(self) -> bool:
        return self.primary_metric not in LOWER_IS_BETTER

    def within_tolerance(self, candidate: float, champion: float) -> bool:
        """True when ``candidate`` is no worse than ``champion`` by more than the tolerance."""
        if self.higher_is_better:
            return candidate >= champion - self.metric_tolerance
        return candidate <= champion + self.metric_tolerance


#: always: every day; on_alarm: days the monitor raises drift (Evidently takes seconds a day, and a reviewer
#: reads it when there is something to explain); never
EVIDENTLY_REPORTS = ("always", "on_alarm", "never")


@dataclass(frozen=True)
class DriftSettings:
    """Against the training reference (the promotion gate): a feature drifted when its PSI exceeds ``max_psi``;
    the reference is drifted when the drifted share exceeds the limit. The daily monitor compares each day
    with a rolling reference of recent days instead, with thresholds learnt from them (``monitor``)."""

    max_psi: float
    max_drifted_share: float
    monitor: RollingSettings = field(default_factory=RollingSettings)
    evidently_report: str = "on_alarm"   #: when the daily monitor renders Evidently's report (EVIDENTLY_REPORTS)


@dataclass(frozen=True)
class RiskTier:
    name: str
    bias: BiasThresholds
    promotion: PromotionSettings
    drift: DriftSettings
    description: str = ""

    @property
    def rolling(self) -> RollingSettings:
        """The daily drift monitor's settings (``drift.monitor``)."""
        return self.drift.monitor

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RiskPolicy:
    tiers: Mapping[str, RiskTier]
    models: Mapping[str, str] = field(default_factory=dict)
    default_tier: str | None = None
    source: str = ""

    def tier_for(self, model_name: str) -> RiskTier:
        """The tier ``models`` assigns to ``model_name``, else ``default_tier``; unknown without one is an error."""
        name = self.models.get(model_name)
        if name is None:
            if self.default_tier is None:
                raise RiskPolicyError(f"{self.source}: model {model_name!r} has no tier under `models` and there "
                                      f"is no `default_tier`; add `{model_name}: <tier>` to `models`")
            logger.warning("%s: model %r is not listed; using default tier %r", self.source, model_name,
                           self.default_tier)
            name = self.default_tier
        return self.tiers[name]

    def as_dict(self) -> dict[str, Any]:
        return {"tiers": {k: t.as_dict() for k, t in self.tiers.items()}, "models": dict(self.models),
                "default_tier": self.default_tier, "source": self.source}


def _rolling(doc: Mapping[str, Any], where: str) -> RollingSettings:
    """The daily monitor's settings: any of :class:`RollingSettings`' fields, positive numbers."""
    out: dict[str, Any] = {}
    defaults = RollingSettings()
    for key, number in doc.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
            raise RiskPolicyError(f"{where}.{key} must be a number > 0, got {number!r}")
        out[key] = int(number) if isinstance(getattr(defaults, key), int) else float(number)
    return RollingSettings(**out)


def _judged_on(value: Any, where: str) -> str:
    if value not in JUDGED_ON:
        raise RiskPolicyError(f"{where} must be one of {list(JUDGED_ON)}, got {value!r}")
    return str(value)


def _share(value: Any, where: str, *, open_interval: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and open_interval:
        ok = 0 < value < 1
    elif ok:
        ok = 0 <= value <= 1
    if not ok:
        bounds = "strictly between 0 and 1" if open_interval else "a number in [0, 1]"
        raise RiskPolicyError(f"{where} must be {bounds}, got {value!r}")
    return float(value)


def _positive(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RiskPolicyError(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return value


def parse_tier(name: str, doc: Mapping[str, Any], where: str) -> RiskTier:
    """Check the values of one tier document of the shape :class:`TierDoc`; ``where`` is ``<file>: tiers.<name>``."""
    b = doc["bias"]
    bias = BiasThresholds(
        max_demographic_parity_difference=_share(
            b["max_demographic_parity_difference"], f"{where}.bias.max_demographic_parity_difference"),
        min_demographic_parity_ratio=_share(
            b["min_demographic_parity_ratio"], f"{where}.bias.min_demographic_parity_ratio"),
        max_equalized_odds_difference=_share(
            b["max_equalized_odds_difference"], f"{where}.bias.max_equalized_odds_difference"),
        min_group_size=_positive(b["min_group_size"], f"{where}.bias.min_group_size"),
        min_class_count=_positive(b["min_class_count"], f"{where}.bias.min_class_count"),
        ci_level=_share(b["ci_level"], f"{where}.bias.ci_level", open_interval=True),
        bootstrap_samples=_positive(b["bootstrap_samples"], f"{where}.bias.bootstrap_samples", minimum=100),
        judged_on=_judged_on(b.get("judged_on", "interval"), f"{where}.bias.judged_on"),
    )
    p = doc["promotion"]
    metric = p["primary_metric"]
    if not isinstance(metric, str) or not _METRIC.match(metric):
        raise RiskPolicyError(f"{where}.promotion.primary_metric must be a metric name like pr_auc, got {metric!r}")
    approval = p["requires_human_approval"]
    if not isinstance(approval, bool):
        raise RiskPolicyError(f"{where}.promotion.requires_human_approval must be true or false, got {approval!r}")
    promotion = PromotionSettings(
        primary_metric=metric, requires_human_approval=approval,
        metric_tolerance=_share(p["metric_tolerance"], f"{where}.promotion.metric_tolerance"))
    d = doc["drift"]
    psi = d["max_psi"]
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or psi <= 0:
        raise RiskPolicyError(f"{where}.drift.max_psi must be a number > 0, got {psi!r}")
    evidently = d.get("evidently_report") or "on_alarm"
    if evidently not in EVIDENTLY_REPORTS:
        raise RiskPolicyError(f"{where}.drift.evidently_report must be one of {list(EVIDENTLY_REPORTS)}, "
                              f"got {evidently!r}")
    drift = DriftSettings(max_psi=float(psi),
                          max_drifted_share=_share(d["max_drifted_share"], f"{where}.drift.max_drifted_share"),
                          monitor=_rolling(d.get("monitor") or {}, f"{where}.drift.monitor"),
                          evidently_report=str(evidently))
    return RiskTier(name=name, bias=bias, promotion=promotion, drift=drift,
                    description=str(doc.get("description") or ""))


def parse_risk_policy(doc: Any, source: str = "<model risk policy>") -> RiskPolicy:
    """Validate a parsed policy document; raise :class:`RiskPolicyError` naming ``source`` and the key."""
    validated(RiskPolicyDoc, doc, source, RiskPolicyError)
    if doc.get("version", 1) != 1:
        raise RiskPolicyError(f"{source}: version: unsupported {doc.get('version')!r} (this code reads 1)")
    raw_tiers = doc["tiers"]
    if not isinstance(raw_tiers, Mapping) or not raw_tiers:
        raise RiskPolicyError(f"{source}: tiers must be a non-empty mapping of tier name to settings")
    tiers: dict[str, RiskTier] = {}
    for name, tier_doc in raw_tiers.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise RiskPolicyError(f"{source}: tiers: {name!r} is not a valid tier name")
        tiers[name] = parse_tier(name, tier_doc, f"{source}: tiers.{name}")
    known = ", ".join(sorted(tiers))
    raw_models = doc["models"] or {}
    if not isinstance(raw_models, Mapping):
        raise RiskPolicyError(f"{source}: models must be a mapping of model name to tier, got {raw_models!r}")
    models: dict[str, str] = {}
    for model, tier in raw_models.items():
        if not isinstance(model, str) or not _NAME.match(model):
            raise RiskPolicyError(f"{source}: models: {model!r} is not a valid model name")
        if tier not in tiers:
            raise RiskPolicyError(f"{source}: models.{model}: unknown tier {tier!r} (tiers: {known})")
        models[model] = tier
    default = doc.get("default_tier")
    if default is not None and default not in tiers:
        raise RiskPolicyError(f"{source}: default_tier: unknown tier {default!r} (tiers: {known})")
    return RiskPolicy(tiers=tiers, models=models, default_tier=default, source=source)


def default_risk_policy_path() -> Path:
    return config_dir("policies") / "model_risk.yaml"


def load_risk_policy(path: str | Path | None = None) -> RiskPolicy:
    """Read and validate a risk policy file (default: the project's ``include/policies/model_risk.yaml``)."""
    import yaml

    path = Path(path) if path is not None else default_risk_policy_path()
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise RiskPolicyError(f"model risk policy file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise RiskPolicyError(f"{path} is not valid YAML: {exc}") from exc
    policy = parse_risk_policy(doc, str(path))
    logger.info("model risk policy %s: tiers %s, %d models", path, sorted(policy.tiers), len(policy.models))
    return policy
