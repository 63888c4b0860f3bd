"""Online scoring latency: `mlscale serve` (uvicorn) on loopback under an open-loop load.

    python benchmarks/bench_serving.py            # 6 generated days x 6,000 payments, 30 s at 200 rps, a rate ramp
    python benchmarks/bench_serving.py --smoke    # 3 small days, 3 s at 50 rps, records nothing (CI)

Setup (not timed): a generated world run through ingestion, features and the feature store (SQLite online
store), the fraud model trained and made champion (and a second version as challenger, scored in shadow after
each response as the serving policy says), then `mlscale serve --workers W` started as a subprocess and
waited for on /ready. The requests are the raw events of the next day (not yet in the feature store, as live
traffic is), one event per request, in event-time order.

Load: an asyncio client (aiohttp, keep-alive connections) sends request i at t0 + i/rate whatever the
answers (open loop: a slow answer does not slow the sender, so queueing shows in the latency); a request's
latency runs from its scheduled send time to its answer. Figures:

* ``serve_p99_ms_at_200rps`` — p99 over 30 s at 200 requests/s (goal <= 10 ms);
* ``serve_max_rps_p99_under_25ms`` — the highest rate of the ramp (100, 200, 300, 400, 500, 600 rps; 8 s each)
  whose p99 stays under 25 ms with every request answered;
* ``compressed_vs_full_latency_speedup`` — single-event predict latency of the full champion over its compressed
  variant (the fewest rounds within the spec's PR-AUC drop), as training measured it on the holdout;
* ``serve_cache_hit_rate_repeat_10pct`` — the share of answers served from the cache (their ``cached`` flag)
  when 10 % of the requests repeat an event sent earlier (a client retry), on a freshly started service. The
  cache is per worker process, so a repeat that lands on the other worker misses; events whose inputs equal an
  earlier event's (same customer, merchant, amount... within the hour) hit too.

The printed ratio is p99 at 200 rps over the model specification's SLO (below 1 meets it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODEL = "fraud_detector"
START = dt.date(2026, 11, 1)
COMPRESSED: dict[str, Any] = {}     # the champion's compressed variant, as training measured it


def build(lake_root: str, days: int, rows: int, rounds: int) -> list[dict[str, Any]]:
    """The world, two trained versions (champion, challenger), and the next day's events as requests."""
    from distributed import Client, LocalCluster
    from mlscale.ingest import ingest_partition
    from mlscale.lake import Lake, PartitionRef
    from mlscale.training import StoredModel, registry, train_model

    from tests.integration.world import build_world

    lake = Lake(lake_root)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        processed = build_world(lake, start=START, days=days + 1, rows_per_day=rows, client=client,
                                process_days=days)
        first = train_model(model=MODEL, client=client, lake=lake, dt=processed[-1], run_id="bench_1",
                            max_rounds=rounds)
        second = train_model(model=MODEL, client=client, lake=lake, dt=processed[-1], run_id="bench_2",
                             max_rounds=rounds, class_weight="scale_pos_weight")
        reg = registry.client_for(registry.RegistryConfig.for_lake(lake))
        registry.set_alias(reg, MODEL, registry.CHAMPION, first.version)
        registry.set_alias(reg, MODEL, registry.CHALLENGER, second.version)
        day = (START + dt.timedelta(days=days)).isoformat()
        ingest_partition(client=client, lake=lake, dt=day, run_id="bench_ingest", contract="transactions",
                         pii_key=b"bench-key")
    columns = ["event_id", "event_ts", "customer_id", "merchant_id", "merchant_category", "amount", "currency",
               "channel"]
    rows_ = lake.read_table(PartitionRef.of("raw", "transactions", day), columns=columns).to_pylist()
    rows_.sort(key=lambda r: r["event_ts"])
    global COMPRESSED
    COMPRESSED = StoredModel.load(lake, MODEL, first.version).doc.get("compressed") or {}
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()} for r in rows_]


