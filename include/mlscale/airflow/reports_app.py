"""The reports view: a FastAPI app the Airflow api-server mounts under ``/mlscale-reports``.

Routes (relative to the mount point):

* ``/``                        HTML index: every report, grouped by kind, newest first
* ``/kind/{kind}``             HTML list of one kind's reports
* ``/view/{kind}/{key}/{name}`` one report file (HTML, JSON, SVG, PNG, … with its content type);
  ``/view/{kind}/{key}`` redirects to the report's main file
* ``/api/reports[?kind=…]``    the listing as JSON

Every route requires a user logged in to Airflow: the app depends on Airflow's own
``requires_access_view(AccessView.WEBSITE)`` (``airflow.api_fastapi.core_api.security``), which reads
the JWT from an ``Authorization: Bearer`` header or from the ``_token`` cookie the Airflow UI sets, has
the configured auth manager validate it, and asks the auth manager whether the user may see the UI.
Without valid credentials, ``/api/…`` answers 401 (JSON); the HTML routes answer a browser (a request
accepting ``text/html``) with a 303 redirect to the auth manager's login page (``next`` pointing back)
and any other client with 401. A user the auth manager refuses gets 403.

Report HTML and SVG are served with a ``Content-Security-Policy: sandbox`` header: their scripts run in
an opaque origin, so a report cannot act with the viewer's Airflow session.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlscale.lake import Lake, LakeConfigError, S3Options
from mlscale.reports.catalog import (
    InvalidReportPath,
    ReportEntry,
    ReportNotFound,
    check_segment,
    content_type,
    get_report,
    kind_title,
    list_reports,
    read_report_file,
    report_url,
    split_view_path,
)

logger = logging.getLogger(__name__)

LakeFactory = Callable[[], Lake]
LoginUrl = Callable[[Request], str]

URL_PREFIX = "/mlscale-reports"
INDEX_LIMIT = 20
REPORT_SANDBOX = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads"
_TOKEN_ERRORS = ("Invalid JWT token", "Token Expired", "Not authenticated")


# -- Airflow glue ---------------------------------------------------------------------------------
def airflow_access() -> Callable[..., Any]:
    """Airflow's dependency for read-only UI views: a logged-in user the auth manager lets see the UI."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return requires_access_view(AccessView.WEBSITE)


