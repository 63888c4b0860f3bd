"""Day profiles of a model's inputs and scores, and a day's drift verdicts against a rolling reference.

A day's profile (KLL sketches of every monitored column, entity features once per entity, sums and counts per
day of history: :mod:`mlscale.governance.drift_plan`) is computed once and kept in
``_meta/drift_profiles/<model>/dt=D/`` — the inputs once, the scores once per model version — so the days
after reuse it as a reference day without re-reading rows. A sample of the day's model inputs (2,000 rows) is
kept beside it, so a later version scores the reference days from their samples instead of rebuilding their
inputs (the reference's score distribution is then a little noisier, which only widens its thresholds).

The reference of day D is the ``reference_days`` most recent days before D of the **same regime**: days whose
own check found drift are skipped (an episode does not become its own reference), looking back at most
``lookback_days``. When every one of the last ``reference_days`` days drifted, the change has lasted: the
reference moves to those days (a new regime) and the report says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from mlscale.governance.drift_plan import MonitoredColumn
from mlscale.lake import Lake, PartitionRef, parse_day
from mlscale.layout import drift_profile_prefix, drift_report_prefix
from mlscale.monitoring.profile import FeatureProfile
from mlscale.monitoring.rolling import ColumnDrift, RollingSettings, compare_rolling
from mlscale.training.model import SCORE, StoredModel

logger = logging.getLogger(__name__)

SAMPLE = "inputs_sample.parquet"
SAMPLE_ROWS = 2000  # a day's model inputs kept to score it again with later versions (not the whole day)


def day_inputs(lake: Lake, store: Any, spec: Any, day: str) -> Any:
    """The model inputs of the day's events (point-in-time features plus event features)."""
    from mlscale.training.inputs import model_inputs

    events = lake.read_table(PartitionRef.of("raw", spec.events_dataset, day), columns=spec.event_columns())
    return model_inputs(store, events, spec)


def comparable_with_training(lake: Lake, spec: Any, stored: StoredModel, plan: list[MonitoredColumn]) -> list[str]:
    """The columns a day can be compared with the version's training reference on: not left out, and with their
    whole window behind the oldest training event (a partly filled window grows by construction)."""
    days = [p.dt for p in lake.partitions("raw", spec.events_dataset)]
    oldest = (stored.doc.get("training_set") or {}).get("first_event_day")
    if not days or not oldest:
        return [c.name for c in plan if not c.excluded]
    history = max(0, (parse_day(oldest) - parse_day(min(days))).days)  # late events may predate the first drop
    return [c.name for c in plan if not c.excluded and c.window_days <= history]


