# Source this file to run Airflow commands against this project:
#   source scripts/env.sh && airflow dags test ingest_transactions 2026-11-01
# Override before sourcing: MLSCALE_LAKE_ROOT (lake root URI), AIRFLOW_HOME.
_mlscale_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export MLSCALE_HOME="$_mlscale_root"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$_mlscale_root/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$_mlscale_root/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$_mlscale_root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=120
# SQLite serialises writers: the scheduler, api-server, dag-processor, triggerer and task processes wait up to
# 30 s for the lock (the driver default is 5 s, which a busy machine exceeds: "database is locked", HTTP 500)
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db?timeout=30}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://localhost:${AIRFLOW__API__PORT}/execution/}"
export AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=10
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__LOGGING__BASE_LOG_FOLDER="$AIRFLOW_HOME/logs"
# OpenLineage (apache-airflow-providers-openlineage): every task run emits START and COMPLETE/FAIL run events
# with its input and output datasets. Locally they are appended, one JSON event per line, to
# $AIRFLOW_HOME/openlineage/events.jsonl. A deployment sets its own transport before sourcing this file, e.g.
#   AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "http", "url": "http://marquez:5000"}'  (or '{"type": "console"}')
# or AIRFLOW__OPENLINEAGE__CONFIG_PATH / AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID / OPENLINEAGE_URL;
# AIRFLOW__OPENLINEAGE__DISABLED=true switches emission off. (Re-sourcing with another AIRFLOW_HOME moves
# the default file along; a transport set by you is never replaced.)
export AIRFLOW__OPENLINEAGE__NAMESPACE="${AIRFLOW__OPENLINEAGE__NAMESPACE:-mlscale}"
if [ -z "${AIRFLOW__OPENLINEAGE__TRANSPORT:-}${AIRFLOW__OPENLINEAGE__CONFIG_PATH:-}${AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID:-}${OPENLINEAGE_URL:-}" ] \
   || { [ -n "${MLSCALE_OPENLINEAGE_FILE_TRANSPORT:-}" ] \
        && [ "${AIRFLOW__OPENLINEAGE__TRANSPORT:-}" = "$MLSCALE_OPENLINEAGE_FILE_TRANSPORT" ]; }; then
  mkdir -p "$AIRFLOW_HOME/openlineage"
  export MLSCALE_OPENLINEAGE_FILE_TRANSPORT="{\"type\": \"file\", \"log_file_path\": \"$AIRFLOW_HOME/openlineage/events.jsonl\", \"append\": true}"
  export AIRFLOW__OPENLINEAGE__TRANSPORT="$MLSCALE_OPENLINEAGE_FILE_TRANSPORT"
fi
export NO_PROXY="*"   # macOS fork safety for local executors
if [ -n "${MLSCALE_LAKE_ROOT:-}" ]; then export AIRFLOW_VAR_MLSCALE_LAKE_ROOT="$MLSCALE_LAKE_ROOT"; fi
export PATH="$_mlscale_root/.venv/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"
unset _mlscale_root
