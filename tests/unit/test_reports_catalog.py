"""The reports catalog on a local lake: grouping, order, path validation, content types, URLs."""

from __future__ import annotations

import os

import pytest
from mlscale.lake import Lake
from mlscale.reports.catalog import (
    InvalidReportPath,
    ReportNotFound,
    content_type,
    get_report,
    list_kinds,
    list_reports,
    read_report_file,
    report_url,
    split_view_path,
)

# lake key -> modification time (epoch seconds); later files are newer
FILES = {
    "reports/health/2026-11-19/report.html": 1_000,
    "reports/health/2026-11-19/report.json": 1_000,
    "reports/health/2026-11-20/report.html": 500,  # a later day written earlier (a backfill) still sorts first
    "reports/health/2026-11-20/report.json": 500,
    "reports/health/2026-11-18/report.html": 2_000,
    "reports/drift/2026-11-20/report.html": 100,
    "reports/drift/2026-11-20/psi.svg": 100,
    "reports/drift/2026-11-20/psi.png": 100,
    "reports/bias/fraud_detector/3/report.html": 300,
    "reports/bias/fraud_detector/3/report.json": 300,
    "reports/bias/fraud_detector/4/report.html": 400,
    "reports/bias/churn/1/report.json": 350,
    "reports/shadow/fraud_detector/2026-11-20/report.html": 100,
    "reports/cost/2026-11-20/report.json": 100,
    "reports/cost/2026-11-20/report.html": 100,
    "reports/cost/2026-11-20/report.html.tmp-0123456789ab": 100,  # an unfinished write
    "reports/cost/2026-11-20/_scratch.json": 100,  # hidden
    "reports/cost/2026-11-20/data.parquet": 100,  # not a report file
    "reports/model_card/fraud_detector/3.html": 300,
    "reports/model_card/fraud_detector/4.html": 400,
    "reports/model_card/fraud_detector/4.json": 400,
    "reports/capacity/2026-11-20.html": 100,  # a kind nobody planned for, a file right below it
    "reports/README.md": 100,  # no kind: ignored
    "raw/transactions/dt=2026-11-20/_manifest.json": 100,  # not a report
}


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    for key, mtime in FILES.items():
        lake.write_bytes(key, f"<html><title>{key}</title></html>".encode())
        os.utime(lake.path(key), (mtime, mtime))
    (tmp_path / "outside.html").write_text("secret")
    return lake


def keys(entries) -> list[tuple[str, str]]:
    return [(e.kind, e.key) for e in entries]


def test_lists_every_kind_grouped_and_newest_first(lake: Lake) -> None:
    assert keys(list_reports(lake)) == [
        ("bias", "fraud_detector/4"), ("bias", "churn/1"), ("bias", "fraud_detector/3"),
        ("capacity", "2026-11-20"),
        ("cost", "2026-11-20"),
        ("drift", "2026-11-20"),
        ("health", "2026-11-20"), ("health", "2026-11-19"), ("health", "2026-11-18"),
        ("model_card", "fraud_detector/4"), ("model_card", "fraud_detector/3"),
        ("shadow", "fraud_detector/2026-11-20"),
    ]
    assert list_kinds(lake) == ["bias", "capacity", "cost", "drift", "health", "model_card", "shadow"]


def test_entry_files_day_and_time(lake: Lake) -> None:
    health = list_reports(lake, "health")
    assert keys(health) == [("health", "2026-11-20"), ("health", "2026-11-19"), ("health", "2026-11-18")]
    newest = health[0]
    assert newest.files == ("report.html", "report.json")
    assert newest.day == "2026-11-20" and newest.modified == 500
    assert newest.modified_iso == "1970-01-01T00:08:20+00:00"
    assert newest.html_files == ("report.html",) and newest.json_files == ("report.json",)
    cost = get_report(lake, "cost", "2026-11-20")
    assert cost.files == ("report.html", "report.json")  # no temporary, hidden or Parquet files
    card = get_report(lake, "model_card", "fraud_detector/4")
    assert card.files == ("4.html", "4.json") and card.primary_file == "4.html" and card.day is None
    assert get_report(lake, "shadow", "fraud_detector/2026-11-20").day == "2026-11-20"
    assert get_report(lake, "bias", "churn/1").primary_file == "report.json"


