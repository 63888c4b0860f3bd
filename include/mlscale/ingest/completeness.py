"""Is a day's drop complete? Each source of a contract says so its own way (``complete_when``).

A source that declares no signal is complete as soon as the day holds any file (the drop is taken as it is).
``landing_drop_status`` reports every source, complete or not and why, for the sensor's log and the run log;
``late_files`` finds files that landed after their day was ingested (a rerun of that day picks them up).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import posixpath
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.contracts import Contract, Source
from mlscale.lake import Lake


@dataclass(frozen=True)
class SourceStatus:
    source: str
    complete: bool
    files: int          # the source's data files in the day's drop
    detail: str         # why it is (not) complete, for the log
    declared: bool = True  # the source declares a completion signal (else it is not waited for)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.source}: {'complete' if self.complete else 'waiting'} ({self.detail})"


def _drop(lake: Lake, dataset: str, day: dt.date) -> dict[str, Any]:
    """Every object of the day's drop by file name, markers included (name -> StoredFile)."""
    return {posixpath.basename(f.key): f for f in lake.list_files(f"landing/{dataset}/dt={day.isoformat()}")}


def is_data_file(name: str) -> bool:
    """A landing file that holds records: markers, manifests and hidden files (``_SUCCESS``, ``.tmp``) do not."""
    return not name.startswith(("_", "."))


def source_status(lake: Lake, source: Source, drop: dict[str, Any], prefix: str, now: dt.datetime) -> SourceStatus:
    """Whether ``source``'s part of the drop (``drop``: name -> stored file under ``prefix``) is complete."""
    files = {name: f for name, f in drop.items() if is_data_file(name) and source.matches(name)}
    signal = source.complete_when
    if signal is None:
        return SourceStatus(source.name, bool(files), len(files),
                            f"{len(files)} files; no completion signal declared: taken as it is", declared=False)
    if signal.marker:
        present = signal.marker in drop
        return SourceStatus(source.name, present, len(files),
                            f"marker {signal.marker} {'present' if present else 'not there yet'}, {len(files)} files")
    if signal.files:
        return SourceStatus(source.name, len(files) >= signal.files, len(files),
                            f"{len(files)} of {signal.files} files")
    if signal.quiet_minutes:
        if not files:
            return SourceStatus(source.name, False, 0, "no file yet")
        newest = max(f.mtime or 0.0 for f in files.values())
        quiet = (now.timestamp() - newest) / 60
        return SourceStatus(source.name, quiet >= signal.quiet_minutes, len(files),
                            f"{len(files)} files, the newest {quiet:.0f} min old (quiet after "
                            f"{signal.quiet_minutes:g} min)")
    return _manifest_status(lake, source, drop, prefix, signal.manifest, len(files))


def _manifest_status(lake: Lake, source: Source, drop: dict[str, Any], prefix: str, name: str,
                     count: int) -> SourceStatus:
    """The source's own manifest: every file it lists is there, with its size (and checksum when given)."""
    if name not in drop:
        return SourceStatus(source.name, False, count, f"manifest {name} not there yet, {count} files")
    try:
        listed = json.loads(lake.read_bytes(f"{prefix}/{name}"))["files"]
        wanted = {str(f["name"]): f for f in listed}
    except (ValueError, KeyError, TypeError) as exc:
        return SourceStatus(source.name, False, count, f"manifest {name} is unreadable ({exc}): ask the source "
                                                       "to deliver it again")
    problems = []
    for file_name, entry in sorted(wanted.items()):
        stored = drop.get(file_name)
        if stored is None:
            problems.append(f"{file_name} missing")
        elif entry.get("size") is not None and stored.size != int(entry["size"]):
            problems.append(f"{file_name} has {stored.size} of {entry['size']} bytes")
        elif entry.get("sha256") and hashlib.sha256(lake.read_bytes(f"{prefix}/{file_name}")).hexdigest() \
                != entry["sha256"]:
            problems.append(f"{file_name} checksum differs")
    detail = f"manifest {name}: {len(wanted) - len(problems)} of {len(wanted)} files as listed"
    return SourceStatus(source.name, not problems, count, detail + (f" ({'; '.join(problems[:5])})" if problems else ""))


def landing_drop_status(lake: Lake, contract: Contract, day: dt.date,
                        now: dt.datetime | None = None) -> list[SourceStatus]:
    """Every source's status for the day's drop."""
    now = now or dt.datetime.now(dt.UTC)
    drop = _drop(lake, contract.dataset, day)
    prefix = f"landing/{contract.dataset}/dt={day.isoformat()}"
    return [source_status(lake, s, drop, prefix, now) for s in contract.sources]


def drop_is_complete(statuses: list[SourceStatus]) -> bool:
    """Complete when the drop holds at least one data file and every source that declares a signal is complete
    (a source without one is taken as it is, and not waited for when it sent nothing)."""
    return any(s.files for s in statuses) and all(s.complete for s in statuses if s.declared)


def late_files(lake: Lake, dataset: str, day: dt.date, ingested: list[str]) -> list[str]:
    """Data files of the day's drop that are not among the ``ingested`` ones (landed after the day's run)."""
    seen = {posixpath.basename(k) for k in ingested}
    return sorted(f"landing/{dataset}/dt={day.isoformat()}/{name}" for name in _drop(lake, dataset, day)
                  if is_data_file(name) and name not in seen)
