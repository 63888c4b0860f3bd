"""Dataset contracts: canonical schema, keys, sources and PII treatment, declared in YAML.

A contract is data (``include/contracts/<dataset>.yaml``); this module loads and validates it, so a team
can plug in a new dataset without touching pipeline code. Errors name the file and the key at fault.
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from mlscale.config_schema import StrictModel, validated
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

TYPES = ("string", "timestamp", "decimal", "integer", "boolean", "date")
PII_CLASSES = ("pan", "email", "phone", "name", "ip")
TREATMENTS = ("hmac", "ip_prefix", "drop")
FORMATS = ("csv", "jsonl")
TIMESTAMP_FORMATS = ("iso8601", "epoch_ms", "epoch_s")
CASES = ("sensitive", "insensitive")
_ASCII = "".join(map(chr, range(0x20, 0x7F))) + "\t\r\n"  # printable ASCII and line breaks


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
    case: str = "sensitive"    # insensitive: enum values match ignoring case and are stored as declared


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
    encoding: str = "utf-8"                # the codec of the source's files (canonical name)
    null_values: tuple[str, ...] = ()      # field values read as null, besides the empty value
    complete_when: Completion | None = None  # how the source says its drop of a day is complete (None: any file)

    def matches(self, file_name: str) -> bool:
        return fnmatch.fnmatchcase(file_name, self.files)


@dataclass(frozen=True)
class Completion:
    """How a source signals that a day's drop is complete: exactly one of these is set.

    ``marker``: a file of that name appears once everything is there (``_SUCCESS``); ``manifest``: the source's own
    JSON manifest (``{"files": [{"name", "size", "sha256"?}]}``) whose files must all be there, with those sizes
    and checksums; ``files``: at least this many files of the source; ``quiet_minutes``: no file of the source
    changed for this long. Marker and manifest names start with ``_``, so ingestion never reads them as data.
    """

    marker: str = ""
    manifest: str = ""
    files: int = 0
    quiet_minutes: float = 0.0


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
    max_quarantine_rate: float = 0.05   # above this quarantined share of a day's records, on call is alerted

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


class ColumnDoc(StrictModel):
    type: str = "string"
    required: bool = False
    min: float | None = None
    max: float | None = None
    enum: list[str] | None = None
    case: str = "sensitive"
    pii: str | None = None
    sensitive: bool = False


class TimestampDoc(StrictModel):
    format: str = "iso8601"
    timezone: str = "UTC"


class CompletionDoc(StrictModel):
    marker: str | None = None
    manifest: str | None = None
    files: int | None = None
    quiet_minutes: float | None = None


class SourceDoc(StrictModel):
    complete_when: CompletionDoc | None = None
    files: str | None = None
    format: str | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    thousands: str = ""
    null_values: list[str] | None = None
    timestamp: TimestampDoc | None = None
    rename: dict[str, str] | None = None


class PiiDoc(StrictModel):
    treatment: str | None = None
    output: str | None = None


class ContractDoc(StrictModel):
    """The shape of a contract file (values are checked by :func:`_parse`)."""

    dataset: str
    version: int = 1
    description: str = ""
    sensitive: bool = False            # every column of the dataset is sensitive (mlscale.audit.sensitivity)
    key: list[str]
    columns: dict[str, ColumnDoc | None]
    pii: dict[str, PiiDoc | None] | None = None
    sources: dict[str, SourceDoc | None]
    partition_by: list[str] | None = None
    event_time: str | None = None
    max_lateness_days: int | None = None
    max_future_hours: int | float | None = None
    dedupe_window_days: int = 0
    max_quarantine_rate: float = Field(0.05, ge=0, le=1)


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


def _parse(doc: dict[str, Any], path: str, fingerprint: str) -> Contract:
    m = validated(ContractDoc, doc, path, ContractError)
    if not m.dataset:
        raise ContractError(f"{path}: missing required key 'dataset'")
    columns = [_parse_column(name, spec or ColumnDoc(), f"{path}: columns.{name}")
               for name, spec in m.columns.items()]
    names = {c.name for c in columns}
    key = tuple(m.key)
    if not key:
        raise ContractError(f"{path}: missing required key 'key'")
    for k in key:
        if k not in names:
            raise ContractError(f"{path}: key column {k!r} is not declared under columns")
    pii = _parse_pii(m.pii or {}, path)
    _check_pii_columns(columns, pii, key, path)
    sources = [_parse_source(sname, spec or SourceDoc(), names, f"{path}: sources.{sname}")
               for sname, spec in m.sources.items()]
    partition_by = _parse_partition_by(tuple(m.partition_by or ()), columns, path)
    if m.event_time is not None and m.event_time not in names:
        raise ContractError(f"{path}: event_time {m.event_time!r} is not a declared column")
    return Contract(
        dataset=m.dataset, version=m.version, path=path, fingerprint=fingerprint,
        columns=tuple(columns), key=key, sources=tuple(sources), pii=pii, partition_by=partition_by,
        event_time=m.event_time, max_lateness_days=m.max_lateness_days, max_future_hours=m.max_future_hours,
        dedupe_window_days=m.dedupe_window_days, description=m.description,
        max_quarantine_rate=m.max_quarantine_rate,
    )


def _parse_column(name: str, spec: ColumnDoc, where: str) -> Column:
    """One entry of ``columns``: its type, PII class, enum, case rule and bounds checked."""
    if spec.type not in TYPES:
        raise ContractError(f"{where}.type {spec.type!r} is not one of {TYPES}")
    if spec.pii is not None and spec.pii not in PII_CLASSES:
        raise ContractError(f"{where}.pii {spec.pii!r} is not one of {PII_CLASSES}")
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise ContractError(f"{where}: min {spec.min} is greater than max {spec.max}")
    enum = tuple(spec.enum) if spec.enum else None
    if spec.case not in CASES:
        raise ContractError(f"{where}.case {spec.case!r} is not one of {CASES}")
    if spec.case == "insensitive":
        if not enum:
            raise ContractError(f"{where}: case: insensitive applies to enum values; declare enum or remove it")
        folded = [v.strip().lower() for v in enum]
        if len(set(folded)) != len(folded):
            raise ContractError(f"{where}: enum values {list(enum)} differ only in case or spaces, so case: "
                                "insensitive cannot tell them apart")
    return Column(name=name, type=spec.type, required=spec.required, min=spec.min, max=spec.max, enum=enum,
                  pii=spec.pii, sensitive=spec.sensitive, case=spec.case)


def _parse_pii(raw: dict[str, PiiDoc | None], path: str) -> dict[str, PiiTreatment]:
    """The ``pii`` section: PII class -> how its columns are treated."""
    pii: dict[str, PiiTreatment] = {}
    for cls, spec in raw.items():
        treatment = spec.treatment if spec else None
        if cls not in PII_CLASSES or treatment not in TREATMENTS:
            raise ContractError(f"{path}: pii.{cls} needs a class in {PII_CLASSES} and treatment in {TREATMENTS}")
        output = spec.output if spec else None
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


def _parse_source(sname: str, spec: SourceDoc, names: set[str], where: str) -> Source:
    """One entry of ``sources``: its file format, encoding, timestamp format, renames and number separators
    checked."""
    for key in ("files", "format"):
        if not getattr(spec, key):
            raise ContractError(f"{where}: missing required key '{key}'")
    if spec.format not in FORMATS:
        raise ContractError(f"{where}.format {spec.format!r} is not one of {FORMATS}")
    ts = spec.timestamp or TimestampDoc()
    if ts.format not in TIMESTAMP_FORMATS:
        raise ContractError(f"{where}.timestamp.format {ts.format!r} is not one of {TIMESTAMP_FORMATS}")
    rename = dict(spec.rename or {})
    for target in rename.values():
        if target not in names:
            raise ContractError(f"{where}.rename maps onto {target!r}, which is not a declared column")
    if spec.decimal == spec.thousands:
        raise ContractError(f"{where}: decimal and thousands separators are both {spec.decimal!r}")
    return Source(name=sname, files=str(spec.files), format=spec.format, delimiter=spec.delimiter,
                  decimal=spec.decimal, thousands=spec.thousands, timestamp_format=ts.format,
                  timezone=ts.timezone, rename=rename, encoding=_codec(spec.encoding, f"{where}.encoding"),
                  null_values=tuple(dict.fromkeys(v.strip() for v in spec.null_values or ())),
                  complete_when=_completion(spec.complete_when, f"{where}.complete_when"))


def _completion(doc: CompletionDoc | None, where: str) -> Completion | None:
    """``complete_when``: exactly one signal; marker and manifest names start with ``_`` (never data)."""
    if doc is None:
        return None
    given = {k: v for k, v in doc.model_dump().items() if v not in (None, "", 0)}
    if len(given) != 1:
        raise ContractError(f"{where} needs exactly one of marker, manifest, files, quiet_minutes; got {sorted(given)}")
    for key in ("marker", "manifest"):
        name = given.get(key)
        if name is not None and (not str(name).startswith("_") or "/" in str(name)):
            raise ContractError(f"{where}.{key} {name!r} must be a file name starting with '_' (ingestion skips "
                                "such files; any other name would be read as data)")
    if given.get("files") is not None and int(given["files"]) < 1:
        raise ContractError(f"{where}.files must be at least 1")
    if given.get("quiet_minutes") is not None and float(given["quiet_minutes"]) <= 0:
        raise ContractError(f"{where}.quiet_minutes must be positive")
    return Completion(marker=str(given.get("marker", "")), manifest=str(given.get("manifest", "")),
                      files=int(given.get("files", 0)), quiet_minutes=float(given.get("quiet_minutes", 0.0)))


def _codec(name: str, where: str) -> str:
    """The codec's canonical name (``utf-8`` for any spelling of UTF-8, with or without a byte-order mark).

    Only codecs that write ASCII as ASCII are accepted: delimiters, quotes and line breaks are then the same
    bytes in the landing file, so records and their byte offsets are found before decoding.
    """
    try:
        canonical = codecs.lookup(name).name
        if canonical in ("utf-8", "utf-8-sig"):
            return "utf-8"
        same = _ASCII.encode(canonical) == _ASCII.encode("ascii")
    except LookupError as exc:  # no such codec, or one that is not a text encoding (base64, zlib...)
        raise ContractError(f"{where} {name!r} is not a text encoding Python knows (e.g. utf-8, cp1252, "
                            "latin-1)") from exc
    if not same:
        raise ContractError(f"{where} {name!r} does not write ASCII as ASCII (as UTF-16 or EBCDIC do); "
                            "convert such files to UTF-8 before they land")
    return canonical


def _parse_partition_by(partition_by: tuple[str, ...], columns: list[Column], path: str) -> tuple[str, ...]:
    """``partition_by``: declared, required columns."""
    by_name = {c.name: c for c in columns}
    for p in partition_by:
        if p not in by_name:
            raise ContractError(f"{path}: partition_by column {p!r} is not declared under columns")
        if not by_name[p].required:
            raise ContractError(f"{path}: partition_by column {p!r} must be required")
    return partition_by
