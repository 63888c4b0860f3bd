"""Lifecycle policy validation, legal holds, lineage references, run-context glue, and a property test.

The property test is a seeded ``random`` loop over a few hundred random cases (``hypothesis`` is not in
the lock): random policies, lakes, holds and lineage references; no held or referenced object may ever
be in the delete set, and everything expired and unprotected must be in it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from mlscale.airflow.tasks.lifecycle import LifecycleParamError, resolve_dry_run, run_times
from mlscale.lake import Lake
from mlscale.lake.manifest import FileEntry, Manifest
from mlscale.lifecycle import (
    HoldError,
    HoldSet,
    LineageError,
    LineageRefs,
    PolicyError,
    load_policy,
    parse_policy,
)
from mlscale.lifecycle.actions import (
    DELETE_ORPHANS,
    DELETE_PARTITION,
    DELETE_PREFIX,
    MOVE_COLD,
    PLANNED,
    SKIPPED,
)
from mlscale.lifecycle.holds import load_holds, parse_hold
from mlscale.lifecycle.keys import overlaps
from mlscale.lifecycle.lineage import parse_record
from mlscale.lifecycle.listing import ObjectInfo
from mlscale.lifecycle.plan import build_plan
from mlscale.lifecycle.policy import default_policy_path

BASE = {"version": 1, "rules": []}


def policy_with(*rules: dict, **top) -> dict:
    return {**BASE, **top, "rules": list(rules)}


def rule(**kw) -> dict:
    return {"name": "r1", "zone": "raw", "datasets": ["*"], "classification": "internal", **kw}


# -- policy ----------------------------------------------------------------------------------------
def test_shipped_policy_is_valid_and_specific_rules_win() -> None:
    policy = load_policy(default_policy_path())
    assert policy.rule_for("raw", "customers").name == "raw-customers-pii-derived"
    assert policy.rule_for("raw", "transactions").name == "raw-default"
    assert policy.rule_for("quarantine", "x").delete_after_days <= 90
    assert policy.prices.hot > policy.prices.cold > 0
    assert policy.rule_for("reports", "cost") is None


@pytest.mark.parametrize(("bad", "message"), [
    (rule(delete_after_days=30, cold_after_days=60), "cold_after_days 60 > delete_after_days 30"),
    (rule(delete_after_days=30, min_keep_days=365), "min_keep_days 365 (legal minimum) > delete_after_days 30"),
    (rule(zone="quarantine"), "quarantine data must be kept short"),
    (rule(zone="models", delete_after_days=10), "registered version"),
    (rule(zone="landing", delete_after_days=30, cold_after_days=10), "has no manifests"),
    (rule(zone="checkpoints"), "checkpoints take delete_after_days"),
    (rule(cold_after_days=10, storage_class="GLACIER"), "needs a restore"),
    (rule(cold_after_days=10, storage_class="STANDARD_IA"), "before 30 days"),
    (rule(cold_after_days=10, classification=""), "needs a `classification`"),
    (rule(zone="bronze"), "not one the lifecycle manages"),
    (rule(delete_after_days=0), "delete_after_days must be a whole number >= 1"),
])
def test_contradictions_are_errors_naming_the_rule(bad: dict, message: str) -> None:
    with pytest.raises(PolicyError, match="rule 'r1'") as err:
        parse_policy(policy_with(bad), "test.yaml")
    assert message in str(err.value)


def test_an_unknown_rule_key_is_an_error_naming_the_allowed_keys() -> None:
    with pytest.raises(PolicyError, match=r"test.yaml: rules\[0\].keep_for: unknown key 'keep_for' in rules\[0\] "
                                          r"\(allowed: classification, cold_after_days, datasets, "):
        parse_policy(policy_with(rule(delete_after_days=10, keep_for=3)), "test.yaml")


def test_two_rules_claiming_one_dataset_is_an_error() -> None:
    doc = policy_with(rule(name="a", datasets=["t"], delete_after_days=10),
                      rule(name="b", datasets=["t", "u"], delete_after_days=20))
    with pytest.raises(PolicyError, match="rules 'a' and 'b' both claim raw/t"):
        parse_policy(doc)


def test_cold_tier_default_class_must_be_readable() -> None:
    with pytest.raises(PolicyError, match="DEEP_ARCHIVE"):
        parse_policy(policy_with(rule(delete_after_days=10), cold_tier={"storage_class": "DEEP_ARCHIVE"}))


def test_missing_policy_file_says_which(tmp_path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


# -- holds and lineage -----------------------------------------------------------------------------
def hold(**scope) -> dict:
    return {"id": "LH-1", "scope": scope, "reason": "litigation", "who": "legal@example.com", "since": "2026-01-02"}


def test_hold_scopes_match_partitions_files_cold_copies_and_containing_directories() -> None:
    h = parse_hold(hold(zone="raw", dataset="transactions", **{"from": "2026-03-01", "to": "2026-03-31"}), "t")
    assert h.covers("raw/transactions/dt=2026-03-05")
    assert h.covers("raw/transactions/dt=2026-03-31/region=NL/part-1.parquet")
    assert h.covers("cold/raw/transactions/dt=2026-03-05/region=NL/part-1.parquet")
    assert h.covers("raw/transactions")            # deleting the whole dataset would remove held days
    assert not h.covers("raw/transactions/dt=2026-04-01")
    assert not h.covers("raw/customers/dt=2026-03-05")
    p = parse_hold(hold(prefix="raw/transactions/dt=2026-03-05/region=NL"), "t")
    assert p.covers("raw/transactions/dt=2026-03-05")  # the partition contains the held prefix
    assert not p.covers("raw/transactions/dt=2026-03-06")


def test_incomplete_holds_are_errors_and_released_holds_do_not_apply(tmp_path) -> None:
    with pytest.raises(HoldError, match="missing reason"):
        parse_hold({**hold(zone="raw"), "reason": ""}, "t")
    with pytest.raises(HoldError, match="needs a `prefix` or a `zone`"):
        parse_hold({**hold(), "scope": {}}, "t")
    path = tmp_path / "holds.yaml"
    path.write_text("holds:\n" + "".join(
        f"  - {json.dumps({**hold(zone='raw'), 'id': i, **extra})}\n"
        for i, extra in (("A", {}), ("B", {"released": "2026-02-01"}))))
    assert [h.id for h in load_holds(path).holds] == ["A"]


def test_shipped_holds_file_loads() -> None:
    assert isinstance(load_holds(), HoldSet)


def test_lineage_records_protect_until_the_version_is_deleted() -> None:
    rec = parse_record({"model": "fraud", "version": 3, "status": "registered",
                        "references": ["training/fraud/dt=2026-11-01", "features/f7/dt=2026-10"]}, "t")
    refs = LineageRefs((rec,))
    assert refs.protecting("training/fraud/dt=2026-11-01/part-0.parquet") is rec
    assert refs.protecting("features/f7/dt=2026-10-17") is rec
    assert refs.protecting("models/fraud/3/model.json") is rec  # its own artifacts by default
    assert refs.protecting("features/f7/dt=2026-11-01") is None
    gone = parse_record({"model": "fraud", "version": 3, "status": "deleted", "references": ["training/fraud"]}, "t")
    assert LineageRefs((gone,)).protecting("training/fraud/dt=2026-11-01") is None
    with pytest.raises(LineageError, match="needs `model` and `version`"):
        parse_record({"model": "x"}, "t")


def test_overlap_is_by_home_key_in_both_directions() -> None:
    assert overlaps("cold/raw/t/dt=2026-01-01/f", "raw/t/dt=2026-01-01")
    assert overlaps("raw/t", "raw/t/dt=2026-01-01")
    assert not overlaps("raw/t/dt=2026-01-02", "raw/t/dt=2026-01-01")


# -- glue: dry run and run times ---------------------------------------------------------------------
def ctx(run_type: str, *, dt_param: str | None = None, logical: dt.datetime | None = None,
        run_after: dt.datetime | None = None) -> dict:
    run = SimpleNamespace(run_type=run_type, run_after=run_after, logical_date=logical, partition_key=None)
    return {"dag_run": run, "params": {"dt": dt_param}, "logical_date": logical, "data_interval_start": logical}


def test_dry_run_defaults_to_true_unless_scheduled() -> None:
    assert resolve_dry_run(None, ctx("manual")) is True
    assert resolve_dry_run(None, ctx("backfill")) is True
    assert resolve_dry_run(None, ctx("scheduled")) is False
    assert resolve_dry_run(False, ctx("manual")) is False
    assert resolve_dry_run(True, ctx("scheduled")) is True


def test_run_times_come_from_the_run_and_refuse_future_days() -> None:
    at = dt.datetime(2026, 11, 2, 3, 30, tzinfo=dt.UTC)
    day, logical = run_times(ctx("scheduled", logical=at, run_after=at))
    assert (day, logical) == (dt.date(2026, 11, 2), at)
    day, logical = run_times(ctx("manual", dt_param="2026-10-01", logical=at, run_after=at))
    assert day == dt.date(2026, 10, 1) and logical == dt.datetime(2026, 10, 2, tzinfo=dt.UTC)
    with pytest.raises(LifecycleParamError, match="after the day this run was triggered"):
        run_times(ctx("manual", dt_param="2027-01-01", logical=at, run_after=at))


# -- property test -----------------------------------------------------------------------------------
class MemoryLister:
    """The LakeLister interface over an in-memory listing (no storage), for fast random cases."""

    is_s3 = False
    s3 = None
    bucket = base = ""

    def __init__(self, objects: dict[str, ObjectInfo], bodies: dict[str, bytes]) -> None:
        self.objects, self.bodies, self.counters = objects, bodies, Counter()
        self.keys = sorted(objects)

    def children(self, prefix: str) -> list[str]:
        p = prefix.strip("/") + "/"
        return sorted({k[len(p):].split("/")[0] for k in self.keys if k.startswith(p) and "/" in k[len(p):]})

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        p = prefix.strip("/") + "/"
        return (self.objects[k] for k in self.keys if k.startswith(p))

    def read_bytes(self, key: str) -> bytes | None:
        return self.bodies.get(key)

    def read_many(self, keys):
        return {k: self.bodies.get(k) for k in keys}


RUN_DAY = dt.date(2026, 11, 2)
LOGICAL = dt.datetime(2026, 11, 2, 3, 30, tzinfo=dt.UTC)
DATASETS = ["a", "b", "c"]


def random_case(rng: random.Random):
    rules = []
    for zone in ("raw", "quarantine", "features", "landing"):
        for i, ds in enumerate(["*", *rng.sample(DATASETS, rng.randint(0, 2))]):
            n = rng.randint(1, 400)
            r = {"name": f"{zone}-{i}", "zone": zone, "datasets": [ds], "classification": "c",
                 "delete_after_days": n if (zone == "quarantine" or rng.random() < 0.8) else None,
                 "min_keep_days": rng.randint(0, n)}
            if zone != "landing" and rng.random() < 0.5:
                r["cold_after_days"] = rng.randint(1, n)
            rules.append(r)
    policy = parse_policy({"version": 1, "rules": rules})
    objects: dict[str, ObjectInfo] = {}
    bodies: dict[str, bytes] = {}
    old, young = (LOGICAL - dt.timedelta(days=30)).timestamp(), LOGICAL.timestamp()
    for zone in ("raw", "quarantine", "features", "landing"):
        for ds in DATASETS:
            for _ in range(rng.randint(0, 6)):
                day = RUN_DAY - dt.timedelta(days=rng.randint(0, 800))
                part = f"{zone}/{ds}/dt={day}"
                files = [f"region={rng.choice('XY')}/part-{rng.randrange(10**6)}.parquet" for _ in range(rng.randint(1, 3))]
                for f in files:
                    objects[f"{part}/{f}"] = ObjectInfo(f"{part}/{f}", 100, rng.choice([old, young]))
                if zone != "landing":
                    if rng.random() < 0.3:  # an orphan of a crashed attempt
                        key = f"{part}/_staging/x/part-{rng.randrange(10**6)}.parquet"
                        objects[key] = ObjectInfo(key, 50, rng.choice([old, young]))
                    listed = files[: max(1, len(files) - rng.randint(0, 1))]
                    manifest = Manifest(part, tuple(FileEntry(f, 1, 100, "0" * 64) for f in listed), "fp", "r", "a")
                    objects[f"{part}/_manifest.json"] = ObjectInfo(f"{part}/_manifest.json", 10, old)
                    bodies[f"{part}/_manifest.json"] = manifest.to_json()
    keys = sorted(objects)
    holds, refs = [], []
    for i in range(rng.randint(0, 4)):
        if rng.random() < 0.5 and keys:
            prefix = rng.choice(keys).rsplit("/", rng.randint(1, 2))[0]
            holds.append(parse_hold({**hold(prefix=prefix[: rng.randint(min(len(prefix), 8), len(prefix))]), "id": f"H{i}"}, "t"))
        else:
            lo = RUN_DAY - dt.timedelta(days=rng.randint(0, 800))
            scope = {"zone": rng.choice(["raw", "quarantine", "features", "landing"]),
                     "dataset": rng.choice([*DATASETS, "*"]), "from": str(lo),
                     "to": str(lo + dt.timedelta(days=rng.randint(0, 200)))}
            holds.append(parse_hold({**hold(**scope), "id": f"H{i}"}, "t"))
    for i in range(rng.randint(0, 4)):
        refs.append(parse_record({"model": "m", "version": i, "status": rng.choice(["registered", "deleted"]),
                                  "references": [rng.choice(keys).rsplit("/", rng.randint(1, 3))[0] for _ in range(2)]
                                  if keys else []}, "t"))
    return policy, objects, bodies, HoldSet(tuple(holds)), LineageRefs(tuple(refs))


def test_property_no_held_or_referenced_object_is_ever_deleted() -> None:
    rng = random.Random(20261102)
    lake = Lake("/nonexistent/lake")
    deleted_total = skipped_total = 0
    for case in range(300):
        policy, objects, bodies, holds, refs = random_case(rng)
        plan = build_plan(lake, policy, holds, refs, run_id=f"case-{case}", run_day=RUN_DAY, logical_time=LOGICAL,
                          zones=["landing", "raw", "quarantine", "features"], grace_hours=48,
                          lister=MemoryLister(objects, bodies), write=False)
        deleted: set[str] = set()
        for a in plan.actions:
            if a.status != PLANNED or a.action not in (DELETE_PARTITION, DELETE_PREFIX, DELETE_ORPHANS):
                continue
            targets = list(a.keys) or [a.target]
            if a.action == DELETE_PARTITION:
                manifest = Manifest.from_json(bodies[f"{a.target}/_manifest.json"], a.target)
                targets += [a.target, *manifest.file_keys()]
            for key in targets:
                assert holds.find(key) is None, f"case {case}: {key} is held but planned for deletion"
                assert refs.protecting(key) is None, f"case {case}: {key} is referenced but planned for deletion"
                deleted.add(key)
        deleted_total += len(deleted)
        skipped_total += sum(a.status == SKIPPED for a in plan.actions)
        # completeness: every expired partition nobody protects is deleted; a protected one is skipped
        for key in (k for k in objects if k.endswith("/_manifest.json")):
            part = key[: -len("/_manifest.json")]
            zone, ds, day = part.split("/")[0], part.split("/")[1], dt.date.fromisoformat(part[-10:])
            r = policy.rule_for(zone, ds)
            expired = r is not None and r.delete_after_days is not None and (RUN_DAY - day).days > max(
                r.delete_after_days, r.min_keep_days)
            protected = holds.find(part) or refs.protecting(part) or any(
                holds.find(k) or refs.protecting(k) for k in Manifest.from_json(bodies[key], key).file_keys())
            verdicts = {a.status for a in plan.actions if a.action == DELETE_PARTITION and a.target == part}
            assert verdicts == ({SKIPPED} if protected else {PLANNED}) if expired else not verdicts, (case, part)
        assert not any(a.action == MOVE_COLD and a.status == PLANNED and holds.find(a.target) for a in plan.actions)
    assert deleted_total > 500 and skipped_total > 50  # the random cases exercised both sides
