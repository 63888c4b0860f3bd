"""Feature-set definitions (``include/feature_repo/<set>.yaml``): features, windows, validation, version.

The version is derived from the definition's content, so changing a definition builds a new version
beside the old one (``features/<set>_v<version>...``) and old versions stay reproducible.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlscale.config_schema import StrictModel, validated
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

WINDOWED_KINDS = ("sum", "count", "mean", "max", "min", "share", "distinct", "quantile", "category_share",
                  "share_of_parent")
ENCODINGS = ("onehot", "hash")
KEY_SEPARATOR = "|"
POINT_KINDS = ("last_day_ratio", "days_since_first_seen")
PREDICATES = ("night", "ecom")


class FeatureDefinitionError(ValueError, NotRetryable):
    """A feature-set file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    column: str | None = None
    predicate: str | None = None
    q: float | None = None
    baseline_window: int | None = None
    encoding: str | None = None          # category_share: onehot (declared values) or hash (fixed width)
    values: tuple[str, ...] = ()
    width: int = 0
    windows: tuple[int, ...] = ()        # overrides the set's windows for this feature

    def labels(self) -> list[str]:
        """Output suffixes of a category_share feature: its values (one-hot) or hash buckets."""
        if self.kind != "category_share":
            return []
        return list(self.values) if self.encoding == "onehot" else [f"h{i:02d}" for i in range(self.width)]


@dataclass(frozen=True)
class FeatureSet:
    name: str
    version: str
    entity: str
    source_dataset: str
    event_time: str
    windows: tuple[int, ...]
    features: tuple[Feature, ...]
    point_features: tuple[Feature, ...]
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    description: str = ""
    entity_from: tuple[str, ...] = ()    # a composite entity: these raw columns joined with "|"

    @property
    def table(self) -> str:
        """The lake dataset of the as-of tables of this version."""
        return f"{self.name}_v{self.version}"

    @property
    def partials_table(self) -> str:
        return f"{self.name}_v{self.version}_partials"

    @property
    def max_window(self) -> int:
        feature_windows = tuple(w for f in self.features for w in f.windows)
        return max(self.windows + feature_windows + tuple(f.baseline_window or 1 for f in self.point_features))

    def windows_of(self, feature: Feature) -> tuple[int, ...]:
        return feature.windows or self.windows

    def feature_columns(self) -> list[str]:
        names = []
        for f in self.features:
            for w in self.windows_of(f):
                if f.kind == "category_share":
                    names += [f"{f.name}_{label}_{w}d" for label in f.labels()]
                else:
                    names.append(f"{f.name}_{w}d")
        return names + [f.name for f in self.point_features]

    def source_columns(self) -> list[str]:
        cols = set(self.entity_from) if self.entity_from else {self.entity}
        cols.add(self.event_time)
        cols.update(f.column for f in self.features + self.point_features if f.column)
        if any(f.predicate == "night" for f in self.features):
            cols.add(self.event_time)
        if any(f.predicate == "ecom" for f in self.features):
            cols.add("channel")
        return sorted(cols)


class FeatureDoc(StrictModel):
    kind: str | None = None
    column: str | None = None
    predicate: str | None = None
    q: float | None = None
    baseline_window: int | None = None
    encoding: str | None = None
    values: list[str] | None = None
    width: int | None = None
    windows: list[int] | None = None


class SourceRefDoc(StrictModel):
    dataset: str
    event_time: str


class ValidationRuleDoc(StrictModel):
    min: float | None = None
    max: float | None = None
    max_null_rate: float | None = None
    max_change_ratio: float | None = None


class FeatureSetDoc(StrictModel):
    """The shape of a feature-set file (values are checked by :func:`load_feature_set`)."""

    feature_set: str
    description: str = ""
    entity: str
    entity_from: list[str] | None = None
    source: SourceRefDoc
    windows: list[int]
    features: dict[str, FeatureDoc | None]
    point_features: dict[str, FeatureDoc | None] | None = None
    validation: dict[str, ValidationRuleDoc | None] | None = None


