"""The serving policy (``include/policies/serving.yaml``): routing shares, shadows, cache, log and fallback.

``defaults`` apply to every model; ``models.<name>`` overrides any of them for one model. Versions never appear
here: they come from the registry aliases and the rollout record (:mod:`mlscale.serving.rollout`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from mlscale.config_schema import StrictModel, load_yaml_document
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

DECISIONS = ("review", "pass")
VARIANTS = ("full", "compressed")


class ServingPolicyError(ValueError, NotRetryable):
    """The serving policy file is invalid; the message names the file and the key."""


class CacheDoc(StrictModel):
    ttl_s: float = Field(default=60.0, ge=0)
    max_entries: int = Field(default=100_000, ge=0)


class LogDoc(StrictModel):
    sample_rate: float = Field(default=0.01, ge=0, le=1)
    flush_rows: int = Field(default=2000, ge=1)
    flush_s: float = Field(default=5.0, gt=0)
    buffer_rows: int = Field(default=200_000, ge=1)


class FallbackDoc(StrictModel):
    decision: str = "review"


class AbDoc(StrictModel):
    challenger: float = Field(default=0.0, ge=0, le=1)


class ModelPolicyDoc(StrictModel):
    refresh_s: float | None = Field(default=None, gt=0)
    sticky_by: str | None = None
    ab: AbDoc | None = None
    shadow: list[str] | None = None
    cache: CacheDoc | None = None
    log: LogDoc | None = None
    fallback: FallbackDoc | None = None
    warmup_rows: int | None = Field(default=None, ge=1)
    variant: str | None = None


class ServingPolicyDoc(StrictModel):
    defaults: ModelPolicyDoc = ModelPolicyDoc()
    models: dict[str, ModelPolicyDoc] = {}


@dataclass(frozen=True)
class ModelServingPolicy:
    model: str
    refresh_s: float = 10.0
    sticky_by: str = "customer_id"
    challenger_share: float = 0.0
    shadow: tuple[str, ...] = ("challenger",)
    cache_ttl_s: float = 60.0
    cache_entries: int = 100_000
    log_sample_rate: float = 0.01
    log_flush_rows: int = 2000
    log_flush_s: float = 5.0
    log_buffer_rows: int = 200_000
    fallback_decision: str = "review"
    warmup_rows: int = 256
    variant: str = "full"          #: full, or compressed (each version's variant when it has one)
    source: str = ""

    def arm_position(self, value: Any) -> float:
        """A stable position in [0, 1) for a sticky value: the same caller always lands in the same arm."""
        digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64


def default_serving_policy_path() -> Path:
    return config_dir("policies") / "serving.yaml"


def load_serving_policy(model: str, path: str | Path | None = None) -> ModelServingPolicy:
    """The policy of ``model``: the file's ``defaults`` overridden by its ``models.<model>`` entry."""
    path = Path(path) if path is not None else default_serving_policy_path()
    doc = load_yaml_document(path, ServingPolicyDoc, ServingPolicyError, "serving policy file")
    merged: dict[str, Any] = {}
    for level in (doc.defaults, doc.models.get(model)):
        if level is not None:
            merged.update({k: v for k, v in level.model_dump().items() if v is not None})
    flat: dict[str, Any] = {k: merged[k] for k in ("refresh_s", "sticky_by", "warmup_rows", "variant") if k in merged}
    if "ab" in merged:
        flat["challenger_share"] = merged["ab"]["challenger"]
    if "shadow" in merged:
        flat["shadow"] = tuple(merged["shadow"])
    if "cache" in merged:
        flat.update(cache_ttl_s=merged["cache"]["ttl_s"], cache_entries=merged["cache"]["max_entries"])
    if "log" in merged:
        flat.update({f"log_{k}": v for k, v in merged["log"].items()})
    if "fallback" in merged:
        flat["fallback_decision"] = merged["fallback"]["decision"]
    policy = ModelServingPolicy(model=model, source=str(path), **flat)
    if policy.variant not in VARIANTS:
        raise ServingPolicyError(f"{path}: variant {policy.variant!r} is not one of {', '.join(VARIANTS)}")
    if policy.fallback_decision not in DECISIONS:
        raise ServingPolicyError(f"{path}: fallback.decision {policy.fallback_decision!r} is not one of "
                                 f"{', '.join(DECISIONS)}")
    return policy
