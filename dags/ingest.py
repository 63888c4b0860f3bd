"""ingest_<dataset>: landing drops → contract validation → quarantine → dedupe → pseudonymisation → raw.

One DAG per contract in include/contracts/. Wiring only: the work is mlscale.ingest.ingest_partition.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task
from mlscale.airflow.assets import lake_asset, late_files_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, daily_partitions, day_param
from mlscale.airflow.operators.dask_operator import DaskOperator
from mlscale.airflow.sensors.landing import LandingDropSensor
from mlscale.layout import declared

DOC = """
### Ingest `{dataset}`

Reads the third-party drop `landing/{dataset}/dt=D/` (CSV, gzip CSV or JSON lines; each file's source is
recognised by its name, see `include/contracts/{dataset}.yaml`), validates every record against the
contract, and writes

* `raw/{dataset}/dt=D/` — valid, deduplicated rows with PII replaced by HMAC tokens (partitioned as the
  contract says), committed through the partition manifest;
* `quarantine/{dataset}/dt=D/` — every rejected record with its source file, record number and reason
  code (`missing_required`, `type_error:<field>`, `unknown_enum:<field>`, `out_of_range:<field>`,
  `malformed_record`, `encoding_error`, `future_timestamp`, `late_beyond_window`, `schema_mismatch`,
  `unreadable_file`);
* `_meta/ingestion_runs/dt=D/` — one record per run with the counts.

Each run handles one day, its partition key. Reruns and backfills replace the day exactly:
`airflow backfill create --dag-id ingest_{dataset} --from-date 2026-11-01 --to-date 2026-11-07T23:59`.
A day waits (task `wait_for_drop`) for its drop and for the earlier days inside the contract's dedupe
window to be committed, so runs may start in any order. Trigger by hand with the `dt` param; `dry_run` validates and reports without writing; `strict` fails the
run (without committing raw) above `max_quarantine_rate`.

A quarantined share above the contract's `max_quarantine_rate` (default 5 %) alerts on call
(`check_quarantine_rate`; channels: the `mlscale_alert_connections` Variable).

Files of the days before that landed after their day was committed are listed by `ingest` and flagged by
`flag_late_files` (skipped when there are none) on the `late_files_{dataset}` asset: `rerun_late_files` then
reruns those days with `downstream` on, so compaction, features, scoring and monitoring follow for them.

On failure, read the `ingest` task log: it lists counts per reason and per file, and the top sources.
"""


def ingest_dag(dataset: str) -> DAG:
    raw = lake_asset("raw", dataset)
    with DAG(
        dag_id=f"ingest_{dataset}",
        description=f"Validate, dedupe and pseudonymise the daily {dataset} drop into raw/",
        schedule=daily_partitions(),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,  # days in order: dedupe looks back at the days before
        default_args=DEFAULT_ARGS,
        tags=["ingestion", dataset],
        doc_md=DOC.format(dataset=dataset),
        render_template_as_native_obj=True,
        params={
            "contract": Param(dataset, type="string", description="Contract name in include/contracts/"),
            "dt": day_param(),
            "wait_for_earlier_days": Param(True, type="boolean",
                                           description="Wait until earlier days inside the dedupe window are "
                                                       "ingested (turn off for a first ever run)"),
            "dry_run": Param(False, type="boolean", description="Validate and report, write nothing"),
            "strict": Param(False, type="boolean", description="Fail above max_quarantine_rate"),
            "max_quarantine_rate": Param(0.05, type="number", minimum=0, maximum=1,
                                         description="Quarantined share of records tolerated with strict"),
            "downstream": Param(False, type="boolean",
                                description="Manual runs: also start the DAGs downstream of raw for this day "
                                            "(compaction, features, scoring, monitoring); scheduled and backfill "
                                            "runs always do"),
        },
    ) as dag:
        wait = LandingDropSensor(
            task_id="wait_for_drop", dataset=dataset, contract="{{ params.contract }}",
            wait_for_earlier_days="{{ params.wait_for_earlier_days }}", mode="reschedule", poke_interval=60,
            timeout=dt.timedelta(hours=12).total_seconds(), execution_timeout=dt.timedelta(hours=13),
        )
        ingest = DaskOperator(
            task_id="ingest",
            python_callable="mlscale.ingest:ingest_partition",
            op_kwargs={
                "contract": "{{ params.contract }}",
                "dry_run": "{{ params.dry_run }}",
                "strict": "{{ params.strict }}",
                "max_quarantine_rate": "{{ params.max_quarantine_rate }}",
            },
            secret_kwargs={"pii_key": "pii_hmac_default"},
            dask_conn_id="dask_cpu_default",
            pool="dask_cpu",
            outlets=[raw],
            outlet_partition="{{ params.downstream }}",
            execution_timeout=dt.timedelta(hours=2),
        )
        late = late_files_asset(dataset)

        @task(task_id="flag_late_files", outlets=[late])
        def flag_late_files(result: dict, **context) -> dict:
            from mlscale.airflow.tasks.late_files import flag_late_files

            return flag_late_files(result, context["outlet_events"], late)

        @task(task_id="check_quarantine_rate")
        def check_quarantine_rate(result: dict, params: dict, **context) -> dict:
            from mlscale.airflow.alerting import on_quarantine
            from mlscale.contracts import load_contract

            limit = load_contract(params["contract"]).max_quarantine_rate
            alert = on_quarantine(result, limit, context["run_id"])
            return {"limit": limit, "alerted": alert is not None}

        wait >> ingest
        flag_late_files(ingest.output)
        check_quarantine_rate(ingest.output)
    return dag


for _contract in declared("contracts"):
    globals()[f"ingest_{_contract}"] = ingest_dag(_contract)
