"""The reports catalog: which reports the lake holds under ``reports/<kind>/…`` and their files.

A report is identified by its ``kind`` (the first folder under ``reports/``: ``health``, ``drift``,
``bias``, ``shadow``, ``cost``, ``model_card`` or any other) and its ``key`` (the rest of the path):

* files in a folder form one report whose key is the folder: ``reports/cost/2026-11-20/report.html`` and
  ``report.json`` are the report ``cost`` / ``2026-11-20`` with files ``report.html`` and ``report.json``;
  ``reports/bias/fraud_detector/3/report.html`` is ``bias`` / ``fraud_detector/3``;
* a file whose name (without extension) is itself a version or a day, or a file directly below the kind
  folder, is a report of its own keyed by that name: ``reports/model_card/fraud_detector/3.html`` is
  ``model_card`` / ``fraud_detector/3`` with the file ``3.html``.

Only files a browser can show are listed (see :data:`CONTENT_TYPES`); temporary files of unfinished
writes (``*.tmp-…``) and hidden files (``.…``, ``_…``) are not. Reading a file goes through the listing, so
only a file the catalog lists can be read: a path with ``..``, an absolute path or an unlisted name is
refused with :class:`InvalidReportPath` or :class:`ReportNotFound`, never read.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mlscale.lake import Lake, StoredFile
from mlscale.layout import REPORTS

logger = logging.getLogger(__name__)

REPORTS_PREFIX = REPORTS
DEFAULT_BASE_URL = "/mlscale-reports"

#: Extensions the catalog lists and serves, with the ``Content-Type`` each is served with.
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}

#: How the index names the kinds it knows; other kinds are shown by their folder name.
KIND_TITLES: dict[str, str] = {
    "health": "Pipeline health",
    "drift": "Drift",
    "bias": "Bias audits",
    "shadow": "Shadow scoring",
    "cost": "Storage cost",
    "model_card": "Model cards",
    "timeline": "Timelines",
}

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+@-]*$")
_KEY_LIKE_STEM = re.compile(r"^(v?\d+(\.\d+)*|(dt=)?\d{4}-\d{2}-\d{2}([T_ ].*)?)$")
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
_TEMP_MARKER = ".tmp-"
_URL_SAFE = "=@+"  # allowed in a URL path segment as they are


class ReportError(Exception):
    """Base class of the catalog's errors."""


class InvalidReportPath(ReportError, ValueError):
    """A kind, key or file name is not a plain relative path (``..``, absolute, odd characters)."""


class ReportNotFound(ReportError, LookupError):
    """No report of that kind and key, or no file of that name in it."""


@dataclass(frozen=True)
class ReportEntry:
    """One report: its kind, key, files (names, sorted) and newest modification time (UTC epoch seconds).

    ``day`` is the first ``YYYY-MM-DD`` found in the key (``None`` when the key has none); it orders the
    listing. ``sources`` maps each file name to its lake key.
    """

    kind: str
    key: str
    files: tuple[str, ...]
    modified: float | None
    day: str | None
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def title(self) -> str:
        return f"{kind_title(self.kind)} — {self.key}"

    @property
    def html_files(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if content_type(f).startswith("text/html"))

    @property
    def json_files(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if content_type(f) == "application/json")

    @property
    def primary_file(self) -> str:
        """The file a link to the report opens: ``report.html``, else an HTML file, else the first file."""
        for preferred in ("report.html", "index.html"):
            if preferred in self.files:
                return preferred
        return (self.html_files or self.json_files or self.files)[0]

    @property
    def modified_iso(self) -> str | None:
        if self.modified is None:
            return None
        return datetime.fromtimestamp(self.modified, tz=UTC).isoformat(timespec="seconds")

    def as_dict(self, base: str = DEFAULT_BASE_URL) -> dict[str, Any]:
        return {
            "kind": self.kind, "key": self.key, "title": self.title, "day": self.day,
            "modified": self.modified_iso, "files": list(self.files),
            "url": report_url(self.kind, self.key, self.primary_file, base=base),
            "file_urls": {name: report_url(self.kind, self.key, name, base=base) for name in self.files},
        }


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())


