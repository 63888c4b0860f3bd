"""The daily shadow comparison: how the challenger's would-be decisions differ from the champion's.

:func:`compare_shadow` reads day D's predictions (a sensitive zone: through
:func:`mlscale.audit.access.read_sensitive`, purpose ``shadow_comparison``, so the read is in the access log)
and reports, over the events both models scored:

* the agreement rate of the decisions and the number of decisions that would change (events the challenger
  would newly flag, events it would stop flagging);
* the Pearson and Spearman correlations of the scores;
* where labels are known, each model's precision and recall at its threshold. Labels arrive days after the
  events, so every committed ``raw/<labels>`` partition from D to D+``label_days`` is read (the latest report
  per event wins) and the report says how many events were labelled and up to which day; re-running the
  comparison later includes the labels that arrived since.

It writes ``reports/shadow/<model>/<D>/report.json`` and ``report.html`` (replaced on rerun) and changes no
prediction: shadow rows never become decisions.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from mlscale.audit.access import ActorLike, read_sensitive
from mlscale.lake import Lake, PartitionNotFound, parse_day
from mlscale.layout import report_prefix as zone_report_prefix
from mlscale.scoring.layout import predictions_ref
from mlscale.scoring.models import CHAMPION_ROLE, SHADOW_ROLE
from mlscale.scoring.shadow_html import render_shadow_html
from mlscale.training.spec import ModelSpec, load_model_spec

logger = logging.getLogger(__name__)

REPORTS_PREFIX = zone_report_prefix("shadow")
PURPOSE = "shadow_comparison"
DEFAULT_LABEL_DAYS = 30


@dataclass(frozen=True)
class ModelOutcome:
    """One model's decisions on the day, and their quality on the labelled events."""

    version: str
    threshold: float
    flagged: int                      # all events
    labelled_flagged: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float | None           # None: no labelled flagged event
    recall: float | None              # None: no labelled positive event


@dataclass(frozen=True)
class ShadowComparison:
    model: str
    dt: str
    status: str                       # "compared" or "no_challenger"
    champion_version: str
    challenger_version: str | None
    events: int
    agreement_rate: float | None
    decisions_changed: int
    newly_flagged: int                # the challenger would flag, the champion did not
    no_longer_flagged: int            # the champion flagged, the challenger would not
    score_pearson: float | None
    score_spearman: float | None
    labelled: int
    labelled_positives: int
    label_days_read: list[str]
    champion: ModelOutcome
    challenger: ModelOutcome | None
    report_json: str
    report_html: str
    run_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def asset_extra(self) -> dict[str, Any]:
        return {"model": self.model, "dt": self.dt, "status": self.status, "agreement_rate": self.agreement_rate,
                "decisions_changed": self.decisions_changed, "labelled": self.labelled}


def report_prefix(model: str, day: str | dt.date) -> str:
    return f"{REPORTS_PREFIX}/{model}/{parse_day(day).isoformat()}"


def compare_shadow(*, lake: Lake, dt: str, run_id: str, model: str,
                   label_days: int = DEFAULT_LABEL_DAYS, actor: ActorLike | None = None) -> ShadowComparison:
    """Compare champion and challenger on day ``dt`` and write the report (see the module docstring)."""
    spec = load_model_spec(model)
    day = parse_day(dt)
    ref = predictions_ref(spec.name, day)
    if lake.manifest(ref) is None:
        raise PartitionNotFound(f"{lake.uri(ref.key)} has no committed manifest: run score_batch for {day} first")
    who = actor if actor is not None else {"dag_id": "score_batch", "task_id": "shadow_report", "run_id": run_id}
    columns = [spec.event_key, "role", "model_version", "score", "threshold", "decision", "shadow_decision"]
    frame = read_sensitive(lake, ref, columns=columns, purpose=PURPOSE, actor=who,
                           note="daily champion/challenger comparison").to_pandas()
    frame["role"] = frame["role"].astype(str)
    champ = frame[frame["role"] == CHAMPION_ROLE].set_index(spec.event_key)
    shadow = frame[frame["role"] == SHADOW_ROLE].set_index(spec.event_key)
    labels, label_days_read = _labels(lake, spec, day, label_days, champ.index)
    champion = _outcome(champ, "decision", labels)
    prefix = report_prefix(spec.name, day)
    paths = {"report_json": lake.uri(f"{prefix}/report.json"), "report_html": lake.uri(f"{prefix}/report.html")}
    base: dict[str, Any] = {"model": spec.name, "dt": day.isoformat(), "champion_version": champion.version,
                            "labelled": int(labels.notna().sum()), "labelled_positives": int((labels == 1).sum()),
                            "label_days_read": label_days_read, "champion": champion, "run_id": run_id, **paths}
    if shadow.empty:
        result = ShadowComparison(status="no_challenger", challenger_version=None, events=len(champ),
                                  agreement_rate=None, decisions_changed=0, newly_flagged=0, no_longer_flagged=0,
                                  score_pearson=None, score_spearman=None, challenger=None, **base)
    else:
        both = champ[["score", "decision"]].join(shadow[["score", "shadow_decision"]], how="inner", rsuffix="_shadow")
        a, b = both["decision"].astype(bool).to_numpy(), both["shadow_decision"].astype(bool).to_numpy()
        result = ShadowComparison(
            status="compared", challenger_version=str(shadow["model_version"].iloc[0]), events=len(both),
            agreement_rate=float((a == b).mean()) if len(both) else None, decisions_changed=int((a != b).sum()),
            newly_flagged=int((~a & b).sum()), no_longer_flagged=int((a & ~b).sum()),
            score_pearson=_pearson(both["score"].to_numpy(), both["score_shadow"].to_numpy()),
            score_spearman=_pearson(both["score"].rank().to_numpy(), both["score_shadow"].rank().to_numpy()),
            challenger=_outcome(shadow, "shadow_decision", labels), **base)
    doc = _json_safe(result.as_dict())
    lake.write_json(f"{prefix}/report.json", doc)
    lake.write_bytes(f"{prefix}/report.html", render_shadow_html(doc).encode())
    _log(result)
    return result


