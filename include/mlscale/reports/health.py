"""The pipeline health report: ``reports/health/<D>/report.json`` and ``report.html``.

One page per day D that connects model quality to upstream pipeline health. For every pipeline
(``ingest_<dataset>``, ``compact_lake``, ``build_features``, ``train_model``, ``audit_bias``,
``monitor_drift``, ``score_batch``, ``lifecycle_cleanup``) and every day of the window
D-(history_days-1)..D it reads what the pipelines already record in the lake — ingestion and compaction run
records, feature-table manifests, registered model versions, bias reports and gate decisions, drift
reports, prediction manifests, the lifecycle audit log and cost reports — and derives rows in/out,
quarantine rate, duration, retries, feature freshness, model metrics over time, drift status and cost, plus
a short attention list that names what to look at first and what happened upstream on the same day.

Guarantees: only reads, apart from the two report files; a missing or unreadable source is reported as
"no data", never an error; the window comes from D alone (never the wall clock), so a rerun for D
rewrites the same report from the lake as it is then.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.lake import Lake, StoredFile, parse_day
from mlscale.reports.catalog import InvalidReportPath, report_url

logger = logging.getLogger(__name__)

REPORTS_PREFIX = "reports/health"
INGESTION_RUNS = "_meta/ingestion_runs"
COMPACTION_RUNS = "_meta/compaction_runs"
GOVERNANCE_AUDIT = "_meta/governance_audit"
LIFECYCLE_AUDIT = "_meta/lifecycle_audit"

OK, ATTENTION, NO_DATA, DRY_RUN = "ok", "attention", "no data", "dry run"
CRITICAL, WARNING = "critical", "warning"
#: Pipelines after the per-dataset ingestion pipelines, in the order the page shows them.
PIPELINES = ("compact_lake", "build_features", "train_model", "audit_bias", "monitor_drift", "score_batch",
             "lifecycle_cleanup")
#: Pipelines expected to record something every day once they run at all ("missing" on D otherwise).
DAILY = ("build_features", "monitor_drift", "score_batch", "lifecycle_cleanup")

_DAY_DIR = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")
_AS_OF_TABLE = re.compile(r"^(?P<name>.+)_v(?P<version>[0-9a-f]+)$")


@dataclass(frozen=True)
class HealthThresholds:
    """When a day needs attention.

    ``max_quarantine_rate``: share of records quarantined by an ingestion run; ``max_feature_lag_days``:
    days a feature set's newest committed as-of table may lag the day; ``max_volume_change``: relative
    change of records in against the day before; ``max_pr_auc_drop``: relative drop of the labelled
    PR-AUC (drift report) below the serving version's holdout PR-AUC.
    """

    max_quarantine_rate: float = 0.05
    max_feature_lag_days: int = 0
    max_volume_change: float = 0.5
    max_pr_auc_drop: float = 0.2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PipelineDay:
    """One pipeline on one day. ``None`` means the source does not record that figure.

    ``flags`` name the conditions that need attention (``quarantine_rate``, ``volume_change``, ``retries``,
    ``stale_features``, ``validation_failed``, ``drift``, ``performance_drop``, ``bias_fail``,
    ``gate_refused``, ``failed_actions``, ``missing``); ``seconds`` is the duration of the run that
    produced the day's result.
    """

    pipeline: str
    day: str
    status: str
    runs: int = 0
    retries: int | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    quarantine_rate: float | None = None
    seconds: float | None = None
    flags: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["flags"] = list(self.flags)
        return doc


@dataclass(frozen=True)
class FeatureFreshness:
    """The newest committed as-of table of a feature set up to D, and how many days it is behind D."""

    feature_set: str
    status: str  # "fresh", "stale" or "no data"
    table: str | None = None
    newest_day: str | None = None
    lag_days: int | None = None
    versions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["versions"] = list(self.versions)
        return doc


@dataclass(frozen=True)
class AttentionItem:
    """One thing to look at: a condition of one pipeline, on the days it held (newest last)."""

    severity: str  # "critical" when it holds on D itself, else "warning"
    kind: str
    pipeline: str
    days: tuple[str, ...]
    message: str
    links: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "kind": self.kind, "pipeline": self.pipeline, "days": list(self.days),
                "message": self.message, "links": list(self.links)}


@dataclass(frozen=True)
class HealthReport:
    """The health of every pipeline over ``days`` (oldest first, ending at ``dt``); see the module docs."""

    dt: str
    days: tuple[str, ...]
    pipelines: dict[str, tuple[PipelineDay, ...]]
    features: tuple[FeatureFreshness, ...]
    models: tuple[dict[str, Any], ...]
    labelled_performance: tuple[dict[str, Any], ...]
    drift: tuple[dict[str, Any], ...]
    cost: dict[str, Any]
    attention: tuple[AttentionItem, ...]
    sources: dict[str, dict[str, Any]]
    thresholds: HealthThresholds
    report_json: str = ""
    report_html: str = ""

    @property
    def history_days(self) -> int:
        return len(self.days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dt": self.dt, "first_day": self.days[0], "history_days": self.history_days, "days": list(self.days),
            "thresholds": self.thresholds.as_dict(),
            "attention": [a.as_dict() for a in self.attention],
            "pipelines": {name: [row.as_dict() for row in rows] for name, rows in self.pipelines.items()},
            "features": [f.as_dict() for f in self.features],
            "models": list(self.models), "labelled_performance": list(self.labelled_performance),
            "drift": list(self.drift), "cost": self.cost, "sources": self.sources,
            "report_json": self.report_json, "report_html": self.report_html,
        }

    def summary(self) -> dict[str, Any]:
        """A small dict for XCom and the task log."""
        return {"dt": self.dt, "history_days": self.history_days, "report": self.report_html,
                "attention": len(self.attention),
                "critical": sum(1 for a in self.attention if a.severity == CRITICAL)}


# -- reading sources --------------------------------------------------------------------------------------
class _Sources:
    """Reads JSON sources tolerantly and counts, per source, what was found and what could not be read."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.status: dict[str, dict[str, Any]] = {}

    def note(self, source: str, found: int, **extra: Any) -> None:
        entry = self.status.setdefault(source, {"status": NO_DATA, "records": 0})
        entry["records"] += found
        if entry["records"]:
            entry["status"] = OK
        entry.update(extra)

    def listing(self, prefix: str) -> list[StoredFile]:
        try:
            return self.lake.list_files(prefix)
        except (OSError, ValueError) as exc:
            logger.warning("cannot list %s (%s): reported as no data", self.lake.uri(prefix), exc)
            return []

    def json(self, source: str, key: str) -> Any:
        try:
            return self.lake.read_json(key)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("%s: %s is unreadable (%s); left out", source, self.lake.uri(key), exc)
            entry = self.status.setdefault(source, {"status": NO_DATA, "records": 0})
            entry["unreadable"] = entry.get("unreadable", 0) + 1
            return None

    def jsonl(self, source: str, key: str) -> list[dict[str, Any]]:
        try:
            return [json.loads(line) for line in self.lake.read_bytes(key).splitlines() if line.strip()]
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            logger.warning("%s: %s is unreadable (%s); left out", source, self.lake.uri(key), exc)
            return []


