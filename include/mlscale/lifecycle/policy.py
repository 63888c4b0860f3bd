"""Retention, tiering and price policy: loaded from ``include/policies/retention.yaml`` and validated.

A policy is data (see the YAML file's header for the meaning of every field). Validation refuses what
would make the lifecycle DAG do something nobody meant: a legal minimum longer than the regulatory
maximum, a cold-tier move after the deletion, a quarantine kept forever, a storage class readers cannot
read without a restore, a rule that shadows another. Every error names the file and the rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlscale.config_schema import StrictModel, validated
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

logger = logging.getLogger(__name__)


#: zones whose day partitions are committed by manifests (retention deletes through the manifest)
PARTITIONED_ZONES = ("raw", "quarantine", "features", "training", "predictions")
#: zones of immutable drops without manifests (retention deletes whole day directories)
DROP_ZONES = ("landing",)
#: every zone the lifecycle DAG manages; ``_meta`` (audit, run logs), ``reports`` and ``cold`` are not rule targets
MANAGED_ZONES = (*DROP_ZONES, *PARTITIONED_ZONES, "checkpoints", "models")
#: S3 storage classes objects can be read from without a restore, so manifests keep working
INSTANT_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "INTELLIGENT_TIERING")
IA_MINIMUM_DAYS = 30  # S3 refuses transitions to STANDARD_IA / ONEZONE_IA before 30 days
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.:/=+\-@ ]{1,256}$")


class PolicyError(ValueError, NotRetryable):
    """The retention policy is inconsistent; the message names the file, the rule and the fix."""


@dataclass(frozen=True)
class Rule:
    """What happens to the data of ``zone``/``datasets`` as it ages (ages in days, see the module doc)."""

    name: str
    zone: str
    datasets: tuple[str, ...] = ("*",)
    classification: str = ""
    delete_after_days: int | None = None
    min_keep_days: int = 0
    cold_after_days: int | None = None
    storage_class: str = ""

    def applies_to(self, zone: str, dataset: str) -> bool:
        return zone == self.zone and ("*" in self.datasets or dataset in self.datasets)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prices:
    """USD (or ``currency``) per GB-month by tier and by S3 storage class."""

    currency: str = "USD"
    hot: float = 0.023
    cold: float = 0.004
    storage_classes: Mapping[str, float] = field(default_factory=dict)
    ebs_gb_month: float = 0.08
    snapshot_gb_month: float = 0.05

    def per_gb_month(self, tier: str, storage_class: str = "") -> float:
        if storage_class and storage_class in self.storage_classes:
            return float(self.storage_classes[storage_class])
        return self.hot if tier == "hot" else self.cold


@dataclass(frozen=True)
class IdlePolicy:
    volume_min_age_days: int = 7
    instance_idle_days: int = 3
    snapshot_max_age_days: int = 90
    worker_tag_key: str = "mlscale:role"
    worker_tag_values: tuple[str, ...] = ("dask-worker", "spark-worker")
    owner_tag_key: str = "mlscale:platform"
    owner_tag_value: str = "mlscale"


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    prices: Prices = Prices()
    cold_storage_class: str = "GLACIER_IR"
    noncurrent_version_days: int = 30
    abort_multipart_days: int = 7
    orphan_grace_hours: float = 48.0
    small_file_bytes: int = 8 * 2**20
    delete_unrecorded_models: bool = False
    idle: IdlePolicy = IdlePolicy()
    source: str = ""

    def rule_for(self, zone: str, dataset: str) -> Rule | None:
        """The rule naming ``dataset`` in ``zone``, else the zone's ``*`` rule, else None (keep forever)."""
        fallback = None
        for rule in self.rules:
            if rule.zone != zone:
                continue
            if dataset in rule.datasets:
                return rule
            if "*" in rule.datasets:
                fallback = rule
        return fallback

    def storage_class_of(self, rule: Rule) -> str:
        return rule.storage_class or self.cold_storage_class

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["prices"]["storage_classes"] = dict(self.prices.storage_classes)
        return doc


# The shape of a policy file: its keys, nesting and value types. parse_policy and parse_rule then check the values
# with messages that say what to change (``Any``: a value only they can judge).
class RuleDoc(StrictModel):
    name: str | None = None
    zone: str | None = None
    datasets: Any = None                    # a dataset name or a list of them
    classification: str | None = None
    delete_after_days: int | None = None
    min_keep_days: int | None = None
    cold_after_days: int | None = None
    storage_class: str | None = None


class PricesDoc(StrictModel):
    currency: str | None = None
    hot: float | None = None
    cold: float | None = None
    storage_classes: dict[str, float] | None = None     # S3 storage class -> price
    ebs_gb_month: float | None = None
    snapshot_gb_month: float | None = None


