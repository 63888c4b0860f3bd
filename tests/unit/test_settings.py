"""The platform settings, the one AWS connection reader and the configuration folder lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlscale.layout import CONFIG_DIR_ENV, ConfigNotFound, config_dir, config_root, declared
from mlscale.settings import Platform, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_platform_reads_every_setting_from_airflow_variables_in_the_environment() -> None:
    env = {"AIRFLOW_VAR_MLSCALE_LAKE_ROOT": "s3://bucket/lake", "AIRFLOW_VAR_MLSCALE_MLFLOW_TRACKING_URI": "http://mlflow:5000",
           "AIRFLOW_VAR_MLSCALE_FEAST_ROOT": "/opt/feast", "AIRFLOW_VAR_MLSCALE_FEAST_ONLINE_STORE": "redis",
           "AIRFLOW_VAR_MLSCALE_FEAST_REDIS": "redis:6379", "MLSCALE_CODE_VERSION": "abc123",
           "AIRFLOW_VAR_MLSCALE_ALERT_CONNECTIONS": "oncall_mail,oncall_chat", "MLSCALE_UI_URL": "https://airflow.corp"}
    platform = Platform.from_env(env)
    assert platform.as_dict() == {"lake_root": "s3://bucket/lake", "tracking_uri": "http://mlflow:5000",
                                  "feast_root": "/opt/feast", "online_store": "redis",
                                  "redis_connection_string": "redis:6379", "code_version": "abc123",
                                  "config_dir": "", "alert_connections": "oncall_mail,oncall_chat",
                                  "ui_url": "https://airflow.corp"}
    assert platform.injectable()["feast_root"] == "/opt/feast" and "lake_root" not in platform.injectable()


def test_defaults_and_relative_roots(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MLSCALE_HOME", str(tmp_path))
    platform = Platform.from_env({})
    assert platform.lake_root == str(tmp_path / "data" / "lake") and platform.online_store == "sqlite"
    assert Platform.from_env({"AIRFLOW_VAR_MLSCALE_LAKE_ROOT": "elsewhere"}).lake_root == str(tmp_path / "elsewhere")


def test_settings_that_cannot_work_name_the_variable_to_fix() -> None:
    with pytest.raises(SettingsError, match="mlscale_feast_online_store"):
        Platform(online_store="dynamodb")
    with pytest.raises(SettingsError, match="mlscale_feast_redis"):
        Platform(online_store="redis")


def test_config_folder_comes_from_the_setting_else_the_checkout(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    monkeypatch.delenv("MLSCALE_HOME", raising=False)
    assert config_root() == ROOT / "include"
    assert "transactions" in declared("contracts") and "fraud_detector" in declared("models")
    own = tmp_path / "team-config"
    (own / "contracts").mkdir(parents=True)
    (own / "contracts" / "orders.yaml").write_text("dataset: orders\n")
    monkeypatch.setenv(CONFIG_DIR_ENV, str(own))
    assert config_dir("contracts") == own / "contracts" and declared("contracts") == ["orders"]
    with pytest.raises(ValueError, match="unknown configuration folder"):
        config_dir("secrets")


def test_a_missing_config_folder_says_what_to_set(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    monkeypatch.setenv("MLSCALE_HOME", str(tmp_path))
    import mlscale.layout as layout

    monkeypatch.setattr(layout, "__file__", str(tmp_path / "site-packages" / "mlscale" / "layout.py"))
    with pytest.raises(ConfigNotFound, match=CONFIG_DIR_ENV):
        config_root()


def test_s3_options_from_the_aws_connection_outside_a_task(monkeypatch) -> None:
    from mlscale.airflow.aws import s3_options

    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", json.dumps({
        "conn_type": "aws", "login": "key", "password": "secret",
        "extra": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1", "aws_session_token": "tok",
                  "service_config": {"ec2": {"endpoint_url": "http://moto:5000"}}}}))
    s3 = s3_options("aws_test")
    assert (s3.endpoint_url, s3.access_key, s3.secret_key, s3.session_token, s3.region) == \
        ("http://minio:9000", "key", "secret", "tok", "eu-west-1")
    assert s3_options("aws_test", service="ec2").endpoint_url == "http://moto:5000"
    assert s3_options("aws_not_defined").access_key == ""  # boto3's default credential chain applies