def _day_of(key: str) -> str | None:
    found = _DAY_DIR.search(f"/{key}")
    return found.group(1) if found else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _url(kind: str, key: str) -> str | None:
    try:
        return report_url(kind, key)
    except InvalidReportPath:
        return None


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if str(version).isdigit() else (1 << 30, str(version))


def _row(pipeline: str, day: str, flags: Iterable[str] = (), **values: Any) -> PipelineDay:
    flags = tuple(dict.fromkeys(flags))
    status = values.pop("status", None) or (ATTENTION if flags else OK)
    return PipelineDay(pipeline=pipeline, day=day, status=status, flags=flags, **values)


# -- per pipeline -----------------------------------------------------------------------------------------
def _ingestion(src: _Sources, days: Sequence[str], datasets: Iterable[str],
               th: HealthThresholds) -> dict[str, list[PipelineDay]]:
    """``ingest_<dataset>`` rows: the latest non-dry record of a day counts; every record is an attempt."""
    before = (parse_day(days[0]) - datetime.timedelta(days=1)).isoformat()
    wanted = {before, *days}
    found: dict[tuple[str, str], list[tuple[float, str, dict[str, Any]]]] = defaultdict(list)
    names = set(datasets)
    for stored in src.listing(INGESTION_RUNS):
        day, name = _day_of(stored.key), posixpath.basename(stored.key)
        if day is None or not name.endswith(".json") or "__" not in name:
            continue
        dataset = name.split("__", 1)[0]  # the writer names records <dataset>__<run>__try<N>.json
        names.add(dataset)
        if day in wanted:
            record = src.json("ingestion_runs", stored.key)
            if isinstance(record, dict):
                found[(dataset, day)].append((stored.mtime or 0.0, stored.key, record))
    src.note("ingestion_runs", sum(len(v) for (_, d), v in found.items() if d in days))
    out: dict[str, list[PipelineDay]] = {}
    for dataset in sorted(names):
        rows: list[PipelineDay] = []
        previous = _latest_real(found.get((dataset, before), []))
        for day in days:
            records = found.get((dataset, day), [])
            if not records:
                rows.append(_row(f"ingest_{dataset}", day, status=NO_DATA, retries=None))
                previous = None
                continue
            real = [r for r in records if not r[2].get("dry_run")]
            latest = _latest_real(records) or max(records, key=lambda r: (r[0], r[1]))[2]
            tries = max((_int(r[2].get("try_number")) or 1) for r in records)
            retries = max(tries - 1, len(real) - 1, 0)
            rows_in = _int(latest.get("rows_in"))
            quarantined = _int(latest.get("rows_quarantined"))
            rate = _num(latest.get("quarantine_rate"))
            if rate is None and rows_in:
                rate = (quarantined or 0) / rows_in
            flags = []
            if rate is not None and rate > th.max_quarantine_rate:
                flags.append("quarantine_rate")
            change = None
            if previous is not None and rows_in is not None and _int(previous.get("rows_in")):
                change = rows_in / int(previous["rows_in"]) - 1
                if abs(change) > th.max_volume_change:
                    flags.append("volume_change")
            if retries:
                flags.append("retries")
            reasons = latest.get("quarantine_by_reason") or {}
            top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5] if isinstance(reasons, dict) else []
            rows.append(_row(
                f"ingest_{dataset}", day, flags, status=None if real else DRY_RUN, runs=len(real), retries=retries,
                rows_in=rows_in, rows_out=_int(latest.get("rows_written")), rows_quarantined=quarantined,
                quarantine_rate=round(rate, 6) if rate is not None else None, seconds=_num(latest.get("seconds")),
                detail={"rows_duplicate": _int(latest.get("rows_duplicate")), "files": _int(latest.get("files")),
                        "volume_change": round(change, 4) if change is not None else None,
                        "top_reasons": dict(top), "dry_runs": len(records) - len(real),
                        "seconds_all_attempts": round(sum(_num(r[2].get("seconds")) or 0 for r in records), 3),
                        "run_id": latest.get("run_id"), "try_number": _int(latest.get("try_number"))}))
            previous = latest if real else previous
        out[f"ingest_{dataset}"] = rows
    return out


