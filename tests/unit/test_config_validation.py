"""The declarative YAML files reject unknown keys, naming the file, the key path and the keys allowed there; the
committed files load to the same objects as before their shapes were checked; contract source options."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlscale.contracts import ContractError, contract_names, load_contract
from mlscale.features.definitions import FeatureDefinitionError, feature_set_names, load_feature_set
from mlscale.governance.risk_policy import RiskPolicyError, load_risk_policy
from mlscale.layout import config_dir
from mlscale.lifecycle.holds import HoldError, load_holds
from mlscale.lifecycle.policy import PolicyError, load_policy
from mlscale.synthetic.scenario import ScenarioError, load_scenario
from mlscale.training.spec import ModelSpecError, load_model_spec, model_names

SNAPSHOT = Path(__file__).with_name("config_snapshot.json")
VOLATILE = {"path", "source", "fingerprint", "version"}  # where a file was read from, hashes of its text


def with_typo(tmp_path: Path, committed: str, old: str, new: str) -> Path:
    """A copy of a committed configuration file with the first ``old`` replaced by ``new``."""
    text = (config_dir(committed.split("/")[0]) / committed.split("/")[1]).read_text()
    assert old in text, f"{committed} no longer contains {old!r}"
    path = tmp_path / committed.split("/")[1]
    path.write_text(text.replace(old, new, 1))
    return path


LOADERS: dict[str, tuple[Callable[[Path], Any], type[Exception]]] = {
    "contracts": (load_contract, ContractError), "feature_repo": (load_feature_set, FeatureDefinitionError),
    "models": (load_model_spec, ModelSpecError), "scenarios": (load_scenario, ScenarioError),
    "policies/retention.yaml": (load_policy, PolicyError), "policies/model_risk.yaml": (load_risk_policy, RiskPolicyError),
}


@pytest.mark.parametrize(("committed", "old", "new", "message"), [
    ("contracts/transactions.yaml", 'delimiter: ";"', 'delimter: ";"',
     "sources.acquirer_b.delimter: unknown key 'delimter' in sources.acquirer_b (allowed: complete_when, decimal, delimiter, "
     "encoding, files, format, null_values, rename, thousands, timestamp)"),
    ("contracts/transactions.yaml", "{type: string, required: true, enum: [EUR", "{type: string, reqired: true, enum: [EUR",
     "columns.currency.reqired: unknown key 'reqired' in columns.currency (allowed: case, enum, max, min, pii, "
     "required, sensitive, type)"),
    ("contracts/transactions.yaml", "dedupe_window_days:", "dedupe_windows_days:",
     "dedupe_windows_days: unknown key 'dedupe_windows_days' (allowed: columns, dataset, dedupe_window_days, "
     "description, event_time, key, max_future_hours, max_lateness_days, max_quarantine_rate, partition_by, pii, sensitive, sources, "
     "version)"),
    ("contracts/transactions.yaml", "timestamp: {format: epoch_ms}", "timestamp: {fromat: epoch_ms}",
     "sources.acquirer_b.timestamp.fromat: unknown key 'fromat' in sources.acquirer_b.timestamp (allowed: format, "
     "timezone)"),
    ("feature_repo/customer_activity.yaml", "max_null_rate:", "max_nul_rate:",
     "validation.spend_mean_30d.max_nul_rate: unknown key 'max_nul_rate' in validation.spend_mean_30d (allowed: "
     "max, max_change_ratio, max_null_rate, min)"),
    ("feature_repo/customer_activity.yaml", "column: amount, q: 0.5", "column: amount, quantile: 0.5",
     "features.amount_p50.quantile: unknown key 'quantile' in features.amount_p50 (allowed: baseline_window, "
     "column, encoding, kind, predicate, q, values, width, windows)"),
    ("models/fraud_detector.yaml", "  max_rounds:", "  max_round:",
     "training.max_round: unknown key 'max_round' in training (allowed: checkpoint_every, class_weight, "
     "drift_retrain, early_stopping_rounds, history_days, max_rounds, negative_sample_rate, params, "
     "retrain_every_days, review_budget, split)"),
    ("models/fraud_detector.yaml", "cooldown_days:", "cooldown:",
     "training.drift_retrain.cooldown: unknown key 'cooldown' in training.drift_retrain (allowed: cooldown_days, "
     "max_per_30_days)"),
    ("policies/retention.yaml", "grace_hours:", "grace_hour:",
     "orphans.grace_hour: unknown key 'grace_hour' in orphans (allowed: grace_hours)"),
    ("policies/retention.yaml", "min_keep_days: 7", "min_keep: 7",
     "rules[0].min_keep: unknown key 'min_keep' in rules[0] (allowed: classification, cold_after_days, datasets, "
     "delete_after_days, min_keep_days, name, storage_class, zone)"),
    ("policies/model_risk.yaml", "ci_level: 0.90", "ci_levl: 0.90",
     "tiers.low.bias.ci_levl: unknown key 'ci_levl' in tiers.low.bias (allowed: bootstrap_samples, ci_level, "
     "judged_on, max_demographic_parity_difference, max_equalized_odds_difference, min_class_count, "
     "min_demographic_parity_ratio, min_group_size)"),
    ("scenarios/half_year.yaml", "\nepisodes:", "\nepisode:",
     "episode: unknown key 'episode' (allowed: description, episodes, scenario, world)"),
    ("scenarios/half_year.yaml", "{region: PL,", "{regon: PL,",
     "episodes[4].region_share.regon: unknown key 'regon' in episodes[4].region_share (allowed: region, share)"),
])
def test_a_misspelt_key_is_an_error_naming_the_file_the_key_and_the_allowed_keys(
        tmp_path: Path, committed: str, old: str, new: str, message: str) -> None:
    loader, error = LOADERS.get(committed) or LOADERS[committed.split("/")[0]]
    path = with_typo(tmp_path, committed, old, new)
    with pytest.raises(error) as err:
        loader(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_a_misspelt_key_of_a_legal_hold_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "legal_holds.yaml"
    path.write_text("holds:\n  - {id: LH-1, scope: {zone: raw, datset: transactions}, reason: litigation, "
                    "who: legal@example.com, since: 2026-01-02}\n")
    with pytest.raises(HoldError, match=re.escape(
            f"{path} hold 'LH-1': scope.datset: unknown key 'datset' in scope (allowed: dataset, from, prefix, to, "
            "zone)")):
        load_holds(path)


def test_problems_are_all_named_in_one_message(tmp_path: Path) -> None:
    path = with_typo(tmp_path, "contracts/labels.yaml", "    delimiter:", "    delimter:")
    path.write_text(path.read_text().replace("dataset: labels", "datset: labels"))
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(err.value) == (
        f"{path}: dataset: missing required key 'dataset'; sources.issuer.delimter: unknown key 'delimter' in "
        "sources.issuer (allowed: complete_when, decimal, delimiter, encoding, files, format, null_values, rename, "
        "thousands, timestamp); datset: unknown key 'datset' (allowed: columns, dataset, dedupe_window_days, description, "
        "event_time, key, max_future_hours, max_lateness_days, max_quarantine_rate, partition_by, pii, sensitive, sources, version)")


def plain(value: Any) -> Any:
    """Dataclasses as dicts, tuples as lists, without the fields that depend on where or how the text was written."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name not in VOLATILE}
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def committed_objects() -> dict[str, Any]:
    objects: dict[str, Any] = {f"contracts/{n}": load_contract(n) for n in contract_names()}
    objects |= {f"feature_repo/{n}": load_feature_set(n) for n in feature_set_names()}
    objects |= {f"models/{n}": load_model_spec(n) for n in model_names()}
    objects |= {"policies/retention": load_policy(), "policies/model_risk": load_risk_policy(),
                "scenarios/half_year": load_scenario("half_year")}
    return {key: plain(obj) for key, obj in objects.items()}


