"""The lake a command-line run works on: ``--lake``, else the Airflow configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlscale.lake import Lake


def lake_for_cli(root: str | None) -> Lake:
    from mlscale.airflow.hooks.lake_hook import LakeHook

    return LakeHook(root=root).get_lake()
