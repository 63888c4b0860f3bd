"""TCO arithmetic: servers sized for the GPU hours at the target utilisation, amortisation, power, staff;
cloud on-demand and spot; the break-even; the workload from usage records."""

from __future__ import annotations

import pytest
from mlscale.usage import ComputePrices, UsageRecord
from mlscale.usage.tco import (
    HOURS_PER_MONTH,
    TcoDoc,
    TcoError,
    Workload,
    compare,
    load_tco,
    observed_workload,
)

TCO = TcoDoc.model_validate({"horizon_months": 24, "in_house": {
    "server_price": 120000, "gpus_per_server": 4, "vcpus_per_server": 64, "useful_life_months": 36, "power_kw": 2.0,
    "pue": 1.5, "power_price_kwh": 0.2, "colocation_month": 500, "staff_fte_per_server": 0.1,
    "staff_cost_year": 120000, "target_utilisation": 0.5}, "cloud": {"spot_interruption_overhead": 0.2}})
PRICES = ComputePrices(vcpu_hour=0.05, gb_hour=0.0, gpu_hour=3.0, spot_discount=0.6)


def test_in_house_against_cloud() -> None:
    doc = compare(Workload(gpu_hours_month=2000.0, cpu_hours_month=1000.0, source="test"), TCO, PRICES)
    assert doc["in_house"]["servers"] == 2                 # 2,000 h > 4 GPUs x 730 h x 0.5 = 1,460 h per server
    per_server = {"amortisation": 120000 / 36, "power": 2.0 * 1.5 * HOURS_PER_MONTH * 0.2, "colocation": 500,
                  "staff": 0.1 * 120000 / 12}
    assert doc["in_house"]["per_month"] == {k: round(v * 2, 2) for k, v in per_server.items()}
    assert doc["monthly"]["cloud_on_demand"] == 2000 * 3.0 + 1000 * 0.05
    assert doc["monthly"]["cloud_spot"] == pytest.approx(6050 * 0.4 * 1.2, abs=0.01)
    assert doc["horizon"]["in_house"] == pytest.approx(doc["monthly"]["in_house"] * 24, abs=0.05)
    assert doc["cheapest"] == "cloud_spot"
    assert doc["break_even_gpu_hours_month"] == pytest.approx(sum(per_server.values()) / 3.0, abs=0.1)
    assert doc["assumptions"]["tco"]["in_house"]["server_price"] == 120000


def test_a_busy_fleet_is_cheaper_in_house_and_the_workload_comes_from_records() -> None:
    dear = ComputePrices(vcpu_hour=0.05, gb_hour=0.0, gpu_hour=6.0, spot_discount=0.3)
    busy = compare(Workload(gpu_hours_month=5800.0, cpu_hours_month=0.0, source="test"), TCO, dear)
    assert busy["in_house"]["servers"] == 4 and busy["cheapest"] == "in_house"   # 21,085 vs spot 29,232 a month
    records = [UsageRecord(dag_id="d", task_id="t", run_id=str(i), try_number=1, day="2026-11-03", started_at="",
                           wall_seconds=10, cpu_seconds=3600, workers=1, processes=1, gpu_seconds=1800)
               for i in range(10)]
    workload = observed_workload(records, days=10)
    assert (workload.gpu_hours_month, workload.cpu_hours_month) == (15.0, 30.0)


def test_the_committed_assumptions_load_and_bad_ones_name_the_key(tmp_path) -> None:
    assert load_tco().in_house.gpus_per_server >= 1
    bad = tmp_path / "tco.yaml"
    bad.write_text("in_house: {server_price: 1, gpus_per_server: 0, vcpus_per_server: 1, useful_life_months: 1, "
                   "power_kw: 1, power_price_kwh: 1}\n")
    with pytest.raises(TcoError, match="in_house.gpus_per_server"):
        load_tco(bad)
