"""Model risk policy: the shipped file, tier lookup, and validation errors naming the file and key."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlscale.governance import BiasThresholds, RiskPolicyError, load_risk_policy, parse_risk_policy
from mlscale.governance.risk_policy import PromotionSettings, default_risk_policy_path

SHIPPED = yaml.safe_load(default_risk_policy_path().read_text())


def doc_with(path: str, value: Any) -> dict[str, Any]:
    """The shipped policy with the dotted key ``path`` set to ``value`` (``...`` removes it)."""
    doc = copy.deepcopy(SHIPPED)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


def test_shipped_policy_is_valid_and_maps_models_to_tiers(caplog: pytest.LogCaptureFixture) -> None:
    policy = load_risk_policy()
    assert policy.source == str(default_risk_policy_path())
    assert default_risk_policy_path() == Path(__file__).resolve().parents[2] / "include/policies/model_risk.yaml"
    assert sorted(policy.tiers) == ["high", "low", "medium"]
    high = policy.tier_for("fraud_detector")
    assert high.name == "high"
    assert isinstance(high.bias, BiasThresholds)
    assert high.bias.min_demographic_parity_ratio == 0.8
    assert high.promotion.primary_metric == "pr_auc" and high.promotion.metric_tolerance == 0.01
    assert high.promotion.requires_human_approval is True
    assert policy.tiers["low"].promotion.requires_human_approval is False
    assert 0 < high.drift.max_psi and 0 <= high.drift.max_drifted_share <= 1
    with caplog.at_level(logging.WARNING):
        assert policy.tier_for("unlisted_model").name == "high"  # default_tier: the strictest
    assert "unlisted_model" in caplog.text
    assert policy.as_dict()["models"] == {"fraud_detector": "high"}


def test_promotion_tolerance() -> None:
    pr_auc = PromotionSettings(primary_metric="pr_auc", metric_tolerance=0.01, requires_human_approval=True)
    assert pr_auc.within_tolerance(0.705, 0.71) and not pr_auc.within_tolerance(0.69, 0.71)
    loss = PromotionSettings(primary_metric="log_loss", metric_tolerance=0.01, requires_human_approval=False)
    assert loss.within_tolerance(0.305, 0.3) and not loss.within_tolerance(0.32, 0.3)


@pytest.mark.parametrize(("path", "value", "message"), [
    ("models.fraud_detector", "hihg", "models.fraud_detector: unknown tier 'hihg' (tiers: high, low, medium)"),
    ("default_tier", "critical", "default_tier: unknown tier 'critical'"),
    ("tiers.high.bias.min_demographic_parity_ratio", 1.25,
     "tiers.high.bias.min_demographic_parity_ratio must be a number in [0, 1], got 1.25"),
    ("tiers.low.bias.max_equalized_odds_difference", -0.1,
     "tiers.low.bias.max_equalized_odds_difference must be a number in [0, 1]"),
    ("tiers.medium.drift.max_drifted_share", 3, "tiers.medium.drift.max_drifted_share must be a number in [0, 1]"),
    ("tiers.high.bias.min_group_size", -5, "tiers.high.bias.min_group_size must be a whole number >= 1, got -5"),
    ("tiers.high.bias.min_class_count", 2.5, "tiers.high.bias.min_class_count must be a whole number >= 1"),
    ("tiers.high.bias.bootstrap_samples", 20, "tiers.high.bias.bootstrap_samples must be a whole number >= 100"),
    ("tiers.high.bias.ci_level", 1.0, "tiers.high.bias.ci_level must be strictly between 0 and 1"),
    ("tiers.high.bias.max_demographic_parity_difference", True,
     "tiers.high.bias.max_demographic_parity_difference must be a number in [0, 1], got True"),
    ("tiers.high.bias.max_dp_difference", 0.1,
     "tiers.high.bias.max_dp_difference: unknown key 'max_dp_difference' in tiers.high.bias (allowed: "
     "bootstrap_samples, ci_level, judged_on, max_demographic_parity_difference,"),
    ("tiers.high.drift.max_psi", 0, "tiers.high.drift.max_psi must be a number > 0"),
    ("tiers.high.promotion.requires_human_approval", "yes",
     "tiers.high.promotion.requires_human_approval must be true or false"),
    ("tiers.high.promotion.primary_metric", "PR AUC", "tiers.high.promotion.primary_metric must be a metric name"),
    ("tiers.high.promotion.metric_tolerance", ...,
     "tiers.high.promotion.metric_tolerance: missing required key 'metric_tolerance' in tiers.high.promotion"),
    ("tiers.high.owner", "risk",
     "tiers.high.owner: unknown key 'owner' in tiers.high (allowed: bias, description, drift, promotion)"),
    ("tiers.low", [1, 2], "tiers.low must be a mapping"),
    ("model", {"x": "high"}, "model: unknown key 'model' (allowed: default_tier, models, tiers, version)"),
    ("tiers.high.drift.monitor", {"window_days": 5}, "tiers.high.drift.monitor.window_days: unknown key"),
    ("version", 2, "version: unsupported 2"),
    ("tiers.high.drift.evidently_report", "daily",
     "tiers.high.drift.evidently_report must be one of ['always', 'on_alarm', 'never'], got 'daily'"),
])
def test_validation_errors_name_file_and_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(RiskPolicyError) as err:
        parse_risk_policy(doc_with(path, value), "model_risk.yaml")
    assert str(err.value).startswith("model_risk.yaml: ")
    assert message in str(err.value)


def test_evidently_report_defaults_to_alarm_days() -> None:
    from mlscale.governance.monitor import _renders_evidently

    tier = parse_risk_policy(doc_with("tiers.high.drift.evidently_report", "always"), "p").tiers["high"]
    assert tier.drift.evidently_report == "always"
    assert parse_risk_policy(doc_with("version", 1), "p").tiers["low"].drift.evidently_report == "on_alarm"
    assert _renders_evidently("on_alarm", True) and not _renders_evidently("on_alarm", False)
    assert _renders_evidently("always", False) and not _renders_evidently("never", True)


def test_unknown_model_without_default_tier_is_an_error() -> None:
    policy = parse_risk_policy(doc_with("default_tier", ...), "p.yaml")
    assert policy.tier_for("fraud_detector").name == "high"
    with pytest.raises(RiskPolicyError, match=r"p.yaml: model 'churn' has no tier .* add `churn: <tier>`"):
        policy.tier_for("churn")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "risk.yaml"
    bad.write_text("tiers: [unclosed")
    with pytest.raises(RiskPolicyError, match=f"{bad} is not valid YAML"):
        load_risk_policy(bad)
    with pytest.raises(RiskPolicyError, match="does not exist"):
        load_risk_policy(tmp_path / "missing.yaml")
    bad.write_text(yaml.safe_dump(doc_with("tiers.medium.bias.min_demographic_parity_ratio", 80)))
    with pytest.raises(RiskPolicyError, match=f"{bad}: tiers.medium.bias.min_demographic_parity_ratio"):
        load_risk_policy(bad)
    good = tmp_path / "ok.yaml"
    good.write_text(yaml.safe_dump(doc_with("models.churn_model", "low")))
    assert load_risk_policy(str(good)).tier_for("churn_model").name == "low"
