#!/usr/bin/env bash
# The production shape on this machine, as processes on loopback (the topology of docker-compose.yaml):
#   PostgreSQL (Airflow's and MLflow's database), Redis (Feast's online store), moto's S3 server (the lake,
#   bucket versioned with Object Lock and default encryption), an MLflow tracking server (runs in Postgres,
#   artifacts in the bucket), an external Dask scheduler with two workers, and Airflow's api-server,
#   scheduler, dag-processor and triggerer (LocalExecutor). The DAGs are the same: only Airflow connections and
#   Variables differ, all of them in the environment file this script writes (.stack/env.sh).
#
#   bash scripts/stack.sh up      # make stack: start what is not running, print where everything is
#   bash scripts/stack.sh down    # make stack-down: stop exactly what `up` started (by PID), say what it stopped
#   bash scripts/stack.sh status
#   bash scripts/stack.sh env     # only write .stack/env.sh (what the stack's processes and users source)
#
# Traces: an OpenTelemetry collector (python -m mlscale.tracing.collector, OTLP/HTTP) appends every span of
# Airflow (dag_run / task_run / worker.<task>) and of mlscale's stages to .stack/traces/spans.jsonl;
# `python -m mlscale.tracing.tree .stack/traces/spans.jsonl` prints them as trees.
#
# Missing Debian packages (postgresql, redis-server) are installed with apt-get. Ports: STACK_PORT_BASE + n.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
STACK="${STACK_DIR:-$ROOT/.stack}"
PIDS="$STACK/pids"
LOGS="$STACK/logs"
BASE="${STACK_PORT_BASE:-55400}"
PG_PORT=$((BASE + 32)) REDIS_PORT=$((BASE + 79)) S3_PORT=$((BASE + 90)) MLFLOW_PORT=$((BASE + 50))
DASK_PORT=$((BASE + 86)) DASK_DASHBOARD=$((BASE + 87)) AIRFLOW_PORT=$((BASE + 80)) SERVE_PORT=$((BASE + 88))
OTEL_PORT=$((BASE + 18))
BUCKET="${STACK_BUCKET:-mlscale-lake}"
S3_KEY=stack-access-key S3_SECRET=stack-secret-key
BIN="$ROOT/.venv/bin"

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return; }; done
  return 1
}

