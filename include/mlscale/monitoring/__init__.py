"""Drift monitoring: mergeable feature profiles, sketch-based PSI/KS, and Evidently's HTML report.

Typical use for day D against the training reference::

    reference = FeatureProfile.from_json(stored_reference_json)      # built once: profile_table(train)
    current = profile_dask(day_ddf, edges=reference_edges(reference))  # or profile_table(day_table, ...)
    result = compare_profiles(reference, current, DriftThresholds(critical=("score",)))
    result.as_dict()                                                   # small, JSON, for XCom / reports

* :mod:`~mlscale.monitoring.profile`: ``FeatureProfile`` (JSON, merge) and the column summaries.
* :mod:`~mlscale.monitoring.profiler`: ``profile_table`` (vectorised) and ``profile_dask`` (on workers).
* :mod:`~mlscale.monitoring.statistics`: PSI, KS, Jensen-Shannon, total variation from counts/sketches.
* :mod:`~mlscale.monitoring.drift`: ``compare_profiles`` -> ``DriftResult`` with the verdict.
* :mod:`~mlscale.monitoring.evidently_report`: Evidently's ``DataDriftPreset`` on a bounded sample.
"""

from mlscale.monitoring.drift import DriftResult, DriftThresholds, FeatureDrift, compare_profiles
from mlscale.monitoring.evidently_report import evidently_drift_report
from mlscale.monitoring.profile import (
    CategoricalSummary,
    FeatureProfile,
    NumericSummary,
    ProfileMismatchError,
    edges_from_sketch,
    kll_rank_error,
    merge_profiles,
    reference_edges,
)
from mlscale.monitoring.profiler import UnsupportedColumnError, profile_dask, profile_table
from mlscale.monitoring.statistics import (
    js_distance,
    ks_from_histograms,
    ks_from_sketches,
    psi,
    total_variation,
)

__all__ = [
    "CategoricalSummary", "DriftResult", "DriftThresholds", "FeatureDrift", "FeatureProfile", "NumericSummary",
    "ProfileMismatchError", "UnsupportedColumnError", "compare_profiles", "edges_from_sketch",
    "evidently_drift_report", "js_distance", "kll_rank_error", "ks_from_histograms", "ks_from_sketches",
    "merge_profiles", "profile_dask", "profile_table", "psi", "reference_edges", "total_variation",
]
