"""Which models score a day: the registry's ``champion`` (required) and ``challenger`` (optional, in shadow).

The versions are resolved once per run from the registry aliases and loaded from the lake
(``models/<model>/<version>/``); the run records them, so a rerun of a day after the aliases moved scores
with the new versions and says so. Each model decides at its own operating point: the ``threshold`` given
to the run, else its holdout ``threshold_at_budget`` (the score above which the review budget is spent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mlscale.errors import NotRetryable
from mlscale.lake import Lake
from mlscale.training import registry
from mlscale.training.model import StoredModel, model_prefix

logger = logging.getLogger(__name__)

CHAMPION_ROLE = "champion"
SHADOW_ROLE = "shadow"


class NoChampionError(LookupError, NotRetryable):
    """The registry has no ``champion`` for the model: nothing may be scored for decisions."""


class ModelFilesMissing(FileNotFoundError, NotRetryable):
    """A registered version has no model files in the lake."""


class ThresholdMissing(ValueError, NotRetryable):
    """No threshold was given and the model card holds no ``holdout.threshold_at_budget``."""


@dataclass(frozen=True)
class ScoringModel:
    """One model of a run: its role (``champion`` or ``shadow``), the loaded model and its threshold."""

    role: str
    model: StoredModel
    threshold: float
    threshold_source: str

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def name(self) -> str:
        return self.model.name

    def describe(self) -> str:
        return f"{self.name} v{self.version} ({self.role}, threshold {self.threshold:.6g} from {self.threshold_source})"


def resolve_models(registry_client: Any, lake: Lake, model: str, *, threshold: float | None = None,
                   registry_uri: str = "") -> tuple[ScoringModel, ScoringModel | None]:
    """The champion and, when it names another version, the challenger of ``model``, loaded from the lake.

    Raises :class:`NoChampionError` when no version holds the ``champion`` alias, and
    :class:`ModelFilesMissing` when a resolved version has no files under ``models/<model>/<version>/``.
    """
    champion_version = registry.alias_version(registry_client, model, registry.CHAMPION)
    if champion_version is None:
        raise NoChampionError(
            f"{model} has no '{registry.CHAMPION}' version in the model registry {registry_uri or ''}".rstrip()
            + f": nothing can be scored for decisions. Promote a version first (the governance gate, or "
            f"mlscale.training.registry.set_alias(client, {model!r}, 'champion', '<version>')), then re-run "
            "this day.")
    challenger_version = registry.alias_version(registry_client, model, registry.CHALLENGER)
    champion = scoring_model(lake, model, champion_version, CHAMPION_ROLE, threshold)
    challenger = None
    if challenger_version is not None and challenger_version != champion_version:
        challenger = scoring_model(lake, model, challenger_version, SHADOW_ROLE, threshold)
    elif challenger_version is not None:
        logger.info("challenger alias points at the champion (version %s): no shadow scoring", champion_version)
    return champion, challenger


def scoring_model(lake: Lake, model: str, version: str, role: str, threshold: float | None = None) -> ScoringModel:
    """``version`` of ``model`` loaded from the lake, deciding at ``threshold`` (else its holdout threshold_at_budget)."""
    try:
        stored = StoredModel.load(lake, model, version)
    except FileNotFoundError as exc:
        raise ModelFilesMissing(
            f"{model} version {version} ({role}) is registered but {lake.uri(model_prefix(model, version))}/ has no "
            "model.json/model.bin: re-run train_model for it or move the alias to a version whose files exist"
        ) from exc
    if threshold is not None:
        return ScoringModel(role=role, model=stored, threshold=float(threshold), threshold_source="run parameter")
    found = (stored.doc.get("holdout") or {}).get("threshold_at_budget")
    if found is None or found != found:
        raise ThresholdMissing(
            f"{model} version {version}: {lake.uri(model_prefix(model, version))}/model.json has no "
            "holdout.threshold_at_budget; pass threshold= to the run (the score_batch Param 'threshold')")
    return ScoringModel(role=role, model=stored, threshold=float(found),
                        threshold_source=f"holdout threshold_at_budget of version {version}")