def _latest_real(records: list[tuple[float, str, dict[str, Any]]]) -> dict[str, Any] | None:
    real = [r for r in records if not r[2].get("dry_run")]
    if not real:
        return None
    return max(real, key=lambda r: (r[0], _int(r[2].get("try_number")) or 0, r[1]))[2]


def _compaction(src: _Sources, days: Sequence[str]) -> list[PipelineDay]:
    """``compact_lake`` rows by partition day: one record per compacted partition; a repeat is a retry."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for stored in src.listing(COMPACTION_RUNS):
        day = _day_of(stored.key)
        if day is not None and day in days and stored.key.endswith(".json"):
            record = src.json("compaction_runs", stored.key)
            if isinstance(record, dict):
                found[day].append(record)
    src.note("compaction_runs", sum(len(v) for v in found.values()))
    rows = []
    for day in days:
        records = found.get(day, [])
        if not records:
            rows.append(_row("compact_lake", day, status=NO_DATA))
            continue
        partitions = Counter(str(r.get("partition")) for r in records)
        retries = sum(n - 1 for n in partitions.values())
        rows.append(_row(
            "compact_lake", day, ["retries"] if retries else [], runs=len(records), retries=retries,
            rows_in=sum(_int(r.get("rows")) or 0 for r in records), rows_out=sum(_int(r.get("rows")) or 0 for r in records),
            seconds=round(sum(_num(r.get("seconds")) or 0 for r in records), 3),
            detail={"partitions": sorted(partitions), "files_before": sum(_int(r.get("files_before")) or 0 for r in records),
                    "files_after": sum(_int(r.get("files_after")) or 0 for r in records),
                    "bytes_before": sum(_int(r.get("bytes_before")) or 0 for r in records),
                    "bytes_after": sum(_int(r.get("bytes_after")) or 0 for r in records)}))
    return rows


def _features(src: _Sources, days: Sequence[str], feature_sets: Iterable[str],
              th: HealthThresholds) -> tuple[list[PipelineDay], list[FeatureFreshness]]:
    """``build_features`` rows from the as-of tables' manifests, and each set's freshness at D."""
    committed: dict[str, set[str]] = defaultdict(set)  # table -> days with a manifest
    for stored in src.listing("features"):
        parts = stored.key.split("/")
        if len(parts) == 4 and parts[3] == "_manifest.json" and parts[2].startswith("dt=") \
                and _AS_OF_TABLE.match(parts[1]):
            committed[parts[1]].add(parts[2][3:])
    by_set: dict[str, list[str]] = defaultdict(list)
    for table in committed:
        match = _AS_OF_TABLE.match(table)
        if match is not None:
            by_set[match.group("name")].append(table)
    names = sorted(set(by_set) | set(feature_sets))
    quarantined: dict[str, set[str]] = defaultdict(set)
    for table in committed:
        for stored in src.listing(f"quarantine/{table}"):
            day = _day_of(stored.key)
            if day and stored.key.endswith("/_manifest.json"):
                quarantined[day].add(table)

    def newest(name: str, day: str) -> tuple[str | None, str | None]:
        best: tuple[str | None, str | None] = (None, None)
        for table in by_set.get(name, []):
            upto = [d for d in committed[table] if d <= day]
            if upto and (best[0] is None or max(upto) > best[0]):
                best = (max(upto), table)
        return best

    def lag(name: str, day: str) -> int | None:
        newest_day = newest(name, day)[0]
        return (parse_day(day) - parse_day(newest_day)).days if newest_day else None

    rows = []
    reads = 0
    for day in days:
        sets: dict[str, dict[str, Any]] = {}
        for name in names:
            for table in sorted(by_set.get(name, [])):
                if day not in committed[table]:
                    continue
                doc = src.json("feature_manifests", f"features/{table}/dt={day}/_manifest.json")
                reads += 1
                if isinstance(doc, dict):
                    extra = doc.get("extra") or {}
                    findings = extra.get("findings") or []
                    sets[table] = {"feature_set": name, "rows": _int(doc.get("rows")), "run_id": doc.get("run_id"),
                                  "version": extra.get("version"), "findings": len(findings),
                                  "warnings": [str(f.get("rule", f)) for f in findings[:5] if isinstance(f, dict)]}
        lags = {n: lag(n, day) for n in by_set}
        behind = {n: v for n, v in lags.items() if v is not None and v > th.max_feature_lag_days}
        flags = []
        if behind:
            flags.append("stale_features")
        if quarantined.get(day):
            flags.append("validation_failed")
        if not sets:
            rows.append(_row("build_features", day, flags, status=NO_DATA if not flags else None,
                             detail={"lag_days": lags, "quarantined": sorted(quarantined.get(day, ()))}))
            continue
        rows.append(_row("build_features", day, flags, runs=len(sets),
                         rows_out=sum(s["rows"] or 0 for s in sets.values()),
                         detail={"feature_sets": sets, "lag_days": lags,
                                 "quarantined": sorted(quarantined.get(day, ()))}))
    src.note("feature_manifests", reads)
    last = days[-1]
    freshness = []
    for name in names:
        newest_day, newest_table = newest(name, last)
        versions = tuple(sorted(t[len(name) + 2:] for t in by_set.get(name, [])))
        if newest_day is None:
            freshness.append(FeatureFreshness(name, NO_DATA, versions=versions))
            continue
        behind_days = (parse_day(last) - parse_day(newest_day)).days
        freshness.append(FeatureFreshness(name, "stale" if behind_days > th.max_feature_lag_days else "fresh",
                                          table=newest_table, newest_day=newest_day, lag_days=behind_days,
                                          versions=versions))
    return rows, freshness


def _models(src: _Sources, day: str, window: Sequence[str], bias: dict[tuple[str, str], dict[str, Any]],
            gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every registered version up to ``day``: holdout metrics, training time, bias verdict, gate decision."""
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    report_keys: dict[tuple[str, str], str] = {}
    for stored in src.listing("reports/training"):
        parts = stored.key.split("/")
        if len(parts) == 5 and parts[4] == "report.json":
            report_keys[(parts[2], parts[3])] = stored.key
    for stored in src.listing("models"):
        parts = stored.key.split("/")
        if len(parts) == 4 and parts[3] == "model.json":
            doc = src.json("models", stored.key)
            if isinstance(doc, dict):
                docs[(parts[1], parts[2])] = doc
    for key, report in report_keys.items():
        if key not in docs:  # model files gone (lifecycle), the training report remains
            doc = src.json("training_reports", report)
            if isinstance(doc, dict):
                docs[key] = doc
    src.note("models", len(docs))
    latest_gate: dict[tuple[str, str], dict[str, Any]] = {}
    for decision in sorted(gates, key=lambda g: (g["dt"], g.get("decided_at") or "")):
        latest_gate[(decision["model"], decision["version"])] = decision
    models = []
    for (model, version), doc in docs.items():
        training_set = doc.get("training_set") or {}
        registered = doc.get("registered_day") or _day_of(f"{training_set.get('partition', '')}/")
        if registered is None or registered > day:
            continue
        holdout, training = doc.get("holdout") or {}, doc.get("training") or {}
        rows = training_set.get("rows") or {}
        entry: dict[str, Any] = {
            "model": model, "version": version, "registered_day": registered, "algorithm": doc.get("algorithm") or
            training.get("algorithm"), "run_id": (doc.get("tags") or {}).get("airflow_run_id"),
            **{m: _num(holdout.get(m)) for m in ("pr_auc", "roc_auc", "brier", "precision_at_budget",
                                                  "recall_at_budget")},
            "holdout_rows": _int(holdout.get("rows")),
            "training_rows": sum(v for v in rows.values() if isinstance(v, int)) if isinstance(rows, dict) else None,
            "seconds": _num(training.get("seconds")), "rounds": _int(training.get("rounds")),
            "resumed_from": _int(training.get("resumed_from")),
            "feature_set_versions": training_set.get("feature_set_versions") or {},
            "links": {"training": _url("training", f"{model}/{version}")},
        }
        if (model, version) in report_keys and registered in window:
            report = src.json("training_reports", report_keys[(model, version)])
            if isinstance(report, dict):
                entry["champion_version"] = report.get("champion_version")
                entry["vs_champion"] = report.get("vs_champion")
        audit = bias.get((model, version))
        entry["bias_verdict"] = audit["verdict"] if audit else None
        entry["bias_reasons"] = audit["reasons"] if audit else []
        if audit:
            entry["links"]["bias"] = _url("bias", f"{model}/{version}")
        gate = latest_gate.get((model, version))
        entry["gate_decision"] = gate["decision"] if gate else None
        entry["gate_day"] = gate["dt"] if gate else None
        entry["gate_reasons"] = gate["reasons"] if gate else []
        models.append(entry)
    models.sort(key=lambda m: (m["model"], m["registered_day"], _version_order(m["version"])))
    return models


