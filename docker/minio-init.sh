#!/bin/sh
# One-shot set-up of the lake bucket on MinIO (the minio-init service in docker-compose.yaml).
# Idempotent: re-running it on every `docker compose up` changes nothing once the bucket exists.
#
# The bucket is created with Object Lock, which also turns versioning on: the lifecycle DAG puts legal
# holds on objects, and S3/MinIO only accept those in a bucket created with Object Lock (it cannot be
# switched on later). No default retention is set: objects stay deletable unless a hold is put on them.
set -eu

: "${MINIO_ENDPOINT:=http://minio:9000}"
: "${LAKE_BUCKET:=mlscale-lake}"
: "${MINIO_ROOT_USER:?MINIO_ROOT_USER is not set}"
: "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD is not set}"

mc alias set lake "${MINIO_ENDPOINT}" "${MINIO_ROOT_USER}" "${MINIO_ROOT_PASSWORD}" >/dev/null
mc mb --ignore-existing --with-lock "lake/${LAKE_BUCKET}"
mc version enable "lake/${LAKE_BUCKET}"

# A bucket made by an older set-up without Object Lock is kept as it is (--ignore-existing), but legal
# holds would fail on it: say so loudly instead of failing later inside a DAG run.
if ! mc retention info --default "lake/${LAKE_BUCKET}" >/dev/null 2>&1; then
    echo "WARNING: bucket ${LAKE_BUCKET} exists without Object Lock; legal holds will fail." >&2
    echo "         Recreate it: docker compose down -v (deletes the lake) && docker compose up -d" >&2
fi
echo "bucket ${LAKE_BUCKET} ready (versioning + object lock) at ${MINIO_ENDPOINT}"
