"""The ``mlscale`` command line: one click group, a subcommand per task.

Each command's work lives in its module (``generate``, ``apply_settings``, ``summary``, ``runs``, ``lineage``,
``access``, ``approve``, ``rollback`` and ``delete-version``); this module only declares the interface. Those modules, pandas, pyarrow
and Airflow are imported inside the command functions, so ``mlscale --help`` answers at once.

Exit codes: 0 success, 1 when a command reports failure, 2 for usage errors (and a lineage lookup that finds
nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

import click

# commands whose stdout is a result (JSON, a report): they log warnings only
QUIET_COMMANDS = frozenset({"lineage", "access-report", "approve", "rollback", "delete-version"})
# mlscale.lineage.DIRECTIONS, mlscale.governance.gate.ACCEPT_INSUFFICIENT_BIAS (spelled out here so that
# --help imports neither; tests/unit/test_cli.py checks they agree)
LINEAGE_DIRECTIONS = ("up", "down", "both")
APPROVAL_GAPS = ("insufficient_bias_evidence",)


class IsoDate(click.ParamType):
    """A calendar day, ``YYYY-MM-DD``."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a day (YYYY-MM-DD)", param, ctx)


ISO_DATE = IsoDate()

lake_option = click.option("--lake", default=None, metavar="URI",
                           help="lake root URI (default: the Airflow Variable mlscale_lake_root / data/lake)")


