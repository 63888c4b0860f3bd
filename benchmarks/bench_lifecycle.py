"""Lifecycle planning over a large lake: wall time, list/GET request counts, and linear growth.

    python benchmarks/bench_lifecycle.py            # 50k and 100k objects, local lake and moto S3
    python benchmarks/bench_lifecycle.py --smoke    # 1k and 2k objects, records nothing (CI)

The lake: five datasets (raw, features, predictions) of day partitions, each with 10 data files in two
Hive sub-directories and a manifest, going back as many days as the size needs (so retention, cold-tier
and orphan actions all occur), plus a crashed attempt's ``_staging`` file in every 50th partition.
Timed (best of two): ``build_plan`` with the shipped policy (``include/policies/retention.yaml``), nothing written. The S3
lake is served by moto's server over HTTP (real boto3 paged listings and GETs); its objects are loaded
into moto's backend directly beforehand (not timed). Cost must grow linearly with the object count: the
"ratio" is (seconds per object at the larger size) / (seconds per object at the smaller size), 1.0 being
perfectly linear. moto's own list_objects_v2 sorts the whole prefix on every page, so part of the S3
figure is the fake server's, not the plan's; the request counts are exact.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATASETS = [("raw", "transactions"), ("raw", "customers"), ("raw", "labels"), ("features", "customer_7d"),
            ("predictions", "fraud_xgb")]
FILES_PER_PARTITION = 10
BODY = b"x" * 256
LOGICAL = dt.datetime(2026, 11, 2, 3, 30, tzinfo=dt.UTC)


def layout(n_objects: int, run_day: dt.date):
    """(key, body, is_orphan) for about ``n_objects`` objects; manifests carry real entries."""
    from mlscale.lake.manifest import FileEntry, Manifest

    per_partition = FILES_PER_PARTITION + 1
    partitions = max(1, n_objects // per_partition)
    made = 0
    for i in range(partitions):
        zone, dataset = DATASETS[i % len(DATASETS)]
        day = (run_day - dt.timedelta(days=i // len(DATASETS))).isoformat()
        part = f"{zone}/{dataset}/dt={day}"
        entries = []
        for f in range(FILES_PER_PARTITION):
            rel = f"region={'NL' if f % 2 else 'DE'}/part-{i:06d}-{f:05d}.parquet"
            entries.append(FileEntry(rel, 10, len(BODY), "0" * 64))
            yield f"{part}/{rel}", BODY, False
        manifest = Manifest(part, tuple(entries), "fp", f"producer-{day}", f"{i:012d}")
        yield f"{part}/_manifest.json", manifest.to_json(), False
        made += per_partition
        if i % 50 == 7 and made < n_objects:
            yield f"{part}/_staging/crashed{i}/region=NL/part-0.parquet", BODY, True
            made += 1


def fill_local(root: Path, n: int) -> int:
    old = (LOGICAL - dt.timedelta(hours=100)).timestamp()
    count = 0
    for key, body, orphan in layout(n, LOGICAL.date()):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        if orphan:
            os.utime(path, (old, old))
        count += 1
    return count


def fill_moto(bucket: str, n: int, run_day: dt.date) -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    count = 0
    for key, body, _ in layout(n, run_day):
        backend.put_object(bucket, f"lake/{key}", body)
        count += 1
    return count


def plan_once(lake, logical: dt.datetime, repeats: int = 2) -> tuple[float, dict[str, int], int]:
    """The best of ``repeats`` plans (the first also warms caches and imports), its requests and actions."""
    from mlscale.lifecycle import HoldSet, LakeLister, LineageRefs, build_plan, load_policy

    policy = load_policy()
    best = float("inf")
    for _ in range(repeats):
        lister = LakeLister(lake)
        start = time.perf_counter()
        plan = build_plan(lake, policy, HoldSet(), LineageRefs(), run_id="bench", run_day=logical.date(),
                          logical_time=logical, zones=["raw", "features", "predictions"], grace_hours=48,
                          lister=lister, write=False)
        best = min(best, time.perf_counter() - start)
    return best, dict(plan.requests), len(plan.actions)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1k and 2k objects, record nothing")
    parser.add_argument("--objects", type=int, default=100_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    big = 2_000 if args.smoke else args.objects
    sizes = (big // 2, big)

    import boto3
    from mlscale.lake import Lake, S3Options
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = S3Options(endpoint_url=f"http://127.0.0.1:{port}", access_key="testing", secret_key="testing")
    s3 = boto3.client("s3", endpoint_url=options.endpoint_url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    results: dict[tuple[str, int], tuple[float, dict[str, int], int, int]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                root = Path(tmp) / f"lake{n}"
                count = fill_local(root, n)
                results[("local", n)] = (*plan_once(Lake(str(root)), LOGICAL), count)
                bucket = f"bench-{uuid.uuid4().hex[:8]}"
                s3.create_bucket(Bucket=bucket)
                # S3 mtimes are the upload time: the run's logical time is 3 days after, so orphans are past grace
                logical = dt.datetime.now(dt.UTC) + dt.timedelta(hours=72)
                count = fill_moto(bucket, n, logical.date())
                results[("s3", n)] = (*plan_once(Lake(f"s3://{bucket}/lake", options), logical), count)
    finally:
        server.stop()

    ratios = {}
    for backend in ("local", "s3"):
        for n in sizes:
            seconds, requests, actions, count = results[(backend, n)]
            print(f"{backend:5s} {count:>8,} objects: plan {seconds:6.2f}s ({count / seconds:,.0f} objects/s), "
                  f"{actions:,} actions, list requests {requests.get('list_requests', 0):,}, "
                  f"GET requests {requests.get('get_requests', 0):,}, objects listed {requests.get('objects_listed', 0):,}")
        (s_small, _, _, n_small), (s_big, _, _, n_big) = results[(backend, sizes[0])], results[(backend, sizes[1])]
        ratios[backend] = (s_big / n_big) / (s_small / n_small)
        print(f"{backend:5s} scaling ratio {ratios[backend]:.2f} (seconds per object at {n_big:,} / at {n_small:,}; "
              "1.0 = linear, goal <= 1.3)")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_lifecycle.py"
    s3_s, s3_req, _, s3_n = results[("s3", big)]
    local_s, local_req, _, local_n = results[("local", big)]
    record("lifecycle_plan_100k_objects_s", s3_s, unit="s", goal="linear in objects (ratio <= 1.3)",
           baseline=f"local lake, same layout: {local_s:.2f}s", command=command,
           notes=f"moto S3 over HTTP, {s3_n:,} objects: {s3_req.get('list_requests', 0)} list + "
                 f"{s3_req.get('get_requests', 0)} GET requests; scaling ratio {ratios['s3']:.2f}")
    record("lifecycle_plan_100k_objects_local_s", local_s, unit="s", goal="linear in objects (ratio <= 1.3)",
           baseline="-", command=command,
           notes=f"{local_n:,} objects, {local_req.get('get_requests', 0)} manifest reads; "
                 f"scaling ratio {ratios['local']:.2f}")
    record("lifecycle_plan_scaling_ratio", max(ratios.values()), unit="x (s/object at 100k / at 50k)",
           goal="<= 1.3", baseline="1.0 = linear", command=command,
           notes=f"local {ratios['local']:.2f}, moto S3 {ratios['s3']:.2f}")


if __name__ == "__main__":
    main()
