# Start/stop the local Airflow services (api-server, scheduler, dag-processor, triggerer) in the background.
# Usage (after `source scripts/env.sh`): source scripts/airflow_services.sh; services_start; ...; services_stop
_svc_dir() { echo "$AIRFLOW_HOME/services"; }

services_start() {
  local dir; dir=$(_svc_dir); mkdir -p "$dir"
  services_stop >/dev/null 2>&1 || true
  for svc in api-server scheduler dag-processor triggerer; do
    setsid airflow "$svc" >"$dir/$svc.log" 2>&1 &
    echo $! >"$dir/$svc.pid"
  done
  local port="${AIRFLOW__API__PORT:-8080}" waited=0
  until curl -fsS "http://localhost:$port/api/v2/monitor/health" >/dev/null 2>&1; do
    sleep 2; waited=$((waited + 2))
    if [ "$waited" -ge 180 ]; then echo "api-server did not come up; see $dir/api-server.log" >&2; return 1; fi
  done
  echo "Airflow services up (api-server on :$port, logs in $dir)"
}

services_stop() {
  local dir pid pids="" waited=0; dir=$(_svc_dir)
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); pids="$pids $pid"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}

# Wait until the dag-processor has registered every DAG named in the arguments.
wait_for_dags() {
  local waited=0 missing
  while :; do
    missing=""
    local listed; listed=$(airflow dags list -o plain 2>/dev/null | awk '{print $1}')
    for d in "$@"; do grep -qx "$d" <<<"$listed" || missing="$missing $d"; done
    [ -z "$missing" ] && return 0
    sleep 3; waited=$((waited + 3))
    if [ "$waited" -ge 240 ]; then echo "DAGs not parsed after 240 s:$missing (see dag-processor log)" >&2; return 1; fi
  done
}
