#!/usr/bin/env bash
# Start the Airflow UI (airflow standalone) on this project. Run it with `make up`; stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
mlscale apply-settings airflow_settings.yaml >"$AIRFLOW_HOME/apply-settings.log" 2>&1 \
  || { cat "$AIRFLOW_HOME/apply-settings.log"; exit 1; }
passwords="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat <<MSG
Airflow UI: http://localhost:${AIRFLOW__API__PORT:-8080}
Log in as 'admin'; the password is in $passwords
(written on the first start: cat it in another terminal once the UI answers).
DAGs start paused: unpause one in the UI, or trigger it with its form (the 'dt' param picks the day).
MSG
[ -f "$passwords" ] && echo "Current password file: $(cat "$passwords")"
exec airflow standalone