def contains(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (fields added since the snapshot are not differences)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for k, v in expected.items()
                for d in (contains(v, actual[k], f"{where}.{k}") if k in actual else [f"{where}.{k}: gone"])]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in contains(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: {expected!r} -> {actual!r}"]


def test_the_committed_files_load_to_the_same_objects_as_before() -> None:
    """``config_snapshot.json`` holds what the committed files loaded to before their shapes were checked; a
    deliberate change of a committed file updates it (``plain(...)`` of the new object)."""
    snapshot = json.loads(SNAPSHOT.read_text())
    loaded = committed_objects()
    assert sorted(loaded) == sorted(snapshot)
    assert [d for key in snapshot for d in contains(snapshot[key], loaded[key], key)] == []
    transactions = load_contract("transactions")
    assert all(s.encoding == "utf-8" and s.null_values == () for s in transactions.sources)
    assert all(c.case == "sensitive" for c in transactions.columns)


def contract_with(tmp_path: Path, old: str, new: str) -> Path:
    return with_typo(tmp_path, "contracts/transactions.yaml", old, new)


A_SOURCE = '    delimiter: ","\n    decimal: "."\n'


@pytest.mark.parametrize(("old", "new", "message"), [
    (A_SOURCE, A_SOURCE + "    encoding: cp-9999\n",
     "sources.acquirer_a.encoding 'cp-9999' is not a text encoding Python knows"),
    (A_SOURCE, A_SOURCE + "    encoding: base64\n", "sources.acquirer_a.encoding 'base64' is not a text encoding"),
    (A_SOURCE, A_SOURCE + "    encoding: utf-16\n",
     "sources.acquirer_a.encoding 'utf-16' does not write ASCII as ASCII"),
    (A_SOURCE, A_SOURCE + "    null_values: [NULL]\n", "sources.acquirer_a.null_values[0] must be text, got None"),
    ("{type: string, required: true}\n  event_ts", "{type: string, required: true, case: insensitive}\n  event_ts",
     "columns.event_id: case: insensitive applies to enum values"),
    ("enum: [EUR, GBP, USD, PLN, SEK]}", "enum: [EUR, GBP, USD, PLN, SEK], case: upper}",
     "columns.currency.case 'upper' is not one of ('sensitive', 'insensitive')"),
    ("enum: [EUR, GBP, USD, PLN, SEK]}", "enum: [EUR, Eur, USD, PLN, SEK], case: insensitive}",
     "columns.currency: enum values ['EUR', 'Eur', 'USD', 'PLN', 'SEK'] differ only in case"),
])
def test_invalid_source_and_column_options_are_contract_errors(tmp_path: Path, old: str, new: str,
                                                               message: str) -> None:
    path = contract_with(tmp_path, old, new)
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_source_and_column_options_load(tmp_path: Path) -> None:
    path = contract_with(tmp_path, A_SOURCE, A_SOURCE + '    encoding: Windows-1252\n    null_values: ["", " N/A ", NA]\n')
    path.write_text(path.read_text().replace("enum: [EUR, GBP, USD, PLN, SEK]}",
                                             "enum: [EUR, GBP, USD, PLN, SEK], case: insensitive}"))
    contract = load_contract(path)
    source = contract.source_for("acquirer_a__0001.csv")
    assert source is not None and source.encoding == "cp1252" and source.null_values == ("", "N/A", "NA")
    assert contract.column("currency").case == "insensitive" and contract.column("channel").case == "sensitive"
    for name, canonical in (("latin-1", "iso8859-1"), ("UTF8", "utf-8"), ("utf-8-sig", "utf-8")):
        path = contract_with(tmp_path, A_SOURCE, A_SOURCE + f"    encoding: {name}\n")
        assert load_contract(path).sources[0].encoding == canonical
