"""Where things live: every lake prefix outside the data zones, and the configuration folders.

The data zones and their partitions belong to :mod:`mlscale.lake`; this module owns the rest of the lake's
layout (run logs and records under ``_meta/``, reports under ``reports/``) so that writers and readers
agree on one spelling, and says where the declared configuration (contracts, model specs, feature
definitions, policies) is read from. Keys are relative to the lake root, so a lake can be copied whole.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlscale.errors import NotRetryable

# -- _meta/: run logs, plans, audit trails -----------------------------------------------------------------
META = "_meta"
INGESTION_RUNS = f"{META}/ingestion_runs"
COMPACTION_PLANS = f"{META}/compaction_plans"
COMPACTION_RUNS = f"{META}/compaction_runs"
GENERATOR = f"{META}/generator"
ACCESS_LOG = f"{META}/access_log"
APPROVALS = f"{META}/approvals"
GOVERNANCE_AUDIT = f"{META}/governance_audit"
LINEAGE_REFS = f"{META}/lineage_refs"
LIFECYCLE_PLANS = f"{META}/lifecycle_plans"
LIFECYCLE_AUDIT = f"{META}/lifecycle_audit"
LEGAL_HOLDS = f"{META}/legal_holds"
TASK_FAILURES = f"{META}/task_failures"
RETRAIN_DECISIONS = f"{META}/retrain_decisions"
DRIFT_PROFILES = f"{META}/drift_profiles"
RESOURCE_USAGE = f"{META}/resource_usage"   # per day: what each Dask task used, and its cost
SERVING = f"{META}/serving"               # per model: the rollout record deploy_model keeps
SERVING_LOG = f"{META}/serving_log"       # per model and day: the online service's response log

# -- reports/<kind>/...: what people read -------------------------------------------------------------------
REPORTS = "reports"
REPORT_KINDS = ("health", "drift", "bias", "training", "shadow", "model_card", "cost", "timeline", "bottlenecks",
                "retrain_cadence")


#: the scoring feature log of a model (the sampled events' inputs as scored): zone and dataset suffix
PREDICTIONS_ZONE = "predictions"
FEATURE_LOG_SUFFIX = "_features"


def feature_log_dataset(model: str) -> str:
    """The dataset of ``model``'s scoring feature log, ``predictions/<model>_features/dt=D/``."""
    return f"{model}{FEATURE_LOG_SUFFIX}"


def report_prefix(kind: str) -> str:
    """``reports/<kind>``, for one of :data:`REPORT_KINDS`."""
    if kind not in REPORT_KINDS:
        raise ValueError(f"unknown report kind {kind!r}; known: {', '.join(REPORT_KINDS)}")
    return f"{REPORTS}/{kind}"


def day_prefix(prefix: str, day: str) -> str:
    """``<prefix>/dt=<day>``: the folder of one day's records."""
    return f"{prefix}/dt={day}"


def approval_key(model: str, version: str) -> str:
    return f"{APPROVALS}/{model}/{version}.json"


def bias_report_key(model: str, version: str) -> str:
    return f"{report_prefix('bias')}/{model}/{version}/report.json"


def drift_report_prefix(model: str, day: str) -> str:
    return f"{report_prefix('drift')}/{model}/{day}"


def drift_profile_prefix(model: str, day: str) -> str:
    """One day's drift profiles of a model's inputs (and of each version's scores), reused as reference days."""
    return f"{DRIFT_PROFILES}/{model}/dt={day}"


def training_report_prefix(model: str, version: str) -> str:
    return f"{report_prefix('training')}/{model}/{version}"


def model_card_key(model: str, version: str, suffix: str = "html") -> str:
    return f"{report_prefix('model_card')}/{model}/{version}.{suffix}"


# -- configuration folders ------------------------------------------------------------------------------------
CONFIG_DIR_ENV = "MLSCALE_CONFIG_DIR"
CONFIG_KINDS = ("contracts", "models", "policies", "feature_repo", "scenarios")


class ConfigNotFound(FileNotFoundError, NotRetryable):
    """No configuration folder: set MLSCALE_CONFIG_DIR (or the Variable mlscale_config_dir)."""


def config_root() -> Path:
    """The folder holding ``contracts/``, ``models/``, ``policies/`` and ``feature_repo/``.

    ``$MLSCALE_CONFIG_DIR`` when set (a team's own configuration; the Airflow edge sets it from the Variable
    ``mlscale_config_dir``), else ``$MLSCALE_HOME/include``, else the ``include/`` folder of the source
    checkout this package runs from.
    """
    explicit = os.environ.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    home = os.environ.get("MLSCALE_HOME")
    candidates = [Path(home) / "include"] if home else []
    candidates.append(Path(__file__).resolve().parents[1])  # include/ of a source checkout
    for candidate in candidates:
        if (candidate / "contracts").is_dir():
            return candidate
    raise ConfigNotFound(f"no configuration folder (contracts/, models/, policies/, feature_repo/) found in "
                         f"{', '.join(str(c) for c in candidates)}: set {CONFIG_DIR_ENV} to the folder that holds "
                         "them")


def config_dir(kind: str) -> Path:
    """One configuration folder (``contracts``, ``models``, ``policies``, ``feature_repo``, ``scenarios``)."""
    if kind not in CONFIG_KINDS:
        raise ValueError(f"unknown configuration folder {kind!r}; known: {', '.join(CONFIG_KINDS)}")
    return config_root() / kind


def declared(kind: str) -> list[str]:
    """The names declared in one configuration folder (its ``*.yaml`` files), sorted; light enough for DAG files."""
    return sorted(p.stem for p in config_dir(kind).glob("*.yaml"))


def spark_application(name: str) -> Path:
    """The file of a spark-submit application shipped in :mod:`mlscale.spark_apps` (e.g. ``compact_partitions``)."""
    path = Path(__file__).resolve().parent / "spark_apps" / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no spark application {name!r} in {path.parent}")
    return path
