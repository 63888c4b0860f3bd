"""Reports in the lake (``reports/<kind>/<key>/``) and the view that serves them inside the Airflow UI.

:mod:`mlscale.reports.catalog` finds and reads reports (no Airflow imports); :mod:`mlscale.airflow.reports_app`
is the FastAPI app the Airflow plugin ``plugins/mlscale_reports.py`` mounts at ``/mlscale-reports``.
"""

from mlscale.reports.catalog import (
    CONTENT_TYPES,
    InvalidReportPath,
    ReportEntry,
    ReportError,
    ReportNotFound,
    content_type,
    get_report,
    list_reports,
    read_report_file,
    report_url,
)

__all__ = [
    "CONTENT_TYPES", "InvalidReportPath", "ReportEntry", "ReportError", "ReportNotFound", "content_type",
    "get_report", "list_reports", "read_report_file", "report_url",
]