class DayProfiles:
    """The day profiles of one model version, computed on demand and kept in the lake."""

    def __init__(self, lake: Lake, store: Any, spec: Any, stored: StoredModel, plan: list[MonitoredColumn]) -> None:
        self.lake, self.store, self.spec, self.stored, self.plan = lake, store, spec, stored, plan
        self._frames: dict[str, tuple[Any, Any]] = {}
        self._profiles: dict[str, FeatureProfile] = {}
        days = [p.dt for p in lake.partitions("raw", spec.events_dataset)]
        self.first_day = min(days) if days else None
        self.signature = hashlib.sha256(json.dumps([c.as_dict() for c in plan if c.name != SCORE],
                                                   sort_keys=True).encode()).hexdigest()[:12]

    def history(self, day: str) -> int:
        """Days of events before ``day`` (what the day's feature tables were built from)."""
        return 0 if self.first_day is None else (parse_day(day) - parse_day(self.first_day)).days

    def has_events(self, day: str) -> bool:
        return self.lake.manifest(PartitionRef.of("raw", self.spec.events_dataset, day)) is not None

    def scored(self, day: str) -> Any:
        """The day's model inputs and ``score`` (one row per event)."""
        return self._frame(day)[1]

    def _frame(self, day: str) -> tuple[Any, Any]:
        if day not in self._frames:
            frame = day_inputs(self.lake, self.store, self.spec, day)
            self._frames[day] = (frame, self.stored.scored(frame))
        return self._frames[day]

    def profile(self, day: str) -> FeatureProfile:
        """The day's profile: the inputs' (kept per day) plus this version's scores (kept per version)."""
        if day in self._profiles:
            return self._profiles[day]
        prefix = drift_profile_prefix(self.stored.name, day)
        inputs_key, score_key = f"{prefix}/inputs.json", f"{prefix}/score_v{self.stored.version}.json"
        inputs = self._read(inputs_key)
        score = self._read(score_key)
        sample = None
        if inputs is not None and score is None and day not in self._frames:
            sample = self.sample(day)  # a later version scores an earlier day from its kept sample
            if sample is not None:
                score = _profile(self.stored.scored(sample)[[SCORE]])
                self._write(score_key, score)
        if inputs is None or score is None:
            frame, data = self._frame(day)
            if inputs is None:
                inputs = self._profile_inputs(frame, data, day)
                self._write(inputs_key, inputs)
                self._write_sample(prefix, frame)
            if score is None:
                score = _profile(data[[SCORE]])
                self._write(score_key, score)
        profile = FeatureProfile(rows=max(inputs.rows, score.rows), columns={**inputs.columns, **score.columns})
        self._profiles[day] = profile
        return profile

    def _write_sample(self, prefix: str, frame: Any) -> None:
        import io

        sample = frame if len(frame) <= SAMPLE_ROWS else frame.sample(n=SAMPLE_ROWS, random_state=0)
        buffer = io.BytesIO()
        sample[list(self.stored.features)].astype("float32").reset_index(drop=True).to_parquet(buffer, index=False)
        self.lake.write_bytes(f"{prefix}/{SAMPLE}", buffer.getvalue())

    def sample(self, day: str) -> Any:
        """The day's kept sample of model inputs, if it holds every input of this version (else None)."""
        import io

        import pandas as pd

        prefix = drift_profile_prefix(self.stored.name, day)
        if not self.lake.exists(f"{prefix}/{SAMPLE}"):
            return None
        sample = pd.read_parquet(io.BytesIO(self.lake.read_bytes(f"{prefix}/{SAMPLE}")))
        return sample if set(self.stored.features) <= set(sample.columns) else None

    def _read(self, key: str) -> FeatureProfile | None:
        if not self.lake.exists(key):
            return None
        doc = self.lake.read_json(key)
        if doc.get("signature") not in (self.signature, None) or "profile" not in doc:
            return None
        return FeatureProfile.from_dict(doc["profile"])

    def _write(self, key: str, profile: FeatureProfile) -> None:
        self.lake.write_json(key, {"signature": self.signature, "profile": profile.as_dict()})

    def _profile_inputs(self, frame: Any, data: Any, day: str) -> FeatureProfile:
        history = self.history(day)
        groups: dict[str, list[MonitoredColumn]] = {}
        for column in self.plan:
            if column.name != SCORE and not column.excluded:
                groups.setdefault(column.entity, []).append(column)
        columns: dict[str, Any] = {}
        for entity, members in groups.items():
            # an entity feature repeats its entity's value on each of its events: one row per entity
            rows = data if not entity or entity not in frame else data.loc[~frame[entity].duplicated().to_numpy()]
            table = rows[[c.name for c in members]].copy()
            for c in members:
                if c.per_day:
                    table[c.name] = table[c.name] / max(1, min(history, c.window_days))
            columns.update(_profile(table).columns)
        return FeatureProfile(rows=len(data), columns={c.name: columns[c.name] for c in self.plan if c.name in columns})

    def drifted_before(self, day: str) -> bool:
        """Whether the check of ``day`` (already run) found drift."""
        key = f"{drift_report_prefix(self.stored.name, day)}/report.json"
        if not self.lake.exists(key):
            return False
        doc = self.lake.read_json(key)
        return bool((doc.get("drift") or {}).get("drift_detected"))


def _profile(table: Any) -> FeatureProfile:
    from mlscale.monitoring import profile_table

    return profile_table(table, columns=list(table.columns))


@dataclass(frozen=True)
class JudgedDay:
    """The day's columns against the rolling reference, and the verdicts drawn from them."""

    day: str
    reference_days: tuple[str, ...]
    regime_change: bool
    columns: tuple[ColumnDrift, ...]
    settings: RollingSettings
    current_rows: int
    reference_rows: int
    plan: tuple[MonitoredColumn, ...] = field(default=())

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.drifted)

    @property
    def judged(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.status in ("ok", "drifted"))

    @property
    def n_judged(self) -> int:
        return len(self.judged)

    @property
    def share_drifted(self) -> float:
        return len(self.drifted) / self.n_judged if self.n_judged else 0.0

    @property
    def warming_up(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.status == "warming_up")

    @property
    def excluded(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.status == "excluded")

    def _verdict(self, columns: list[ColumnDrift]) -> str:
        if any(c.drifted for c in columns):
            return "drift_detected"
        if any(c.status == "ok" for c in columns):
            return "no_drift"
        return "warming_up" if columns and all(c.status in ("warming_up", "excluded") for c in columns) \
            else "insufficient_data"

    @property
    def data_verdict(self) -> str:
        return self._verdict([c for c in self.columns if c.name != SCORE])

    @property
    def prediction_verdict(self) -> str:
        return self._verdict([c for c in self.columns if c.name == SCORE])

    @property
    def drift_detected(self) -> bool:
        return "drift_detected" in (self.data_verdict, self.prediction_verdict)

    @property
    def verdict(self) -> str:
        if self.drift_detected:
            return "drift_detected"
        return "no_drift" if self.n_judged else "insufficient_data"

    def as_dict(self) -> dict[str, Any]:
        """The report's ``drift`` block (the shape the health report and the drift page read)."""
        plan = {c.name: c for c in self.plan}
        features = []
        for c in self.columns:
            entry = {**c.as_dict(), "drifted": c.drifted, "reasons": c.reason}
            if c.name in plan:
                entry.update(window_days=plan[c.name].window_days, entity=plan[c.name].entity,
                             per_day=plan[c.name].per_day)
            features.append(entry)
        return {"verdict": self.verdict, "drift_detected": self.drift_detected,
                "data_drift": self.data_verdict, "prediction_drift": self.prediction_verdict,
                "share_drifted": self.share_drifted, "n_features": self.n_judged,
                "drifted_features": list(self.drifted), "critical_drifted": [SCORE] if SCORE in self.drifted else [],
                "warming_up": list(self.warming_up), "excluded": list(self.excluded),
                "reference_days": list(self.reference_days), "regime_change": self.regime_change,
                "reference_rows": self.reference_rows, "current_rows": self.current_rows,
                "thresholds": self.settings.as_dict(), "features": features}


