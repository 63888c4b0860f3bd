"""The health report's model pipelines: registered versions, bias and gate, drift, scoring.

Readers of what the model pipelines record in the lake, over one window of days: registered model
versions with their training reports (``train_model``), bias reports and promotion-gate decisions
(``audit_bias``), drift reports with the labelled performance (``monitor_drift``) and predictions
manifests (``score_batch``). Like :mod:`mlscale.reports.health_sources`, a missing or unreadable record
is left out and counted, never an error.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from mlscale.layout import GOVERNANCE_AUDIT, drift_report_prefix, report_prefix
from mlscale.reports.health_sources import (
    SourceReader,
    as_float,
    as_int,
    day_of,
    pipeline_row,
    report_link,
)
from mlscale.reports.health_types import NO_DATA, HealthThresholds, PipelineDay


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if str(version).isdigit() else (1 << 30, str(version))


def registered_models(src: SourceReader, day: str, window: Sequence[str],
                      bias: dict[tuple[str, str], dict[str, Any]],
                      gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every registered version up to ``day``: holdout metrics, training time, bias verdict, gate decision."""
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    report_keys: dict[tuple[str, str], str] = {}
    for stored in src.listing(report_prefix("training")):
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
        registered = doc.get("registered_day") or day_of(f"{training_set.get('partition', '')}/")
        if registered is None or registered > day:
            continue
        holdout, training = doc.get("holdout") or {}, doc.get("training") or {}
        rows = training_set.get("rows") or {}
        entry: dict[str, Any] = {
            "model": model, "version": version, "registered_day": registered, "algorithm": doc.get("algorithm") or
            training.get("algorithm"), "run_id": (doc.get("tags") or {}).get("airflow_run_id"),
            **{m: as_float(holdout.get(m)) for m in ("pr_auc", "roc_auc", "brier", "precision_at_budget",
                                                  "recall_at_budget")},
            "holdout_rows": as_int(holdout.get("rows")),
            "training_rows": sum(v for v in rows.values() if isinstance(v, int)) if isinstance(rows, dict) else None,
            "seconds": as_float(training.get("seconds")), "rounds": as_int(training.get("rounds")),
            "resumed_from": as_int(training.get("resumed_from")),
            "feature_set_versions": training_set.get("feature_set_versions") or {},
            "links": {"training": report_link("training", f"{model}/{version}")},
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
            entry["links"]["bias"] = report_link("bias", f"{model}/{version}")
        gate = latest_gate.get((model, version))
        entry["gate_decision"] = gate["decision"] if gate else None
        entry["gate_day"] = gate["dt"] if gate else None
        entry["gate_reasons"] = gate["reasons"] if gate else []
        models.append(entry)
    models.sort(key=lambda m: (m["model"], m["registered_day"], _version_order(m["version"])))
    return models


def bias_reports(src: SourceReader) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for stored in src.listing(report_prefix("bias")):
        parts = stored.key.split("/")
        if len(parts) == 5 and parts[4] == "report.json":
            doc = src.json("bias_reports", stored.key)
            if isinstance(doc, dict):
                found[(parts[2], parts[3])] = {"verdict": str(doc.get("verdict")), "risk_tier": doc.get("risk_tier"),
                                               "reasons": [str(r) for r in doc.get("reasons") or []]}
    src.note("bias_reports", len(found))
    return found


def gate_decisions(src: SourceReader, day: str) -> list[dict[str, Any]]:
    found = []
    for stored in src.listing(GOVERNANCE_AUDIT):
        decided = day_of(stored.key)
        if decided is None or decided > day or not stored.key.endswith(".json"):
            continue
        doc = src.json("governance_audit", stored.key)
        if isinstance(doc, dict) and doc.get("model") and doc.get("version") is not None:
            found.append({"dt": decided, "model": str(doc["model"]), "version": str(doc["version"]),
                          "decision": str(doc.get("decision")), "reasons": [str(r) for r in doc.get("reasons") or []],
                          "decided_at": doc.get("decided_at"), "champion_after": doc.get("champion_after"),
                          "run_id": doc.get("run_id")})
    src.note("governance_audit", len(found))
    return found


def training_rows(models: list[dict[str, Any]], days: Sequence[str]) -> list[PipelineDay]:
    rows = []
    for day in days:
        versions = [m for m in models if m["registered_day"] == day]
        if not versions:
            rows.append(pipeline_row("train_model", day, status=NO_DATA))
            continue
        resumed = sum(1 for m in versions if (m.get("resumed_from") or 0) > 0)
        seconds = [m["seconds"] for m in versions if m["seconds"] is not None]
        rows.append(pipeline_row("train_model", day, ["retries"] if resumed else [], runs=len(versions),
                                 retries=resumed, rows_in=sum(m["training_rows"] or 0 for m in versions),
                                 seconds=round(sum(seconds), 3) if seconds else None,
                                 detail={"versions": [{"model": m["model"], "version": m["version"],
                                                       "pr_auc": m["pr_auc"], "algorithm": m["algorithm"]}
                                                      for m in versions]}))
    return rows


def audit_rows(gates: list[dict[str, Any]], models: list[dict[str, Any]], days: Sequence[str]) -> list[PipelineDay]:
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
            rows.append(pipeline_row("audit_bias", day, status=NO_DATA))
            continue
        flags = []
        if any(v.get("bias_verdict") == "fail" for v in versions):
            flags.append("bias_fail")
        if any(g["decision"] == "refused" and any(not r.startswith("bias:") for r in g["reasons"]) for g in todays):
            flags.append("gate_refused")
        # a retry decides again within the same run; a new run (e.g. after an approval) is a new decision
        repeats = Counter((g["model"], g["version"], g.get("run_id")) for g in todays)
        retries = sum(n - 1 for n in repeats.values())
        if retries:
            flags.append("retries")
        rows.append(pipeline_row("audit_bias", day, flags, runs=len(todays) or len(audited), retries=retries,
                                 detail={"decisions": [{k: g[k] for k in ("model", "version", "decision", "reasons")}
                                                       for g in todays],
                                         "verdicts": {f"{v['model']}/{v['version']}": v.get("bias_verdict")
                                                      for v in versions}}))
    return rows


def drift_rows(src: SourceReader, days: Sequence[str], models: list[dict[str, Any]], th: HealthThresholds
               ) -> tuple[list[PipelineDay], list[dict[str, Any]], list[dict[str, Any]]]:
    """``monitor_drift`` rows, the drift status per day and the labelled performance per day."""
    holdout = {(m["model"], m["version"]): m["pr_auc"] for m in models}
    present = {s.key for s in src.listing(report_prefix("drift"))}
    monitored = sorted({k.split("/")[2] for k in present if k.endswith("/report.json") and k.count("/") == 4})
    rows: list[PipelineDay] = []
    drift: list[dict[str, Any]] = []
    performance: list[dict[str, Any]] = []
    for day in days:
        docs = [src.json("drift_reports", f"{drift_report_prefix(m, day)}/report.json") for m in monitored
                if f"{drift_report_prefix(m, day)}/report.json" in present]
        docs = [d for d in docs if isinstance(d, dict) and isinstance(d.get("drift"), dict)]
        # several models: the day shows the one that drifted (else the first); its flags show either way
        doc = next((d for d in docs if d["drift"].get("drift_detected")), docs[0] if docs else None)
        result = doc.get("drift") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or not isinstance(result, dict):
            rows.append(pipeline_row("monitor_drift", day, status=NO_DATA))
            drift.append({"day": day, "status": NO_DATA})
            continue
        model, version = str(doc.get("model")), str(doc.get("version"))
        drifted = [str(f) for f in result.get("drifted_features") or []]
        entry = {"day": day, "status": str(result.get("verdict")), "drift_detected": bool(result.get("drift_detected")),
                 "share_drifted": as_float(result.get("share_drifted")), "n_features": as_int(result.get("n_features")),
                 "drifted": len(drifted), "drifted_features": drifted[:10],
                 "critical_drifted": [str(f) for f in result.get("critical_drifted") or []],
                 "model": model, "version": version, "link": report_link("drift", f"{model}/{day}")}
        drift.append(entry)
        perf: dict[str, Any] = doc["performance"] if isinstance(doc.get("performance"), dict) else {}
        reference = holdout.get((model, version))
        labelled = {"day": day, "performance_day": perf.get("day"), "model": model, "version": version,
                    "pr_auc": as_float(perf.get("pr_auc")), "roc_auc": as_float(perf.get("roc_auc")),
                    "labelled": as_int(perf.get("labelled")), "holdout_pr_auc": reference,
                    "skipped": perf.get("skipped")}
        performance.append(labelled)
        flags = ["drift"] if entry["drift_detected"] else []
        if labelled["pr_auc"] is not None and reference and \
                labelled["pr_auc"] < reference * (1 - th.max_pr_auc_drop):
            flags.append("performance_drop")
        rows.append(pipeline_row("monitor_drift", day, flags, runs=1, rows_in=as_int(result.get("current_rows")),
                                 detail={"verdict": entry["status"], "share_drifted": entry["share_drifted"],
                                         "version": version, "ingestion": doc.get("ingestion") or {}}))
    src.note("drift_reports", sum(1 for d in drift if d["status"] != NO_DATA))
    return rows, drift, performance


def scoring_rows(src: SourceReader, days: Sequence[str]) -> list[PipelineDay]:
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
                results[model] = {"rows_read": as_int(result.get("rows_read")),
                                  "written": as_int(result.get("written", doc.get("rows"))),
                                  "flagged": as_int(result.get("flagged")),
                                  "shadow_flagged": as_int(result.get("shadow_flagged")),
                                  "champion_version": result.get("champion_version"),
                                  "challenger_version": result.get("challenger_version"),
                                  "seconds": as_float(result.get("seconds")), "run_id": doc.get("run_id")}
                written, flagged = results[model]["written"], results[model]["flagged"]
                results[model]["flag_rate"] = round(flagged / written, 6) if written and flagged is not None else None
        found += len(results)
        if not results:
            rows.append(pipeline_row("score_batch", day, status=NO_DATA))
            continue
        seconds = [r["seconds"] for r in results.values() if r["seconds"] is not None]
        rows.append(pipeline_row("score_batch", day, runs=len(results),
                                 rows_in=sum(r["rows_read"] or 0 for r in results.values()),
                                 rows_out=sum(r["written"] or 0 for r in results.values()),
                                 seconds=round(sum(seconds), 3) if seconds else None, detail={"models": results}))
    src.note("predictions", found)
    return rows


__all__ = ["audit_rows", "bias_reports", "drift_rows", "gate_decisions", "registered_models", "scoring_rows",
           "training_rows"]