def _bias_reports(src: _Sources) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for stored in src.listing("reports/bias"):
        parts = stored.key.split("/")
        if len(parts) == 5 and parts[4] == "report.json":
            doc = src.json("bias_reports", stored.key)
            if isinstance(doc, dict):
                found[(parts[2], parts[3])] = {"verdict": str(doc.get("verdict")), "risk_tier": doc.get("risk_tier"),
                                               "reasons": [str(r) for r in doc.get("reasons") or []]}
    src.note("bias_reports", len(found))
    return found


def _gate_decisions(src: _Sources, day: str) -> list[dict[str, Any]]:
    found = []
    for stored in src.listing(GOVERNANCE_AUDIT):
        decided = _day_of(stored.key)
        if decided is None or decided > day or not stored.key.endswith(".json"):
            continue
        doc = src.json("governance_audit", stored.key)
        if isinstance(doc, dict) and doc.get("model") and doc.get("version") is not None:
            found.append({"dt": decided, "model": str(doc["model"]), "version": str(doc["version"]),
                          "decision": str(doc.get("decision")), "reasons": [str(r) for r in doc.get("reasons") or []],
                          "decided_at": doc.get("decided_at"), "champion_after": doc.get("champion_after")})
    src.note("governance_audit", len(found))
    return found


