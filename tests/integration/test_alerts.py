"""Alerts reach people: each condition's alert delivered by e-mail (a local SMTP server) and to a webhook (a
local HTTP receiver), naming the DAG, the partition, the cause in one line and a link; a channel that is down is
logged and never fails the task."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlscale.airflow import alerting
from mlscale.airflow.notify import send_alert
from mlscale.alerts import Alert

from tests.integration.alert_receivers import alert_receivers


@pytest.fixture
def received(monkeypatch):
    with alert_receivers() as (received, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield received


def _one_email(received) -> tuple[str, str]:
    [mail] = received.emails
    received.emails.clear()
    return str(mail["Subject"]), mail.get_body(("html", "plain")).get_content()


def _one_post(received) -> dict:
    [post] = received.posts
    received.posts.clear()
    assert post["path"] == "/hooks/oncall"
    return post["body"]


def test_each_condition_reaches_mail_and_webhook_with_dag_partition_cause_and_link(received) -> None:
    refused = alerting.on_gate({"decision": "refused", "model": "fraud_detector", "version": "7",
                                "reasons": ["bias: verdict fail: region PL false positive rate"],
                                "champion_after": "6"})
    subject, body = _one_email(received)
    assert subject == "[mlscale warning] audit_bias fraud_detector v7: gate_refused"
    assert "bias: verdict fail: region PL false positive rate" in body and "champion stays 6" in body
    assert "http://airflow.example:8080/mlscale-reports/view/model_card/fraud_detector/7/7.html" in body
    hook = _one_post(received)
    assert hook["alert"] == {"kind": "gate_refused", "severity": "warning", "dag_id": "audit_bias",
                             "partition": "fraud_detector v7", "cause": refused.cause, "link": refused.link}
    assert hook["text"].splitlines()[0] == subject

    assert alerting.on_gate({"decision": "promoted", "model": "m", "version": "1"}) is None
    assert alerting.on_drift({"drift_detected": False}) is None
    assert not received.emails and not received.posts  # nothing to say: nothing sent

    drift = alerting.on_drift({"drift_detected": True, "model": "fraud_detector", "version": "7", "dt": "2026-03-02",
                               "drifted_features": [f"c{i}" for i in range(8)],
                               "verdicts": {"data_drift": "drift_detected", "prediction_drift": "no_drift"}})
    assert _one_email(received)[0] == "[mlscale warning] monitor_drift fraud_detector v7 2026-03-02: drift"
    assert "8 columns drifted (c0, c1, c2, c3, c4, ...)" in drift.cause
    assert _one_post(received)["alert"]["link"].endswith("/view/drift/fraud_detector/2026-03-02/report.html")

    ingested = {"dataset": "transactions", "dt": "2026-03-02", "rows_in": 1000, "rows_quarantined": 80,
                "quarantine_by_reason": {"type_error:amount": 50, "missing_required": 30},
                "quarantine_uri": "s3://lake/quarantine/transactions/dt=2026-03-02"}
    assert alerting.on_quarantine(ingested, 0.10, "scheduled__2026-03-03") is None  # 8 % is under 10 %
    assert alerting.on_quarantine({**ingested, "dry_run": True}, 0.05, "manual__dry") is None  # pages nobody
    quarantine = alerting.on_quarantine(ingested, 0.05, "scheduled__2026-03-03")
    subject, body = _one_email(received)
    assert subject == "[mlscale critical] ingest_transactions 2026-03-02: quarantine_rate"
    assert "8.00% of 1000 records quarantined (limit 5.00%); top reasons type_error:amount 50, missing_required 30" \
        in body
    assert quarantine.link == ("http://airflow.example:8080/dags/ingest_transactions/runs/scheduled__2026-03-03/"
                               "tasks/ingest")
    _one_post(received)

    ti = SimpleNamespace(dag_id="score_batch", task_id="score", map_index=0, try_number=3)
    failed = alerting.on_task_failure("score_batch", "2026-03-02", "score (try 3): ValueError: no\nfeatures",
                                      {"ti": ti, "run_id": "manual__x"})
    assert failed.cause == "score (try 3): ValueError: no features"  # one line
    assert failed.link == ("http://airflow.example:8080/dags/score_batch/runs/manual__x/tasks/score/mapped/0"
                           "?try_number=3")
    assert _one_email(received)[0] == "[mlscale critical] score_batch 2026-03-02: task_failed"
    _one_post(received)

    stale = alerting.on_health([{"kind": "stale_features", "severity": "critical",
                                 "message": "build_features: customer_activity not published for 2026-03-02"},
                                {"kind": "stale_features", "severity": "warning", "message": "an earlier day"},
                                {"kind": "drift", "severity": "critical", "message": "reported by monitor_drift"}],
                               "2026-03-02")
    assert [a.kind for a in stale] == ["stale_features"] and len(received.emails) == len(received.posts) == 1


def test_a_channel_that_is_down_is_logged_and_the_others_still_get_the_alert(received, monkeypatch, caplog) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_DOWN", '{"conn_type": "http", "host": "http://127.0.0.1:9/none"}')
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_FAX", '{"conn_type": "fax", "host": "x"}')
    alert = Alert("deadline_missed", "critical", "build_features", "2026-03-02", "run r1 is late")
    outcome = send_alert(alert, "alerts_down, alerts_fax, alerts_webhook,")
    assert outcome["alerts_webhook"] == "sent" and outcome["alerts_down"].startswith("failed: ")
    assert "alerts go to 'smtp' or 'http' connections" in outcome["alerts_fax"]
    assert len(received.posts) == 1 and not received.emails
    assert "was not delivered to connection alerts_down" in caplog.text
    with pytest.raises(ValueError, match="unknown alert kind"):
        Alert("oops", "critical", "d", "p", "c")
