"""Airflow as users run it, for tests: api-server, scheduler, dag-processor and triggerer on SQLite.

:class:`AirflowStack` starts the four services in a fresh ``AIRFLOW_HOME`` on this project's DAGs, talks
to them through the REST API (``/api/v2``, a JWT from ``/auth/token``) like the UI does, runs backfills
with the ``airflow`` CLI, and stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
MLSCALE = str(Path(sys.executable).with_name("mlscale"))  # the console script
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowStack:
    def __init__(self, home: Path, *, lake_root: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        (home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSCALE"))}
        env.update({
            "AIRFLOW_HOME": str(home),
            "MLSCALE_HOME": str(ROOT),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "3",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=30",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__OPENLINEAGE__DISABLED": "true",
            "AIRFLOW_VAR_MLSCALE_LAKE_ROOT": lake_root,
            "AIRFLOW_CONN_DASK_CPU_DEFAULT": json.dumps(
                {"conn_type": "dask", "extra": {"n_workers": 1, "threads_per_worker": 2, "processes": False}}),
            "AIRFLOW_CONN_PII_HMAC_DEFAULT": json.dumps({"conn_type": "generic", "password": "test-key"}),
            "NO_PROXY": "*",
        })
        env.update(extra_env or {})
        self.env = env
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._token = ""

    # -- life cycle -----------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"{' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out

    def start(self, dag_ids: list[str]) -> None:
        self.cli(AIRFLOW, "db", "migrate")
        self.cli(MLSCALE, "apply-settings", str(ROOT / "airflow_settings.yaml"))
        for name in SERVICES:
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
            self._procs[name] = subprocess.Popen([AIRFLOW, name], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True)
        deadline = time.time() + 240
        while True:
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, self.service_log("api-server")
            time.sleep(2)
        resp = requests.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password},
                             timeout=60)
        assert resp.status_code == 201, resp.text
        self._token = resp.json()["access_token"]
        while True:
            listed = {d["dag_id"] for d in self.api("GET", "/api/v2/dags?limit=100").json()["dags"]}
            if set(dag_ids) <= listed:
                return
            assert time.time() < deadline, f"DAGs not parsed: {set(dag_ids) - listed}\n" + \
                self.service_log("dag-processor")
            time.sleep(3)

    def stop(self) -> None:
        for proc in self._procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self._procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def service_log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- REST API -------------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One REST call. A "Database error" answer is retried (up to 3 tries): on SQLite two requests of the
        api-server can wait on each other's write lock until the busy timeout, and the one that gives up rolled
        back, so asking again is safe; any other error fails at once."""
        for attempt in range(1, 4):
            resp = requests.request(method, f"{self.url}{path}",
                                    headers={"Authorization": f"Bearer {self._token}"}, timeout=90, **kwargs)
            if resp.status_code != 500 or "Database error" not in resp.text or attempt == 3:
                break
            time.sleep(2)
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text[:2000]}"
        return resp

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """A manual run the way the UI's trigger form starts one (no logical date); returns its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return str(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body).json()["dag_run_id"])

    def asset_event(self, name: str, extra: Mapping[str, Any]) -> None:
        """Record an event on the asset called ``name``, as the UI's "create asset event" does."""
        assets = self.api("GET", "/api/v2/assets", params={"name_pattern": name, "limit": 100}).json()["assets"]
        [asset] = [a for a in assets if a["name"] == name]
        self.api("POST", "/api/v2/assets/events", json={"asset_id": asset["id"], "extra": dict(extra)})

    def backfill(self, dag_id: str, first: str, last: str) -> None:
        self.api("POST", "/api/v2/backfills", json={
            "dag_id": dag_id, "from_date": f"{first}T00:00:00Z", "to_date": f"{last}T23:59:59Z",
            "reprocess_behavior": "completed", "max_active_runs": 1, "run_backwards": False, "dag_run_conf": {}})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns",
                             params={"order_by": "run_after", "limit": 100}).json()["dag_runs"])

    def tasks(self, dag_id: str, run_id: str) -> dict[str, str]:
        found = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        return {t["task_id"]: str(t["state"]) for t in found}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/"
                               "return_value", params={"deserialize": True, "map_index": map_index}).json()["value"]

    def wait(self, dag_id: str, *, run_id: str | None = None, run_type: str | None = None, count: int = 1,
             timeout: float = 900) -> list[dict[str, Any]]:
        """Wait until ``count`` runs (of ``run_type``, or the run ``run_id``) have finished; assert they passed."""
        deadline = time.time() + timeout
        while True:
            runs = [r for r in self.runs(dag_id) if (run_id is None or r["dag_run_id"] == run_id)
                    and (run_type is None or r["run_type"] == run_type)]
            done = [r for r in runs if r["state"] in FINISHED]
            if len(done) >= count and len(done) == len(runs):
                failed = [r for r in done if r["state"] != "success"]
                assert not failed, self.explain(dag_id, failed)
                return done
            assert time.time() < deadline, (f"{dag_id}: {len(done)} of {count} {run_type or ''} runs finished in "
                                             f"{timeout:.0f}s: {[(r['dag_run_id'], r['state']) for r in runs]}\n"
                                             + self.service_log("scheduler"))
            time.sleep(3)

    def explain(self, dag_id: str, runs: list[dict[str, Any]]) -> str:
        lines = []
        for run in runs:
            states = self.tasks(dag_id, run["dag_run_id"])
            lines.append(f"{dag_id} {run['dag_run_id']} ({run['run_type']}): {run['state']} {states}")
            folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run['dag_run_id']}"
            for log in sorted(folder.rglob("*.log")) if folder.exists() else []:
                if states.get(log.parent.name.removeprefix("task_id=")) not in ("success", "skipped"):
                    lines.append(f"--- {log.relative_to(self.home)}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(lines)