def content_type(name: str) -> str:
    """The ``Content-Type`` a report file is served with; ``application/octet-stream`` if unknown."""
    return CONTENT_TYPES.get(posixpath.splitext(name)[1].lower(), "application/octet-stream")


def check_segment(what: str, value: str) -> str:
    """``value`` if it is one plain path segment (no ``/``, ``..``, ``\\``, leading dot); else raise."""
    if not isinstance(value, str) or not _SEGMENT.match(value) or value in (".", ".."):
        raise InvalidReportPath(f"invalid report {what} {value!r}: expected letters, digits and '_.=+@-', "
                                "not starting with '.' or '_', without '/' or '..'")
    return value


def check_key(key: str) -> str:
    """``key`` if it is a relative path of plain segments (``2026-11-20``, ``fraud_detector/3``); else raise."""
    if not isinstance(key, str) or not key or key.startswith("/") or "\\" in key or "//" in key:
        raise InvalidReportPath(f"invalid report key {key!r}: expected a relative path such as "
                                "'2026-11-20' or 'fraud_detector/3'")
    for segment in key.split("/"):
        check_segment("key segment", segment)
    return key


def _listable(name: str) -> bool:
    return (not name.startswith((".", "_")) and _TEMP_MARKER not in name
            and posixpath.splitext(name)[1].lower() in CONTENT_TYPES)


def _locate(relative: str) -> tuple[str, str] | None:
    """(key, file name) of a file at ``relative`` (below ``reports/<kind>/``), or None if it is no report file."""
    folder, name = posixpath.split(relative)
    if not _listable(name) or any(not _SEGMENT.match(s) for s in relative.split("/")):
        return None
    stem = posixpath.splitext(name)[0]
    if not folder:
        return stem, name
    if _KEY_LIKE_STEM.match(stem):
        return f"{folder}/{stem}", name
    return folder, name


def _entries(kind: str, stored: Iterable[StoredFile], prefix: str) -> list[ReportEntry]:
    grouped: dict[str, dict[str, StoredFile]] = {}
    for item in stored:
        if not item.key.startswith(prefix):
            continue
        located = _locate(item.key[len(prefix):])
        if located is not None:
            grouped.setdefault(located[0], {})[located[1]] = item
    entries = []
    for key, files in grouped.items():
        times = [f.mtime for f in files.values() if f.mtime is not None]
        day = _DAY.search(key)
        entries.append(ReportEntry(kind=kind, key=key, files=tuple(sorted(files)),
                                   modified=max(times) if times else None, day=day.group(1) if day else None,
                                   sources={name: f.key for name, f in files.items()}))
    return newest_first(entries)


def newest_first(entries: Iterable[ReportEntry]) -> list[ReportEntry]:
    """Reports ordered newest first: by the day in the key (keys without one last), then modification time.

    Ties keep a stable order by key (descending). Entries of several kinds are ordered by kind first.
    """
    ordered = sorted(entries, key=lambda e: e.key, reverse=True)
    ordered.sort(key=lambda e: (e.day or "", e.modified or 0.0), reverse=True)
    ordered.sort(key=lambda e: e.kind)
    return ordered


def list_kinds(lake: Lake) -> list[str]:
    """The kinds present in the lake (folders under ``reports/`` holding at least one report file)."""
    return sorted({e.kind for e in list_reports(lake)})


