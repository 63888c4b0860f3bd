"""Dataset contracts: canonical schema, keys, sources and PII treatment, declared in YAML.

A contract is data (``include/contracts/<dataset>.yaml``); this module loads and validates it, so a team
can plug in a new dataset without touching pipeline code. Errors name the file and the key at fault.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

TYPES = ("string", "timestamp", "decimal", "integer", "boolean", "date")
PII_CLASSES = ("pan", "email", "phone", "name", "ip")
TREATMENTS = ("hmac", "ip_prefix", "drop")
FORMATS = ("csv", "jsonl")
TIMESTAMP_FORMATS = ("iso8601", "epoch_ms", "epoch_s")


class ContractError(ValueError, NotRetryable):
    """A contract file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    enum: tuple[str, ...] | None = None
    pii: str | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class PiiTreatment:
    pii_class: str
    treatment: str
    output: str | None


@dataclass(frozen=True)
class Source:
    name: str
    files: str
    format: str
    delimiter: str = ","
    decimal: str = "."
    thousands: str = ""
    timestamp_format: str = "iso8601"
    timezone: str = "UTC"
    rename: dict[str, str] = field(default_factory=dict)

    def matches(self, file_name: str) -> bool:
        return fnmatch.fnmatchcase(file_name, self.files)


@dataclass(frozen=True)
class Contract:
    dataset: str
    version: int
    path: str
    fingerprint: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    sources: tuple[Source, ...]
    pii: dict[str, PiiTreatment]
    partition_by: tuple[str, ...] = ()
    event_time: str | None = None
    max_lateness_days: int | None = None
    max_future_hours: float | None = None
    dedupe_window_days: int = 0
    description: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def source_for(self, file_name: str) -> Source | None:
        """The first source whose ``files`` pattern matches the file name, or None."""
        return next((s for s in self.sources if s.matches(file_name)), None)

    @property
    def output_columns(self) -> tuple[str, ...]:
        """Canonical columns as stored in raw: PII columns replaced by their treatment's output."""
        names: list[str] = []
        for col in self.columns:
            if col.pii:
                treatment = self.pii[col.pii]
                if treatment.output:
                    names.append(treatment.output)
            else:
                names.append(col.name)
        return tuple(names)


def contract_names() -> list[str]:
    """The contracts declared in the configuration folder (``contracts/*.yaml``), by name."""
    return sorted(p.stem for p in config_dir("contracts").glob("*.yaml"))


def contract_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return config_dir("contracts") / f"{name_or_path}.yaml"


def load_contract(name_or_path: str | Path) -> Contract:
    """Load and validate ``include/contracts/<name>.yaml`` (or an explicit path)."""
    path = contract_path(name_or_path)
    if not path.exists():
        available = ", ".join(contract_names())
        raise ContractError(f"no contract {str(name_or_path)!r} (looked for {path}; available: {available})")
    text = path.read_bytes()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ContractError(f"{path}: expected a mapping at the top level")
    return _parse(doc, str(path), hashlib.sha256(text).hexdigest()[:12])


