# syntax=docker/dockerfile:1
#
# The GPU Dask image: CUDA runtime + Python 3.11 + the project lock + dask-cuda + mlscale.
# Runs the dask-scheduler-gpu and dask-worker-gpu services (docker compose --profile gpu up -d); the
# host needs an NVIDIA driver and the NVIDIA Container Toolkit.
#
# Same Python minor version and the same lock as docker/Dockerfile, so the Airflow tasks (the Dask
# client) and these workers exchange pickles safely. By hand:
#   docker build -f docker/dask-gpu.Dockerfile -t mlscale/dask-gpu:local .

ARG CUDA_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04
ARG UV_VERSION=0.13.9

# uv installs a standalone CPython 3.11 (Ubuntu 22.04 only ships 3.10) and the lock.
FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM ${CUDA_IMAGE}

ARG PYTHON_VERSION=3.11
# dask-cuda follows the RAPIDS release train (YY.MM); see the note on rapids-dask-dependency below.
ARG DASK_CUDA_VERSION=26.10.0

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH}

# curl: the healthchecks in docker-compose.yaml; procps: `ps` for debugging workers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl procps \
    && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /uvx /usr/local/bin/
RUN uv python install "${PYTHON_VERSION}" \
    && uv venv --python "${PYTHON_VERSION}" "${VIRTUAL_ENV}"

COPY requirements.txt docker/check_lock.py /tmp/mlscale/

# The full lock, as in docker/Dockerfile (pyspark last: pyspark-client ships the same module).
RUN --mount=type=cache,target=/root/.cache/uv \
    grep -vE '^pyspark==' /tmp/mlscale/requirements.txt > /tmp/mlscale/requirements-without-pyspark.txt \
    && uv pip install -r /tmp/mlscale/requirements-without-pyspark.txt \
    && uv pip install --no-deps "$(grep -E '^pyspark==' /tmp/mlscale/requirements.txt)"

# dask-cuda without its dependency rapids-dask-dependency: that package pins dask/distributed to the
# version of its RAPIDS release (26.10 pins dask 2026.7.1), and installing it would move these workers
# off the lock's dask/distributed, away from the scheduler and the client. Its other dependencies are
# installed explicitly, constrained by the lock so they cannot move a locked package either.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps "dask-cuda==${DASK_CUDA_VERSION}" \
    && uv pip install --constraint /tmp/mlscale/requirements.txt \
        "cuda-core[cu12]>=0.5.1,<2" "nvidia-ml-py>=12" "click>=8.1" "zict>=2.0.0"

# Same layout and user id/group as the Airflow image (uid 50000, gid 0).
RUN useradd --uid 50000 --gid 0 --create-home --home-dir /home/mlscale mlscale
WORKDIR /opt/airflow
COPY --chown=50000:0 pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=50000:0 include/ /opt/airflow/include/
RUN uv pip install --no-deps -e /opt/airflow \
    && chown -R 50000:0 /opt/airflow \
    && python /tmp/mlscale/check_lock.py /tmp/mlscale/requirements.txt \
    && python -c "import mlscale; from importlib.metadata import entry_points; \
assert 'cuda' in {e.name for e in entry_points(group='dask_cli')}, 'dask cuda CLI missing'"

ENV PYTHONPATH=/opt/airflow/include \
    MLSCALE_HOME=/opt/airflow
USER mlscale

# The CUDA base image's entrypoint stays; docker-compose.yaml gives the command.
CMD ["dask", "cuda", "worker", "--help"]
