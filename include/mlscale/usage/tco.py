"""Total cost of ownership: in-house GPU servers against cloud on-demand and spot capacity.

The workload is what the platform records (``_meta/resource_usage/``: GPU seconds and CPU seconds of every
task over the last days, scaled to a month) or figures given on the command line. In-house: enough servers
to run the GPU hours at ``target_utilisation`` (at least one), each amortised over its useful life, plus power
(kW x PUE x hours x price), colocation and staff time. Cloud: the hours at the price table's rates; spot at
the discount, with ``spot_interruption_overhead`` more hours for work redone after interruptions. The
break-even is the monthly GPU hours at which one in-house server costs what on-demand cloud does.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from mlscale.config_schema import StrictModel, load_yaml_document
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir
from mlscale.usage.cost import ComputePrices

HOURS_PER_MONTH = 730.0


class TcoError(ValueError, NotRetryable):
    """The TCO assumptions are invalid; the message names the file and the key."""


class InHouseDoc(StrictModel):
    server_price: float = Field(ge=0)
    gpus_per_server: int = Field(ge=1)
    vcpus_per_server: int = Field(ge=1)
    useful_life_months: float = Field(gt=0)
    power_kw: float = Field(ge=0)
    pue: float = Field(default=1.4, ge=1)
    power_price_kwh: float = Field(ge=0)
    colocation_month: float = Field(default=0.0, ge=0)
    staff_fte_per_server: float = Field(default=0.0, ge=0)
    staff_cost_year: float = Field(default=0.0, ge=0)
    target_utilisation: float = Field(default=0.6, gt=0, le=1)


class CloudDoc(StrictModel):
    spot_interruption_overhead: float = Field(default=0.1, ge=0)


class TcoDoc(StrictModel):
    horizon_months: int = Field(default=36, ge=1)
    in_house: InHouseDoc
    cloud: CloudDoc = CloudDoc()


@dataclass(frozen=True)
class Workload:
    gpu_hours_month: float
    cpu_hours_month: float
    source: str


def load_tco(path: str | Path | None = None) -> TcoDoc:
    path = Path(path) if path is not None else config_dir("policies") / "tco.yaml"
    return load_yaml_document(path, TcoDoc, TcoError, "TCO assumptions file")


def observed_workload(records: list[Any], days: int) -> Workload:
    """Monthly GPU and CPU hours from the usage records of ``days`` days."""
    gpu = sum(r.gpu_seconds for r in records) / 3600
    cpu = sum(r.cpu_seconds for r in records) / 3600
    scale = 30.0 / max(days, 1)
    return Workload(gpu_hours_month=gpu * scale, cpu_hours_month=cpu * scale,
                    source=f"{len(records)} task records of the last {days} days, scaled to 30 days")


def compare(workload: Workload, tco: TcoDoc, prices: ComputePrices) -> dict[str, Any]:
    """Monthly and horizon cost of each option, the cheapest, and the break-even GPU hours a month."""
    h = tco.in_house
    gpu_capacity = h.gpus_per_server * HOURS_PER_MONTH * h.target_utilisation
    servers = max(1, math.ceil(workload.gpu_hours_month / gpu_capacity)) if workload.gpu_hours_month else 1
    cpu_servers = math.ceil(workload.cpu_hours_month / (h.vcpus_per_server * HOURS_PER_MONTH * h.target_utilisation))
    servers = max(servers, cpu_servers, 1)
    per_server = {"amortisation": h.server_price / h.useful_life_months,
                  "power": h.power_kw * h.pue * HOURS_PER_MONTH * h.power_price_kwh,
                  "colocation": h.colocation_month, "staff": h.staff_fte_per_server * h.staff_cost_year / 12}
    in_house = {k: round(v * servers, 2) for k, v in per_server.items()}
    in_house_month = round(sum(in_house.values()), 2)
    on_demand = workload.gpu_hours_month * prices.gpu_hour + workload.cpu_hours_month * prices.vcpu_hour
    spot = on_demand * (1 - prices.spot_discount) * (1 + tco.cloud.spot_interruption_overhead)
    options = {"in_house": in_house_month, "cloud_on_demand": round(on_demand, 2), "cloud_spot": round(spot, 2)}
    server_month = sum(per_server.values())
    break_even = server_month / prices.gpu_hour if prices.gpu_hour else None
    return {
        "workload": {"gpu_hours_month": round(workload.gpu_hours_month, 3),
                     "cpu_hours_month": round(workload.cpu_hours_month, 3), "source": workload.source},
        "in_house": {"servers": servers, "per_month": in_house, "total_month": in_house_month,
                     "gpu_utilisation": round(workload.gpu_hours_month / (servers * h.gpus_per_server * HOURS_PER_MONTH),
                                              4)},
        "monthly": options, "horizon_months": tco.horizon_months,
        "horizon": {k: round(v * tco.horizon_months, 2) for k, v in options.items()},
        "cheapest": min(options, key=lambda k: options[k]),
        "break_even_gpu_hours_month": round(break_even, 1) if break_even else None,
        "assumptions": {"tco": tco.model_dump(), "prices": {"vcpu_hour": prices.vcpu_hour, "gb_hour": prices.gb_hour,
                                                            "gpu_hour": prices.gpu_hour,
                                                            "spot_discount": prices.spot_discount}},
        "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def format_comparison(doc: dict[str, Any]) -> list[str]:
    w, m = doc["workload"], doc["monthly"]
    lines = [f"workload: {w['gpu_hours_month']:,.1f} GPU hours and {w['cpu_hours_month']:,.1f} CPU hours a month "
             f"({w['source']})",
             f"in-house: {doc['in_house']['servers']} server(s) at {doc['in_house']['gpu_utilisation']:.1%} GPU "
             f"utilisation: {m['in_house']:,.2f} USD/month ({', '.join(f'{k} {v:,.2f}' for k, v in doc['in_house']['per_month'].items())})",
             f"cloud on-demand: {m['cloud_on_demand']:,.2f} USD/month; spot: {m['cloud_spot']:,.2f} USD/month",
             f"over {doc['horizon_months']} months: " + ", ".join(f"{k} {v:,.0f}" for k, v in doc["horizon"].items()),
             f"cheapest: {doc['cheapest']}; one in-house server pays off above "
             f"{doc['break_even_gpu_hours_month']} GPU hours a month of on-demand use",
             "assumptions: " + str(doc["assumptions"])]
    return lines
