"""Resource use of Dask work on a real LocalCluster (worker processes): CPU seconds, peak memory per process,
bytes and the record's round trip; and the cost arithmetic of the price table."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, LocalCluster
from mlscale.lake import Lake
from mlscale.usage import ComputePrices, UsageSampler, load_prices, read_usage, write_usage
from mlscale.usage.cost import PricesError, usage_cost


def busy(seconds: float) -> int:
    import time

    import numpy

    block = numpy.ones((4_000_000,))          # ~30 MiB held while busy
    stop, n = time.process_time() + seconds, 0
    while time.process_time() < stop:
        n += int(block[:1000].sum())
    return n


def test_usage_of_work_on_worker_processes(tmp_path) -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: None)
        with UsageSampler(client, interval_s=0.2) as usage:
            assert sum(client.gather(client.map(busy, [1.0, 1.0], pure=False))) > 0
        record = usage.record(dag_id="d", task_id="t", run_id="manual__1", try_number=1, day="2026-11-03")
    assert (record.workers, record.processes) == (2, 3)                       # two workers and the driver
    assert 1.8 <= record.cpu_seconds <= record.wall_seconds * 3 + 1             # both workers were busy ~1 s
    assert record.wall_seconds >= 1.0 and record.samples >= 3
    assert len(record.peak_memory_bytes) == 3 and all(v > 30 * 2**20 for v in record.peak_memory_bytes.values())
    record.cost = usage_cost(record, ComputePrices(vcpu_hour=3600.0, gb_hour=0.0))
    assert record.cost["cpu"] == pytest.approx(record.cpu_seconds, rel=1e-6)    # $1 per CPU second
    lake = Lake(str(tmp_path / "lake"))
    write_usage(lake, record)
    [back] = read_usage(lake, "2026-11-03")
    assert back == record
    assert "CPU" in record.summary() and "peak memory" in record.summary()


def test_cost_arithmetic_on_demand_and_spot(tmp_path) -> None:
    prices = ComputePrices(vcpu_hour=0.04, gb_hour=0.005, gpu_hour=2.0)
    cost = prices.cost(cpu_seconds=7200, gib_hours=10, gpu_seconds=1800)
    assert cost == {"cpu": 0.08, "memory": 0.05, "gpu": 1.0, "total": 1.13}
    spot = ComputePrices(vcpu_hour=0.04, gb_hour=0.005, gpu_hour=2.0, spot_discount=0.6, capacity="spot")
    assert spot.cost(cpu_seconds=7200, gib_hours=10, gpu_seconds=1800)["total"] == pytest.approx(1.13 * 0.4)
    committed = load_prices()
    assert committed.vcpu_hour > 0 and committed.capacity == "on_demand"
    bad = tmp_path / "prices.yaml"
    bad.write_text("compute: {vcpu_hour: -1, gb_hour: 0.1}\n")
    with pytest.raises(PricesError, match="compute.vcpu_hour"):
        load_prices(bad)
    assert np.isfinite(committed.cost(cpu_seconds=1, gib_hours=1)["total"])


def test_the_cost_report_adds_the_days_compute(tmp_path) -> None:
    from mlscale.lifecycle.cost import build_cost_report
    from mlscale.lifecycle.policy import load_policy
    from mlscale.usage import UsageRecord

    lake = Lake(str(tmp_path / "lake"))
    lake.write_bytes("raw/transactions/dt=2026-11-03/part.parquet", b"x" * 100)
    for task, cpu, cost in (("ingest", 10.0, 0.001), ("ingest", 12.0, 0.002), ("score", 3.0, 0.0005)):
        write_usage(lake, UsageRecord(dag_id="d", task_id=task, run_id=f"r{cpu}", try_number=1, day="2026-11-03",
                                      started_at="", wall_seconds=5.0, cpu_seconds=cpu, workers=2, processes=3,
                                      cost={"total": cost}))
    build_cost_report(lake, load_policy(), run_day="2026-11-03", run_id="cost_test", dry_run=True, planned_bytes={})
    doc = lake.read_json("reports/cost/2026-11-03/report.json")
    assert doc["compute"]["totals"] == {"runs": 3, "wall_seconds": 15.0, "cpu_seconds": 25.0, "gpu_seconds": 0.0,
                                        "cost": 0.0035}
    assert [(r["task_id"], r["runs"]) for r in doc["compute"]["by_task"]] == [("ingest", 2), ("score", 1)]
    assert "Compute of the day" in lake.read_bytes("reports/cost/2026-11-03/report.html").decode()
