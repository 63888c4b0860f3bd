#!/usr/bin/env bash
# The demo: generate DAYS days of card payments, then run every pipeline through Airflow's scheduler (backfills,
# triggers and the runs assets start, as a user would), and print where everything is. Run it with `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/airflow_services.sh

DAYS="${DAYS:-7}"
ROWS_PER_DAY="${ROWS_PER_DAY:-20000}"
LAST_DAY="$(date -u -d yesterday +%F)"             # the latest complete day: the scheduler's own next run
FIRST_DAY="$(date -u -d "$LAST_DAY -$((DAYS - 1)) days" +%F)"
INGEST_DAGS=$(for c in include/contracts/*.yaml; do printf 'ingest_%s ' "$(basename "$c" .yaml)"; done)
# compact_lake and build_features run per day when ingestion updates raw/ (partitioned assets)
PIPELINES="$INGEST_DAGS compact_lake build_features"
started=$(date +%s)

echo "== mlscale demo: $DAYS days ($FIRST_DAY .. $LAST_DAY), $ROWS_PER_DAY transactions a day"
echo "-- Airflow metadata DB (SQLite) and local settings"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
mlscale apply-settings airflow_settings.yaml >"$AIRFLOW_HOME/apply-settings.log" 2>&1 \
  || { cat "$AIRFLOW_HOME/apply-settings.log"; exit 1; }

echo "-- generating third-party drops into landing/"
# the last day carries an injected drift (amounts, a new merchant category, a regional shift)
mlscale generate --start "$FIRST_DAY" --days "$DAYS" --rows-per-day "$ROWS_PER_DAY" \
  --drift-from "$LAST_DAY" 2>/dev/null

MODEL_DAGS="train_model audit_bias score_batch monitor_drift pipeline_health lifecycle_cleanup"
TRAIN_DAY="$(date -u -d "$LAST_DAY -1 day" +%F)"
# the demo's retraining cron ticks once, at 03:00 on the last day (the default is weekly, Sundays 03:00 UTC):
# with catch-up off, unpausing train_model starts exactly that tick, which trains as of the day before
export MLSCALE_TRAIN_CRON="0 3 $(date -u -d "$LAST_DAY" +%-d) $(date -u -d "$LAST_DAY" +%-m) *"
echo "-- starting Airflow (api-server, scheduler, dag-processor, triggerer)"
services_start
trap services_stop EXIT
wait_for_dags $PIPELINES $MODEL_DAGS

echo "-- backfilling $FIRST_DAY .. $LAST_DAY"
for dag in $PIPELINES; do
  airflow dags unpause "$dag" >/dev/null 2>&1
done
for dag in $INGEST_DAGS; do
  airflow backfill create --dag-id "$dag" --from-date "$FIRST_DAY" --to-date "${LAST_DAY}T23:59:59" \
    --reprocess-behavior completed --max-active-runs 1 >"$AIRFLOW_HOME/backfill-$dag.log" 2>&1 \
    || { echo "backfill of $dag failed:"; tail -20 "$AIRFLOW_HOME/backfill-$dag.log"; exit 1; }
done
status=0
mlscale wait-runs --dags "$(echo $PIPELINES | tr ' ' ',')" --from-day "$FIRST_DAY" \
  --to-day "$LAST_DAY" --timeout 1500 2>/dev/null || status=$?
for dag in $PIPELINES; do airflow dags pause "$dag" >/dev/null 2>&1; done

MODEL=fraud_detector
run_log() {  # $1: DAG id, $2: run id: every task log of the run
  find "$AIRFLOW_HOME/logs/dag_id=$1/run_id=$2" -name '*.log' -print0 2>/dev/null | xargs -0 -r cat
}
newest_logs() {  # $1: DAG id: the task logs of its newest run
  local dir; dir=$(ls -td "$AIRFLOW_HOME/logs/dag_id=$1"/run_id=* 2>/dev/null | head -1)
  [ -n "$dir" ] && find "$dir" -name '*.log' -print0 | xargs -0 -r cat
}
trigger() {  # $1: DAG id, $2: conf; runs it through the scheduler and waits; prints the run id
  local id; id="manual__demo_$1_$(date +%s%N)"
  airflow dags trigger "$1" --run-id "$id" --conf "$2" >/dev/null 2>&1 || { echo "could not trigger $1" >&2; return 1; }
  echo "$id"
}
idle() {  # $1: DAG ids (comma-separated), $2: since (epoch s): wait until they have no queued or running run
  mlscale wait-idle --dags "$1" --since "$2" --settle 10 --timeout 1800 2>/dev/null | tail -4 | sed 's/^/   /' \
    || status=1
}
run_and_show() {  # $1: DAG id, $2: conf, $3: grep -o pattern, $4: lines (default 1): trigger, wait, show its log lines
  local since run; since=$(date +%s)
  run="$(trigger "$1" "$2")" || return 0
  idle "$1" "$since"
  run_log "$1" "$run" | grep -o "$3" | cut -c1-300 | head -"${4:-1}" | sed 's/^/   /' || true
}
alias_of() {  # $1: alias: the registry version it points to (empty when none)
  python -c "import sys; from mlscale.airflow.cli.lake_root import lake_for_cli; from mlscale.training import registry; \
lake = lake_for_cli(None); v = registry.alias_version(registry.client_for(registry.RegistryConfig.for_lake(lake)), \
'$MODEL', sys.argv[1]); print(v or '')" "$1" 2>/dev/null | tail -1
}
trained() {  # $1: algorithm, $2: since (epoch s): waits for train_model and prints the new version's holdout
  idle train_model "$2"
  newest_logs train_model >"$AIRFLOW_HOME/train_model-$1.log"
  grep -o "holdout: {[^}]*}" "$AIRFLOW_HOME/train_model-$1.log" | head -1 | tr -d '\\' | sed 's/^/   /' || true
}
bias_verdict() {  # $1: version: waits for its bias report (the asset-triggered audit_bias run) and prints the verdict
  python - "$MODEL" "$1" 2>/dev/null <<'PY' | tail -1
import sys, time
from mlscale.airflow.cli.lake_root import lake_for_cli
from mlscale.governance.audit_run import bias_report_key
lake, key = lake_for_cli(None), bias_report_key(*sys.argv[1:3])
for _ in range(180):
    if lake.exists(key):
        report = lake.read_json(key)
        print(f"   bias audit of {sys.argv[1]} v{sys.argv[2]}: {report['verdict']}")
        break
    time.sleep(5)
else:
    print("   no bias report after 15 minutes: see the audit_bias run's logs")
PY
}

echo "-- unpausing the model DAGs: train_model's cron tick of $LAST_DAY 03:00 runs (XGBoost on the local Dask"
echo "   cluster, as of $TRAIN_DAY); its models_registry asset then starts audit_bias"
since=$(date +%s)
for dag in $MODEL_DAGS; do airflow dags unpause "$dag" >/dev/null 2>&1; done
trained xgboost "$since"
V1="$(alias_of challenger)"
echo "   registered version $V1 as challenger"
bias_verdict "$V1"
# a high-risk model needs a reviewer's approval; in a world this small some groups are too small to judge parity
# at a 0.5% review budget (the audit lists them): the reviewer accepts that gap explicitly, and the approval
# records it; the waiting audit_bias run then reaches the gate
mlscale approve --version "$V1" --by "demo reviewer" --accept insufficient_bias_evidence \
  --note "demo: reviewed the bias report; too few selections per group to judge parity" >/dev/null 2>&1
echo "-- approved by 'demo reviewer' ($MODEL is high risk); audit_bias's wait_for_approval sees it within a minute"
idle audit_bias "$since"
newest_logs audit_bias | grep -o "promotion gate for [^\"]*" | cut -c1-300 | head -1 | sed 's/^/   /' || true
if [ "$(alias_of champion)" != "$V1" ]; then
  # the gate checks drift against the day the model was trained for; re-run it against the newest day its
  # holdout covers, as a reviewer would from the UI
  EVAL_DAY="$(python -c "import sys; from mlscale.airflow.cli.lake_root import lake_for_cli; \
print(lake_for_cli(None).read_json(f'models/$MODEL/{sys.argv[1]}/model.json')['training_set']['last_event_day'])" \
    "$V1" 2>/dev/null | tail -1)"
  echo "-- audit_bias of version $V1 again, its gate checking drift against $EVAL_DAY"
  run_and_show audit_bias "{\"version\": \"$V1\", \"dt\": \"$EVAL_DAY\", \"approval_timeout_hours\": 0}" \
    "promotion gate for [^\"]*"
fi
echo "   champion: version $(alias_of champion)"
echo "-- train_model triggered by hand with LightGBM: the new version becomes the challenger"
since=$(date +%s)
trigger train_model "{\"dt\": \"$TRAIN_DAY\", \"algorithm\": \"lightgbm\"}" >/dev/null
trained lightgbm "$since"
V2="$(alias_of challenger)"
echo "   registered version $V2 as challenger; its audit_bias run waits for a reviewer:"
echo "   mlscale approve --version $V2 --by <your name>"
airflow dags pause train_model >/dev/null 2>&1  # a drift alert below would retrain: not in the demo

echo "-- score_batch for $LAST_DAY: the champion decides, the challenger scores in shadow"
run_and_show score_batch "{\"dt\": \"$LAST_DAY\"}" \
  "score_batch $MODEL [0-9-]* summary: [^\[\"]*\|shadow $MODEL [0-9-]*: champion[^\[\"]*" 2

echo "-- monitor_drift for $TRAIN_DAY (no drift injected) and $LAST_DAY (drift injected)"
for day in "$TRAIN_DAY" "$LAST_DAY"; do
  run_and_show monitor_drift "{\"dt\": \"$day\"}" \
    "drift $MODEL v[0-9]* on [0-9-]*: [a-z_]* ([0-9]* rows; [0-9]* of [0-9]* features drifted\|drift retrain decision for [^:]*: [a-z]* ([^)]*" 2
done
python - "$TRAIN_DAY" "$LAST_DAY" 2>/dev/null <<'PY' | tail -1
import sys
from mlscale.airflow.cli.lake_root import lake_for_cli
lake = lake_for_cli(None)
clean, shifted = (set(lake.read_json(f"reports/drift/fraud_detector/{d}/report.json")["drift"]["drifted_features"]) for d in sys.argv[1:])
print("   drifted only on the injected day:", ", ".join(sorted(shifted - clean)) or "none")
PY

echo "-- pipeline_health for $LAST_DAY: one page from ingestion to model quality"
run_and_show pipeline_health "{\"dt\": \"$LAST_DAY\"}" "attention \[[a-z]*\] [^\[\"]*" 6

echo "-- lifecycle_cleanup: a dry run (the default for manual runs), then applied"
for conf in '{}' '{"dry_run": false}'; do
  since=$(date +%s)
  trigger lifecycle_cleanup "$conf" >/dev/null
  idle lifecycle_cleanup "$since"
  mlscale lifecycle-summary 2>/dev/null | grep -v "lake root"
done

echo "-- the timeline of the $DAYS days: volume, quarantine, drift verdicts, versions, gate decisions, cost"
mlscale timeline --first "$FIRST_DAY" --last "$LAST_DAY" 2>/dev/null | tail -1 | sed "s/^/   /" || status=1

echo
echo "== what the lake holds now"
mlscale summary 2>/dev/null | grep -v "lake root"
cat <<MSG

== done in $(( $(date +%s) - started )) s
   Outputs:   data/lake/raw, data/lake/quarantine (rejected rows with reason codes), data/lake/features,
              data/lake/_feast (feature store), data/lake/training, data/lake/models, data/lake/_mlflow (registry),
              data/lake/predictions,
              data/lake/reports/{training,bias,drift,shadow,model_card,health,cost,timeline}, data/lake/_meta (run logs, plans, audit)
   Task logs: .airflow/logs/dag_id=<dag>/run_id=<run>/task_id=<task>/
   The UI:    make up   (then http://localhost:8080, user admin, password printed by make up)
MSG
exit "$status"
