"""Lineage walks over real commits: landing → raw → features → training set → model version → predictions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest
from mlscale.lake import MANIFEST_NAME, Lake, PartitionRef
from mlscale.lineage import LineageGraph, LineageLookupError, render_tree, summarize
from mlscale.training.model import StoredModel

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
MODEL = "models/fraud_xgb/3"          # the champion: a model version, not a partition
CHALLENGER = "models/fraud_xgb/4"     # scored in shadow
PREDICTIONS = f"predictions/fraud_xgb/dt={NEXT}"
MODEL_EXTRA = {"name": "fraud_xgb", "version": "3", "algorithm": "xgboost", "registered_day": DAY}


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def commit(lake: Lake, key: str, inputs: list[str], extra: dict | None = None, rows: int = 2) -> None:
    table = pa.table({"id": [f"r{i}" for i in range(rows)], "value": [float(i) for i in range(rows)]},
                     schema=SCHEMA)
    with lake.writer(PartitionRef.from_key(key), run_id=f"run-{key.split('/')[0]}", schema=SCHEMA,
                     inputs=inputs, extra=extra) as w:
        w.write(table, subdir="region=NL")


def save_model(lake: Lake, version: str, doc: dict) -> str:
    """Store a model version the way training does (``model.bin`` + ``model.json``)."""
    return StoredModel(name="fraud_xgb", version=version, algorithm="xgboost", features=("value",),
                       raw=b"booster-bytes", doc=doc).save(lake)


def model_doc(lake: Lake, training: str, run_id: str) -> dict:
    """What ``mlscale.training.run`` records in ``model.json`` (the parts lineage reads)."""
    return {"tags": {"training_set": training, "airflow_run_id": run_id}, "training_set": {"partition": training},
            "inputs": [lake.uri(training)], "registered_day": DAY}


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
    assert save_model(lake, "3", model_doc(lake, TRAINING, "run-train")) == MODEL
    assert save_model(lake, "4", model_doc(lake, TRAINING, "run-train-4")) == CHALLENGER
    # scoring records each model version's directory (score.py: lake.uri(f"{prefix}/")); one spelled with
    # the trailing slash kept
    commit(lake, PREDICTIONS, [lake.uri(FEATURES), lake.uri(RAW_TX_NEXT), lake.uri(f"{MODEL}/"),
                               lake.uri(CHALLENGER) + "/"], rows=3)
    return lake


def keys(nodes) -> list[str]:
    return [n.key for n in nodes]


def test_upstream_of_predictions_reaches_exactly_its_landing_files(chain: Lake) -> None:
    graph = LineageGraph.from_lake(chain)
    up = graph.upstream(chain.uri(PREDICTIONS))
    assert keys(up) == [
        FEATURES, MODEL, CHALLENGER, RAW_TX_NEXT,  # depth 1
        PARTIALS, LANDING_Z, TRAINING,             # depth 2
        RAW_CU, RAW_TX,                            # depth 3 (the file input resolved to its partition)
        LANDING_C, LANDING_A, LANDING_B,           # depth 4
    ]
    assert [n.key for n in graph.sources(PREDICTIONS)] == [LANDING_C, LANDING_A, LANDING_B, LANDING_Z]
    landing = [n for n in up if n.zone == "landing"]
    assert all(n.kind == "file" and n.exists for n in landing)
    model = next(n for n in up if n.key == MODEL)
    assert (model.zone, model.dataset, model.dt, model.kind) == ("models", "fraud_xgb", DAY, "model")
    assert model.is_model and not model.is_partition and model.exists
    assert model.extra == MODEL_EXTRA and model.rows is None and model.run_id == "run-train"
    assert model.uri == chain.uri(MODEL)
    assert keys(graph.inputs_of(MODEL)) == [TRAINING]
    assert keys(graph.inputs_of(PREDICTIONS)) == [FEATURES, MODEL, CHALLENGER, RAW_TX_NEXT]


def test_downstream_of_a_landing_file_reaches_every_partition_it_influenced(chain: Lake) -> None:
    graph = LineageGraph.from_lake(chain)
    down = graph.downstream(chain.uri(LANDING_A))
    assert keys(down) == [QUAR_TX, RAW_TX, PARTIALS, FEATURES, PREDICTIONS, TRAINING, MODEL, CHALLENGER]
    # and back: every partition and model version downstream of the customers drop, nothing of transactions
    assert keys(graph.downstream(LANDING_C)) == [RAW_CU, TRAINING, MODEL, CHALLENGER, PREDICTIONS]
    assert [n.kind for n in graph.downstream(LANDING_C)] == ["partition", "partition", "model", "model", "partition"]
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
    assert doc["start"][0]["extra"] == MODEL_EXTRA and doc["start"][0]["kind"] == "model"
    json.dumps(doc)  # JSON-serialisable
    tree = render_tree(graph, graph.resolve(PREDICTIONS), "up")
    assert tree[0] == f"{PREDICTIONS}  [3 rows; run run-predictions]"
    assert tree[1] == f"├── {FEATURES}  [2 rows; run run-features]"
    assert f"├── {MODEL}  [model version; algorithm=xgboost; registered_day={DAY}; run run-train]" in tree
    assert f"│   └── {TRAINING}  [2 rows; run run-training]" in tree
    assert f"├── {CHALLENGER}  [model version; algorithm=xgboost; registered_day={DAY}; run run-train-4]" in tree
    assert f"│   └── {TRAINING}  (see above)" in tree
    assert f"│       ├── {FEATURES}  (see above)" in tree  # reached again through model → training set
    assert sum(f"{FEATURES}  [" in line for line in tree) == 1
    with pytest.raises(ValueError, match="direction"):
        graph.lineage(MODEL, "sideways")


def test_cli_prints_tree_and_json(chain: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    from mlscale.airflow.cli import main

    assert main(["lineage", PREDICTIONS, "--direction", "up", "--lake", chain.root]) == 0
    out = capsys.readouterr().out
    assert f"lake: {chain.root}" in out
    assert "total: 6 partitions (features 2, raw 3, training 1), " in out
    assert f"├── {MODEL}  [model version; algorithm=xgboost" in out
    assert main(["lineage", LANDING_C, "--direction", "down", "--json", "--lake", chain.root]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["key"] for n in doc["downstream"]] == [RAW_CU, TRAINING, MODEL, CHALLENGER, PREDICTIONS]
    assert doc["upstream"] == []
    assert main(["lineage", "raw/nothing/dt=2026-01-01", "--lake", chain.root]) == 2
    assert "is not a committed partition" in capsys.readouterr().err


def test_model_versions_resolve_from_any_spelling(chain: Lake, tmp_path: Path) -> None:
    graph = LineageGraph.from_lake(chain)
    assert sorted(graph.models) == [MODEL, CHALLENGER]
    for spelling in (MODEL, f"{MODEL}/", chain.uri(MODEL), chain.uri(MODEL) + "/", f"{MODEL}/model.json",
                     f"{MODEL}/model.bin", str(tmp_path / "lake" / MODEL / "model.bin"), f"file://{tmp_path}/lake/{MODEL}"):
        assert keys(graph.resolve(spelling)) == [MODEL], spelling
    assert keys(graph.resolve("models/fraud_xgb")) == [MODEL, CHALLENGER]  # every version of the model
    assert keys(graph.consumers_of(MODEL)) == [PREDICTIONS]
    assert keys(graph.upstream(f"{MODEL}/model.json"))[:2] == [TRAINING, FEATURES]
    assert keys(graph.downstream(CHALLENGER)) == [PREDICTIONS]
    with pytest.raises(LineageLookupError, match="stored model version"):
        graph.resolve("models/fraud_xgb/99")


def test_deleted_model_versions_and_old_documents(lake: Lake, caplog: pytest.LogCaptureFixture) -> None:
    commit(lake, TRAINING, [lake.uri(FEATURES)])
    # a version stored before model.json recorded ``inputs``: its training set partition stands in
    doc = model_doc(lake, TRAINING, "run-old")
    del doc["inputs"]
    save_model(lake, "2", doc)
    lake.write_bytes("models/fraud_xgb/5/model.json", b"{truncated")
    # predictions of a version whose files retention has since removed
    commit(lake, PREDICTIONS, [lake.uri("models/fraud_xgb/1/"), lake.uri("models/fraud_xgb/2/")])
    with caplog.at_level(logging.WARNING, logger="mlscale.lineage.graph"):
        graph = LineageGraph.from_lake(lake)
    assert graph.unreadable == ("models/fraud_xgb/5/model.json",)
    assert "unreadable model document" in caplog.text
    assert [(n.key, n.kind, n.exists) for n in graph.upstream(PREDICTIONS)] == [
        ("models/fraud_xgb/1", "model", False), ("models/fraud_xgb/2", "model", True),
        (TRAINING, "partition", True), (FEATURES, "partition", False),
    ]
    assert graph.node("models/fraud_xgb/1").extra == {"name": "fraud_xgb", "version": "1"}
    assert render_tree(graph, graph.resolve(PREDICTIONS), "up")[1] == \
        "├── models/fraud_xgb/1  [model version, model.json no longer present]"
    assert summarize(graph.upstream(PREDICTIONS)) == \
        "total: 2 partitions (features 1, training 1), 2 model versions, 0 files, 2 no longer present"


def test_graph_on_an_s3_lake(s3_lake: Lake) -> None:
    s3_lake.write_bytes(LANDING_A, b"id,value\n1,2\n")
    commit(s3_lake, RAW_TX, [s3_lake.uri(LANDING_A)])
    commit(s3_lake, PARTIALS, [s3_lake.uri(RAW_TX)])
    graph = LineageGraph.from_lake(s3_lake)
    assert s3_lake.uri(PARTIALS).startswith("s3://")
    assert keys(graph.upstream(s3_lake.uri(PARTIALS))) == [RAW_TX, LANDING_A]
    assert keys(graph.resolve(s3_lake.uri(file_of(s3_lake, RAW_TX)))) == [RAW_TX]
    assert keys(graph.downstream(s3_lake.uri(LANDING_A))) == [RAW_TX, PARTIALS]
    save_model(s3_lake, "3", model_doc(s3_lake, PARTIALS, "run-train"))
    commit(s3_lake, PREDICTIONS, [s3_lake.uri(f"{MODEL}/")])
    graph = LineageGraph.from_lake(s3_lake)
    assert keys(graph.upstream(PREDICTIONS)) == [MODEL, PARTIALS, RAW_TX, LANDING_A]
    assert keys(graph.downstream(s3_lake.uri(LANDING_A))) == [RAW_TX, PARTIALS, MODEL, PREDICTIONS]
    assert keys(graph.resolve(s3_lake.uri(f"{MODEL}/model.bin"))) == [MODEL]