def feature_set_names() -> list[str]:
    """The feature sets declared in the configuration folder (``feature_repo/*.yaml``), by name."""
    return sorted(p.stem for p in config_dir("feature_repo").glob("*.yaml"))


def load_feature_set(name_or_path: str | Path) -> FeatureSet:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir("feature_repo") / f"{name_or_path}.yaml"
    if not path.exists():
        available = ", ".join(feature_set_names())
        raise FeatureDefinitionError(f"no feature set {str(name_or_path)!r} ({path}); available: {available}")
    return _parsed_feature_set(str(path), path.read_bytes())


@functools.lru_cache(maxsize=256)
def _parsed_feature_set(where: str, text: bytes) -> FeatureSet:
    """The feature set of one file's content (parsed once per content: scoring asks per request)."""
    doc = yaml.safe_load(text)
    m = validated(FeatureSetDoc, doc, where, FeatureDefinitionError)
    windows = tuple(sorted(m.windows))
    features = tuple(_feature(where, name, spec or FeatureDoc(), WINDOWED_KINDS) for name, spec in m.features.items())
    points = tuple(_feature(where, name, spec or FeatureDoc(), POINT_KINDS)
                   for name, spec in (m.point_features or {}).items())
    validation = {rule: dict(limits or {}) for rule, limits in (doc.get("validation") or {}).items()}
    fs = FeatureSet(name=m.feature_set, version=hashlib.sha256(text).hexdigest()[:8], entity=m.entity,
                    entity_from=tuple(m.entity_from or ()), source_dataset=m.source.dataset,
                    event_time=m.source.event_time, windows=windows, features=features, point_features=points,
                    validation=validation, description=m.description)
    if not windows or windows[0] < 1:
        raise FeatureDefinitionError(f"{where}: windows must be positive day counts")
    known = set(fs.feature_columns()) | {"row_count"}
    for rule in fs.validation:
        if rule not in known:
            raise FeatureDefinitionError(f"{where}: validation.{rule} names no feature of this set")
    return fs


def _feature(where: str, name: str, spec: FeatureDoc, kinds: tuple[str, ...]) -> Feature:
    kind = spec.kind
    if kind not in kinds:
        raise FeatureDefinitionError(f"{where}: features.{name}.kind {kind!r} is not one of {kinds}")
    feature = Feature(name=name, kind=kind, column=spec.column, predicate=spec.predicate, q=spec.q,
                      baseline_window=spec.baseline_window, encoding=spec.encoding, values=tuple(spec.values or ()),
                      width=spec.width or 0, windows=tuple(spec.windows or ()))
    if kind == "category_share":
        if feature.encoding not in ENCODINGS or not feature.column:
            raise FeatureDefinitionError(f"{where}: features.{name} needs a column and encoding in {ENCODINGS}")
        if feature.encoding == "onehot" and not feature.values:
            raise FeatureDefinitionError(f"{where}: features.{name}: one-hot encoding needs its values")
        if feature.encoding == "hash" and not 2 <= feature.width <= 256:
            raise FeatureDefinitionError(f"{where}: features.{name}: hash encoding needs a width of 2..256")
    if kind in ("sum", "mean", "max", "min", "distinct", "quantile", "last_day_ratio", "share_of_parent") \
            and not feature.column:
        raise FeatureDefinitionError(f"{where}: features.{name} ({kind}) needs a column")
    if kind == "share" and feature.predicate not in PREDICATES:
        raise FeatureDefinitionError(f"{where}: features.{name}.predicate must be one of {PREDICATES}")
    if kind == "quantile" and not (feature.q is not None and 0 < feature.q < 1):
        raise FeatureDefinitionError(f"{where}: features.{name}.q must be in (0, 1)")
    return feature


def all_feature_sets() -> list[FeatureSet]:
    return [load_feature_set(name) for name in feature_set_names()]