def _need(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc or doc[key] in (None, ""):
        raise ContractError(f"{where}: missing required key '{key}'")
    return doc[key]


def _parse(doc: dict[str, Any], path: str, fingerprint: str) -> Contract:
    dataset = str(_need(doc, "dataset", path))
    raw_columns = _need(doc, "columns", path)
    if not isinstance(raw_columns, dict):
        raise ContractError(f"{path}: 'columns' must map column names to their specs")
    columns = [_parse_column(name, spec or {}, f"{path}: columns.{name}") for name, spec in raw_columns.items()]
    names = {c.name for c in columns}
    key = tuple(_need(doc, "key", path))
    for k in key:
        if k not in names:
            raise ContractError(f"{path}: key column {k!r} is not declared under columns")
    pii = _parse_pii(doc.get("pii") or {}, path)
    _check_pii_columns(columns, pii, key, path)
    sources = [_parse_source(sname, spec or {}, names, f"{path}: sources.{sname}")
               for sname, spec in (_need(doc, "sources", path) or {}).items()]
    partition_by = _parse_partition_by(doc, raw_columns, names, path)
    event_time = doc.get("event_time")
    if event_time is not None and event_time not in names:
        raise ContractError(f"{path}: event_time {event_time!r} is not a declared column")
    return Contract(
        dataset=dataset, version=int(doc.get("version", 1)), path=path, fingerprint=fingerprint,
        columns=tuple(columns), key=key, sources=tuple(sources), pii=pii, partition_by=partition_by,
        event_time=event_time,
        max_lateness_days=doc.get("max_lateness_days"), max_future_hours=doc.get("max_future_hours"),
        dedupe_window_days=int(doc.get("dedupe_window_days", 0)), description=str(doc.get("description", "")),
    )


def _parse_column(name: Any, spec: dict[str, Any], where: str) -> Column:
    """One entry of ``columns``: its type, PII class, enum and bounds checked."""
    ctype = spec.get("type", "string")
    if ctype not in TYPES:
        raise ContractError(f"{where}.type {ctype!r} is not one of {TYPES}")
    pii_class = spec.get("pii")
    if pii_class is not None and pii_class not in PII_CLASSES:
        raise ContractError(f"{where}.pii {pii_class!r} is not one of {PII_CLASSES}")
    enum = spec.get("enum")
    if enum is not None and not isinstance(enum, list):
        raise ContractError(f"{where}.enum must be a list")
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None and hi is not None and float(lo) > float(hi):
        raise ContractError(f"{where}: min {lo} is greater than max {hi}")
    return Column(name=str(name), type=ctype, required=bool(spec.get("required", False)),
                  min=None if lo is None else float(lo), max=None if hi is None else float(hi),
                  enum=tuple(str(v) for v in enum) if enum else None, pii=pii_class,
                  sensitive=bool(spec.get("sensitive", False)))


def _parse_pii(raw: dict[str, Any], path: str) -> dict[str, PiiTreatment]:
    """The ``pii`` section: PII class -> how its columns are treated."""
    pii: dict[str, PiiTreatment] = {}
    for cls, spec in raw.items():
        treatment = (spec or {}).get("treatment")
        if cls not in PII_CLASSES or treatment not in TREATMENTS:
            raise ContractError(f"{path}: pii.{cls} needs a class in {PII_CLASSES} and treatment in {TREATMENTS}")
        output = spec.get("output")
        if treatment != "drop" and not output:
            raise ContractError(f"{path}: pii.{cls}.output names the column its tokens go to")
        pii[cls] = PiiTreatment(cls, treatment, output)
    return pii


def _check_pii_columns(columns: list[Column], pii: dict[str, PiiTreatment], key: tuple[str, ...],
                       path: str) -> None:
    """Every PII column has a treatment, and no key column is PII."""
    for col in columns:
        if col.pii and col.pii not in pii:
            raise ContractError(f"{path}: columns.{col.name} is PII class {col.pii!r} but pii.{col.pii} "
                                "declares no treatment")
        if col.pii and col.name in key:
            raise ContractError(f"{path}: key column {col.name!r} cannot be PII")


def _parse_source(sname: Any, spec: dict[str, Any], names: set[str], where: str) -> Source:
    """One entry of ``sources``: its file format, timestamp format, renames and number separators checked."""
    fmt = _need(spec, "format", where)
    if fmt not in FORMATS:
        raise ContractError(f"{where}.format {fmt!r} is not one of {FORMATS}")
    ts = spec.get("timestamp") or {}
    ts_format = ts.get("format", "iso8601")
    if ts_format not in TIMESTAMP_FORMATS:
        raise ContractError(f"{where}.timestamp.format {ts_format!r} is not one of {TIMESTAMP_FORMATS}")
    rename = {str(k): str(v) for k, v in (spec.get("rename") or {}).items()}
    for target in rename.values():
        if target not in names:
            raise ContractError(f"{where}.rename maps onto {target!r}, which is not a declared column")
    decimal, thousands = str(spec.get("decimal", ".")), str(spec.get("thousands", ""))
    if decimal == thousands:
        raise ContractError(f"{where}: decimal and thousands separators are both {decimal!r}")
    return Source(name=str(sname), files=str(_need(spec, "files", where)), format=fmt,
                  delimiter=str(spec.get("delimiter", ",")), decimal=decimal, thousands=thousands,
                  timestamp_format=ts_format, timezone=str(ts.get("timezone", "UTC")), rename=rename)


def _parse_partition_by(doc: dict[str, Any], raw_columns: dict[str, Any], names: set[str],
                        path: str) -> tuple[str, ...]:
    """``partition_by``: declared, required columns."""
    partition_by = tuple(doc.get("partition_by") or ())
    for p in partition_by:
        if p not in names:
            raise ContractError(f"{path}: partition_by column {p!r} is not declared under columns")
        if not raw_columns[p].get("required"):
            raise ContractError(f"{path}: partition_by column {p!r} must be required")
    return partition_by
