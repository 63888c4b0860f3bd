"""Per-entity sketches: datasketch-identical HyperLogLog registers and estimates, exact merges, the blob format,
and KLL quantiles within their documented rank error."""

from __future__ import annotations

import warnings

import datasketch
import numpy as np
import pyarrow as pa
import pytest
from mlscale.sketches import (
    hash64_column,
    hll_binary,
    hll_estimate,
    hll_estimate_binary,
    hll_group_merge,
    hll_hash,
    hll_hash64,
    hll_hash_array,
    hll_merge,
    hll_merge_binary,
    hll_registers,
    hll_registers_single,
    hll_sketches,
    kll_counts,
    kll_group_merge,
    kll_merge,
    kll_quantiles,
    kll_rank_error,
    kll_sketches,
    registers_from_binary,
    registers_to_binary,
)


def _strings(rng: np.random.Generator, n: int, universe: int = 10**7) -> np.ndarray:
    """Ids of varied length (1 to ~30 bytes, some non-ASCII) so every word/tail path of the hash is hit."""
    ids = rng.integers(0, universe, n)
    return np.array([f"{'é' if i % 7 == 0 else 'm'}{i}{'-x' * int(i % 11)}" for i in ids], dtype=object)


def _datasketch(values, p: int) -> datasketch.HyperLogLog:
    h = datasketch.HyperLogLog(p=p, hashfunc=hll_hash)
    for v in values:
        h.update(v)
    return h


def _count(h: datasketch.HyperLogLog) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "estimate is close to error correction threshold"
        return float(h.count())


# ---------------------------------------------------------------- the hash


def test_hash_is_pinned_splitmix64() -> None:
    # stored sketches depend on these: a change here invalidates every HyperLogLog in the lake
    assert hll_hash64(0) == 0xE220A8397B1DCDAF  # SplitMix64's published first output for seed 0
    assert hll_hash64(1) == 0x910A2DEC89025CC1
    assert hll_hash64(-1) == hll_hash64(2**64 - 1) == 0xE4D971771B652C20
    assert hll_hash64("") == 0xFB2EFEF16D804627
    assert hll_hash64("a") == hll_hash64(b"a") == 0x78A1098B00C518CF
    assert hll_hash64("merchant-000123") == 0xA6F49F6472CC555C
    assert hll_hash(0) == 0x7B1DCDAF


def test_vectorised_hash_equals_scalar_for_strings_bytes_and_slices() -> None:
    rng = np.random.default_rng(3)
    values = ["", "a", "12345678", "123456789", "ü" * 9, "x" * 64, "\x00", "a\x00"] + list(_strings(rng, 300))
    arr = pa.array(values)
    for column in (arr, arr[5:], arr[3:200], pa.array(values, pa.large_string()),
                   pa.array([v.encode() for v in values], pa.binary()), arr.cast(pa.string_view()),
                   np.array(values, dtype=object), np.array(values)):
        expected = [hll_hash64(v) for v in (column.to_pylist() if hasattr(column, "to_pylist") else column)]
        hashes, valid = hash64_column(column)
        assert valid is None
        assert hashes.tolist() == expected
    assert hll_hash_array(arr).tolist() == [hll_hash(v) for v in values]
    assert len(set(hll_hash64(v) for v in values)) == len(set(values))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_vectorised_hash_equals_scalar_for_integers(dtype: type) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.integers(info.min, info.max, 500, dtype=dtype, endpoint=True),
                             np.array([info.min, info.max, 0], dtype=dtype)])
    assert hll_hash_array(values).tolist() == [hll_hash(int(v)) for v in values]
    assert hll_hash_array(pa.array(values)).tolist() == [hll_hash(int(v)) for v in values]


def test_hash_nulls_floats_and_bools() -> None:
    hashes, valid = hash64_column(pa.array(["a", None, "b"]))
    assert valid.tolist() == [True, False, True]
    assert [int(hashes[0]), int(hashes[2])] == [hll_hash64("a"), hll_hash64("b")]
    with pytest.raises(ValueError, match="null"):
        hll_hash_array(pa.array([1, None]))
    with pytest.raises(TypeError, match="cast floats"):
        hash64_column(np.array([1.5, 2.0]))
    with pytest.raises(TypeError):
        hll_hash64(1.5)  # type: ignore[arg-type]
    assert hll_hash_array(np.array([True, False])).tolist() == [hll_hash(1), hll_hash(0)]


# ---------------------------------------------------------------- HyperLogLog vs datasketch


