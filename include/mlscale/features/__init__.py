"""Incremental features: daily partials per entity, rolling windows merged from partials, validation."""

from mlscale.features.build import FeatureBuildResult, build_features
from mlscale.features.definitions import FeatureSet, all_feature_sets, load_feature_set

__all__ = ["FeatureBuildResult", "FeatureSet", "all_feature_sets", "build_features", "load_feature_set"]
