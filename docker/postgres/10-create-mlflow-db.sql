-- MLflow's backend store: a second database beside Airflow's metadata database, on the same server.
-- The postgres image runs this once, when the data volume is first initialised
-- (after `docker compose down -v`, or on a fresh machine).
CREATE DATABASE mlflow;
