"""The reports view inside a real ``airflow api-server`` (SQLite, simple auth manager, this project's plugins).

One api-server serves the whole module. It reads a temporary lake holding a few reports. Checked: the
pages with a token from ``POST /auth/token`` (header and ``_token`` cookie), refusals without
credentials (401, or a redirect to the login page for a browser), path traversal, the plugin in
``GET /api/v2/plugins``, and, where ``/usr/bin/chromium`` exists, a screenshot of the index taken by a
logged-in headless Chromium (written to ``$MLSCALE_TEST_ARTIFACTS`` or ``<repo>/.artifacts/``).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from mlscale.lake import Lake

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CHROMIUM = Path("/usr/bin/chromium")
PREFIX = "/mlscale-reports"
pytestmark = pytest.mark.airflow

REPORTS = {
    "reports/health/2026-11-19/report.html": b"<html><head><title>Pipeline health 2026-11-19</title></head></html>",
    "reports/health/2026-11-20/report.html": b"<html><head><title>Pipeline health 2026-11-20</title></head>"
                                             b"<body><h1>All pipelines green</h1></body></html>",
    "reports/health/2026-11-20/report.json": b'{"day": "2026-11-20", "failed_tasks": 0}',
    "reports/drift/2026-11-20/report.html": b"<html><body><img src='psi.png'></body></html>",
    "reports/drift/2026-11-20/psi.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "reports/drift/2026-11-20/psi.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "reports/bias/fraud_detector/3/report.html": b"<html><body>bias audit of fraud_detector v3</body></html>",
    "reports/model_card/fraud_detector/3.html": b"<html><body>model card v3</body></html>",
}


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    token: str
    home: Path

    def get(self, path: str, *, token: str | None = None, cookie: str | None = None,
            headers: dict[str, str] | None = None) -> requests.Response:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        cookies = {"_token": cookie} if cookie else None
        return requests.get(self.url + path, headers=headers, cookies=cookies, allow_redirects=False, timeout=60)

    def raw_get(self, path: str, token: str) -> tuple[int, bytes]:
        """GET ``path`` exactly as written (no client-side normalisation of ``..`` or ``%2e``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"api-server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    pytest.fail(f"api-server not healthy after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the api-server's process group (uvicorn workers included)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("reports_airflow_home")
    lake = Lake(str(home / "lake"))
    for key, data in REPORTS.items():
        lake.write_bytes(key, data)
    (home / "dags").mkdir()
    (home / "secret.html").write_text("outside the lake")
    password = secrets.token_urlsafe(16)
    (home / "passwords.json").write_text(json.dumps({"admin": password, "viewer": secrets.token_urlsafe(16)}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSCALE"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "MLSCALE_HOME": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=30",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW_VAR_MLSCALE_LAKE_ROOT": lake.root,
        "NO_PROXY": "*",
    })
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    log = home / "api-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log)
        resp = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=60)
        assert resp.status_code == 201, resp.text
        yield Server(url=url, port=port, token=resp.json()["access_token"], home=home)
    finally:
        _stop(proc)


# -- plugin registration --------------------------------------------------------------------------
PLUGIN_IMPORT_PROBE = """
import json, sys, time, importlib.util
from airflow.sdk.plugins_manager import AirflowPlugin
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("mlscale_reports", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "new": sorted({m.split(".")[0] for m in set(sys.modules) - before})}))
"""


def test_plugin_module_is_import_light() -> None:
    """Every Airflow process loads the plugin: it must not pull in FastAPI, pyarrow or the library."""
    out = subprocess.run([sys.executable, "-c", PLUGIN_IMPORT_PROBE, str(ROOT / "plugins" / "mlscale_reports.py")],
                         capture_output=True, text=True, check=True, timeout=120)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert not set(probe["new"]) & {"fastapi", "starlette", "pyarrow", "pandas", "dask", "mlscale"}, probe
    assert probe["seconds"] < 0.5, probe


def test_plugin_is_registered_with_its_app_and_nav_entry(server: Server) -> None:
    resp = server.get("/api/v2/plugins", token=server.token)
    assert resp.status_code == 200, resp.text
    plugins = {p["name"]: p for p in resp.json()["plugins"]}
    assert "mlscale_reports" in plugins, list(plugins)
    plugin = plugins["mlscale_reports"]
    assert [(a["url_prefix"], a["name"]) for a in plugin["fastapi_apps"]] == [(PREFIX, "mlscale reports")]
    [view] = plugin["external_views"]
    assert view["href"] == f"{PREFIX}/" and view["destination"] == "nav"
    assert view["url_route"] == "mlscale-reports" and view["category"] == "browse" and view["name"] == "Reports"
    errors = server.get("/api/v2/plugins/importErrors", token=server.token).json()["import_errors"]
    assert not [e for e in errors if "mlscale_reports" in e["source"]], errors


