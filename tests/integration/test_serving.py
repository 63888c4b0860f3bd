"""Online scoring (``mlscale serve``) over a generated world with two trained versions, through HTTP (FastAPI's
test client runs the real app, lifespan included): online = batch scores, readiness, routing shares and
stickiness, shadows never returned, the cache, 422s, an unreachable online store, canary rollout and the
response log."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from fastapi.testclient import TestClient
from mlscale.feature_store import feature_store_for
from mlscale.ingest import ingest_partition
from mlscale.lake import Lake, PartitionRef
from mlscale.scoring import predictions_ref, score_batch
from mlscale.scoring.layout import champion_filter
from mlscale.serving import OnlineScorer, Rollout, read_response_log, write_rollout
from mlscale.serving.app import create_app
from mlscale.serving.metrics import LatencySlo
from mlscale.training import registry, train_model

from tests.conftest import free_port
from tests.integration.world import build_world

START = dt.date(2026, 11, 1)
MODEL = "fraud_detector"
COLUMNS = ("event_id", "event_ts", "customer_id", "merchant_id", "merchant_category", "amount", "currency", "channel")


@dataclass
class World:
    lake: Lake
    day: str                 # a day scored in batch whose features the online store holds (the day after the sync)
    registry: Any
    champion: str
    challenger: str


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    lake = Lake(f"file://{tmp_path_factory.mktemp('serving')}/lake")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        days = build_world(lake, start=START, days=5, rows_per_day=2000, client=client, process_days=4)
        first = train_model(model=MODEL, client=client, lake=lake, dt=days[-1], run_id="train_1", max_rounds=15)
        second = train_model(model=MODEL, client=client, lake=lake, dt=days[-1], run_id="train_2", max_rounds=15,
                             class_weight="scale_pos_weight")
        reg = registry.client_for(registry.RegistryConfig.for_lake(lake))
        registry.set_alias(reg, MODEL, registry.CHAMPION, first.version)
        registry.set_alias(reg, MODEL, registry.CHALLENGER, second.version)
        day = (START + dt.timedelta(days=4)).isoformat()   # ingested, not synced: batch looks up day 4's tables
        ingest_partition(client=client, lake=lake, dt=day, run_id="ingest_5", contract="transactions",
                         pii_key=b"test-key")
        score_batch(client=client, lake=lake, dt=day, run_id="score_5", model=MODEL, sample_rate=0.0)
    return World(lake=lake, day=day, registry=reg, champion=first.version, challenger=second.version)


def events(lake: Lake, day: str, n: int | None = None) -> list[dict[str, Any]]:
    """The day's raw events as a client would send them (JSON types, ISO times)."""
    rows = lake.read_table(PartitionRef.of("raw", "transactions", day), columns=list(COLUMNS)).to_pylist()
    rows = sorted(rows, key=lambda r: r["event_id"])[:n]
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()} for row in rows]


def policy_file(tmp_path: Path, **model: Any) -> str:
    path = tmp_path / "serving.yaml"
    path.write_text(json.dumps({"defaults": {"refresh_s": 3600, "log": {"flush_s": 0.2, "sample_rate": 0.5}},
                                "models": {MODEL: model}}))
    return str(path)


def scorer_for(world: World, tmp_path: Path, store: Any = None, **model: Any) -> OnlineScorer:
    return OnlineScorer(lake=world.lake, model=MODEL, store=store or feature_store_for(world.lake),
                        registry_client=world.registry, policy_path=policy_file(tmp_path, **model))


def post(client: TestClient, body: Any) -> Any:
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_online_scores_equal_batch_scores(world: World, tmp_path) -> None:
    batch = world.lake.read_table(predictions_ref(MODEL, world.day), filter=champion_filter()).to_pandas()
    expected = dict(zip(batch["event_id"], batch["score"], strict=True))
    sent = events(world.lake, world.day)
    with TestClient(create_app(scorer_for(world, tmp_path, shadow=[]), refresh=False)) as client:
        got = post(client, {"events": sent})
    assert [p["event_id"] for p in got] == [e["event_id"] for e in sent]
    assert {p["version"] for p in got} == {world.champion}
    online = np.array([p["score"] for p in got])
    np.testing.assert_array_equal(online, np.array([expected[e["event_id"]] for e in sent]))
    flagged = batch.set_index("event_id")["decision"]
    assert [p["decision"] == "review" for p in got] == [bool(flagged[e["event_id"]]) for e in sent]