install_packages() {
  local wanted=()
  pg_bin >/dev/null || wanted+=(postgresql)
  command -v redis-server >/dev/null || wanted+=(redis-server)
  [ ${#wanted[@]} -eq 0 ] && return 0
  echo "-- installing ${wanted[*]} (apt-get)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq >"$LOGS/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${wanted[@]}" >>"$LOGS/apt.log" 2>&1 \
    || { echo "apt-get install ${wanted[*]} failed; see $LOGS/apt.log" >&2; exit 1; }
}

running() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

start() {  # $1: name, rest: command; runs it in its own session, logs to $LOGS/<name>.log
  local name=$1; shift
  if running "$name"; then echo "   $name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$PIDS/$name.pid"
  echo "   $name started (pid $!, log $LOGS/$name.log)"
}

wait_for() {  # $1: what, $2: seconds, rest: a command that succeeds once it is up
  local what=$1 limit=$2 waited=0; shift 2
  until "$@" >/dev/null 2>&1; do
    sleep 1; waited=$((waited + 1))
    if [ "$waited" -ge "$limit" ]; then echo "$what did not come up in ${limit} s; see $LOGS" >&2; exit 1; fi
  done
}

write_env() {  # the connections and Variables of this stack (and the settings every Airflow process needs)
  cat >"$STACK/env.sh" <<ENV
# Written by scripts/stack.sh: source it after scripts/env.sh to talk to the stack (airflow, mlscale, pytest).
export AIRFLOW_HOME="$STACK/airflow"
export AIRFLOW__LOGGING__BASE_LOG_FOLDER="$STACK/airflow/logs"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://mlscale@127.0.0.1:$PG_PORT/airflow"
export AIRFLOW__API__PORT=$AIRFLOW_PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$STACK/airflow/passwords.json"
export AIRFLOW_CONN_DASK_CPU_DEFAULT='{"conn_type": "dask", "host": "127.0.0.1", "port": $DASK_PORT}'
export AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "login": "$S3_KEY", "password": "$S3_SECRET", "extra": {"endpoint_url": "http://127.0.0.1:$S3_PORT", "region_name": "us-east-1"}}'
export AIRFLOW_VAR_MLSCALE_LAKE_ROOT="s3://$BUCKET/lake"
export AIRFLOW_VAR_MLSCALE_MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_PORT"
export AIRFLOW_VAR_MLSCALE_FEAST_ROOT="$STACK/feast"
export AIRFLOW_VAR_MLSCALE_FEAST_ONLINE_STORE=redis
export AIRFLOW_VAR_MLSCALE_FEAST_REDIS="127.0.0.1:$REDIS_PORT"
export AIRFLOW_VAR_MLSCALE_UI_URL="http://127.0.0.1:$AIRFLOW_PORT"
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=us-east-1
export MLFLOW_S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
export STACK_DASK_SCHEDULER="tcp://127.0.0.1:$DASK_PORT" STACK_DASK_DASHBOARD="http://127.0.0.1:$DASK_DASHBOARD"
export STACK_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" STACK_BUCKET="$BUCKET"
# OpenTelemetry: Airflow's traces ([traces] otel_on; Airflow 3.2+ reads the exporter from the standard OTEL_*
# variables) and mlscale's stage spans, over OTLP/HTTP to the stack's collector (its file: STACK_TRACES).
export AIRFLOW__TRACES__OTEL_ON=True
export OTEL_TRACES_EXPORTER=otlp_proto_http OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTEL_PORT"
export OTEL_SERVICE_NAME=airflow
export STACK_TRACES="$STACK/traces/spans.jsonl"
ENV
}

up() {
  mkdir -p "$PIDS" "$LOGS" "$STACK/airflow" "$STACK/feast"
  install_packages
  local pg; pg=$(pg_bin)
  write_env
  echo "== mlscale stack in $STACK (ports $BASE..$((BASE + 99)) on 127.0.0.1)"

  # first, so that every process after it can send its spans (stopped last by `down`, after their final flush)
  start otel-collector "$BIN/python" -m mlscale.tracing.collector --host 127.0.0.1 --port "$OTEL_PORT" \
    --out "$STACK/traces/spans.jsonl"
  wait_for "the trace collector" 60 curl -fsS "http://127.0.0.1:$OTEL_PORT/health"

  # PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as=(runuser -u postgres --)
    mkdir -p "$STACK/postgres" "$STACK/pgsocket" && chown postgres "$STACK/postgres" "$STACK/pgsocket"
    chmod 700 "$STACK/postgres"
  fi
  if [ ! -f "$STACK/postgres/PG_VERSION" ]; then
    "${as[@]}" "$pg/initdb" -D "$STACK/postgres" -U mlscale --auth=trust >"$LOGS/initdb.log" 2>&1 \
      || { echo "initdb failed; see $LOGS/initdb.log" >&2; exit 1; }
  fi
  mkdir -p "$STACK/pgsocket"
  start postgres "${as[@]}" "$pg/postgres" -D "$STACK/postgres" -p "$PG_PORT" -k "$STACK/pgsocket" \
    -c listen_addresses=127.0.0.1
  wait_for PostgreSQL 60 "$pg/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  for db in airflow mlflow; do
    "$pg/psql" -h 127.0.0.1 -p "$PG_PORT" -U mlscale -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" \
      | grep -q 1 || "$pg/createdb" -h 127.0.0.1 -p "$PG_PORT" -U mlscale "$db"
  done

  start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$STACK"
  wait_for Redis 30 redis-cli -p "$REDIS_PORT" ping

  start s3 "$BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  wait_for "the S3 server" 60 curl -fsS "http://127.0.0.1:$S3_PORT/moto-api/"
  (source "$STACK/env.sh" && "$BIN/python" - "$BUCKET" <<'PY'
import os, sys

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ["STACK_S3_ENDPOINT"])
bucket = sys.argv[1]
if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)  # versioning comes with Object Lock
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
print(f"   bucket {bucket}: versioning on, Object Lock on, default encryption AES256")
PY
  )

  (source "$STACK/env.sh" && start mlflow "$BIN/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
    --backend-store-uri "postgresql+psycopg2://mlscale@127.0.0.1:$PG_PORT/mlflow" \
    --artifacts-destination "s3://$BUCKET/mlflow")
  wait_for "the MLflow server" 120 curl -fsS "http://127.0.0.1:$MLFLOW_PORT/health"

  (source scripts/env.sh && source "$STACK/env.sh" && cd "$STACK" && export OTEL_SERVICE_NAME=mlscale \
    && start dask-scheduler "$BIN/dask" scheduler --host 127.0.0.1 --port "$DASK_PORT" \
         --dashboard-address "127.0.0.1:$DASK_DASHBOARD" \
    && start dask-workers "$BIN/dask" worker "tcp://127.0.0.1:$DASK_PORT" --host 127.0.0.1 --nworkers 2 \
         --nthreads 1 --memory-limit 3GiB --local-directory "$STACK/dask")
  wait_for "the Dask scheduler" 60 curl -fsS "http://127.0.0.1:$DASK_DASHBOARD/health"

  (
    source scripts/env.sh && source "$STACK/env.sh"
    [ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] \
      || echo "{\"admin\": \"$(head -c 12 /dev/urandom | base64 | tr -d '/+=')\"}" >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    airflow db migrate >"$LOGS/airflow-db-migrate.log" 2>&1 \
      || { echo "airflow db migrate failed; see $LOGS/airflow-db-migrate.log" >&2; exit 1; }
    mlscale apply-settings airflow_settings.yaml >"$LOGS/apply-settings.log" 2>&1 \
      || { echo "apply-settings failed; see $LOGS/apply-settings.log" >&2; exit 1; }
    for svc in api-server scheduler dag-processor triggerer; do
      start "airflow-$svc" airflow "$svc"
    done
  )
  wait_for "the Airflow api-server" 180 curl -fsS "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health"
  # online scoring: answers /live at once, /ready once a champion is registered (it re-reads the registry)
  (source scripts/env.sh && source "$STACK/env.sh" \
    && start serving mlscale serve --host 127.0.0.1 --port "$SERVE_PORT" --workers 2)
  wait_for "the scoring service" 120 curl -fsS "http://127.0.0.1:$SERVE_PORT/live"
  cat <<MSG
