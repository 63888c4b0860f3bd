"""Model governance: the model risk policy and the bias audit.

:mod:`~mlscale.governance.risk_policy` (risk tiers and the model-to-tier map, validated on load),
:mod:`~mlscale.governance.bias` (group metrics, bootstrap intervals, disparities and a verdict) and
:mod:`~mlscale.governance.bias_report` (the audit's HTML page).
"""

from mlscale.governance.bias import BiasAudit, BiasAuditError, BiasThresholds, audit_bias
from mlscale.governance.bias_report import render_bias_html
from mlscale.governance.risk_policy import (
    DriftSettings,
    PromotionSettings,
    RiskPolicy,
    RiskPolicyError,
    RiskTier,
    load_risk_policy,
    parse_risk_policy,
)

__all__ = [
    "BiasAudit", "BiasAuditError", "BiasThresholds", "DriftSettings", "PromotionSettings", "RiskPolicy",
    "RiskPolicyError", "RiskTier", "audit_bias", "load_risk_policy", "parse_risk_policy", "render_bias_html",
]