def test_ready_only_once_a_champion_is_loaded(world: World, tmp_path) -> None:
    registry.client_for(registry.RegistryConfig.for_lake(world.lake)).delete_registered_model_alias(
        MODEL, registry.CHAMPION)
    try:
        scorer = scorer_for(world, tmp_path)
        with TestClient(create_app(scorer, refresh=False)) as client:
            assert client.get("/live").status_code == 200
            assert client.get("/ready").status_code == 503
            assert client.post("/v1/score", json=events(world.lake, world.day, 1)).status_code == 503
            registry.set_alias(world.registry, MODEL, registry.CHAMPION, world.champion)
            assert scorer.refresh() is True
            ready = client.get("/ready")
            assert ready.status_code == 200 and ready.json()["champion"] == world.champion
    finally:
        registry.set_alias(world.registry, MODEL, registry.CHAMPION, world.champion)


def test_ab_shares_are_sticky_and_shadows_never_returned(world: World, tmp_path) -> None:
    sent = events(world.lake, world.day)
    scorer = scorer_for(world, tmp_path, ab={"challenger": 0.3}, shadow=["champion", "challenger"])
    with TestClient(create_app(scorer, refresh=False)) as client:
        got = post(client, {"events": sent})
        again = post(client, {"events": sent[:200]})
    arms = Counter(p["arm"] for p in got)
    by_customer: dict[str, set[str]] = {}
    for event, p in zip(sent + sent[:200], got + again, strict=True):
        by_customer.setdefault(event["customer_id"], set()).add(p["arm"])
    assert all(len(a) == 1 for a in by_customer.values())                  # sticky by customer
    customers = Counter(next(iter(a)) for a in by_customer.values())
    assert 0.2 < customers["challenger"] / sum(customers.values()) < 0.4   # about 30 % of customers
    assert set(arms) == {"champion", "challenger"}
    assert all(p["version"] == (world.challenger if p["arm"] == "challenger" else world.champion) for p in got)
    assert all(set(p) >= {"score", "decision", "version", "request_id"} and "shadow" not in json.dumps(p) for p in got)
    today = dt.datetime.now(dt.UTC).date()          # the log is kept by the day answered (UTC)
    log = pd.concat([read_response_log(world.lake, MODEL, (today - dt.timedelta(days=d)).isoformat()).to_pandas()
                     for d in (1, 0)], ignore_index=True)
    log = log[log["request_id"].isin({p["request_id"] for p in got + again})]   # this test's requests
    assert len(log) == len(sent) + 200
    for _, record in log.iterrows():   # the other version scored in shadow, logged only
        other = world.champion if record["version"] == world.challenger else world.challenger
        assert list(record["shadow_versions"]) == [other]
    sampled = log["inputs"].notna()
    assert 0.3 < sampled.mean() < 0.7 and all(len(v) == len(scorer.routing.columns) for v in log["inputs"][sampled])


def test_repeated_inputs_come_from_the_cache(world: World, tmp_path) -> None:
    one = events(world.lake, world.day, 1)[0]
    scorer = scorer_for(world, tmp_path, cache={"ttl_s": 60, "max_entries": 10})
    with TestClient(create_app(scorer, refresh=False)) as client:
        first, second = post(client, one)[0], post(client, one)[0]
        metrics = client.get("/metrics").text
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["score"] == second["score"]
    assert f'mlscale_serving_cache_hits_total{{model="{MODEL}"}} 1.0' in metrics
    assert scorer.metrics.hit_rate() == 0.5


def test_bad_input_is_a_422_naming_the_field(world: World, tmp_path) -> None:
    good = events(world.lake, world.day, 2)
    missing = {k: v for k, v in good[0].items() if k != "amount"}
    with TestClient(create_app(scorer_for(world, tmp_path), refresh=False)) as client:
        answer = client.post("/v1/score", json={"events": [good[1], missing]})
        assert answer.status_code == 422
        assert answer.json()["detail"] == [{"loc": ["events", 1, "amount"], "msg": "is required"}]
        bad = client.post("/v1/score", json={**good[0], "channel": "pigeon", "event_ts": "soon"}).json()["detail"]
        assert {tuple(d["loc"]) for d in bad} == {("events", 0, "channel"), ("events", 0, "event_ts")}
        assert client.post("/v1/score", content=b"{not json").status_code == 422
        assert client.post("/v1/score", json={"events": []}).status_code == 422


def test_unknown_entity_is_scored_as_cold_start(world: World, tmp_path) -> None:
    new = {**events(world.lake, world.day, 1)[0], "customer_id": "C-NEVER-SEEN", "event_id": "new-1"}
    with TestClient(create_app(scorer_for(world, tmp_path), refresh=False)) as client:
        got = post(client, new)[0]
    assert got["score"] is not None and not got["fallback"]
    assert "customer_activity" in got["cold_start"] and "merchant_risk" not in got["cold_start"]