def test_as_dict_carries_links(lake: Lake) -> None:
    doc = get_report(lake, "bias", "fraud_detector/3").as_dict()
    assert doc["kind"] == "bias" and doc["key"] == "fraud_detector/3" and doc["files"] == ["report.html", "report.json"]
    assert doc["url"] == "/mlscale-reports/view/bias/fraud_detector/3/report.html"
    assert doc["file_urls"]["report.json"] == "/mlscale-reports/view/bias/fraud_detector/3/report.json"


def test_unknown_kind_lists_nothing(lake: Lake) -> None:
    assert list_reports(lake, "nothing_here") == []
    assert list_reports(Lake(str(lake.path("") + "-empty"))) == []


def test_reads_listed_files(lake: Lake) -> None:
    data = read_report_file(lake, "health", "2026-11-20", "report.html")
    assert data == b"<html><title>reports/health/2026-11-20/report.html</title></html>"
    assert read_report_file(lake, "model_card", "fraud_detector/3", "3.html").startswith(b"<html>")
    assert read_report_file(lake, "capacity", "2026-11-20", "2026-11-20.html").startswith(b"<html>")


@pytest.mark.parametrize(("kind", "key", "name"), [
    ("health", "../..", "outside.html"),
    ("health", "2026-11-20/../../..", "outside.html"),
    ("health", "/etc", "passwd"),
    ("health", "2026-11-20", "../../../outside.html"),
    ("health", "2026-11-20", "/etc/passwd"),
    ("..", "lake", "outside.html"),
    ("health/2026-11-20", "x", "report.html"),
    ("health", "2026-11-20//", "report.html"),
    ("health", "2026-11-20", ".hidden.html"),
    ("health", "2026-11-20", "report.html\x00.png"),
    ("health", "2026-11-20\\..", "report.html"),
    ("health", "", "report.html"),
])
def test_path_traversal_is_refused(lake: Lake, kind: str, key: str, name: str) -> None:
    with pytest.raises(InvalidReportPath):
        read_report_file(lake, kind, key, name)


@pytest.mark.parametrize(("kind", "key", "name"), [
    ("nothing_here", "2026-11-20", "report.html"),  # unknown kind
    ("health", "2026-01-01", "report.html"),  # unknown key
    ("health", "2026-11-18", "report.json"),  # unknown name
    ("cost", "2026-11-20", "data.parquet"),  # present, but not a report file
    ("cost", "2026-11-20", "report.html.tmp-0123456789ab"),  # present, but an unfinished write
    ("bias", "fraud_detector", "3"),  # a folder, not a report
])
def test_unknown_kind_key_or_name_is_not_found(lake: Lake, kind: str, key: str, name: str) -> None:
    with pytest.raises(ReportNotFound):
        read_report_file(lake, kind, key, name)


def test_errors_are_specific() -> None:
    assert issubclass(ReportNotFound, LookupError) and issubclass(InvalidReportPath, ValueError)
    assert not issubclass(ReportNotFound, InvalidReportPath)


@pytest.mark.parametrize(("name", "expected"), [
    ("report.html", "text/html; charset=utf-8"),
    ("REPORT.HTM", "text/html; charset=utf-8"),
    ("report.json", "application/json"),
    ("psi.svg", "image/svg+xml"),
    ("psi.png", "image/png"),
    ("table.csv", "text/csv; charset=utf-8"),
    ("model.pkl", "application/octet-stream"),
])
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


def test_report_url() -> None:
    assert report_url("health", "2026-11-20") == "/mlscale-reports/view/health/2026-11-20/report.html"
    assert report_url("bias", "fraud_detector/3", "report.json", base="http://airflow:8080/mlscale-reports/") == (
        "http://airflow:8080/mlscale-reports/view/bias/fraud_detector/3/report.json")
    assert report_url("shadow", "m/dt=2026-11-20") == "/mlscale-reports/view/shadow/m/dt=2026-11-20/report.html"
    with pytest.raises(InvalidReportPath):
        report_url("health", "../x")
    with pytest.raises(InvalidReportPath):
        report_url("health", "2026-11-20", "a/b.html")


def test_split_view_path() -> None:
    assert split_view_path("fraud_detector/3/report.html") == ("fraud_detector/3", "report.html")
    with pytest.raises(InvalidReportPath):
        split_view_path("report.html")
    with pytest.raises(InvalidReportPath):
        split_view_path("../report.html")