def _training_rows(models: list[dict[str, Any]], days: Sequence[str]) -> list[PipelineDay]:
    rows = []
    for day in days:
        versions = [m for m in models if m["registered_day"] == day]
        if not versions:
            rows.append(_row("train_model", day, status=NO_DATA))
            continue
        resumed = sum(1 for m in versions if (m.get("resumed_from") or 0) > 0)
        seconds = [m["seconds"] for m in versions if m["seconds"] is not None]
        rows.append(_row("train_model", day, ["retries"] if resumed else [], runs=len(versions), retries=resumed,
                         rows_in=sum(m["training_rows"] or 0 for m in versions),
                         seconds=round(sum(seconds), 3) if seconds else None,
                         detail={"versions": [{"model": m["model"], "version": m["version"], "pr_auc": m["pr_auc"],
                                               "algorithm": m["algorithm"]} for m in versions]}))
    return rows


def _audit_rows(gates: list[dict[str, Any]], models: list[dict[str, Any]], days: Sequence[str]) -> list[PipelineDay]:
    """``audit_bias`` rows: gate decisions of the day, and bias verdicts of versions registered that day."""
    gates = [g for g in gates if g["dt"] in days]
    by_version = {(m["model"], m["version"]): m for m in models}
    decided = {(g["model"], g["version"]) for g in gates}
    rows = []
    for day in days:
        todays = [g for g in gates if g["dt"] == day]
        audited = [m for m in models if m["registered_day"] == day and m["bias_verdict"]
                   and (m["model"], m["version"]) not in decided]
        versions = [by_version.get((g["model"], g["version"])) or {"model": g["model"], "version": g["version"],
                                                                     "bias_verdict": None} for g in todays] + audited
        if not versions:
            rows.append(_row("audit_bias", day, status=NO_DATA))
            continue
        flags = []
        if any(v.get("bias_verdict") == "fail" for v in versions):
            flags.append("bias_fail")
        if any(g["decision"] == "refused" and any(not r.startswith("bias:") for r in g["reasons"]) for g in todays):
            flags.append("gate_refused")
        repeats = Counter((g["model"], g["version"]) for g in todays)
        retries = sum(n - 1 for n in repeats.values())
        if retries:
            flags.append("retries")
        rows.append(_row("audit_bias", day, flags, runs=len(todays) or len(audited), retries=retries,
                         detail={"decisions": [{k: g[k] for k in ("model", "version", "decision", "reasons")}
                                               for g in todays],
                                 "verdicts": {f"{v['model']}/{v['version']}": v.get("bias_verdict")
                                              for v in versions}}))
    return rows


def _drift(src: _Sources, days: Sequence[str], models: list[dict[str, Any]], th: HealthThresholds
           ) -> tuple[list[PipelineDay], list[dict[str, Any]], list[dict[str, Any]]]:
    """``monitor_drift`` rows, the drift status per day and the labelled performance per day."""
    holdout = {(m["model"], m["version"]): m["pr_auc"] for m in models}
    present = {s.key for s in src.listing("reports/drift")}
    rows: list[PipelineDay] = []
    drift: list[dict[str, Any]] = []
    performance: list[dict[str, Any]] = []
    for day in days:
        key = f"reports/drift/{day}/report.json"
        doc = src.json("drift_reports", key) if key in present else None
        result = doc.get("drift") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or not isinstance(result, dict):
            rows.append(_row("monitor_drift", day, status=NO_DATA))
            drift.append({"day": day, "status": NO_DATA})
            continue
        model, version = str(doc.get("model")), str(doc.get("version"))
        drifted = [str(f) for f in result.get("drifted_features") or []]
        entry = {"day": day, "status": str(result.get("verdict")), "drift_detected": bool(result.get("drift_detected")),
                 "share_drifted": _num(result.get("share_drifted")), "n_features": _int(result.get("n_features")),
                 "drifted": len(drifted), "drifted_features": drifted[:10],
                 "critical_drifted": [str(f) for f in result.get("critical_drifted") or []],
                 "model": model, "version": version, "link": _url("drift", day)}
        drift.append(entry)
        perf: dict[str, Any] = doc["performance"] if isinstance(doc.get("performance"), dict) else {}
        reference = holdout.get((model, version))
        labelled = {"day": day, "performance_day": perf.get("day"), "model": model, "version": version,
                    "pr_auc": _num(perf.get("pr_auc")), "roc_auc": _num(perf.get("roc_auc")),
                    "labelled": _int(perf.get("labelled")), "holdout_pr_auc": reference,
                    "skipped": perf.get("skipped")}
        performance.append(labelled)
        flags = ["drift"] if entry["drift_detected"] else []
        if labelled["pr_auc"] is not None and reference and \
                labelled["pr_auc"] < reference * (1 - th.max_pr_auc_drop):
            flags.append("performance_drop")
        rows.append(_row("monitor_drift", day, flags, runs=1, rows_in=_int(result.get("current_rows")),
                         detail={"verdict": entry["status"], "share_drifted": entry["share_drifted"],
                                 "version": version, "ingestion": doc.get("ingestion") or {}}))
    src.note("drift_reports", sum(1 for d in drift if d["status"] != NO_DATA))
    return rows, drift, performance