@click.group(name="mlscale", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.pass_context
def mlscale(ctx: click.Context) -> None:
    """mlscale: generate demo data, apply the local Airflow settings, inspect the lake, its lineage and access
    log, and approve or roll back model versions.

    `mlscale COMMAND --help` documents a command's options.
    """
    # Airflow 3 resolves connections from its metadata database only in processes that say they are on the
    # server side; this command line runs beside the scheduler (it reads the same airflow.cfg), so it does.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    quiet = ctx.invoked_subcommand in QUIET_COMMANDS
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")


@mlscale.command("generate", short_help="write synthetic card-payment drops to landing/")
@lake_option
@click.option("--start", required=True, type=ISO_DATE, help="the first day")
@click.option("--days", type=int, default=3, show_default=True, help="how many days")
@click.option("--rows-per-day", type=int, default=20_000, show_default=True, help="transactions a day")
@click.option("--seed", type=int, default=7, show_default=True, help="random seed (the world is deterministic)")
@click.option("--drift-from", type=ISO_DATE, default=None, help="inject drift from this day on")
@click.option("--scenario", default=None, metavar="NAME|PATH",
              help="episodes to play (scenarios/<NAME>.yaml of the configuration, e.g. half_year, or a file)")
def generate_cmd(lake: str | None, start: dt.date, days: int, rows_per_day: int, seed: int,
                 drift_from: dt.date | None, scenario: str | None) -> None:
    """Write synthetic card-payment drops (customers, transactions, labels) to landing/, with the generator's
    truth (each event's fraud probability, the scenario's episodes) in _meta/generator/."""
    from mlscale.airflow.cli.generate import generate_command
    from mlscale.synthetic.scenario import ScenarioError

    try:
        reports = generate_command(lake, start=start, days=days, rows_per_day=rows_per_day, seed=seed,
                                   drift_from=drift_from, scenario=scenario)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    print(f"{reports['rows']:,} records for {len(reports['days'])} days "
          f"({reports['days'][0]} .. {reports['days'][-1]}) in {reports['lake']}/landing")


@mlscale.command("simulate", short_help="replay a scenario's days with the pipelines' own functions")
@lake_option
@click.option("--days", type=int, default=180, show_default=True, help="how many days")
@click.option("--scenario", default="half_year", show_default=True, metavar="NAME|PATH",
              help="the episodes to play (scenarios/<NAME>.yaml of the configuration, or a file)")
@click.option("--start", type=ISO_DATE, default=None,
              help="the first day (default: the lake's world's, else DAYS days before today)")
@click.option("--rows-per-day", type=int, default=20_000, show_default=True, help="payments a day")
@click.option("--seed", type=int, default=7, show_default=True, help="random seed (the world is deterministic)")
@click.option("--model", "models", multiple=True, help="a model to train, score and monitor (default: every "
                                                       "declared model; repeatable)")
@click.option("--min-train-days", type=int, default=28, show_default=True,
              help="no model is trained before this many days of events")
@click.option("--max-rounds", type=int, default=None, help="boosting rounds at most (default: the specification's)")
def simulate_cmd(lake: str | None, days: int, scenario: str, start: dt.date | None, rows_per_day: int, seed: int,
                 models: tuple[str, ...], min_train_days: int, max_rounds: int | None) -> None:
    """Generate the scenario's world (the days not generated yet) and run it day by day through ingestion,
    features, the feature store, scoring, drift monitoring, the weekly and drift-triggered retraining with the bias
    audit, the gate and a scripted reviewer, and the health report — the functions the DAGs call, on one Dask
    cluster. Resumable: a rerun continues after the last finished day (_meta/simulation/progress.json)."""
    from mlscale.airflow.cli.simulate import simulate_command
    from mlscale.synthetic.scenario import ScenarioError

    if days < 1:
        raise click.BadParameter("must be at least 1", param_hint="--days")
    try:
        simulate_command(lake, start=start, days=days, rows_per_day=rows_per_day, seed=seed, scenario=scenario,
                         models=list(models), min_train_days=min_train_days, max_rounds=max_rounds)
    except (ScenarioError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@mlscale.command("serve", short_help="serve a model's online scores over HTTP (FastAPI + uvicorn)")
@lake_option
@click.option("--model", default="fraud_detector", show_default=True, help="the model to serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (0.0.0.0: every interface)")
@click.option("--port", type=int, default=8000, show_default=True, help="port to listen on")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes")
@click.option("--policy", default=None, metavar="PATH", help="serving policy file (default: policies/serving.yaml)")
@click.option("--autoscale", is_flag=True, help="worker processes follow the requests in flight (ignores --workers)")
@click.option("--min-workers", type=int, default=1, show_default=True, help="--autoscale: fewest workers")
@click.option("--max-workers", type=int, default=4, show_default=True, help="--autoscale: most workers")
@click.option("--target-in-flight", type=float, default=2.0, show_default=True,
              help="--autoscale: requests in flight per worker to aim at")
def serve_cmd(lake: str | None, model: str, host: str, port: int, workers: int, policy: str | None, autoscale: bool,
              min_workers: int, max_workers: int, target_in_flight: float) -> None:
    """Score events online: POST /v1/score with one event or {"events": [...]}; /ready, /live, /metrics,
    /v1/models. Entity features come from the Feast online store, versions from the registry aliases and the
    rollout record (re-read every refresh_s seconds), routing from the serving policy."""
    from mlscale.airflow.cli.serve import serve_command
    from mlscale.serving.autoscale import AutoscalePolicy

    if workers < 1:
        raise click.BadParameter("must be at least 1", param_hint="--workers")
    try:
        scaling = AutoscalePolicy(min_workers=min_workers, max_workers=max_workers,
                                  target_in_flight=target_in_flight) if autoscale else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    serve_command(model, host=host, port=port, workers=workers, lake=lake, policy=policy, autoscale=scaling)


@mlscale.command("tco", short_help="in-house GPU servers vs cloud on-demand and spot, for the recorded workload")
@lake_option
@click.option("--days", type=int, default=30, show_default=True, help="usage records of the last N days")
@click.option("--gpu-hours-month", type=float, default=None, help="a workload to price instead of the recorded one")
@click.option("--cpu-hours-month", type=float, default=None, help="with --gpu-hours-month: the CPU hours a month")
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
def tco_cmd(lake: str | None, days: int, gpu_hours_month: float | None, cpu_hours_month: float | None,
            as_json: bool) -> None:
    """Compare the monthly and multi-year cost of in-house GPU servers (policies/tco.yaml: purchase, power,
    colocation, staff, utilisation) with cloud on-demand and spot (policies/prices.yaml) for the workload the
    tasks recorded in _meta/resource_usage/ (or the one given); print it with every assumption and write
    reports/cost/<today>/tco.json."""
    import datetime as dt_
    import json

    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.usage import load_prices, read_usage
    from mlscale.usage.tco import Workload, compare, format_comparison, load_tco, observed_workload

    found = lake_for_cli(lake)
    today = dt_.datetime.now(dt_.UTC).date()
    if gpu_hours_month is not None:
        workload = Workload(gpu_hours_month, cpu_hours_month or 0.0, "given on the command line")
    else:
        records = [r for i in range(days) for r in read_usage(found, (today - dt_.timedelta(days=i)).isoformat())]
        workload = observed_workload(records, days)
    doc = compare(workload, load_tco(), load_prices())
    found.write_json(f"reports/cost/{today.isoformat()}/tco.json", doc)
    print(json.dumps(doc, indent=1) if as_json else "\n".join(format_comparison(doc)))


economics_window = [
    lake_option,
    click.option("--days", type=int, default=30, show_default=True, help="usage records of the last N days"),
    click.option("--day", type=ISO_DATE, default=None, help="the window's last day (default: today, UTC)"),
    click.option("--json", "as_json", is_flag=True, help="print the result as JSON"),
]


def _window(fn: Any) -> Any:
    for option in reversed(economics_window):
        fn = option(fn)
    return fn


@mlscale.command("bottlenecks", short_help="what each pipeline's time is made of (reports/bottlenecks/<day>/)")
@_window
def bottlenecks_cmd(lake: str | None, days: int, day: dt.date | None, as_json: bool) -> None:
    """Fit each pipeline stage's wall time as a + b·rows + c·rows·features from the usage records of the last
    DAYS days (_meta/resource_usage/), name the stage and term that dominate each pipeline and what doubling
    the volume would take, with the fits' R²; write reports/bottlenecks/<day>/ (with right-sizing advice)."""
    from mlscale.airflow.cli.economics import bottlenecks_command

    bottlenecks_command(lake, days, day, as_json)


@mlscale.command("sizing", short_help="right-size each stage's cluster from its recorded resource use")
@_window
def sizing_cmd(lake: str | None, days: int, day: dt.date | None, as_json: bool) -> None:
    """Recommend workers, threads and memory per worker (Dask) or executor settings (Spark) for every stage
    with 3 runs or more in the last DAYS days, from CPU busy time and peak memory, with the evidence."""
    from mlscale.airflow.cli.economics import sizing_command

    sizing_command(lake, days, day, as_json)


@mlscale.command("retrain-cadence", short_help="how often to retrain: PR-AUC decay vs retrain cost")
@click.option("--model", "models", multiple=True, help="a declared model (repeatable; default: every model)")
@_window
def retrain_cadence_cmd(models: tuple[str, ...], lake: str | None, days: int, day: dt.date | None,
                        as_json: bool) -> None:
    """Fit the decay of each model's labelled PR-AUC since training (drift reports), price a retrain from the
    recorded compute, recommend a retraining interval (policies/retrain_cadence.yaml) and write
    reports/retrain_cadence/<model>/<day>/."""
    from mlscale.airflow.cli.economics import cadence_command

    cadence_command(lake, models, days, day, as_json)


@mlscale.command("idle-clusters", short_help="Dask clusters idle past a threshold: report, or shut them down")
@click.option("--conn", "conn_ids", multiple=True,
              help="a Dask connection id (repeatable; default: dask_cpu_default and dask_gpu_default)")
@click.option("--idle-minutes", type=float, default=30.0, show_default=True, help="idle longer than this counts")
@click.option("--shutdown", is_flag=True, help="close the idle clusters (scheduler and workers)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def idle_clusters_cmd(conn_ids: tuple[str, ...], idle_minutes: float, shutdown: bool, as_json: bool) -> None:
    """Ask the scheduler of each Dask connection with a host how long it has had nothing to do; report the
    clusters idle longer than IDLE_MINUTES with their workers, threads, memory and hourly cost
    (policies/prices.yaml), and with --shutdown close them. Exits 1 when an idle cluster was found."""
    from mlscale.airflow.cli.economics import idle_clusters_command

    if idle_clusters_command(conn_ids, idle_minutes, shutdown, as_json):
        raise SystemExit(1)


@mlscale.command("timeline", short_help="write the timeline report of a period (reports/timeline/<last day>/)")
@lake_option
@click.option("--first", type=ISO_DATE, default=None, help="the first day (default: the lake's first drop)")
@click.option("--last", type=ISO_DATE, default=None, help="the last day (default: the lake's last drop)")
def timeline_cmd(lake: str | None, first: dt.date | None, last: dt.date | None) -> None:
    """Write the timeline of FIRST..LAST: volume, quarantine, freshness, drift verdicts against the scenario's
    episodes, retrains, audits, gate decisions, storage cost and lifecycle actions, one row per day."""
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.reports.timeline import build_timeline, lake_days

    store = lake_for_cli(lake)
    known = lake_days(store)
    if not known and (first is None or last is None):
        raise click.ClickException(f"{store.root} holds no raw partition: give --first and --last")
    start, end = (first.isoformat() if first else known[0]), (last.isoformat() if last else known[-1])
    try:
        doc = build_timeline(store, start, end)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    print(f"timeline {doc['first_day']} .. {doc['last_day']}: {len(doc['alarms'])} alarm days, "
          f"{len(doc['versions'])} versions; {store.uri(doc['report'])}")


@mlscale.command("apply-settings", short_help="apply airflow_settings.yaml to the local Airflow")
@click.argument("path", default="airflow_settings.yaml", required=False, type=click.Path(dir_okay=False))
def apply_settings_cmd(path: str) -> None:
    """Apply PATH (an Astro-format airflow_settings.yaml; default ./airflow_settings.yaml) to the local Airflow:
    connections, pools and variables, idempotently. Prints the counts as JSON."""
    from mlscale.airflow.cli.apply_settings import SettingsError, apply_settings

    if not os.path.isfile(path):  # checked here, not by the parser: a command line parses wherever it is read
        raise click.BadParameter(f"{path!r} is not a file", param_hint="PATH")
    try:
        counts = apply_settings(path)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    print(json.dumps(counts))


@mlscale.command("summary", short_help="rows and files per zone of the lake")
@lake_option
def summary_cmd(lake: str | None) -> None:
    """Rows, files, bytes and partitions per zone and dataset of the lake (from its manifests)."""
    from mlscale.airflow.cli.summary import print_summary

    print_summary(lake)


@mlscale.command("lifecycle-summary", short_help="the newest lifecycle plan and cost report")
@lake_option
def lifecycle_summary_cmd(lake: str | None) -> None:
    """The newest lifecycle plan's actions and the newest cost report's totals."""
    from mlscale.airflow.cli.summary import print_lifecycle

    print_lifecycle(lake)


@mlscale.command("wait-runs", short_help="wait for DAG runs of a range of days to finish")
@click.option("--dags", required=True, metavar="ID[,ID...]", help="comma-separated DAG ids")
@click.option("--from-day", required=True, type=ISO_DATE, help="the first day (partition key)")
@click.option("--to-day", required=True, type=ISO_DATE, help="the last day (partition key)")
@click.option("--timeout", type=float, default=1800, show_default=True, help="seconds to wait at most")
@click.pass_context
def wait_runs_cmd(ctx: click.Context, dags: str, from_day: dt.date, to_day: dt.date, timeout: float) -> None:
    """Wait until every listed DAG has a finished run for each day in range; exit 1 if any failed (its failed
    tasks are listed) or the wait timed out."""
    from mlscale.airflow.cli.runs import wait_for_runs

    dag_ids = [d.strip() for d in dags.split(",") if d.strip()]
    if not dag_ids:
        raise click.BadParameter("no DAG ids", param_hint="--dags")
    if not wait_for_runs(dag_ids, from_day.isoformat(), to_day.isoformat(), timeout_s=timeout):
        ctx.exit(1)


@mlscale.command("wait-idle", short_help="wait until DAGs have no queued or running run")
@click.option("--dags", required=True, metavar="ID[,ID...]", help="comma-separated DAG ids")
@click.option("--since", type=float, default=0, show_default=True, metavar="EPOCH",
              help="report the runs queued since this time (seconds since the epoch, e.g. `date +%s`)")
@click.option("--settle", type=float, default=30, show_default=True,
              help="seconds with nothing queued or running before the DAGs count as idle (asset-triggered runs "
                   "start a few seconds after the run they follow)")
@click.option("--timeout", type=float, default=1800, show_default=True, help="seconds to wait at most")
@click.pass_context
def wait_idle_cmd(ctx: click.Context, dags: str, since: float, settle: float, timeout: float) -> None:
    """Wait until the listed DAGs have had no queued or running run for --settle seconds (a trigger or a backfill
    and every run its assets start); exit 1 if any run queued since --since failed (its failed tasks are listed)
    or the wait timed out."""
    from mlscale.airflow.cli.runs import wait_until_idle

    dag_ids = [d.strip() for d in dags.split(",") if d.strip()]
    if not dag_ids:
        raise click.BadParameter("no DAG ids", param_hint="--dags")
    if not wait_until_idle(dag_ids, since=since, settle_s=settle, timeout_s=timeout):
        ctx.exit(1)


@mlscale.command("lineage", short_help="what a partition/file came from and influenced")
@click.argument("uri")
@click.option("--direction", type=click.Choice(LINEAGE_DIRECTIONS), default="both", show_default=True,
              help="up: what it was built from (to the landing files); down: what it influenced")
@click.option("--json", "as_json", is_flag=True, help="print nodes, depths and edges as JSON")
@lake_option
@click.pass_context
def lineage_cmd(ctx: click.Context, uri: str, direction: str, as_json: bool, lake: str | None) -> None:
    """Walk the lake's lineage (partition manifests' inputs, model versions' training sets) from URI: a lake
    URI, key or local path, e.g. predictions/fraud_xgb/dt=2026-11-25, s3://lake/raw/..., data/lake/landing/...
    A file inside a partition stands for its partition. Exit 2 when URI names nothing in the lake."""
    from mlscale.airflow.cli.lineage import lineage_command

    ctx.exit(lineage_command(uri, direction=direction, as_json=as_json, lake=lake))


@mlscale.command("access-report", short_help="sensitive-data accesses per purpose, actor, dataset")
@click.option("--from", "first", type=ISO_DATE, default=None,
              help="the first UTC day (default: 6 days before --to)")
@click.option("--to", "last", type=ISO_DATE, default=None, help="the last UTC day (default: today)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--records", is_flag=True, help="also list every record (who, what, why, when)")
@lake_option
@click.pass_context
def access_report_cmd(ctx: click.Context, first: dt.date | None, last: dt.date | None, as_json: bool,
                      records: bool, lake: str | None) -> None:
    """Summarise the sensitive-data access log (_meta/access_log/): accesses per purpose, actor and dataset."""
    from mlscale.airflow.cli.access import access_report_command

    ctx.exit(access_report_command(first, last, as_json=as_json, records=records, lake=lake))


def _declared_model(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    if value:
        return value
    from mlscale.layout import config_dir, declared

    models = declared("models")
    if len(models) == 1:
        return models[0]
    raise click.BadParameter(f"name the model: {', '.join(models) or 'none'} declared in {config_dir('models')}",
                             ctx=ctx, param=param)


model_option = click.option("--model", default=None, callback=_declared_model,
                            help="the registered model (default: the only model declared in models/)")


@mlscale.command("approve", short_help="record a human approval of a model version for the promotion gate")
@model_option
@click.option("--version", required=True, help="the model version approved")
@click.option("--by", required=True, help="the approver's name")
@click.option("--note", default="", help="why (recorded with the approval)")
@click.option("--accept", "accepts", multiple=True, type=click.Choice(APPROVAL_GAPS),
              help="a gap the approver accepts explicitly (repeatable): insufficient_bias_evidence (the bias "
                   "audit could not judge any protected attribute for lack of data)")
@lake_option
def approve_cmd(model: str, version: str, by: str, note: str, accepts: tuple[str, ...], lake: str | None) -> None:
    """Record a human approval of a model version for the promotion gate
    (_meta/approvals/<model>/<version>.json); prints it as JSON. The next audit_bias run of the version
    can then promote it."""
    from mlscale.airflow.cli.approve import approve

    try:
        approve(model=model, version=version, by=by, note=note, accepts=accepts, lake=lake)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def version_decision(version_help: str, by_help: str, reason_help: str) -> Any:
    """The options of a recorded decision about one registered version (who, why, where the registry is)."""
    def decorate(fn: Any) -> Any:
        for option in reversed([
            model_option,
            click.option("--version", required=True, help=version_help),
            click.option("--by", required=True, help=by_help),
            click.option("--reason", required=True, help=reason_help),
            lake_option,
            click.option("--tracking-uri", default="", metavar="URI",
                         help="an MLflow server (default: the lake's embedded registry)"),
        ]):
            fn = option(fn)
        return fn
    return decorate


@mlscale.command("rollback", short_help="point champion back at an earlier version (recorded)")
@version_decision("the registered version to serve again", "who decides the rollback",
                  "why (recorded in the version's tags and the audit log)")
def rollback_cmd(model: str, version: str, by: str, reason: str, lake: str | None, tracking_uri: str) -> None:
    """Point the champion alias back at an earlier registered version; recorded like a gate decision.
    Prints the decision as JSON."""
    from mlscale.airflow.cli.rollback import rollback

    try:
        rollback(model=model, version=version, by=by, reason=reason, lake=lake, tracking_uri=tracking_uri)
    except FileNotFoundError as exc:
        raise click.ClickException(f"version {version} of {model} has no stored model files: {exc}") from exc


@mlscale.command("delete-version", short_help="delete a model version; lifecycle then removes its files")
@version_decision("the registered version to delete (not the champion or challenger)", "who deletes it",
                  "why (kept in its lineage record)")
def delete_version_cmd(model: str, version: str, by: str, reason: str, lake: str | None, tracking_uri: str) -> None:
    """Delete a version from the registry and mark its lineage record deleted: after the grace period
    lifecycle_cleanup removes its model files and the registry's artifacts, and the data it was trained on is no
    longer held for it. Prints the lineage record as JSON."""
    from mlscale.airflow.cli.rollback import delete_version

    try:
        delete_version(model=model, version=version, by=by, reason=reason, lake=lake, tracking_uri=tracking_uri)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    """The console entry point (``mlscale``, ``python -m mlscale.airflow.cli``): run one command from ``argv``
    (default: the command line) and return its exit code."""
    try:
        mlscale.main(args=argv, prog_name="mlscale")
    except SystemExit as exc:  # standalone mode always ends with one: --help, usage errors, ctx.exit, success
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        raise
    return 0