@pytest.mark.parametrize(("p", "n", "seed"), [
    (4, 50, 0), (8, 1, 1), (8, 7, 2), (8, 3_000, 3), (10, 12_000, 4), (12, 0, 5), (12, 3, 6), (12, 900, 7),
    (12, 15_000, 8), (14, 2_000, 9), (16, 5_000, 10),
])
def test_registers_and_count_equal_datasketch(p: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = _strings(rng, n)
    keys = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    unique_keys, registers = hll_registers(keys, values, p=p)
    assert registers.dtype == np.int8 and registers.shape == (len(unique_keys), 2**p)
    assert unique_keys.tolist() == sorted(set(keys.tolist()))
    estimates = hll_estimate(registers)
    for i, key in enumerate(unique_keys):
        reference = _datasketch(values[keys == key], p)
        assert np.array_equal(registers[i], reference.reg)
        assert estimates[i] == _count(reference)  # bit for bit
        # and the other way: datasketch takes our registers as they are, and keeps updating them
        ours = datasketch.HyperLogLog(p=p, reg=registers[i].copy(), hashfunc=hll_hash)
        assert _count(ours) == estimates[i]
    single = hll_registers_single(values, p=p)
    assert np.array_equal(single, _datasketch(values, p).reg)


def test_integer_values_equal_datasketch() -> None:
    rng = np.random.default_rng(11)
    values = rng.integers(-(10**12), 10**12, 20_000)
    keys = rng.integers(0, 4, len(values))
    unique_keys, registers = hll_registers(pa.array(keys), pa.array(values), p=12)
    assert unique_keys.tolist() == [0, 1, 2, 3]
    for i, key in enumerate(unique_keys):
        reference = _datasketch([int(v) for v in values[keys == key]], 12)
        assert np.array_equal(registers[i], reference.reg)
        assert hll_estimate(registers)[i] == _count(reference)


def test_estimate_corrections_match_datasketch() -> None:
    # large-range branch and the branch datasketch cannot compute (linear counting with no zero register)
    big = np.full((1, 16), 28, dtype=np.int8)
    assert hll_estimate(big)[0] == _count(datasketch.HyperLogLog(reg=big[0].copy()))
    ones = np.ones((1, 256), dtype=np.int8)
    assert np.isfinite(hll_estimate(ones)[0])
    assert hll_estimate(np.zeros((2, 64), dtype=np.int8)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("n", [100, 1_000, 50_000])
def test_relative_error_within_three_sigma(n: int) -> None:
    p = 12
    sigma = 1.04 / np.sqrt(2**p)
    errors = []
    for seed in range(20):
        values = np.random.default_rng(seed).integers(0, 2**62, n)  # n distinct with overwhelming probability
        assert len(np.unique(values)) == n
        estimate = hll_estimate(hll_registers_single(values, p=p))[0]
        errors.append(estimate / n - 1.0)
    errors_arr = np.abs(np.array(errors))
    assert errors_arr.max() <= 3 * sigma, errors
    assert np.sqrt(np.mean(errors_arr**2)) <= 1.5 * sigma


def test_merge_of_days_equals_sketch_of_union() -> None:
    rng = np.random.default_rng(12)
    days = []
    for _ in range(7):
        n = int(rng.integers(2_000, 6_000))
        days.append((rng.integers(0, 40, n), rng.integers(0, 5_000, n)))  # entities recur, values overlap
    all_keys = np.concatenate([k for k, _ in days])
    all_values = np.concatenate([v for _, v in days])
    union_keys, union = hll_registers(all_keys, all_values, p=10)

    # dense: per-day registers aligned on the union's keys, then elementwise max
    aligned = []
    for keys, values in days:
        day_keys, day_registers = hll_registers(keys, values, p=10)
        full = np.zeros_like(union)
        full[np.searchsorted(union_keys, day_keys)] = day_registers
        aligned.append(full)
    assert np.array_equal(hll_merge(*aligned), union)

    # stacked day rows grouped by key, dense and as blobs
    stacked = [hll_registers(k, v, p=10) for k, v in days]
    keys = np.concatenate([k for k, _ in stacked])
    merged_keys, merged = hll_group_merge(keys, np.concatenate([r for _, r in stacked]))
    assert np.array_equal(merged_keys, union_keys) and np.array_equal(merged, union)
    blob_days = [hll_sketches(k, v, p=10) for k, v in days]
    blob_keys = np.concatenate([k for k, _ in blob_days])
    blobs = pa.concat_arrays([b for _, b in blob_days])
    merged_keys, merged_blobs = hll_merge_binary(blob_keys, blobs)
    assert np.array_equal(merged_keys, union_keys)
    assert np.array_equal(registers_from_binary(merged_blobs), union)
    assert np.array_equal(hll_estimate_binary(merged_blobs), hll_estimate(union))


# ---------------------------------------------------------------- blobs


def test_blobs_round_trip_sparse_and_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(13)
    # entity 0: 5 values (sparse), 1: 3000 values (dense at p=10), 2: only nulls (empty, sparse)
    keys = np.array([0] * 5 + [1] * 3_000 + [2] * 2)
    values = pa.array(list(rng.integers(0, 10**9, 3_005)) + [None, None], pa.int64())
    unique_keys, registers = hll_registers(keys, values, p=10)
    blobs = registers_to_binary(registers)
    assert blobs.type == pa.binary() and len(blobs) == 3
    raw = blobs.to_pylist()
    assert raw[0][:2] == bytes([2, 10]) and len(raw[0]) == 2 + 3 * np.count_nonzero(registers[0])
    assert raw[1][:2] == bytes([1, 10]) and len(raw[1]) == 2 + 1024
    assert raw[2] == bytes([2, 10])
    assert np.array_equal(registers_from_binary(blobs), registers)
    assert np.array_equal(registers_from_binary(raw), registers)  # list of bytes too
    assert np.array_equal(hll_sketches(keys, values, p=10)[1].to_pylist(), raw)
    assert np.array_equal(hll_estimate_binary(blobs), hll_estimate(registers))
    assert hll_estimate(registers)[2] == 0.0

    assert np.array_equal(registers_from_binary(blobs[1:]), registers[1:])  # sliced column

    # many dense blobs, decoded a chunk at a time
    many_keys = rng.integers(0, 12, 40_000)
    _, many = hll_registers(many_keys, rng.integers(0, 10**9, 40_000), p=10)
    many_blobs = registers_to_binary(many)
    assert all(b[0] == 1 for b in many_blobs.to_pylist())
    monkeypatch.setattr(hll_binary, "_DENSE_CHUNK", 3 * 1024)  # 3 blobs per step
    assert np.array_equal(registers_from_binary(many_blobs), many)

    # through Parquet's binary column and back, with a null blob reading as an empty sketch
    table = pa.table({"entity": unique_keys, "hll": blobs})
    column = pa.concat_arrays([table.column("hll").combine_chunks(), pa.array([None], pa.binary())])
    decoded = registers_from_binary(column)
    assert np.array_equal(decoded[:3], registers) and not decoded[3].any()


def test_blob_errors() -> None:
    _, registers = hll_registers(["a"], ["x"], p=8)
    good = registers_to_binary(registers).to_pylist()[0]
    with pytest.raises(ValueError, match="precision"):
        registers_from_binary([good, registers_to_binary(hll_registers(["a"], ["x"], p=9)[1]).to_pylist()[0]])
    with pytest.raises(ValueError, match="precision"):
        registers_from_binary([good], p=12)
    with pytest.raises(ValueError, match="malformed"):
        registers_from_binary([good + b"\x01"])
    with pytest.raises(ValueError, match="malformed"):
        registers_from_binary([bytes([7, 8])])
    with pytest.raises(ValueError, match="header"):
        registers_from_binary([b"\x01"])
    with pytest.raises(ValueError, match="outside"):
        registers_from_binary([bytes([1, 8]) + bytes([99]) * 256])
    assert registers_from_binary([], p=8).shape == (0, 256)


# ---------------------------------------------------------------- HyperLogLog edge cases


def test_hll_edge_cases() -> None:
    unique_keys, registers = hll_registers(pa.array([], pa.string()), pa.array([], pa.string()))
    assert len(unique_keys) == 0 and registers.shape == (0, 4096)
    assert hll_estimate(registers).shape == (0,)
    assert len(hll_sketches([], [])[1]) == 0
    assert not hll_registers_single(pa.array([], pa.int64())).any()
    unique_keys, registers = hll_registers(["only"] * 4, ["x", "y", "x", None])
    assert unique_keys.tolist() == ["only"]
    assert round(float(hll_estimate(registers)[0])) == 2
    with pytest.raises(ValueError, match="null"):
        hll_registers(["a", None], ["x", "y"])
    with pytest.raises(ValueError, match="length"):
        hll_registers(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="precision"):
        hll_registers(["a"], ["x"], p=17)
    with pytest.raises(ValueError, match="shapes"):
        hll_merge(np.zeros((1, 16), np.int8), np.zeros((2, 16), np.int8))
    keys, merged = hll_group_merge(np.array([], dtype=np.int64), np.zeros((0, 16), np.int8))
    assert len(keys) == 0 and merged.shape == (0, 16)


# ---------------------------------------------------------------- KLL


def _rank_error(data: np.ndarray, quantile: float, rank: float) -> float:
    """Distance from ``rank`` to the interval of normalised ranks that ``quantile`` holds in ``data``."""
    ordered = np.sort(data)
    lo = np.searchsorted(ordered, quantile, "left") / len(ordered)
    hi = np.searchsorted(ordered, quantile, "right") / len(ordered)
    return max(lo - rank, rank - hi, 0.0)


def test_kll_exact_below_k() -> None:
    rng = np.random.default_rng(20)
    keys = rng.integers(0, 5, 600)  # ~120 values per entity < k = 200: the sketch keeps them all
    values = rng.normal(100, 20, 600)
    unique_keys, blobs = kll_sketches(keys, values)
    quantiles = kll_quantiles(blobs, [0.5, 0.95])
    assert quantiles.shape == (5, 2)
    for i, key in enumerate(unique_keys):
        expected = np.quantile(values[keys == key], [0.5, 0.95], method="inverted_cdf")
        assert quantiles[i].tolist() == expected.tolist()
    assert kll_counts(blobs).tolist() == np.bincount(keys).tolist()


def test_kll_rank_error_within_bound() -> None:
    rng = np.random.default_rng(21)
    sizes = [20_000, 50_000, 3_000, 100_000]
    keys = np.repeat(np.array(["a", "b", "c", "d"], dtype=object), sizes)
    values = rng.lognormal(3.0, 1.0, len(keys))
    unique_keys, blobs = kll_sketches(pa.array(keys), pa.array(values), k=200)
    eps = kll_rank_error(200)
    assert 0.01 < eps < 0.02
    ranks = [0.05, 0.5, 0.95]
    quantiles = kll_quantiles(blobs, ranks)
    for i, key in enumerate(unique_keys):
        data = values[keys == key]
        for j, rank in enumerate(ranks):
            assert _rank_error(data, quantiles[i, j], rank) <= eps


def test_kll_merge_across_days_matches_union_within_bound() -> None:
    rng = np.random.default_rng(22)
    days = []
    for day in range(7):
        n = 30_000
        keys = rng.integers(0, 3, n)
        days.append((keys, rng.gamma(2.0 + day, 10.0, n)))  # the distribution drifts over the week
    eps = kll_rank_error(200)

    stacked = [kll_sketches(k, v) for k, v in days]
    merged_keys, merged = kll_group_merge(np.concatenate([k for k, _ in stacked]),
                                          [b for _, blobs in stacked for b in blobs])
    assert merged_keys.tolist() == [0, 1, 2]
    all_keys = np.concatenate([k for k, _ in days])
    all_values = np.concatenate([v for _, v in days])
    quantiles = kll_quantiles(merged, [0.5, 0.95])
    for i, key in enumerate(merged_keys):
        data = all_values[all_keys == key]
        assert kll_counts(merged)[i] == len(data)
        for j, rank in enumerate([0.5, 0.95]):
            assert _rank_error(data, quantiles[i, j], rank) <= eps

    # aligned form: each day's blobs for the same entities (here all three exist every day)
    aligned = kll_merge([pa.array(blobs, pa.binary()) for _, blobs in stacked])
    assert kll_counts(aligned).tolist() == kll_counts(merged).tolist()
    union_quantiles = kll_quantiles(kll_sketches(all_keys, all_values)[1], [0.5])
    for i in range(3):  # merged and directly-built sketches agree within twice the bound
        data = np.sort(all_values[all_keys == merged_keys[i]])
        ranks = np.searchsorted(data, [quantiles[i, 0], union_quantiles[i, 0]], "right") / len(data)
        assert abs(ranks[0] - ranks[1]) <= 2 * eps


def test_kll_edge_cases() -> None:
    unique_keys, blobs = kll_sketches(pa.array([], pa.string()), pa.array([], pa.float64()))
    assert len(unique_keys) == 0 and blobs == []
    assert kll_quantiles([], [0.5]).shape == (0, 1)
    assert kll_merge([]) == []
    unique_keys, blobs = kll_sketches(["x", "x", "x", "y"], pa.array([3, 1, 2, None], pa.int64()))
    assert unique_keys.tolist() == ["x", "y"]
    quantiles = kll_quantiles(blobs + [None], [0.0, 0.5, 1.0])
    assert quantiles[0].tolist() == [1.0, 2.0, 3.0]
    assert np.isnan(quantiles[1]).all() and np.isnan(quantiles[2]).all()  # all-null entity, null blob
    merged = kll_merge([[blobs[0], None], [None, blobs[0]]])
    assert kll_counts(merged).tolist() == [3, 3]
    with pytest.raises(ValueError, match="ranks"):
        kll_quantiles(blobs, [1.5])
    with pytest.raises(TypeError, match="numeric"):
        kll_sketches(["a"], ["not a number"])
    with pytest.raises(ValueError, match="length"):
        kll_merge([[blobs[0]], []])