# -- authenticated access -------------------------------------------------------------------------
def test_index_lists_reports_grouped_by_kind_newest_first(server: Server) -> None:
    resp = server.get(f"{PREFIX}/", token=server.token)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert "<h1>mlscale reports</h1>" in page
    for title in ("Pipeline health", "Drift", "Bias audits", "Model cards"):
        assert title in page
    assert page.index(f"{PREFIX}/view/health/2026-11-20/report.html") < page.index(
        f"{PREFIX}/view/health/2026-11-19/report.html")
    assert f'href="{PREFIX}/view/model_card/fraud_detector/3/3.html"' in page


def test_kind_page_and_json_listing(server: Server) -> None:
    resp = server.get(f"{PREFIX}/kind/health", token=server.token)
    assert resp.status_code == 200 and "2026-11-20" in resp.text and "drift" not in resp.text
    listing = server.get(f"{PREFIX}/api/reports", token=server.token)
    assert listing.status_code == 200 and listing.headers["content-type"] == "application/json"
    doc = listing.json()
    assert doc["count"] == 5 and doc["kinds"] == ["bias", "drift", "health", "model_card"]
    health = [r for r in doc["reports"] if r["kind"] == "health"]
    assert [r["key"] for r in health] == ["2026-11-20", "2026-11-19"]
    assert health[0]["files"] == ["report.html", "report.json"]
    assert health[0]["url"] == f"{PREFIX}/view/health/2026-11-20/report.html"
    only = server.get(f"{PREFIX}/api/reports?kind=bias", token=server.token).json()
    assert [r["key"] for r in only["reports"]] == ["fraud_detector/3"]
    assert server.get(f"{PREFIX}/kind/nothing_here", token=server.token).status_code == 404


@pytest.mark.parametrize(("path", "media", "key"), [
    ("health/2026-11-20/report.html", "text/html; charset=utf-8", "reports/health/2026-11-20/report.html"),
    ("health/2026-11-20/report.json", "application/json", "reports/health/2026-11-20/report.json"),
    ("drift/2026-11-20/psi.png", "image/png", "reports/drift/2026-11-20/psi.png"),
    ("drift/2026-11-20/psi.svg", "image/svg+xml", "reports/drift/2026-11-20/psi.svg"),
    ("model_card/fraud_detector/3/3.html", "text/html; charset=utf-8", "reports/model_card/fraud_detector/3.html"),
])
def test_view_serves_report_files_with_their_content_type(server: Server, path: str, media: str, key: str) -> None:
    resp = server.get(f"{PREFIX}/view/{path}", token=server.token)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == media
    assert resp.content == REPORTS[key]
    assert resp.headers["x-content-type-options"] == "nosniff"
    if media.startswith(("text/html", "image/svg")):
        assert resp.headers["content-security-policy"].startswith("sandbox")


def test_report_key_alone_redirects_to_its_main_file(server: Server) -> None:
    resp = server.get(f"{PREFIX}/view/bias/fraud_detector/3", token=server.token)
    assert resp.status_code == 307 and resp.headers["location"] == f"{PREFIX}/view/bias/fraud_detector/3/report.html"


def test_the_ui_cookie_authenticates(server: Server) -> None:
    resp = server.get(f"{PREFIX}/view/health/2026-11-20/report.html", cookie=server.token)
    assert resp.status_code == 200 and b"All pipelines green" in resp.content


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/kind/health", "/view/health/2026-11-20/report.html", "/api/reports"])
def test_without_credentials_api_clients_get_401(server: Server, path: str) -> None:
    resp = server.get(PREFIX + path)
    assert resp.status_code == 401, resp.text
    assert b"All pipelines green" not in resp.content