def airflow_login_url(request: Request) -> str:
    """The configured auth manager's login page, with ``next`` leading back to ``request``."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=str(request.url))


_lakes: dict[tuple[str, S3Options | None], Lake] = {}
_lakes_lock = threading.Lock()


def airflow_lake() -> Lake:
    """The platform's lake (:func:`mlscale.airflow.settings.platform`), resolved on each call.

    Same settings and connection reader as the tasks' :class:`~mlscale.airflow.hooks.lake_hook.LakeHook`
    (``s3://`` roots take credentials from ``aws_default`` through :func:`mlscale.airflow.aws.s3_options`),
    read through Airflow's server-side secrets backends: the api-server is not a task.
    """
    from mlscale.airflow.aws import s3_options
    from mlscale.airflow.settings import platform

    root = platform().lake_root
    s3 = s3_options() if root.startswith("s3://") else None
    with _lakes_lock:
        lake = _lakes.get((root, s3))
        if lake is None:
            lake = _lakes[(root, s3)] = Lake(root, s3)
            logger.info("reports view reads the lake at %s", root)
        return lake


# -- the app --------------------------------------------------------------------------------------
def create_app(lake_factory: LakeFactory = airflow_lake, *, access: Callable[..., Any] | None = None,
               login_url: LoginUrl = airflow_login_url) -> FastAPI:
    """Build the reports app.

    ``lake_factory`` gives the lake for each request; ``access`` is the FastAPI dependency every route
    requires (Airflow's :func:`airflow_access` by default); ``login_url`` gives the login page a browser
    without credentials is redirected to.
    """
    app = FastAPI(title="mlscale reports", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(access or airflow_access())])

    @app.exception_handler(StarletteHTTPException)
    async def auth_errors(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_browser(request) and (exc.status_code == 401 or (exc.status_code == 403 and exc.detail in _TOKEN_ERRORS)):
            return RedirectResponse(login_url(request), status_code=303)
        return await http_exception_handler(request, exc)

    @app.exception_handler(InvalidReportPath)
    async def invalid_path(request: Request, exc: InvalidReportPath) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(ReportNotFound)
    async def not_found(request: Request, exc: ReportNotFound) -> Response:
        return _error(request, 404, str(exc))

    async def lake_unreachable(request: Request, exc: Exception) -> Response:
        logger.exception("reading reports failed")
        return _error(request, 503, f"the lake could not be read ({type(exc).__name__}: {exc}); "
                                    "check the Variable mlscale_lake_root and the aws_default connection")

    app.add_exception_handler(OSError, lake_unreachable)
    app.add_exception_handler(LakeConfigError, lake_unreachable)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        lake = lake_factory()
        entries = list_reports(lake)
        return HTMLResponse(_index_page(entries, lake.root, _base(request)))

    @app.get("/kind/{kind}", response_class=HTMLResponse)
    def kind_page(request: Request, kind: str) -> HTMLResponse:
        check_segment("kind", kind)
        lake = lake_factory()
        entries = list_reports(lake, kind)
        if not entries:
            raise ReportNotFound(f"no reports of kind {kind!r} under {lake.uri('reports')}")
        return HTMLResponse(_kind_page(kind, entries, _base(request)))

    @app.get("/view/{kind}/{path:path}")
    def view(request: Request, kind: str, path: str) -> Response:
        check_segment("kind", kind)
        path = path.rstrip("/")
        lake = lake_factory()
        missing: ReportNotFound | None = None
        if "/" in path:
            key, name = split_view_path(path)
            try:
                return _file_response(name, read_report_file(lake, kind, key, name))
            except ReportNotFound as err:
                missing = err
        try:  # a report's key alone opens its main file
            entry = get_report(lake, kind, path)
        except ReportNotFound:
            raise missing or ReportNotFound(f"no report {kind}/{path}: see {_base(request)}/kind/{kind}") from None
        return RedirectResponse(report_url(kind, entry.key, entry.primary_file, base=_base(request)), status_code=307)

    @app.get("/api/reports")
    def api_reports(request: Request, kind: str | None = None) -> JSONResponse:
        lake = lake_factory()
        entries = list_reports(lake, kind)
        base = _base(request)
        return JSONResponse({"count": len(entries), "kinds": sorted({e.kind for e in entries}),
                             "reports": [e.as_dict(base=base) for e in entries]})

    return app


def _base(request: Request) -> str:
    """The URL path the app is mounted at (``/mlscale-reports``, behind any ``[api] base_url`` path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _is_browser(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path


def _error(request: Request, status: int, message: str) -> Response:
    if "/api/" in request.url.path or not _is_browser(request):
        return JSONResponse({"detail": message}, status_code=status)
    body = f'<p class="error">{html.escape(message)}</p><p><a href="{_base(request)}/">All reports</a></p>'
    return HTMLResponse(_page(f"Error {status}", body), status_code=status)


def _file_response(name: str, data: bytes) -> Response:
    media = content_type(name)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"}
    if media.startswith(("text/html", "image/svg+xml")):
        headers["Content-Security-Policy"] = REPORT_SANDBOX
    return Response(content=data, media_type=media, headers=headers)


# -- pages ----------------------------------------------------------------------------------------
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1a202c}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.meta{color:#4a5568;font-size:.9rem;margin:0 0 1rem} .error{color:#c53030}
table{border-collapse:collapse;width:100%;max-width:70rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e2e8f0;font-size:.9rem}
th{background:#f7fafc;font-weight:600} a{color:#2b6cb0;text-decoration:none} a:hover{text-decoration:underline}
.files a{margin-right:.6rem} .count{color:#718096;font-weight:400}
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style>'
            f"</head><body>{body}</body></html>")


def _href(base: str, *parts: str) -> str:
    return html.escape(base + "/" + "/".join(quote(p, safe="/=@+") for p in parts), quote=True)


def _file_order(name: str) -> tuple[int, str]:
    """HTML first, then JSON, then images and the rest; by name within each."""
    media = content_type(name)
    return (0 if media.startswith("text/html") else 1 if media == "application/json" else 2), name


def _rows(entries: Sequence[ReportEntry], base: str) -> str:
    rows = []
    for e in entries:
        files = " ".join(f'<a href="{_href(base, "view", e.kind, e.key, name)}">{html.escape(name)}</a>'
                         for name in sorted(e.files, key=_file_order))
        modified = (e.modified_iso or "")[:19].replace("T", " ")
        rows.append(f'<tr><td><a class="report" href="{_href(base, "view", e.kind, e.key, e.primary_file)}">'
                    f"{html.escape(e.key)}</a></td><td>{html.escape(e.day or '')}</td>"
                    f"<td>{html.escape(modified)}</td><td class=\"files\">{files}</td></tr>")
    return ("<table><thead><tr><th>Report</th><th>Day</th><th>Modified (UTC)</th><th>Files</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _index_page(entries: Sequence[ReportEntry], root: str, base: str) -> str:
    by_kind: dict[str, list[ReportEntry]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e)
    meta = (f'<p class="meta">{len(entries)} reports of {len(by_kind)} kinds in '
            f'<code>{html.escape(root)}/reports</code> · <a href="{_href(base, "api", "reports")}">JSON</a></p>')
    if not entries:
        meta += ('<p>No reports yet. They appear here when the DAGs that write them (monitor_drift, audit_bias, '
                 "score_batch, lifecycle_cleanup, …) have run.</p>")
    sections = []
    for kind, items in by_kind.items():
        more = (f' <a href="{_href(base, "kind", kind)}">all {len(items)} →</a>' if len(items) > INDEX_LIMIT else "")
        sections.append(f'<section id="kind-{html.escape(kind)}"><h2><a href="{_href(base, "kind", kind)}">'
                        f'{html.escape(kind_title(kind))}</a> <span class="count">({len(items)})</span>{more}</h2>'
                        f"{_rows(items[:INDEX_LIMIT], base)}</section>")
    return _page("mlscale reports", f"<h1>mlscale reports</h1>{meta}{''.join(sections)}")


def _kind_page(kind: str, entries: Sequence[ReportEntry], base: str) -> str:
    title = kind_title(kind)
    head = (f'<h1>{html.escape(title)}</h1><p class="meta"><a href="{base}/">All reports</a> · '
            f'{len(entries)} reports · <a href="{_href(base, "api", "reports")}?kind={html.escape(kind)}">JSON</a></p>')
    return _page(f"{title} — mlscale reports", head + _rows(entries, base))