def test_an_unreachable_online_store_gets_the_fallback_decision(world: World, tmp_path) -> None:
    down = feature_store_for(world.lake, online_store="redis", redis_connection_string=f"127.0.0.1:{free_port()}")
    scorer = scorer_for(world, tmp_path, store=down, fallback={"decision": "review"})
    with TestClient(create_app(scorer, refresh=False)) as client:
        assert client.get("/ready").status_code == 200       # warmed up on zeros; models are loaded
        answers = [client.post("/v1/score", json=events(world.lake, world.day, 3)) for _ in range(5)]
        metrics = client.get("/metrics").text
    assert {a.status_code for a in answers} == {200}
    got = [p for a in answers for p in a.json()["predictions"]]
    assert all(p["fallback"] and p["score"] is None and p["decision"] == "review" for p in got)
    assert f'mlscale_serving_errors_total{{kind="feature_store",model="{MODEL}"}} 5.0' in metrics


def test_canary_rollout_and_rollback_without_restart(world: World, tmp_path) -> None:
    sent = events(world.lake, world.day, 600)
    scorer = scorer_for(world, tmp_path, shadow=[])
    try:
        with TestClient(create_app(scorer, refresh=False)) as client:
            assert {p["arm"] for p in post(client, {"events": sent})} == {"champion"}
            write_rollout(world.lake, MODEL, Rollout(stage="canary", version=world.challenger, share=0.5,
                                                     previous=world.champion, by="test"))
            assert scorer.refresh() is True
            arms = Counter(p["arm"] for p in post(client, {"events": sent}))
            assert 0.3 < arms["canary"] / len(sent) < 0.7
            assert client.get("/v1/models").json()["routing"]["canary"] == world.challenger
            write_rollout(world.lake, MODEL, Rollout(stage="rolled_back", version=world.challenger,
                                                     previous=world.champion, by="test"))
            assert scorer.refresh() is True
            assert {p["arm"] for p in post(client, {"events": sent})} == {"champion"}
    finally:
        write_rollout(world.lake, MODEL, Rollout())


def test_latency_slo_alerts_once_per_breach() -> None:
    now = [0.0]
    alerts: list[str] = []
    slo = LatencySlo(p99_ms=10, window_s=60, min_requests=10, alert=alerts.append, clock=lambda: now[0])
    for second in range(0, 300):          # windows: fast, slow, slow, fast, slow
        now[0] = float(second)
        slow = 60 <= second < 180 or second >= 240
        for _ in range(2):
            slo.observe(0.030 if slow else 0.002)
    now[0] = 301.0
    slo.observe(0.030)
    assert len(alerts) == 2 and "p99 latency 30.0 ms > SLO 10 ms" in alerts[0]


def test_deploy_canary_goes_full_when_healthy_and_rolls_back_on_a_breach(world: World, tmp_path) -> None:
    from mlscale.layout import GOVERNANCE_AUDIT
    from mlscale.serving.deploy import BREACH, HEALTHY, canary_health, finish_rollout, start_canary
    from mlscale.serving.rollout import read_rollout

    old, new = world.champion, world.challenger
    registry.set_alias(world.registry, MODEL, registry.CHAMPION, new)          # the gate promoted `new`
    try:
        rollout = start_canary(world.lake, model=MODEL, version=new, previous=old, share=0.5, by="test",
                               day=world.day, run_id="deploy_test")
        assert (rollout.stage, rollout.canary, rollout.previous) == ("canary", new, old)
        scorer = scorer_for(world, tmp_path, shadow=[])
        with TestClient(create_app(scorer, refresh=False)) as client:
            got = post(client, {"events": events(world.lake, world.day, 400)})
        assert {p["version"] for p in got} == {old, new}                         # the old one still decides
        health = canary_health(world.lake, model=MODEL, rollout=read_rollout(world.lake, MODEL), slo_p99_ms=10_000,
                               min_answers=50)
        assert health.verdict == HEALTHY and health.canary_answers == sum(p["version"] == new for p in got)
        done = finish_rollout(world.lake, model=MODEL, health=health, by="test", day=world.day, run_id="deploy_test")
        assert done.stage == "full"
        assert registry.alias_version(world.registry, MODEL, registry.CHAMPION) == new

        start_canary(world.lake, model=MODEL, version=new, previous=old, share=0.5, by="test", day=world.day,
                     run_id="deploy_test_2")
        with TestClient(create_app(scorer_for(world, tmp_path, shadow=[]), refresh=False)) as client:
            post(client, {"events": events(world.lake, world.day, 200)})
        breach = canary_health(world.lake, model=MODEL, rollout=read_rollout(world.lake, MODEL), slo_p99_ms=0.001,
                               min_answers=50)
        assert breach.verdict == BREACH and "p99 latency" in breach.reasons[0]
        back = finish_rollout(world.lake, model=MODEL, health=breach, by="test", day=world.day,
                              run_id="deploy_test_2")
        assert back.stage == "rolled_back"
        assert registry.alias_version(world.registry, MODEL, registry.CHAMPION) == old
        records = [world.lake.read_json(f.key) for f in world.lake.list_files(GOVERNANCE_AUDIT)]
        steps = [r["decision"] for r in records if r.get("run_id", "").startswith("deploy_test")]
        assert sorted(steps) == ["rollout_canary", "rollout_canary", "rollout_full", "rollout_rolled_back"]
        assert any(r["decision"] == "rolled_back" and r["champion_after"] == old for r in records)
    finally:
        write_rollout(world.lake, MODEL, Rollout())
        registry.set_alias(world.registry, MODEL, registry.CHAMPION, old)