def _scoring(src: _Sources, days: Sequence[str]) -> list[PipelineDay]:
    """``score_batch`` rows from the predictions manifests (their ``extra.result``)."""
    keys: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for stored in src.listing("predictions"):
        parts = stored.key.split("/")
        if len(parts) == 4 and parts[3] == "_manifest.json" and not parts[1].endswith("_features") \
                and parts[2][3:] in days:
            keys[parts[2][3:]].append((parts[1], stored.key))
    rows, found = [], 0
    for day in days:
        results = {}
        for model, key in sorted(keys.get(day, [])):
            doc = src.json("predictions", key)
            if isinstance(doc, dict):
                result = (doc.get("extra") or {}).get("result") or {}
                results[model] = {"rows_read": _int(result.get("rows_read")),
                                  "written": _int(result.get("written", doc.get("rows"))),
                                  "flagged": _int(result.get("flagged")), "shadow_flagged": _int(result.get("shadow_flagged")),
                                  "champion_version": result.get("champion_version"),
                                  "challenger_version": result.get("challenger_version"),
                                  "seconds": _num(result.get("seconds")), "run_id": doc.get("run_id")}
                written, flagged = results[model]["written"], results[model]["flagged"]
                results[model]["flag_rate"] = round(flagged / written, 6) if written and flagged is not None else None
        found += len(results)
        if not results:
            rows.append(_row("score_batch", day, status=NO_DATA))
            continue
        seconds = [r["seconds"] for r in results.values() if r["seconds"] is not None]
        rows.append(_row("score_batch", day, runs=len(results),
                         rows_in=sum(r["rows_read"] or 0 for r in results.values()),
                         rows_out=sum(r["written"] or 0 for r in results.values()),
                         seconds=round(sum(seconds), 3) if seconds else None, detail={"models": results}))
    src.note("predictions", found)
    return rows


def _lifecycle(src: _Sources, days: Sequence[str]) -> tuple[list[PipelineDay], dict[str, Any]]:
    """``lifecycle_cleanup`` rows from the audit log and cost reports, and the newest cost report up to D."""
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for stored in src.listing(LIFECYCLE_AUDIT):
        day = _day_of(stored.key)
        if day is not None and day in days and stored.key.endswith(".jsonl"):
            lines[day] += [r for r in src.jsonl("lifecycle_audit", stored.key) if isinstance(r, dict)]
    src.note("lifecycle_audit", sum(len(v) for v in lines.values()))
    reports = sorted({s.key.split("/")[2] for s in src.listing("reports/cost")
                      if s.key.count("/") == 3 and s.key.endswith("/report.json")})
    costs: dict[str, dict[str, Any]] = {}
    for day in [d for d in reports if d in days]:
        doc = src.json("cost_reports", f"reports/cost/{day}/report.json")
        if isinstance(doc, dict):
            costs[day] = doc
    newest = max((d for d in reports if d <= days[-1]), default=None)
    if newest is not None and newest not in costs:
        doc = src.json("cost_reports", f"reports/cost/{newest}/report.json")
        if isinstance(doc, dict):
            costs[newest] = doc
    src.note("cost_reports", len(costs))
    rows = []
    for day in days:
        records, cost = lines.get(day, []), costs.get(day)
        if not records and cost is None:
            rows.append(_row("lifecycle_cleanup", day, status=NO_DATA))
            continue
        statuses = Counter(str(r.get("status")) for r in records)
        applied = [r for r in records if r.get("status") == "applied"]
        totals = (cost or {}).get("totals") or {}
        rows.append(_row(
            "lifecycle_cleanup", day, ["failed_actions"] if statuses.get("failed") else [],
            runs=len({r.get("run_id") for r in records}) or 1,
            detail={"statuses": dict(sorted(statuses.items())), "dry_run": all(r.get("dry_run") for r in records)
                    if records else None, "bytes_applied": sum(_int(r.get("bytes")) or 0 for r in applied),
                    "monthly_cost": _num(totals.get("monthly_cost")), "bytes": _int(totals.get("bytes"))}))
    return rows, _cost_summary(costs.get(newest) if newest else None, newest)


def _cost_summary(doc: dict[str, Any] | None, day: str | None) -> dict[str, Any]:
    if doc is None or day is None:
        return {"status": NO_DATA}
    totals, saved = doc.get("totals") or {}, doc.get("saved") or {}
    growth = (doc.get("growth") or {}).get("top") or []
    return {"status": OK, "day": day, "currency": doc.get("currency"),
            "monthly_cost": _num(totals.get("monthly_cost")), "bytes": _int(totals.get("bytes")),
            "hot_bytes": _int(totals.get("hot_bytes")), "cold_bytes": _int(totals.get("cold_bytes")),
            "objects": _int(totals.get("objects")), "monthly_saving": _num(saved.get("monthly_saving")),
            "dry_run": doc.get("dry_run"),
            "top_growth": [{k: g.get(k) for k in ("zone", "dataset", "delta_bytes")} for g in growth[:3]
                           if isinstance(g, dict)],
            "link": _url("cost", day)}


# -- attention --------------------------------------------------------------------------------------------
#: Flags that make an item critical when they hold on D itself (the others stay warnings).
CRITICAL_FLAGS = ("quarantine_rate", "stale_features", "validation_failed", "drift", "performance_drop",
                  "bias_fail", "failed_actions")