def reference_days(profiles: DayProfiles, day: str, settings: RollingSettings) -> tuple[list[str], bool]:
    """The reference days of ``day`` (newest first) and whether the regime changed (see the module docstring)."""
    start = parse_day(day)
    candidates = [d for d in ((start - dt.timedelta(days=i)).isoformat() for i in range(1, settings.lookback_days + 1))
                  if profiles.has_events(d)]
    recent = candidates[:settings.reference_days]
    drifted = {d for d in candidates if profiles.drifted_before(d)}
    if len(recent) == settings.reference_days and all(d in drifted for d in recent):
        return recent, True
    return [d for d in candidates if d not in drifted][:settings.reference_days], False


def training_days(profiles: DayProfiles, day: str, settings: RollingSettings) -> list[str]:
    """The version's reference days for ``day`` (newest first): the last ``reference_days`` days with events of
    the period its training set was drawn from, before ``day``. Empty when no training period is recorded."""
    period = profiles.stored.doc.get("training_set") or {}
    if not period.get("first_event_day") or not period.get("last_event_day"):
        return []
    first = parse_day(period["first_event_day"])
    last = min(parse_day(period["last_event_day"]), parse_day(day) - dt.timedelta(days=1))
    days = (last - dt.timedelta(days=i) for i in range(max(0, (last - first).days + 1)))
    found: list[str] = []
    for d in days:
        if profiles.has_events(d.isoformat()):
            found.append(d.isoformat())
            if len(found) == settings.reference_days:
                break
    return found


def judge_day(profiles: DayProfiles, day: str, settings: RollingSettings) -> JudgedDay:
    """Day ``day``'s columns against its rolling reference, with warming-up and left-out columns marked."""
    days, regime_change = reference_days(profiles, day, settings)
    judged = judge_against(profiles, day, days, settings, regime_change=regime_change)
    if regime_change:
        logger.warning("drift of %s on %s: the last %d days all drifted; the reference moves to them (a new regime)",
                       profiles.stored.name, day, len(days))
    return judged


def judge_against(profiles: DayProfiles, day: str, days: list[str], settings: RollingSettings, *,
                  regime_change: bool = False) -> JudgedDay:
    """Day ``day``'s columns against the reference ``days`` (thresholds learnt from their day-to-day spread),
    with warming-up and left-out columns marked."""
    current = profiles.profile(day)
    reference = {d: profiles.profile(d) for d in days}
    history = {d: profiles.history(d) for d in days}
    by_need: dict[int, list[str]] = {}
    not_judged: dict[str, tuple[Any, str]] = {}
    for column in profiles.plan:
        usable = [d for d in days if history[d] >= column.history_needed]
        if column.excluded:
            not_judged[column.name] = ("excluded", column.excluded)
        elif days and len(usable) < settings.min_reference_days:
            not_judged[column.name] = ("warming_up", f"needs {column.history_needed} days of history on at least "
                                                     f"{settings.min_reference_days} reference days; "
                                                     f"{len(usable)} have it")
        else:
            by_need.setdefault(column.history_needed, []).append(column.name)
    found = {c.name: c for c in compare_rolling([], current, settings, list(not_judged), not_judged)}
    for need, names in by_need.items():
        usable_profiles = [reference[d] for d in days if history[d] >= need]
        found.update((c.name, c) for c in compare_rolling(usable_profiles, current, settings, names))
    columns = [found[c.name] for c in profiles.plan]
    judged = JudgedDay(day=day, reference_days=tuple(sorted(days)), regime_change=regime_change,
                       columns=tuple(columns), settings=settings, current_rows=current.rows,
                       reference_rows=sum(p.rows for p in reference.values()), plan=tuple(profiles.plan))
    return judged

