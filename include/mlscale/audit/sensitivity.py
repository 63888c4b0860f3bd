"""What is sensitive in the lake: whole zones, whole datasets, and protected-attribute columns.

The declaration has three sources:

* zones whose every column is sensitive: ``quarantine`` (rejected rows keep the original record, PII
  included) and ``predictions`` (scores about people);
* datasets whose contract says ``sensitive: true`` at the top level;
* columns a contract marks ``sensitive: true`` (``customers.yaml``: ``gender``, ``age_band``). Such a
  column stays sensitive wherever it travels under the same name (features, training sets, bias audits).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlscale.contracts import load_contract
from mlscale.lake import PartitionRef
from mlscale.layout import config_dir
from mlscale.lineage.node import key_parts

logger = logging.getLogger(__name__)
SENSITIVE_ZONES = ("quarantine", "predictions")


@dataclass(frozen=True)
class SensitivityPolicy:
    """Sensitive zones, datasets and column names; see the module docstring for where they come from."""

    zones: frozenset[str] = frozenset(SENSITIVE_ZONES)
    datasets: frozenset[str] = frozenset()
    columns: frozenset[str] = frozenset()
    datasets_with_columns: frozenset[str] = frozenset()  # datasets whose own contract marks columns

    def sensitive_columns(self, ref: PartitionRef | str, columns: Iterable[str]) -> tuple[str, ...]:
        """The members of ``columns`` that are sensitive in ``ref`` (all of them in a sensitive zone or
        dataset), in the order given."""
        zone, dataset, _ = _zone_dataset(ref)
        names = list(dict.fromkeys(columns))
        if zone in self.zones or dataset in self.datasets:
            return tuple(names)
        return tuple(c for c in names if c in self.columns)

    def is_sensitive(self, ref: PartitionRef | str, columns: Iterable[str] | None = None) -> bool:
        """True when reading ``columns`` of ``ref`` touches sensitive data.

        ``columns=None`` means every column: true for a sensitive zone or dataset, or a dataset whose own
        contract declares sensitive columns (other datasets' schemas are not known without reading them).
        """
        zone, dataset, _ = _zone_dataset(ref)
        if zone in self.zones or dataset in self.datasets:
            return True
        if columns is None:
            return dataset in self.datasets_with_columns
        return bool(self.sensitive_columns(ref, columns))


def _zone_dataset(ref: PartitionRef | str) -> tuple[str, str, str]:
    if isinstance(ref, PartitionRef):
        return ref.zone, ref.dataset, ref.dt
    return key_parts(ref)


def load_policy(contracts_dir: str | Path | None = None) -> SensitivityPolicy:
    """The policy declared by the contracts in ``contracts_dir`` (default: the configuration folder's
    ``contracts/``; cached per directory)."""
    return _load_policy(str(contracts_dir if contracts_dir is not None else config_dir("contracts")))


@functools.lru_cache(maxsize=8)
def _load_policy(contracts_dir: str) -> SensitivityPolicy:
    datasets: set[str] = set()
    columns: set[str] = set()
    with_columns: set[str] = set()
    for path in sorted(Path(contracts_dir).glob("*.yaml")):
        contract = load_contract(path)
        marked = {c.name for c in contract.columns if c.sensitive}
        columns.update(marked)
        if marked:
            with_columns.add(contract.dataset)
        doc = yaml.safe_load(path.read_text()) or {}
        if isinstance(doc, dict) and doc.get("sensitive") is True:
            datasets.add(contract.dataset)
    policy = SensitivityPolicy(datasets=frozenset(datasets), columns=frozenset(columns),
                               datasets_with_columns=frozenset(with_columns))
    logger.debug("sensitivity policy from %s: zones %s, datasets %s, columns %s", contracts_dir,
                 sorted(policy.zones), sorted(policy.datasets), sorted(policy.columns))
    return policy


def is_sensitive(ref: PartitionRef | str, columns: Iterable[str] | None = None,
                 policy: SensitivityPolicy | None = None) -> bool:
    """True when reading ``columns`` (None: all) of partition or key ``ref`` touches sensitive data."""
    return (policy or load_policy()).is_sensitive(ref, columns)


def sensitive_columns(ref: PartitionRef | str, columns: Iterable[str],
                      policy: SensitivityPolicy | None = None) -> tuple[str, ...]:
    """The sensitive members of ``columns`` when read from ``ref`` (see :class:`SensitivityPolicy`)."""
    return (policy or load_policy()).sensitive_columns(ref, columns)
