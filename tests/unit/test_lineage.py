"""Lineage walks over real commits: landing → raw → features → training → model → predictions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest
from mlscale.lake import MANIFEST_NAME, Lake, PartitionRef
from mlscale.lineage import LineageGraph, LineageLookupError, render_tree

SCHEMA = pa.schema([("id", pa.string()), ("value", pa.float64())])
DAY, NEXT = "2026-11-20", "2026-11-21"

LANDING_A = f"landing/transactions/dt={DAY}/acquirer_a__0001.csv"
LANDING_B = f"landing/transactions/dt={DAY}/wallet_c__0001.jsonl"
LANDING_C = f"landing/customers/dt={DAY}/customers_0001.csv"
LANDING_Z = f"landing/transactions/dt={NEXT}/acquirer_a__0001.csv"
UNUSED = f"landing/labels/dt={DAY}/labels_0001.csv"

RAW_TX = f"raw/transactions/dt={DAY}"
RAW_TX_NEXT = f"raw/transactions/dt={NEXT}"
RAW_CU = f"raw/customers/dt={DAY}"
QUAR_TX = f"quarantine/transactions/dt={DAY}"
PARTIALS = f"features/customer_activity_vabc123_partials/dt={DAY}"
FEATURES = f"features/customer_activity_vabc123/dt={DAY}"
TRAINING = f"training/fraud_xgb/dt={DAY}"
MODEL = f"models/fraud_xgb/dt={DAY}"
PREDICTIONS = f"predictions/fraud_xgb/dt={NEXT}"
MODEL_EXTRA = {"mlflow_model": "fraud_xgb", "mlflow_version": "3"}


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def commit(lake: Lake, key: str, inputs: list[str], extra: dict | None = None, rows: int = 2) -> None:
    table = pa.table({"id": [f"r{i}" for i in range(rows)], "value": [float(i) for i in range(rows)]},
                     schema=SCHEMA)
    with lake.writer(PartitionRef.from_key(key), run_id=f"run-{key.split('/')[0]}", schema=SCHEMA,
                     inputs=inputs, extra=extra) as w:
        w.write(table, subdir="region=NL")


def file_of(lake: Lake, key: str) -> str:
    """The lake key of the (only) data file of partition ``key``."""
    return lake.require_manifest(PartitionRef.from_key(key)).file_keys()[0]


@pytest.fixture
def chain(lake: Lake) -> Lake:
    for key in (LANDING_A, LANDING_B, LANDING_C, LANDING_Z, UNUSED):
        lake.write_bytes(key, b"id,value\n1,2\n")
    commit(lake, RAW_TX, [lake.uri(LANDING_A), lake.uri(LANDING_B)])
    commit(lake, QUAR_TX, [lake.uri(LANDING_A), lake.uri(LANDING_B)], rows=1)
    commit(lake, RAW_TX_NEXT, [lake.uri(LANDING_Z)])
    commit(lake, RAW_CU, [lake.uri(LANDING_C)])
    commit(lake, PARTIALS, [lake.uri(RAW_TX)])
    commit(lake, FEATURES, [lake.uri(PARTIALS)])
    # a training set records a feature partition and one data file of the customers partition
    commit(lake, TRAINING, [lake.uri(FEATURES), lake.uri(file_of(lake, RAW_CU))])
    commit(lake, MODEL, [lake.uri(TRAINING)], extra=MODEL_EXTRA)
    commit(lake, PREDICTIONS, [lake.uri(MODEL), lake.uri(FEATURES), lake.uri(RAW_TX_NEXT)], rows=3)
    return lake


def keys(nodes) -> list[str]:
    return [n.key for n in nodes]


def test_upstream_of_predictions_reaches_exactly_its_landing_files(chain: Lake) -> None:
    graph = LineageGraph.from_lake(chain)
    up = graph.upstream(chain.uri(PREDICTIONS))
    assert keys(up) == [
        FEATURES, MODEL, RAW_TX_NEXT,      # depth 1
        PARTIALS, LANDING_Z, TRAINING,     # depth 2
        RAW_CU, RAW_TX,                    # depth 3 (the file input resolved to its partition)
        LANDING_C, LANDING_A, LANDING_B,   # depth 4
    ]
    assert [n.key for n in graph.sources(PREDICTIONS)] == [LANDING_C, LANDING_A, LANDING_B, LANDING_Z]
    landing = [n for n in up if n.zone == "landing"]
    assert all(n.kind == "file" and n.exists for n in landing)
    model = next(n for n in up if n.key == MODEL)
    assert (model.zone, model.dataset, model.dt, model.kind) == ("models", "fraud_xgb", DAY, "partition")
    assert model.extra == MODEL_EXTRA and model.rows == 2 and model.run_id == "run-models"
    assert model.uri == chain.uri(MODEL)


def test_downstream_of_a_landing_file_reaches_every_partition_it_influenced(chain: Lake) -> None:
    graph = LineageGraph.from_lake(chain)
    down = graph.downstream(chain.uri(LANDING_A))
    assert keys(down) == [QUAR_TX, RAW_TX, PARTIALS, FEATURES, PREDICTIONS, TRAINING, MODEL]
    # and back: every partition downstream of the customers drop, nothing of transactions
    assert keys(graph.downstream(LANDING_C)) == [RAW_CU, TRAINING, MODEL, PREDICTIONS]
    assert graph.downstream(UNUSED) == []  # a drop nothing was built from yet
    assert graph.upstream(LANDING_A) == []


def test_a_file_path_resolves_to_its_partition(chain: Lake, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    graph = LineageGraph.from_lake(chain)
    data_file = file_of(chain, RAW_CU)
    assert data_file.startswith(f"{RAW_CU}/region=NL/part-")
    for spelling in (data_file, chain.uri(data_file), str(tmp_path / "lake" / data_file),
                     f"file://{tmp_path}/lake/{data_file}", f"{RAW_CU}/region=NL", f"{RAW_CU}/{MANIFEST_NAME}"):
        assert keys(graph.resolve(spelling)) == [RAW_CU], spelling
    monkeypatch.chdir(tmp_path)
    assert keys(graph.resolve(f"lake/{data_file}")) == [RAW_CU]
    assert keys(graph.upstream(f"lake/{data_file}")) == [LANDING_C]
    # a directory that is not a partition stands for every node below it
    assert keys(graph.resolve(f"landing/transactions/dt={DAY}")) == [LANDING_A, LANDING_B]


def test_cold_tier_files_still_resolve_and_keep_lineage(chain: Lake) -> None:
    chain.move_partition(PartitionRef.from_key(RAW_CU), run_id="lifecycle")
    graph = LineageGraph.from_lake(chain)
    cold_file = file_of(chain, RAW_CU)
    assert cold_file.startswith(f"cold/{RAW_CU}/")
    assert keys(graph.resolve(cold_file)) == [RAW_CU]
    # the training set named the file's old (hot) location: it still leads to the partition
    assert keys(graph.upstream(TRAINING)) == [FEATURES, RAW_CU, PARTIALS, LANDING_C, RAW_TX, LANDING_A, LANDING_B]


def test_unknown_uris_give_a_clear_error(chain: Lake) -> None:
    graph = LineageGraph.from_lake(chain)
    with pytest.raises(LineageLookupError, match=r"raw/transactions/dt=2030-01-01 is not a committed partition"):
        graph.upstream("raw/transactions/dt=2030-01-01")
    with pytest.raises(LineageLookupError, match="outside the lake root"):
        graph.downstream("s3://another-bucket/raw/transactions/dt=2026-11-20")
    with pytest.raises(LineageLookupError, match="lake root"):
        graph.resolve(chain.root)


def test_cycles_and_unreadable_manifests_are_tolerated(lake: Lake, caplog: pytest.LogCaptureFixture) -> None:
    a, b = f"features/a/dt={DAY}", f"features/b/dt={DAY}"
    commit(lake, a, [lake.uri(b)])
    commit(lake, b, [lake.uri(a), lake.uri(b)])  # a cycle and a self-reference
    lake.write_bytes(f"features/broken/dt={DAY}/{MANIFEST_NAME}", b"{not json")
    with caplog.at_level(logging.WARNING, logger="mlscale.lineage.graph"):
        graph = LineageGraph.from_lake(lake)
    assert graph.unreadable == (f"features/broken/dt={DAY}/{MANIFEST_NAME}",)
    assert "unreadable manifest" in caplog.text
    assert keys(graph.upstream(a)) == [b]
    assert keys(graph.downstream(a)) == [b]
    assert render_tree(graph, graph.resolve(a), "up") == [
        f"{a}  [2 rows; run run-features]",
        f"└── {b}  [2 rows; run run-features]",
        f"    └── {a}  (see above)",
    ]


def test_inputs_of_deleted_partitions_and_outside_the_lake_are_leaves(lake: Lake) -> None:
    commit(lake, TRAINING, [lake.uri(FEATURES), "s3://vendor-bucket/exports/2026-11-20.csv"])
    graph = LineageGraph.from_lake(lake)
    up = graph.upstream(TRAINING)
    assert [(n.key, n.kind, n.exists) for n in up] == [
        (FEATURES, "partition", False),
        ("s3://vendor-bucket/exports/2026-11-20.csv", "external", None),
    ]
    assert keys(graph.downstream("s3://vendor-bucket/exports/2026-11-20.csv")) == [TRAINING]


def test_lineage_result_and_tree(chain: Lake) -> None:
    graph = LineageGraph.from_lake(chain)
    result = graph.lineage(MODEL, "both")
    doc = result.as_dict()
    assert [n["key"] for n in doc["start"]] == [MODEL]
    assert [(n["key"], n["depth"]) for n in doc["downstream"]] == [(PREDICTIONS, 1)]
    assert [(n["key"], n["depth"]) for n in doc["upstream"]][:2] == [(TRAINING, 1), (FEATURES, 2)]
    assert {"partition": MODEL, "input": TRAINING} in doc["edges"]
    assert doc["start"][0]["extra"] == MODEL_EXTRA
    json.dumps(doc)  # JSON-serialisable
    tree = render_tree(graph, graph.resolve(PREDICTIONS), "up")
    assert tree[0] == f"{PREDICTIONS}  [3 rows; run run-predictions]"
    assert tree[1] == f"├── {FEATURES}  [2 rows; run run-features]"
    assert f"├── {MODEL}  [2 rows; run run-models; mlflow_model=fraud_xgb; mlflow_version=3]" in tree
    assert f"│       ├── {FEATURES}  (see above)" in tree  # reached again through model → training set
    assert sum(f"{FEATURES}  [" in line for line in tree) == 1
    with pytest.raises(ValueError, match="direction"):
        graph.lineage(MODEL, "sideways")


def test_cli_prints_tree_and_json(chain: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    from mlscale.cli.lineage import main

    assert main([PREDICTIONS, "--direction", "up", "--lake", chain.root]) == 0
    out = capsys.readouterr().out
    assert f"lake: {chain.root}" in out
    assert "total: 7 partitions (features 2, models 1, raw 3, training 1), 4 files" in out
    assert main([LANDING_C, "--direction", "down", "--json", "--lake", chain.root]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["key"] for n in doc["downstream"]] == [RAW_CU, TRAINING, MODEL, PREDICTIONS]
    assert doc["upstream"] == []
    assert main(["raw/nothing/dt=2026-01-01", "--lake", chain.root]) == 2
    assert "is not a committed partition" in capsys.readouterr().err


def test_graph_on_an_s3_lake(s3_lake: Lake) -> None:
    s3_lake.write_bytes(LANDING_A, b"id,value\n1,2\n")
    commit(s3_lake, RAW_TX, [s3_lake.uri(LANDING_A)])
    commit(s3_lake, PARTIALS, [s3_lake.uri(RAW_TX)])
    graph = LineageGraph.from_lake(s3_lake)
    assert s3_lake.uri(PARTIALS).startswith("s3://")
    assert keys(graph.upstream(s3_lake.uri(PARTIALS))) == [RAW_TX, LANDING_A]
    assert keys(graph.resolve(s3_lake.uri(file_of(s3_lake, RAW_TX)))) == [RAW_TX]
    assert keys(graph.downstream(s3_lake.uri(LANDING_A))) == [RAW_TX, PARTIALS]
