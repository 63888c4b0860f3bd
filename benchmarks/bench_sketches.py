"""Vectorised per-entity HyperLogLog vs ``datasketch`` and Apache ``datasketches`` updated item by item.

    python benchmarks/bench_sketches.py            # 1M items, 50k entities, p=12
    python benchmarks/bench_sketches.py --smoke    # 20k items, records nothing (CI)

Same items for every contender: a day of (customer_id, merchant_id) string pairs, 50k customers, 200k
merchants. Ours reads the two pyarrow columns (as they come out of Parquet). The baselines get the same
values already as Python lists of ``str``, converted outside the timing (in their favour). Two cases:

* single entity: one sketch of all items (the same work on both sides);
* per entity: one sketch per customer (ours: ``hll_registers``, the dense ``[50k, 4096]`` matrix; the
  blob path ``hll_sketches`` is timed too). The baselines keep a dict of sketches keyed by customer.

datasketch is timed with its default hash (SHA-1 over UTF-8 bytes) and with ``hll_hash`` (which gives
registers identical to ours); the faster of the two is the baseline of the recorded ratio. DataSketches'
``hll_sketch`` (C++, HLL_4) has no batch update in Python, so it is updated item by item. Ours is the
best of 5 runs after a warm-up; each baseline is the best of 3 runs (2 in smoke mode).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

P = 12


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def make_items(n: int, entities: int, seed: int = 0):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    keys = pa.array(np.char.add("c", rng.integers(0, entities, n).astype("U9")).astype(object))
    values = pa.array(np.char.add("m", rng.integers(0, 4 * entities, n).astype("U9")).astype(object))
    return keys, values


def datasketch_single(values: list[str], hashfunc: Callable[[Any], int] | None) -> None:
    from datasketch import HyperLogLog

    if hashfunc is None:  # datasketch's default SHA-1 wants bytes
        h = HyperLogLog(p=P)
        for v in values:
            h.update(v.encode("utf-8"))
    else:
        h = HyperLogLog(p=P, hashfunc=hashfunc)
        for v in values:
            h.update(v)


def datasketch_per_entity(keys: list[str], values: list[str], hashfunc: Callable[[Any], int] | None) -> None:
    from datasketch import HyperLogLog

    sketches: dict[str, HyperLogLog] = {}
    encode = hashfunc is None
    for k, v in zip(keys, values, strict=True):
        h = sketches.get(k)
        if h is None:
            h = sketches[k] = HyperLogLog(p=P) if encode else HyperLogLog(p=P, hashfunc=hashfunc)
        h.update(v.encode("utf-8") if encode else v)


def datasketches_single(values: list[str]) -> None:
    from datasketches import hll_sketch

    sk = hll_sketch(P)
    for v in values:
        sk.update(v)


def datasketches_per_entity(keys: list[str], values: list[str]) -> None:
    from datasketches import hll_sketch

    sketches: dict[str, Any] = {}
    for k, v in zip(keys, values, strict=True):
        sk = sketches.get(k)
        if sk is None:
            sk = sketches[k] = hll_sketch(P)
        sk.update(v)


GOALS = {"hll_vs_datasketch_speedup": ">= 20", "hll_vs_datasketch_speedup_per_entity": ">= 30",
         "hll_vs_datasketches_speedup": "-", "hll_vs_datasketches_speedup_per_entity": ">= 8"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, record nothing")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=50_000)
    args = parser.parse_args()
    n, entities = (20_000, 1_000) if args.smoke else (args.items, args.entities)
    base_repeat = 2 if args.smoke else 5  # the Python loops vary with garbage collection: give them their best

    import pyarrow as pa
    from mlscale.sketches import hll_hash, hll_registers, hll_registers_single, hll_sketches, kll_sketches

    keys, values = make_items(n, entities)
    key_list, value_list = keys.to_pylist(), values.to_pylist()
    hll_registers_single(values, p=P)  # warm-up (imports, allocator)
    hll_registers(keys, values, p=P)

    ours_single = best_of(lambda: hll_registers_single(values, p=P), 5)
    ours_entity = best_of(lambda: hll_registers(keys, values, p=P), 5)
    ours_blobs = best_of(lambda: hll_sketches(keys, values, p=P), 5)
    ds_single = {name: best_of(lambda h=h: datasketch_single(value_list, h), base_repeat)
                 for name, h in (("sha1", None), ("hll_hash", hll_hash))}
    ds_entity = {name: best_of(lambda h=h: datasketch_per_entity(key_list, value_list, h), base_repeat)
                 for name, h in (("sha1", None), ("hll_hash", hll_hash))}
    apache_single = best_of(lambda: datasketches_single(value_list), base_repeat)
    apache_entity = best_of(lambda: datasketches_per_entity(key_list, value_list), base_repeat)
    amounts = pa.array(range(n), pa.float64())
    kll_s = best_of(lambda: kll_sketches(keys, amounts), 1)

    def rate(seconds: float) -> str:
        return f"{n / seconds / 1e6:,.2f}M items/s"

    ds_single_best, ds_entity_best = min(ds_single.values()), min(ds_entity.values())
    ratios = {
        "hll_vs_datasketch_speedup": ds_single_best / ours_single,
        "hll_vs_datasketch_speedup_per_entity": ds_entity_best / ours_entity,
        "hll_vs_datasketches_speedup": apache_single / ours_single,
        "hll_vs_datasketches_speedup_per_entity": apache_entity / ours_entity,
    }
    print(f"{n:,} items, {entities:,} entities, p={P}")
    print(f"ours single {rate(ours_single)}; per entity {rate(ours_entity)} (dense), {rate(ours_blobs)} (blobs)")
    print(f"datasketch single sha1 {rate(ds_single['sha1'])}, hll_hash {rate(ds_single['hll_hash'])}; "
          f"per entity sha1 {rate(ds_entity['sha1'])}, hll_hash {rate(ds_entity['hll_hash'])}")
    print(f"datasketches hll_sketch single {rate(apache_single)}; per entity {rate(apache_entity)}")
    print(f"single entity: vs datasketch -> ratio {ratios['hll_vs_datasketch_speedup']:.1f}x (goal >= 20); "
          f"vs datasketches -> ratio {ratios['hll_vs_datasketches_speedup']:.1f}x")
    print(f"per entity: vs datasketch -> ratio {ratios['hll_vs_datasketch_speedup_per_entity']:.1f}x (goal >= 30); "
          f"vs datasketches -> ratio {ratios['hll_vs_datasketches_speedup_per_entity']:.1f}x (goal >= 8)")
    print(f"(info) kll_sketches per entity: {rate(kll_s)}")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_sketches.py"
    workload = f"{n:,} (customer, merchant) string items"
    for metric, value in ratios.items():
        per_entity = metric.endswith("_per_entity")
        ours_s = ours_entity if per_entity else ours_single
        if "datasketches" in metric:
            base_s, baseline = (apache_entity if per_entity else apache_single), "datasketches hll_sketch.update loop"
        else:
            base_s = ds_entity_best if per_entity else ds_single_best
            baseline = "datasketch HyperLogLog.update loop (faster of sha1 / hll_hash)"
        shape = f"{entities:,} entities (dict of sketches)" if per_entity else "one sketch"
        record(metric, value, unit="x (baseline time / our time)", goal=GOALS[metric],
               baseline=f"{baseline}, {workload}, {shape}: {base_s:.2f}s ({rate(base_s)})", command=command,
               notes=f"ours {ours_s * 1000:.0f} ms ({rate(ours_s)}), p={P}, best of 5; vectorised hash + "
                     f"np.maximum.at{', keys factorised on a second thread' if per_entity else ''}; load average {os.getloadavg()[0]:.1f} at the end")
    record("hll_items_per_s", n / ours_single, unit="items/s", goal="-", command=command,
           baseline=f"datasketch {n / ds_single_best:,.0f} items/s",
           notes=f"one sketch; per entity ({entities:,}): dense {n / ours_entity:,.0f}/s, "
                 f"blobs {n / ours_blobs:,.0f}/s")


if __name__ == "__main__":
    main()