class ColdTierDoc(StrictModel):
    storage_class: str | None = None
    noncurrent_version_days: int | None = None
    abort_multipart_days: int | None = None


class WorkerTagDoc(StrictModel):
    key: str | None = None
    values: list[str] | None = None


class OwnerTagDoc(StrictModel):
    key: str | None = None
    value: str | None = None


class IdleDoc(StrictModel):
    volume_min_age_days: int | None = None
    instance_idle_days: int | None = None
    snapshot_max_age_days: int | None = None
    worker_tag: WorkerTagDoc | None = None
    owner_tag: OwnerTagDoc | None = None


class OrphansDoc(StrictModel):
    grace_hours: float | None = None


class ModelsDoc(StrictModel):
    delete_unrecorded: Any = None


class PolicyDoc(StrictModel):
    version: Any = None
    prices: PricesDoc | None = None
    cold_tier: ColdTierDoc | None = None
    orphans: OrphansDoc | None = None
    small_file_bytes: int | None = None
    models: ModelsDoc | None = None
    idle: IdleDoc | None = None
    rules: list[RuleDoc] | None = None


def _int(value: Any, what: str, where: str, minimum: int = 0, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError(f"{where}: {what} must be a whole number >= {minimum}, got {value!r}")
    return value


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PolicyError(f"{where}: {what} must be a number >= 0, got {value!r}")
    return float(value)


def parse_rule(doc: Any, where: str, default_class: str) -> Rule:
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{where}: a rule must be a mapping, got {doc!r}")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where}: every rule needs a `name`")
    where = f"{where} rule {name!r}"
    zone = doc.get("zone")
    if zone not in MANAGED_ZONES:
        raise PolicyError(f"{where}: zone {zone!r} is not one the lifecycle manages ({', '.join(MANAGED_ZONES)})")
    datasets = doc.get("datasets", ["*"])
    if isinstance(datasets, str):
        datasets = [datasets]
    if not datasets or not all(isinstance(d, str) and d for d in datasets):
        raise PolicyError(f"{where}: `datasets` must be a list of dataset names or [\"*\"]")
    classification = str(doc.get("classification") or "")
    if classification and not _TAG_VALUE.match(classification):
        raise PolicyError(f"{where}: classification {classification!r} is not a valid S3 tag value")
    rule = Rule(
        name=name, zone=zone, datasets=tuple(datasets), classification=classification,
        delete_after_days=_int(doc.get("delete_after_days"), "delete_after_days", where, minimum=1),
        min_keep_days=_int(doc.get("min_keep_days", 0) or 0, "min_keep_days", where, optional=False) or 0,
        cold_after_days=_int(doc.get("cold_after_days"), "cold_after_days", where, minimum=1),
        storage_class=str(doc.get("storage_class") or ""),
    )
    check_rule(rule, where, default_class)
    return rule


def check_rule(rule: Rule, where: str, default_class: str) -> None:
    """Contradictions inside one rule (see the module docstring)."""
    n, k, m = rule.delete_after_days, rule.min_keep_days, rule.cold_after_days
    if n is not None and k > n:
        raise PolicyError(f"{where}: min_keep_days {k} (legal minimum) > delete_after_days {n} (regulatory "
                          "maximum): no day could satisfy both; fix one of them")
    if n is not None and m is not None and m > n:
        raise PolicyError(f"{where}: cold_after_days {m} > delete_after_days {n}: data would be deleted before "
                          "it moves to the cold tier; lower cold_after_days or drop it")
    if rule.zone == "quarantine" and n is None:
        raise PolicyError(f"{where}: quarantine data must be kept short: set delete_after_days")
    if rule.zone == "checkpoints" and (n is None or m is not None):
        raise PolicyError(f"{where}: checkpoints take delete_after_days (days after the run finished) and "
                          "no cold_after_days")
    if rule.zone == "models" and (n is not None or m is not None or k):
        raise PolicyError(f"{where}: model artifacts are kept while a registered version references them; "
                          "remove delete_after_days/min_keep_days/cold_after_days")
    if rule.zone in DROP_ZONES and m is not None:
        raise PolicyError(f"{where}: {rule.zone} has no manifests, so files moved to the cold tier would "
                          "vanish for their readers; remove cold_after_days")
    storage_class = rule.storage_class or default_class
    if m is not None:
        if storage_class not in INSTANT_CLASSES:
            raise PolicyError(f"{where}: storage class {storage_class!r} needs a restore before reads; use one "
                              f"of {', '.join(INSTANT_CLASSES)}")
        if storage_class in ("STANDARD_IA", "ONEZONE_IA") and m < IA_MINIMUM_DAYS:
            raise PolicyError(f"{where}: S3 refuses {storage_class} transitions before {IA_MINIMUM_DAYS} days "
                              f"(cold_after_days {m}); use GLACIER_IR or a later day")
        if not rule.classification:
            raise PolicyError(f"{where}: a rule with cold_after_days needs a `classification` (S3 transitions "
                              "select objects by their classification tag)")


