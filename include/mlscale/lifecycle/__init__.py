"""Storage lifecycle: retention, legal holds, lineage protection, cold tier, orphans, idle resources, cost.

Modules, one concept each: :mod:`~mlscale.lifecycle.policy` (the policy file, validated),
:mod:`~mlscale.lifecycle.holds` (legal holds, S3 Object Lock), :mod:`~mlscale.lifecycle.lineage`
(references of registered model versions), :mod:`~mlscale.lifecycle.listing` (paged, counted listings),
:mod:`~mlscale.lifecycle.plan` (decisions), :mod:`~mlscale.lifecycle.apply` (acting, re-checked),
:mod:`~mlscale.lifecycle.tiering` (S3 lifecycle rules and tags; the local ``cold/`` root),
:mod:`~mlscale.lifecycle.idle` (EC2/EBS), :mod:`~mlscale.lifecycle.audit` (append-only log) and
:mod:`~mlscale.lifecycle.cost` (the cost report).
"""

from mlscale.lifecycle.actions import Action, LifecyclePlan
from mlscale.lifecycle.apply import ApplyFailed, ApplyResult, apply_plan
from mlscale.lifecycle.audit import AuditLog, read_audit
from mlscale.lifecycle.cost import build_cost_report
from mlscale.lifecycle.holds import HoldError, HoldSet, LegalHold, load_holds
from mlscale.lifecycle.lineage import LineageError, LineageRefs, load_lineage
from mlscale.lifecycle.listing import LakeLister, aws_client
from mlscale.lifecycle.plan import PlanError, build_plan
from mlscale.lifecycle.policy import Policy, PolicyError, Rule, load_policy, parse_policy

__all__ = [
    "Action", "ApplyFailed", "ApplyResult", "AuditLog", "HoldError", "HoldSet", "LakeLister", "LegalHold",
    "LifecyclePlan", "LineageError", "LineageRefs", "PlanError", "Policy", "PolicyError", "Rule", "apply_plan",
    "aws_client", "build_cost_report", "build_plan", "load_holds", "load_lineage", "load_policy",
    "parse_policy", "read_audit",
]