def _mark_missing(pipelines: dict[str, list[PipelineDay]]) -> None:
    """Flag D as ``missing`` for a daily pipeline that recorded runs earlier in the window but none for D."""
    for name, rows in pipelines.items():
        if not (name.startswith("ingest_") or name in DAILY) or rows[-1].status != NO_DATA or rows[-1].flags:
            continue
        seen = [r.day for r in rows if r.status != NO_DATA]
        if seen:
            rows[-1] = dataclasses.replace(rows[-1], flags=("missing",), detail={"last_recorded": seen[-1]})


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _on(days: Sequence[str]) -> str:
    return f"on {days[0]}" if len(days) == 1 else f"on {len(days)} days (latest {days[-1]})"


def _upstream(pipelines: dict[str, list[PipelineDay]], day: str) -> str:
    """What the upstream pipelines recorded on ``day``: ingestion quality and feature freshness."""
    parts = []
    for name, rows in pipelines.items():
        row = next((r for r in rows if r.day == day), None)
        if row is None or not name.startswith("ingest_"):
            continue
        if row.status == NO_DATA:
            parts.append(f"{name} no run recorded")
            continue
        text = f"{name} quarantine {_pct(row.quarantine_rate)}"
        change = row.detail.get("volume_change")
        if change is not None:
            text += f", volume {change:+.0%}"
        if row.retries:
            text += f", {row.retries} retries"
        parts.append(text)
    features = next((r for r in pipelines.get("build_features", []) if r.day == day), None)
    if features is not None:
        lags = {k: v for k, v in features.detail.get("lag_days", {}).items() if v}
        parts.append("features " + (", ".join(f"{k} {v} day(s) behind" for k, v in sorted(lags.items()))
                                    if lags else "fresh"))
        if features.detail.get("quarantined"):
            parts.append("feature validation failed: " + ", ".join(features.detail["quarantined"]))
    return f"upstream on {day}: " + ("; ".join(parts) if parts else "no records")


def _message(name: str, flag: str, rows: list[PipelineDay], pipelines: dict[str, list[PipelineDay]],
             models: list[dict[str, Any]], drift: list[dict[str, Any]], performance: list[dict[str, Any]],
             th: HealthThresholds) -> tuple[str, tuple[str, ...]]:
    last, days = rows[-1], [r.day for r in rows]
    if flag == "quarantine_rate":
        reasons = ", ".join(f"{k} {v}" for k, v in last.detail.get("top_reasons", {}).items())
        return (f"{name}: quarantine rate above {th.max_quarantine_rate:.0%} {_on(days)}; {last.day}: "
                f"{_pct(last.quarantine_rate)} ({last.rows_quarantined} of {last.rows_in} records)"
                + (f", top reasons: {reasons}" if reasons else ""), ())
    if flag == "volume_change":
        return (f"{name}: records in changed by more than {th.max_volume_change:.0%} against the day before "
                f"{_on(days)}; {last.day}: {last.detail.get('volume_change', 0):+.0%} ({last.rows_in} records)", ())
    if flag == "retries":
        return f"{name}: needed retries {_on(days)} ({last.day}: {last.retries} beyond the first attempt)", ()
    if flag == "missing":
        return f"{name}: no run recorded for {last.day} (last recorded {last.detail.get('last_recorded')})", ()
    if flag == "stale_features":
        lags = {k: v for k, v in last.detail.get("lag_days", {}).items()
                if v is not None and v > th.max_feature_lag_days}
        return (f"build_features: feature tables behind the day {_on(days)}; {last.day}: "
                + ", ".join(f"{k} {v} day(s) behind" for k, v in sorted(lags.items()))
                + "; models trained or scored on those days read older features", ())
    if flag == "validation_failed":
        return (f"build_features: as-of tables failed validation and were quarantined {_on(days)} "
                f"({', '.join(last.detail.get('quarantined', []))} on {last.day})", ())
    if flag == "drift":
        entry = next(d for d in drift if d["day"] == last.day)
        critical = ", ".join(entry["critical_drifted"]) or "none"
        return (f"monitor_drift: drift detected {_on(days)}; {last.day}: {entry['drifted']} of {entry['n_features']} "
                f"monitored columns drifted (share {entry['share_drifted'] or 0:.2f}, critical: {critical}) for "
                f"{entry['model']} version {entry['version']}; {_upstream(pipelines, last.day)}",
                tuple(d["link"] for d in drift if d["day"] in days[-3:] and d.get("link")))
    if flag == "performance_drop":
        perf = next(p for p in performance if p["day"] == last.day)
        return (f"monitor_drift: labelled PR-AUC of the events of {perf['performance_day']} is {perf['pr_auc']:.3f}, "
                f"more than {th.max_pr_auc_drop:.0%} below version {perf['version']}'s holdout "
                f"{perf['holdout_pr_auc']:.3f} ({_on(days)}); {_upstream(pipelines, str(perf['performance_day']))}",
                tuple(d["link"] for d in drift if d["day"] == last.day and d.get("link")))
    if flag == "bias_fail":
        failed = [m for m in models if m["bias_verdict"] == "fail"
                  and any(f"{m['model']}/{m['version']}" in r.detail.get("verdicts", {}) for r in rows)]
        parts = []
        for m in failed[-3:]:
            reasons = "; ".join(m["bias_reasons"][:2]) + (f" (+{len(m['bias_reasons']) - 2} more)"
                                                          if len(m["bias_reasons"]) > 2 else "")
            parts.append(f"{m['model']} version {m['version']} (trained {m['registered_day']}, holdout PR-AUC "
                         f"{m['pr_auc'] if m['pr_auc'] is None else round(m['pr_auc'], 4)}) failed: {reasons}; "
                         f"gate: {m['gate_decision'] or 'no decision'}")
        return (f"audit_bias: bias audit failed {_on(days)}: " + " | ".join(parts),
                tuple(m["links"]["bias"] for m in failed[-3:] if m["links"].get("bias")))
    if flag == "gate_refused":
        decisions = [d for d in last.detail.get("decisions", []) if d["decision"] == "refused"]
        return (f"audit_bias: the promotion gate refused {_on(days)}: "
                + " | ".join(f"{d['model']} version {d['version']}: {'; '.join(d['reasons'][:3])}" for d in decisions),
                ())
    if flag == "failed_actions":
        return (f"lifecycle_cleanup: {last.detail.get('statuses', {}).get('failed', 0)} actions failed on {last.day} "
                f"({_on(days)}); see {LIFECYCLE_AUDIT}/dt={last.day}/", ())
    return f"{name}: {flag} {_on(days)}", ()


