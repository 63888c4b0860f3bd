"""``mlscale wait-runs``: wait until DAG runs for a range of days have finished, and report them."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

TERMINAL = {"success", "failed"}


def wait_for_runs(dag_ids: list[str], first_day: str, last_day: str, *, timeout_s: float = 1800,
                  poll_s: float = 5) -> bool:
    """Block until every listed DAG has a finished run for each day in range; True if all succeeded."""
    import datetime as dt

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    days = []
    day = dt.date.fromisoformat(first_day)
    while day <= dt.date.fromisoformat(last_day):
        days.append(day.isoformat())
        day += dt.timedelta(days=1)
    deadline = time.time() + timeout_s
    last_line = ""
    while True:
        with create_session() as session:
            runs = session.query(DagRun).filter(DagRun.dag_id.in_(dag_ids), DagRun.partition_key.in_(days)).all()
            latest: dict[tuple[str, str], DagRun] = {}
            for run in sorted(runs, key=_created):
                latest[(run.dag_id, str(run.partition_key))] = run  # the newest run of a day decides
            states = Counter(str(r.state) for r in latest.values())
            missing = len(dag_ids) * len(days) - len(latest)
            done = missing == 0 and all(str(r.state) in TERMINAL for r in latest.values())
            line = f"runs: {dict(sorted(states.items()))}" + (f", {missing} not created yet" if missing else "")
            if line != last_line:
                print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)
                last_line = line
            if done:
                return _none_failed(session, list(latest.values()))
        if time.time() > deadline:
            print(f"timed out after {timeout_s:.0f}s waiting for {dag_ids} {first_day}..{last_day}")
            return False
        time.sleep(poll_s)


def _created(run: object) -> float:
    stamp = getattr(run, "queued_at", None) or getattr(run, "start_date", None)
    return stamp.timestamp() if stamp else 0.0


ACTIVE = ("queued", "running")


def wait_until_idle(dag_ids: list[str], *, since: float, settle_s: float = 30, timeout_s: float = 1800,
                    poll_s: float = 5) -> bool:
    """Block until none of the listed DAGs has a queued or running run for ``settle_s`` seconds in a row (runs that
    assets start after an earlier run finishes count: the settle time covers the scheduler's loop); then report the
    runs created since ``since`` (epoch seconds). True if none of them failed."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    deadline = time.time() + timeout_s
    idle_since: float | None = None
    last_line = ""
    while True:
        with create_session() as session:
            runs = [r for r in session.query(DagRun).filter(DagRun.dag_id.in_(dag_ids)).all() if _created(r) >= since]
            active = [r for r in runs if str(r.state) in ACTIVE]
            line = "runs: " + ", ".join(f"{d} {dict(Counter(str(r.state) for r in runs if r.dag_id == d))}"
                                        for d in dag_ids)
            if line != last_line:
                print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)
                last_line = line
            now = time.time()
            idle_since = None if active else (idle_since or now)
            if idle_since is not None and now - idle_since >= settle_s:
                return _none_failed(session, runs)
        if time.time() > deadline:
            print(f"timed out after {timeout_s:.0f}s waiting for {', '.join(dag_ids)} to finish")
            return False
        time.sleep(poll_s)


def _none_failed(session: Any, runs: list[Any]) -> bool:
    """True when none of ``runs`` failed; each failed run is printed with its failed tasks and log folder."""
    failed = [r for r in runs if str(r.state) == "failed"]
    for run in failed:
        _print_failed(session, run)
    return not failed


def _print_failed(session: Any, run: Any) -> None:
    from airflow.models import TaskInstance

    tis = session.query(TaskInstance).filter(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id).all()
    bad = sorted({ti.task_id for ti in tis if str(ti.state) not in ("success", "skipped")})
    print(f"FAILED {run.dag_id} {run.partition_key or ''} ({run.run_id}): tasks {bad}; logs under "
          f"$AIRFLOW_HOME/logs/dag_id={run.dag_id}/run_id={run.run_id}/")
