"""The operations-economics commands: ``mlscale bottlenecks``, ``mlscale sizing`` and ``mlscale retrain-cadence``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def _day(day: dt.date | None) -> str:
    return (day or dt.datetime.now(dt.UTC).date()).isoformat()


def bottlenecks_command(lake: str | None, days: int, day: dt.date | None, as_json: bool) -> None:
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.usage.bottlenecks import describe
    from mlscale.usage.reports import write_bottleneck_report

    doc = write_bottleneck_report(lake_for_cli(lake), _day(day), days)
    if as_json:
        print(json.dumps(doc["bottlenecks"], indent=1))
        return
    print("\n".join(describe(doc["bottlenecks"])))
    print(f"report: {doc['report']}")


def sizing_command(lake: str | None, days: int, day: dt.date | None, as_json: bool) -> None:
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.sizing import advise_from_history
    from mlscale.usage.history import by_stage, usage_history

    records = usage_history(lake_for_cli(lake), _day(day), days)
    advice = [a for stage in by_stage(records).values() if (a := advise_from_history(stage)) is not None]
    if as_json:
        print(json.dumps([a.as_dict() for a in advice], indent=1))
        return
    print(f"{len(records)} task runs over {days} days; {len(advice)} stages with enough runs to advise")
    for a in sorted(advice, key=lambda a: (a.dag_id, a.task_id)):
        print(a.summary())


def cadence_command(lake: str | None, models: tuple[str, ...], days: int, day: dt.date | None,
                    as_json: bool) -> list[dict[str, Any]]:
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.governance.retrain_cadence import write_cadence_report
    from mlscale.layout import declared
    from mlscale.usage.history import usage_history

    found = lake_for_cli(lake)
    records = usage_history(found, _day(day), days)
    docs = [write_cadence_report(found, model, _day(day), records) for model in (models or declared("models"))]
    for doc in docs:
        rec = doc["recommendation"]
        print(json.dumps(rec, indent=1) if as_json else
              f"{doc['model']}: retrain every {rec['interval_days']} days — {rec['why']}\nreport: {doc['report']}")
    return docs