== up. Airflow UI http://127.0.0.1:$AIRFLOW_PORT (user admin, password in $STACK/airflow/passwords.json)
   lake s3://$BUCKET/lake on http://127.0.0.1:$S3_PORT; MLflow http://127.0.0.1:$MLFLOW_PORT;
   Dask tcp://127.0.0.1:$DASK_PORT (dashboard http://127.0.0.1:$DASK_DASHBOARD); Redis 127.0.0.1:$REDIS_PORT;
   PostgreSQL 127.0.0.1:$PG_PORT (databases airflow, mlflow); online scoring http://127.0.0.1:$SERVE_PORT/v1/score
   Traces (OTLP/HTTP http://127.0.0.1:$OTEL_PORT): $STACK/traces/spans.jsonl
     python -m mlscale.tracing.tree $STACK/traces/spans.jsonl --grep ingest
   To use it from a shell: source scripts/env.sh && source .stack/env.sh   (then airflow ..., mlscale ...)
   Stop it with: make stack-down
MSG
}

down() {
  [ -d "$PIDS" ] || { echo "nothing to stop: no stack was started here ($PIDS)"; return 0; }
  local order=(serving airflow-triggerer airflow-dag-processor airflow-scheduler airflow-api-server dask-workers dask-scheduler
               mlflow s3 redis postgres otel-collector)
  local name pid waited stopped=0
  for name in "${order[@]}"; do
    [ -f "$PIDS/$name.pid" ] || continue
    pid=$(cat "$PIDS/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      waited=0
      while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo "   stopped $name (pid $pid)"
      stopped=$((stopped + 1))
    else
      echo "   $name (pid $pid) was not running"
    fi
    rm -f "$PIDS/$name.pid"
  done
  echo "== stopped $stopped processes; data kept in $STACK (rm -rf it for a fresh stack)"
}

status() {
  local name
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || { echo "no stack started here"; return; }
    name=$(basename "$f" .pid)
    if running "$name"; then echo "   $name running (pid $(cat "$f"))"; else echo "   $name NOT running"; fi
  done
}

case "${1:-up}" in
  up) up ;;
  env) mkdir -p "$STACK" && write_env && echo "$STACK/env.sh" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