def _labels(lake: Lake, spec: ModelSpec, day: dt.date, label_days: int, keys: Any) -> tuple[Any, list[str]]:
    """The latest label of each event of ``keys`` reported in D..D+label_days (NaN: not labelled yet)."""
    import pandas as pd

    last = day + dt.timedelta(days=max(0, int(label_days)))
    refs = lake.partition_days("raw", spec.label_dataset, day.isoformat(), last.isoformat())
    wanted = pd.Index(keys).astype(str)
    parts = []
    for ref in refs:
        table = lake.read_table(ref, columns=[spec.label_key, spec.label_column, spec.label_time])
        table = table.filter(pc.is_in(table.column(spec.label_key).cast("string"),
                                      value_set=pc.cast(wanted.to_numpy(dtype=object), "string")))
        parts.append(table.to_pandas())
    labels = pd.Series(np.nan, index=wanted, dtype="float64")
    if parts:
        found = pd.concat(parts, ignore_index=True).sort_values([spec.label_time, spec.label_key], kind="stable")
        found = found.drop_duplicates(subset=[spec.label_key], keep="last").set_index(spec.label_key)
        labels.loc[found.index.astype(str)] = found[spec.label_column].astype("float64").to_numpy()
    logger.info("labels: %d of %d events labelled (%d positive) in %d partitions of %s, %s..%s", labels.notna().sum(),
                len(labels), (labels == 1).sum(), len(refs), spec.label_dataset, day, last)
    return labels, [r.dt for r in refs]


def _outcome(rows: Any, decision: str, labels: Any) -> ModelOutcome:
    if rows.empty:
        return ModelOutcome(version="", threshold=float("nan"), flagged=0, labelled_flagged=0, true_positives=0,
                            false_positives=0, false_negatives=0, precision=None, recall=None)
    flags = rows[decision].astype(bool)
    truth = labels.reindex(rows.index.astype(str)).to_numpy()
    flagged, known = flags.to_numpy(), ~np.isnan(truth)
    positive = known & (truth == 1)
    tp = int((flagged & positive).sum())
    fp = int((flagged & known & ~positive).sum())
    fn = int((~flagged & positive).sum())
    return ModelOutcome(version=str(rows["model_version"].iloc[0]), threshold=float(rows["threshold"].iloc[0]),
                        flagged=int(flagged.sum()), labelled_flagged=tp + fp, true_positives=tp, false_positives=fp,
                        false_negatives=fn, precision=tp / (tp + fp) if tp + fp else None,
                        recall=tp / (tp + fn) if tp + fn else None)


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _json_safe(value: Any) -> Any:
    """NaN/inf become null, so the report is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _log(r: ShadowComparison) -> None:
    if r.status == "no_challenger":
        logger.info("shadow %s %s: no challenger was scored (champion v%s only); report %s", r.model, r.dt,
                    r.champion_version, r.report_html)
        return
    logger.info("shadow %s %s: champion v%s vs challenger v%s over %d events: agreement %.4f, %d decisions would "
                "change (+%d / -%d), score correlation pearson %s spearman %s; %d labelled (%d positive); report %s",
                r.model, r.dt, r.champion_version, r.challenger_version, r.events, r.agreement_rate or 0.0,
                r.decisions_changed, r.newly_flagged, r.no_longer_flagged, r.score_pearson, r.score_spearman,
                r.labelled, r.labelled_positives, r.report_html)