def test_without_credentials_a_browser_is_sent_to_the_login_page(server: Server) -> None:
    resp = server.get(f"{PREFIX}/view/health/2026-11-20/report.html", headers={"Accept": "text/html,*/*;q=0.8"})
    assert resp.status_code == 303
    location = urlparse(resp.headers["location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == [f"{server.url}{PREFIX}/view/health/2026-11-20/report.html"]
    # an expired or forged UI cookie is treated the same way; the JSON API still answers with a status
    forged = server.get(f"{PREFIX}/", cookie="not-a-jwt", headers={"Accept": "text/html"})
    assert forged.status_code == 303 and urlparse(forged.headers["location"]).path == "/auth/login"
    api = server.get(f"{PREFIX}/api/reports", headers={"Accept": "text/html"})
    assert api.status_code == 401


def test_a_forged_token_is_refused(server: Server) -> None:
    resp = server.get(f"{PREFIX}/api/reports", token=server.token[:-4] + "AAAA")
    assert resp.status_code in (401, 403)


@pytest.mark.parametrize("path", [
    "/view/health/../../secret.html",
    "/view/health/%2e%2e/%2e%2e/secret.html",
    "/view/health/2026-11-20/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.html",
    "/view/health/2026-11-20/..%2F..%2F..%2Fsecret.html",
    "/view/%2e%2e/lake/reports/health/2026-11-20/report.html",
    "/view/health//etc/passwd",
    "/view/health/2026-11-20/report.json%00.html",
])
def test_path_traversal_is_refused(server: Server, path: str) -> None:
    status, body = server.raw_get(PREFIX + path, server.token)
    assert status in (400, 404), (status, body[:300])
    assert b"outside the lake" not in body and b"root:" not in body


def test_unknown_names_are_not_found(server: Server) -> None:
    for path in ("/view/health/2026-11-20/nope.html", "/view/health/2001-01-01/report.html",
                 "/view/nothing_here/2026-11-20/report.html"):
        assert server.get(PREFIX + path, token=server.token).status_code == 404, path


# -- a real browser -------------------------------------------------------------------------------
def artifacts_dir() -> Path:
    folder = Path(os.environ.get("MLSCALE_TEST_ARTIFACTS") or ROOT / ".artifacts") / "reports_plugin"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class DevTools:
    """A minimal Chrome DevTools Protocol client over the browser's websocket (flattened sessions)."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, name: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == name:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def browser(server: Server) -> Iterator[DevTools]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install the Debian package 'chromium' to screenshot the reports view")
    profile = Path(tempfile.mkdtemp(prefix="mlscale-chromium-"))
    proc = subprocess.Popen([str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-dev-shm-usage", "--window-size=1280,900", "--remote-debugging-port=0",
                             f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.exists() and len(active.read_text().split()) == 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start its DevTools endpoint (exit code {proc.poll()})")
            time.sleep(0.2)
        port, path = active.read_text().split()
        tools = DevTools(f"ws://127.0.0.1:{port}{path}")
        try:
            yield tools
        finally:
            tools.close()
    finally:
        _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)


def open_page(tools: DevTools, server: Server, path: str) -> str:
    """Log in (the ``_token`` cookie the Airflow UI uses), open ``path``; return the page's session id."""
    tools.call("Storage.setCookies", cookies=[{"name": "_token", "value": server.token, "url": server.url + "/",
                                               "path": "/", "httpOnly": True}])
    target = tools.call("Target.createTarget", url="about:blank")["targetId"]
    session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    tools.call("Page.enable", session)
    tools.call("Emulation.setDeviceMetricsOverride", session, width=1280, height=900, deviceScaleFactor=1,
               mobile=False)
    tools.call("Page.navigate", session, url=server.url + path)
    tools.wait_event("Page.loadEventFired")
    return session


def evaluate(tools: DevTools, session: str, expression: str) -> Any:
    return tools.call("Runtime.evaluate", session, expression=expression, returnByValue=True)["result"].get("value")


def screenshot(tools: DevTools, session: str, target: Path) -> Path:
    data = tools.call("Page.captureScreenshot", session, format="png")["data"]
    target.write_bytes(base64.b64decode(data))
    return target


def test_logged_in_browser_screenshot_of_the_index(server: Server, browser: DevTools) -> None:
    session = open_page(browser, server, f"{PREFIX}/")
    dom = evaluate(browser, session, "document.documentElement.outerHTML")
    (artifacts_dir() / "reports_index.html").write_text(dom)
    assert "<h1>mlscale reports</h1>" in dom and "Pipeline health" in dom and "2026-11-20" in dom
    assert "login" not in evaluate(browser, session, "location.pathname")
    png = screenshot(browser, session, artifacts_dir() / "reports_index.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)


def test_logged_in_browser_sees_the_view_in_the_airflow_ui(server: Server, browser: DevTools) -> None:
    session = open_page(browser, server, "/plugin/mlscale-reports")
    probe = ("(() => { const f = document.querySelector('iframe');"
             " return f && f.contentDocument ? f.contentDocument.body.innerText : ''; })()")
    deadline, text = time.monotonic() + 90, ""
    while "mlscale reports" not in text and time.monotonic() < deadline:
        time.sleep(1)
        text = evaluate(browser, session, probe) or ""
    screenshot(browser, session, artifacts_dir() / "reports_in_airflow_ui.png")
    assert "mlscale reports" in text and "Pipeline health" in text, text[:500]
    frame = evaluate(browser, session, "(() => { const f = document.querySelector('iframe');"
                                       " return [f.title, new URL(f.src).pathname]; })()")
    assert frame == ["Reports", f"{PREFIX}/"]