def test_the_compressed_variant_serves_fewer_rounds_within_tolerance(world: World, tmp_path) -> None:
    from mlscale.governance.audit_run import holdout_of
    from mlscale.scoring.workers import predict_block
    from mlscale.training import StoredModel, load_model_spec
    from mlscale.training.compress import store_compressed_variant

    stored = StoredModel.load(world.lake, MODEL, world.champion)
    assert "compressed" in stored.doc                  # training tried (this tiny world's model has few rounds)
    # the world is too small for a prefix within 0.01; a permissive tolerance exercises the same path
    found = store_compressed_variant(world.lake, stored, holdout_of(world.lake, load_model_spec(MODEL), stored),
                                     full_pr_auc=stored.doc["holdout"]["pr_auc"], tolerance=1.0, review_budget=0.005)
    assert found["available"] and found["rounds"] < found["of_rounds"]
    assert found["full_pr_auc"] - found["pr_auc"] <= found["tolerance"]
    variant = StoredModel.load(world.lake, MODEL, world.champion).compressed(world.lake)
    assert variant is not None and variant.booster.num_boosted_rounds() == found["rounds"]
    sent = events(world.lake, world.day, 300)
    (tmp_path / "c").mkdir()
    full, small = scorer_for(world, tmp_path, shadow=[]), scorer_for(world, tmp_path / "c", shadow=[],
                                                                     variant="compressed")
    with TestClient(create_app(full, refresh=False)) as a, TestClient(create_app(small, refresh=False)) as b:
        got_full, got_small = post(a, {"events": sent}), post(b, {"events": sent})
        block, _ = small._inputs(small.schema.parse({"events": sent}), [], small.routing.columns)
    expected = predict_block(variant, block, list(small.routing.columns))
    np.testing.assert_array_equal(np.array([p["score"] for p in got_small]), expected)
    assert got_small[0]["threshold"] == found["threshold_at_budget"] != got_full[0]["threshold"]
    assert [p["score"] for p in got_small] != [p["score"] for p in got_full]


def test_autoscaling_workers_follow_the_load(world: World, tmp_path) -> None:
    """`mlscale serve --autoscale` as users start it: workers are added under a load and removed after it."""
    import asyncio
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    import aiohttp

    port = free_port()
    mlscale = str(Path(sys.executable).with_name("mlscale"))
    server = subprocess.Popen([mlscale, "serve", "--lake", world.lake.uri(""), "--port", str(port), "--autoscale",
                               "--min-workers", "1", "--max-workers", "3", "--target-in-flight", "1"],
                              env={**os.environ}, stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("w"))
    base = f"http://127.0.0.1:{port}"

    def workers() -> int:
        return json.loads(urllib.request.urlopen(f"{base}/v1/workers", timeout=5).read())["workers"]

    async def load(seconds: float, concurrency: int) -> int:
        sent = events(world.lake, world.day, 500)
        answered = 0
        async with aiohttp.ClientSession() as session:
            stop = time.monotonic() + seconds

            async def client(i: int) -> None:
                nonlocal answered
                while time.monotonic() < stop:
                    async with session.post(f"{base}/v1/score", json={"events": sent[i * 20:(i + 1) * 20]}) as r:
                        await r.read()
                        answered += r.status == 200
            await asyncio.gather(*(client(i) for i in range(concurrency)))
        return answered

    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{base}/ready", timeout=2).status == 200:
                    break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "the service did not become ready"
                time.sleep(0.5)
        assert workers() == 1
        answered = asyncio.run(load(15, concurrency=12))
        grown = workers()
        assert answered > 0 and grown > 1, f"{grown} workers after {answered} answers under load"
        deadline = time.time() + 60
        while workers() > 1:
            assert time.time() < deadline, "workers were not removed after the load"
            time.sleep(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
    log = (tmp_path / "serve.log").read_text()
    assert "autoscale: added a worker" in log and "autoscale: removed a worker" in log
