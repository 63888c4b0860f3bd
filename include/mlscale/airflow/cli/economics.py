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


def idle_clusters_command(conn_ids: tuple[str, ...], idle_minutes: float, shutdown: bool, as_json: bool) -> int:
    """Probe each Dask connection's running scheduler; returns how many were idle past the threshold."""
    from mlscale.airflow.devices import CONNECTIONS
    from mlscale.airflow.hooks.dask_hook import DaskHook
    from mlscale.compute import ClusterError
    from mlscale.usage import load_prices
    from mlscale.usage.idle import check_dask_cluster

    prices, found, notes = load_prices(), [], []
    for conn_id in conn_ids or tuple(CONNECTIONS.values()):
        try:
            spec = DaskHook(dask_conn_id=conn_id).get_spec()
        except Exception as exc:  # noqa: BLE001 - a connection that is not defined here: say so, check the others
            notes.append(f"{conn_id}: not checked ({type(exc).__name__}: {exc})")
            continue
        if not spec.address:
            notes.append(f"{conn_id}: a LocalCluster started and closed by each task, never idle between tasks")
            continue
        try:
            found.append(check_dask_cluster(spec, prices, idle_after_s=idle_minutes * 60, shutdown=shutdown))
        except ClusterError as exc:
            notes.append(f"{conn_id}: not reachable ({exc})")
    if as_json:
        print(json.dumps({"clusters": [c.as_dict() for c in found], "notes": notes}, indent=1))
    else:
        print("\n".join([c.summary() for c in found] + notes))
    return sum(c.idle for c in found)