def check_rules(rules: list[Rule], where: str) -> None:
    """Contradictions between rules: two rules claiming the same dataset of a zone."""
    owners: dict[tuple[str, str], str] = {}
    for rule in rules:
        for dataset in rule.datasets:
            other = owners.get((rule.zone, dataset))
            if other is not None:
                raise PolicyError(f"{where}: rules {other!r} and {rule.name!r} both claim "
                                  f"{rule.zone}/{dataset}; merge them or name different datasets")
            owners[(rule.zone, dataset)] = rule.name
    names = [r.name for r in rules]
    if len(names) != len(set(names)):
        raise PolicyError(f"{where}: rule names must be unique, got {sorted(n for n in names if names.count(n) > 1)}")


def parse_policy(doc: Any, source: str = "<policy>") -> Policy:
    """Validate a policy document (the parsed YAML); raise :class:`PolicyError` naming the problem."""
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{source}: expected a mapping at the top level")
    validated(PolicyDoc, doc, source, PolicyError)
    if doc.get("version", 1) != 1:
        raise PolicyError(f"{source}: unsupported policy version {doc.get('version')!r} (this code reads 1)")
    cold = doc.get("cold_tier") or {}
    default_class = str(cold.get("storage_class", "GLACIER_IR"))
    if default_class not in INSTANT_CLASSES:
        raise PolicyError(f"{source}: cold_tier.storage_class {default_class!r} needs a restore before reads; "
                          f"use one of {', '.join(INSTANT_CLASSES)}")
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PolicyError(f"{source}: `rules` must be a non-empty list")
    rules = [parse_rule(r, source, default_class) for r in raw_rules]
    check_rules(rules, source)
    p = doc.get("prices") or {}
    prices = Prices(
        currency=str(p.get("currency", "USD")),
        hot=_number(p.get("hot", 0.023), "prices.hot", source),
        cold=_number(p.get("cold", 0.004), "prices.cold", source),
        storage_classes={str(k): _number(v, f"prices.storage_classes.{k}", source)
                         for k, v in (p.get("storage_classes") or {}).items()},
        ebs_gb_month=_number(p.get("ebs_gb_month", 0.08), "prices.ebs_gb_month", source),
        snapshot_gb_month=_number(p.get("snapshot_gb_month", 0.05), "prices.snapshot_gb_month", source),
    )
    if prices.cold > prices.hot:
        logger.warning("%s: the cold tier (%.4f) is priced above the hot tier (%.4f)", source, prices.cold, prices.hot)
    i = doc.get("idle") or {}
    worker, owner = i.get("worker_tag") or {}, i.get("owner_tag") or {}
    idle = IdlePolicy(
        volume_min_age_days=_int(i.get("volume_min_age_days", 7), "idle.volume_min_age_days", source,
                                 optional=False) or 0,
        instance_idle_days=_int(i.get("instance_idle_days", 3), "idle.instance_idle_days", source,
                                optional=False) or 0,
        snapshot_max_age_days=_int(i.get("snapshot_max_age_days", 90), "idle.snapshot_max_age_days", source,
                                   optional=False) or 0,
        worker_tag_key=str(worker.get("key", "mlscale:role")),
        worker_tag_values=tuple(str(v) for v in worker.get("values", ("dask-worker", "spark-worker"))),
        owner_tag_key=str(owner.get("key", "mlscale:platform")),
        owner_tag_value=str(owner.get("value", "mlscale")),
    )
    grace = (doc.get("orphans") or {}).get("grace_hours", 48)
    return Policy(
        rules=tuple(rules), prices=prices, cold_storage_class=default_class,
        noncurrent_version_days=_int(cold.get("noncurrent_version_days", 30), "cold_tier.noncurrent_version_days",
                                     source, minimum=1, optional=False) or 30,
        abort_multipart_days=_int(cold.get("abort_multipart_days", 7), "cold_tier.abort_multipart_days", source,
                                  minimum=1, optional=False) or 7,
        orphan_grace_hours=_number(grace, "orphans.grace_hours", source),
        small_file_bytes=_int(doc.get("small_file_bytes", 8 * 2**20), "small_file_bytes", source,
                              optional=False) or 0,
        delete_unrecorded_models=bool((doc.get("models") or {}).get("delete_unrecorded", False)),
        idle=idle, source=source,
    )


def default_policy_path() -> Path:
    return config_dir("policies") / "retention.yaml"


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (default ``include/policies/retention.yaml``)."""
    import yaml

    path = Path(path) if path is not None else default_policy_path()
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path} is not valid YAML: {exc}") from exc
    policy = parse_policy(doc, str(path))
    logger.info("policy %s: %d rules", path, len(policy.rules))
    return policy
