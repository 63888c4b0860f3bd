"""The assets mlscale DAGs produce and consume, named once so producers and consumers agree.

URIs use the ``x-mlscale`` scheme: a logical name for a lake table, independent of the lake root
(``x-`` schemes are taken as they are, without a provider lookup at parse time).
"""

from __future__ import annotations

from airflow.sdk import Asset


def lake_asset(zone: str, dataset: str) -> Asset:
    return Asset(name=f"{zone}_{dataset}", uri=f"x-mlscale://{zone}/{dataset}", group=zone)


def late_files_asset(dataset: str) -> Asset:
    """Updated when a day's ingestion finds files of earlier days that landed after those days were committed;
    its event's ``extra`` names the dataset and the days (``rerun_late_files`` reruns them)."""
    return Asset(name=f"late_files_{dataset}", uri=f"x-mlscale://landing/{dataset}/late", group="landing")


def champion_asset() -> Asset:
    """Updated when the promotion gate moves a model's ``champion``; its event's ``extra`` names the model, the
    new version, the previous champion and the day (``deploy_model`` rolls it out to online scoring)."""
    return Asset(name="models_champion", uri="x-mlscale://models/champion", group="models")