def _attention(pipelines: dict[str, list[PipelineDay]], models: list[dict[str, Any]], drift: list[dict[str, Any]],
               performance: list[dict[str, Any]], th: HealthThresholds, day: str) -> list[AttentionItem]:
    """One item per pipeline and condition, over the days it held; critical first, then newest first."""
    grouped: dict[tuple[str, str], list[PipelineDay]] = defaultdict(list)
    for name, rows in pipelines.items():
        for row in rows:
            for flag in row.flags:
                grouped[(name, flag)].append(row)
    order = list(pipelines)
    items = []
    for (name, flag), rows in grouped.items():
        message, links = _message(name, flag, rows, pipelines, models, drift, performance, th)
        severity = CRITICAL if rows[-1].day == day and flag in CRITICAL_FLAGS else WARNING
        items.append(AttentionItem(severity=severity, kind=flag, pipeline=name, days=tuple(r.day for r in rows),
                                   message=message, links=tuple(dict.fromkeys(links))))
    items.sort(key=lambda a: order.index(a.pipeline))
    items.sort(key=lambda a: a.days[-1], reverse=True)
    items.sort(key=lambda a: a.severity != CRITICAL)
    return items


# -- the report -------------------------------------------------------------------------------------------
def build_health_report(lake: Lake, dt: str, *, history_days: int = 30, datasets: Iterable[str] = (),
                        feature_sets: Iterable[str] = (), thresholds: HealthThresholds | None = None) -> HealthReport:
    """Build the health report of day ``dt`` over the ``history_days`` days ending at ``dt``; write it.

    ``datasets`` and ``feature_sets`` name what is expected (their pipelines appear, as "no data", even
    without records); what the lake records is always added. Writes ``reports/health/<dt>/report.json``
    and ``report.html`` (a rerun replaces them). Raises ``ValueError`` only for a bad ``dt`` or
    ``history_days``; missing or unreadable sources are reported as "no data".
    """
    if history_days < 1:
        raise ValueError(f"history_days must be at least 1, not {history_days}")
    day = parse_day(dt)
    days = tuple((day - datetime.timedelta(days=i)).isoformat() for i in range(history_days - 1, -1, -1))
    th = thresholds or HealthThresholds()
    src = _Sources(lake)
    pipelines: dict[str, list[PipelineDay]] = dict(_ingestion(src, days, datasets, th))
    pipelines["compact_lake"] = _compaction(src, days)
    pipelines["build_features"], freshness = _features(src, days, feature_sets, th)
    bias, gates = _bias_reports(src), _gate_decisions(src, days[-1])
    models = _models(src, days[-1], days, bias, gates)
    pipelines["train_model"] = _training_rows(models, days)
    pipelines["audit_bias"] = _audit_rows(gates, models, days)
    pipelines["monitor_drift"], drift, performance = _drift(src, days, models, th)
    pipelines["score_batch"] = _scoring(src, days)
    pipelines["lifecycle_cleanup"], cost = _lifecycle(src, days)
    _mark_missing(pipelines)
    attention = _attention(pipelines, models, drift, performance, th, days[-1])
    for source in ("ingestion_runs", "compaction_runs", "feature_manifests", "models", "bias_reports",
                   "governance_audit", "drift_reports", "predictions", "lifecycle_audit", "cost_reports"):
        src.note(source, 0)
    folder = f"{REPORTS_PREFIX}/{days[-1]}"
    report = HealthReport(
        dt=days[-1], days=days, pipelines={k: tuple(v) for k, v in pipelines.items()}, features=tuple(freshness),
        models=tuple(models), labelled_performance=tuple(performance), drift=tuple(drift), cost=cost,
        attention=tuple(attention), sources=dict(sorted(src.status.items())), thresholds=th,
        report_json=lake.uri(f"{folder}/report.json"), report_html=lake.uri(f"{folder}/report.html"))
    from mlscale.reports.health_html import render_health_html

    doc = report.as_dict()
    lake.write_bytes(f"{folder}/report.html", render_health_html(doc).encode())
    lake.write_json(f"{folder}/report.json", doc)
    logger.info("health report %s..%s: %d pipelines, %d attention items (%d critical); %s", days[0], days[-1],
                len(pipelines), len(attention), report.summary()["critical"], report.report_html)
    return report


__all__ = ["ATTENTION", "CRITICAL", "NO_DATA", "OK", "PIPELINES", "REPORTS_PREFIX", "WARNING", "AttentionItem",
           "FeatureFreshness", "HealthReport", "HealthThresholds", "PipelineDay", "build_health_report"]