def list_reports(lake: Lake, kind: str | None = None) -> list[ReportEntry]:
    """Every report of ``kind`` (all kinds when None), newest first within a kind (see :func:`newest_first`).

    An unknown kind gives an empty list. Raises :class:`InvalidReportPath` for a malformed kind.
    """
    if kind is not None:
        check_segment("kind", kind)
        prefix = f"{REPORTS_PREFIX}/{kind}/"
        return _entries(kind, lake.list_files(prefix.rstrip("/")), prefix)
    by_kind: dict[str, list[StoredFile]] = {}
    for item in lake.list_files(REPORTS_PREFIX):
        parts = item.key[len(REPORTS_PREFIX) + 1:].split("/", 1)
        if item.key.startswith(f"{REPORTS_PREFIX}/") and len(parts) == 2 and _SEGMENT.match(parts[0]):
            by_kind.setdefault(parts[0], []).append(item)
    found: list[ReportEntry] = []
    for name, items in by_kind.items():
        found.extend(_entries(name, items, f"{REPORTS_PREFIX}/{name}/"))
    logger.debug("%d reports of %d kinds under %s", len(found), len(by_kind), lake.uri(REPORTS_PREFIX))
    return newest_first(found)


def get_report(lake: Lake, kind: str, key: str) -> ReportEntry:
    """The report ``kind``/``key``; :class:`ReportNotFound` if the lake has no such report.

    Lists only the report's parent folder, not the whole kind.
    """
    check_segment("kind", kind)
    check_key(key)
    parent = posixpath.dirname(key)
    prefix = f"{REPORTS_PREFIX}/{kind}/"
    listing = lake.list_files(f"{prefix}{parent}" if parent else prefix.rstrip("/"))
    for entry in _entries(kind, listing, prefix):
        if entry.key == key:
            return entry
    raise ReportNotFound(f"no report {kind}/{key} under {lake.uri(REPORTS_PREFIX)}: "
                         f"see the list at {DEFAULT_BASE_URL}/kind/{kind}")


def read_report_file(lake: Lake, kind: str, key: str, name: str) -> bytes:
    """The bytes of file ``name`` of report ``kind``/``key``.

    Only files the catalog lists are read. Raises :class:`InvalidReportPath` for a malformed kind, key or
    name (``..``, absolute paths, ``/`` in a name) and :class:`ReportNotFound` for an unknown kind, key or
    file name (or a file deleted since it was listed).
    """
    check_segment("file name", name)
    entry = get_report(lake, kind, key)
    source = entry.sources.get(name)
    if source is None:
        raise ReportNotFound(f"report {kind}/{key} has no file {name!r}; it has {', '.join(entry.files)}")
    try:
        return lake.read_bytes(source)
    except FileNotFoundError as err:
        raise ReportNotFound(f"{lake.uri(source)} was removed after it was listed") from err


def report_url(kind: str, key: str, name: str = "report.html", base: str = DEFAULT_BASE_URL) -> str:
    """The URL path of a report file in the reports view, e.g. for a task log line.

    ``report_url("bias", "fraud_detector/3")`` is ``/mlscale-reports/view/bias/fraud_detector/3/report.html``.
    Prefix ``base`` with the Airflow ``[api] base_url`` for an absolute link. Raises
    :class:`InvalidReportPath` for a malformed kind, key or name.
    """
    check_segment("kind", kind)
    check_key(key)
    check_segment("file name", name)
    return (f"{base.rstrip('/')}/view/{quote(kind, safe=_URL_SAFE)}/{quote(key, safe='/' + _URL_SAFE)}/"
            f"{quote(name, safe=_URL_SAFE)}")


def split_view_path(path: str) -> tuple[str, str]:
    """Split ``<key>/<name>`` (the tail of a view URL) into key and file name; raise if malformed."""
    key, _, name = path.rpartition("/")
    check_key(key)
    check_segment("file name", name)
    return key, name


__all__ = [
    "CONTENT_TYPES", "DEFAULT_BASE_URL", "KIND_TITLES", "REPORTS_PREFIX", "InvalidReportPath", "ReportEntry",
    "ReportError", "ReportNotFound", "check_key", "check_segment", "content_type", "get_report", "kind_title",
    "list_kinds", "list_reports", "newest_first", "read_report_file", "report_url", "split_view_path",
]
