"""The online service's plain parts: the serving policy file, request checks, the recent-events memory, the
prediction cache and the autoscaling decision."""

from __future__ import annotations

import datetime as dt

import pytest
from mlscale.serving.autoscale import AutoscalePolicy, InFlightBoard
from mlscale.serving.cache import PredictionCache
from mlscale.serving.policy import ServingPolicyError, load_serving_policy
from mlscale.serving.recent import RecentEvents
from mlscale.serving.request import EventSchema, RequestInvalid
from mlscale.training.spec import load_model_spec

SPEC = load_model_spec("fraud_detector")
EVENT = {"event_id": "T1", "event_ts": "2026-11-05T10:00:00Z", "customer_id": "C1", "merchant_id": "M1",
         "merchant_category": "grocery", "amount": 12.5, "currency": "EUR", "channel": "pos"}


def test_the_committed_policy_and_a_model_override(tmp_path) -> None:
    committed = load_serving_policy("fraud_detector")
    assert committed.variant == "compressed" and committed.shadow == ("challenger",)
    assert load_serving_policy("another_model").variant == "full"        # the defaults
    path = tmp_path / "serving.yaml"
    path.write_text("defaults: {cache: {ttl_s: 5, max_entries: 10}}\nmodels:\n  m: {ab: {challenger: 0.25}}\n")
    policy = load_serving_policy("m", path)
    assert (policy.challenger_share, policy.cache_ttl_s, policy.cache_entries) == (0.25, 5, 10)
    assert 0 <= policy.arm_position("C1") < 1 and policy.arm_position("C1") == policy.arm_position("C1")


@pytest.mark.parametrize(("text", "found"), [
    ("defaults: {shadows: [x]}", "unknown key 'shadows'"),
    ("models: {m: {ab: {challenger: 1.5}}}", "models.m.ab.challenger"),
    ("defaults: {variant: tiny}", "variant 'tiny'"),
    ("defaults: {fallback: {decision: approve}}", "fallback.decision 'approve'"),
])
def test_a_bad_policy_file_names_the_key(tmp_path, text: str, found: str) -> None:
    path = tmp_path / "serving.yaml"
    path.write_text(text)
    with pytest.raises(ServingPolicyError, match=found.replace(".", r"\.")) as err:
        load_serving_policy("m", path)
    assert str(path) in str(err.value)


def test_requests_are_checked_like_contract_rows() -> None:
    schema = EventSchema.for_spec(SPEC)
    [row] = schema.parse({**EVENT, "event_ts": 1793872800000})        # epoch milliseconds
    assert row["event_ts"] == dt.datetime(2026, 11, 5, 10, 0, tzinfo=dt.UTC)
    assert schema.parse({"events": [EVENT, EVENT]})[1]["amount"] == 12.5
    with pytest.raises(RequestInvalid) as err:
        schema.parse({"events": [EVENT, {**EVENT, "amount": "lots", "currency": "XYZ"}, "not an event"]})
    assert {(p.index, p.field) for p in err.value.problems} == {(1, "amount"), (1, "currency"), (2, "event")}
    assert schema.parse({**EVENT, "merchant_category": None})[0]["merchant_category"] is None   # optional
    with pytest.raises(RequestInvalid, match="events"):
        schema.parse([])


def test_recent_events_remember_each_event_once_within_the_window() -> None:
    recent = RecentEvents(SPEC)
    assert recent.keys == ("customer_id",) and recent.window == dt.timedelta(minutes=60)
    t0 = dt.datetime(2026, 11, 5, 10, tzinfo=dt.UTC)
    first = {**EVENT, "event_ts": t0}
    recent.remember([first, first])                       # a retry of the same event
    assert len(recent) == 1
    later = {**EVENT, "event_id": "T2", "event_ts": t0 + dt.timedelta(minutes=30)}
    assert [e["event_id"] for e in recent.context([later])] == ["T1"]
    assert recent.context([first]) == []                  # an event is not its own context
    recent.remember([{**EVENT, "event_id": "T3", "event_ts": t0 + dt.timedelta(minutes=90)}])
    assert [e["event_id"] for e in recent.context([later])] == ["T3"]   # T1 fell out of the window


def test_the_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = PredictionCache(ttl_s=10, max_entries=2, clock=lambda: now[0])
    cache.put("1", b"a", 0.5)
    assert cache.get("1", b"a") == 0.5 and cache.get("2", b"a") is None
    cache.put("1", b"b", 0.6)
    cache.put("1", b"c", 0.7)
    assert len(cache) == 2 and cache.get("1", b"a") is None          # least recently used went first
    now[0] = 11.0
    assert cache.get("1", b"c") is None
    assert PredictionCache(ttl_s=0, max_entries=5).get("1", b"a") is None


def test_the_autoscaling_decision_and_board(tmp_path) -> None:
    policy = AutoscalePolicy(min_workers=1, max_workers=3, target_in_flight=2)
    assert policy.decide(1, recent_up=3.0, recent_down=3.0) == 1
    assert policy.decide(3, recent_up=9.0, recent_down=9.0) == 0       # at the most
    assert policy.decide(2, recent_up=0.5, recent_down=0.5) == -1      # below 30 % of the target
    assert policy.decide(1, recent_up=0.0, recent_down=0.0) == 0       # at the fewest
    assert policy.decide(2, recent_up=3.0, recent_down=float("inf")) == 0
    with pytest.raises(ValueError):
        AutoscalePolicy(min_workers=3, max_workers=2)
    board = InFlightBoard(tmp_path / "board", create=True)
    worker = InFlightBoard(tmp_path / "board")
    worker.claim()
    worker.add(2)
    assert board.total() == 2
    worker.add(-1)
    assert board.total() == 1