def start_server(lake_root: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "MLSCALE_LAKE_ROOT": lake_root, "AIRFLOW_VAR_MLSCALE_LAKE_ROOT": lake_root}
    mlscale = str(Path(sys.executable).with_name("mlscale"))
    server = subprocess.Popen([mlscale, "serve", "--lake", lake_root, "--model", MODEL, "--port", str(port),
                               "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(Path(lake_root.removeprefix("file://")).parent / "serve.log", "w"))
    import urllib.request

    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2).status == 200:
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("mlscale serve did not become ready in 180 s (see serve.log beside the lake)")


async def load(url: str, bodies: list[dict[str, Any]], rate: float, seconds: float,
               repeat_share: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Open-loop load: request i is due at t0 + i / rate. Latency from due time to answer."""
    import aiohttp

    n = int(rate * seconds)
    rng = np.random.default_rng(seed)
    picks = []
    for i in range(n):
        if picks and rng.random() < repeat_share:
            picks.append(picks[int(rng.integers(0, len(picks)))])
        else:
            cycle, index = divmod(seed * 7919 + i, len(bodies))   # a new event each time: ids never repeat
            body = bodies[index]
            picks.append({**body, "event_id": f"{body['event_id']}-{seed}-{cycle}"})
    latencies = np.full(n, np.nan)
    errors, cached = 0, 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            nonlocal errors, cached
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.post(url, json=picks[i]) as response:
                    answer = await response.json()
                    if response.status != 200:
                        errors += 1
                        return
                    cached += sum(p["cached"] for p in answer["predictions"])
            except aiohttp.ClientError:
                errors += 1
                return
            latencies[i] = time.perf_counter() - due

        await asyncio.gather(*(one(i) for i in range(n)))
    done = latencies[~np.isnan(latencies)] * 1000
    return {"rate": rate, "sent": n, "answered": len(done), "errors": errors, "cached": cached,
            "p50": float(np.percentile(done, 50)) if len(done) else float("nan"),
            "p95": float(np.percentile(done, 95)) if len(done) else float("nan"),
            "p99": float(np.percentile(done, 99)) if len(done) else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny world, short load, records nothing")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    days, rows, rounds = (3, 1500, 10) if args.smoke else (6, 6000, 200)
    steady_rate, steady_s = (50, 3) if args.smoke else (200, 30)
    ramp = (50,) if args.smoke else (100, 200, 300, 400, 500, 600)
    from mlscale.training.spec import load_model_spec

    from tests.conftest import free_port

    slo = load_model_spec(MODEL).serving.latency_slo_p99_ms
    with tempfile.TemporaryDirectory() as tmp:
        lake_root = f"file://{tmp}/lake"
        started = time.perf_counter()
        bodies = build(lake_root, days, rows, rounds)
        print(f"world: {days} days x {rows} payments, 2 versions, {len(bodies)} request events "
              f"({time.perf_counter() - started:.0f} s)")
        port = free_port()
        server = start_server(lake_root, port, args.workers)
        url = f"http://127.0.0.1:{port}/v1/score"
        try:
            asyncio.run(load(url, bodies, steady_rate, 2 if args.smoke else 5, seed=1))   # warm the connections
            steady = asyncio.run(load(url, bodies, steady_rate, steady_s, seed=2))
            print(f"steady {steady_rate} rps for {steady_s} s: {steady}")
            best = 0.0
            for rate in ramp:
                step = asyncio.run(load(url, bodies, rate, 2 if args.smoke else 8, seed=3 + rate))
                print(f"ramp {rate} rps: {step}")
                if step["answered"] == step["sent"] and step["p99"] < 25:
                    best = rate
                else:
                    break
            server.terminate()                       # a fresh service: an empty cache and no memory of the
            server.wait(timeout=60)                  # events replayed above (their repeats would hit the cache)
            server = start_server(lake_root, port, args.workers)
            repeat = asyncio.run(load(url, bodies, steady_rate, 3 if args.smoke else 20, repeat_share=0.10,
                                      seed=0))
            hit_rate = repeat["cached"] / max(repeat["answered"], 1)
            print(f"10 % repeated requests: {repeat}; answers from the cache: {hit_rate:.3f}")
        finally:
            server.terminate()
            server.wait(timeout=60)
    ratio = steady["p99"] / slo
    print(f"ratio p99 / SLO at {steady_rate} rps: {steady['p99']:.2f} ms / {slo:g} ms = {ratio:.2f} "
          f"({args.workers} workers)")
    print(f"compressed variant of the champion: {COMPRESSED}")
    if args.smoke:
        return
    from results import record

    command = f"python benchmarks/bench_serving.py --workers {args.workers}"
    setup = f"{args.workers} uvicorn workers, SQLite online store, loopback, aiohttp open-loop client on the same 2 cores"
    record("serve_p99_ms_at_200rps", steady["p99"], unit="ms", goal="<= 10", baseline=f"SLO {slo:g} ms",
           command=command, notes=f"{setup}; p50 {steady['p50']:.2f} ms, p95 {steady['p95']:.2f} ms, "
                                  f"{steady['answered']}/{steady['sent']} answered")
    record("serve_max_rps_p99_under_25ms", best, unit="requests/s", goal="report", baseline="ramp 100..600 rps",
           command=command, notes=setup)
    if COMPRESSED.get("available"):
        record("compressed_vs_full_latency_speedup", COMPRESSED["speedup"], unit="x", goal=">= 2 (PR-AUC within "
               "tolerance)", baseline="full model, single-event inplace_predict", command=command,
               notes=f"{COMPRESSED['rounds']} of {COMPRESSED['of_rounds']} rounds; holdout PR-AUC "
                     f"{COMPRESSED['pr_auc']:.4f} vs {COMPRESSED['full_pr_auc']:.4f} (tolerance "
                     f"{COMPRESSED['tolerance']}); {COMPRESSED['predict_us']:.0f} us vs "
                     f"{COMPRESSED['full_predict_us']:.0f} us")
    record("serve_cache_hit_rate_repeat_10pct", hit_rate, unit="share", goal="~0.1", baseline="10 % repeats",
           command=command, notes=f"{setup}; from the answers' cached flag; the cache is per worker process")


if __name__ == "__main__":
    main()
