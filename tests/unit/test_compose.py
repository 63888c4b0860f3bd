"""Static checks of the docker-compose stack (docker-compose.yaml, docker/).

No Docker engine is needed: the compose file is parsed with PyYAML, interpolated the way compose does
it (every ``${VAR:-default}`` takes its default, so the checks see what `docker compose up` sees with no
.env file), and cross-checked against itself, the Dockerfiles and the repository. One optional test runs
`docker compose config` and skips where the compose plugin is not installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"

AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
PROJECT_CONNECTION_IDS = ("dask_cpu_default", "dask_gpu_default", "spark_default", "aws_default",
                          "pii_hmac_default")
# Keyword arguments that Airflow's Connection.from_json accepts.
CONNECTION_JSON_KEYS = {"conn_type", "description", "host", "login", "password", "schema", "port", "extra"}


# --------------------------------------------------------------------------------------------------
# Compose interpolation (https://docs.docker.com/reference/compose-file/interpolation/)
# --------------------------------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def interpolate(text: str, seen: dict[str, set[str | None]] | None = None) -> str:
    """``text`` as compose would expand it with an empty environment: ``${VAR:-x}``/``${VAR-x}`` give
    ``x``, ``${VAR:+x}`` gives nothing, ``$$`` gives ``$``. ``seen`` collects each variable's defaults
    (None: used without one). A ``$`` that starts no valid reference is an error, as in compose."""
    out, pos = [], 0
    for match in _REFERENCE.finditer(text):
        between = text[pos:match.start()]
        if "$" in between:
            raise InterpolationError(f"invalid interpolation in {text!r}")
        out.append(between)
        pos = match.end()
        if match["escaped"]:
            out.append("$")
            continue
        name = match["braced"] or match["plain"]
        op, arg = match["op"], match["arg"]
        if op in (":-", "-"):
            out.append(arg)
        elif op in (":?", "?"):
            raise InterpolationError(f"${{{name}}} is required ({arg}) in {text!r}")
        if seen is not None:
            seen.setdefault(name, set()).add(arg if op in (":-", "-") else None)
    if "$" in text[pos:]:
        raise InterpolationError(f"invalid interpolation in {text!r}")
    out.append(text[pos:])
    return "".join(out)


def interpolate_tree(node: Any, seen: dict[str, set[str | None]] | None = None) -> Any:
    if isinstance(node, str):
        return interpolate(node, seen)
    if isinstance(node, list):
        return [interpolate_tree(item, seen) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, seen) for key, value in node.items()}
    return node


@cache
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@cache
def compose() -> dict[str, Any]:
    return interpolate_tree(raw_compose())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def profiles(name: str) -> set[str]:
    return set(services()[name].get("profiles") or [])


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def option(cmd: list[str], flag: str) -> str | None:
    """Value of ``--flag value`` or ``--flag=value`` in an argv list."""
    for index, part in enumerate(cmd):
        if part == flag and index + 1 < len(cmd):
            return cmd[index + 1]
        if part.startswith(flag + "="):
            return part.split("=", 1)[1]
    return None


def host_of(value: str) -> str:
    """The host in ``http://minio:9000``, ``spark://spark-master``, ``tcp://x:8786`` or a bare name."""
    if "://" in value:
        return urlparse(value).hostname or ""
    return value.split(":", 1)[0]


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if match:
            pins[match[1].lower()] = match[2]
    return pins


# --------------------------------------------------------------------------------------------------
# Dockerfile / .dockerignore helpers
# --------------------------------------------------------------------------------------------------

def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        if current and line.lstrip().startswith("#"):  # comment inside a continued instruction
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    pairs = []
    for instruction in logical:
        keyword, _, rest = instruction.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def from_images(path: Path) -> list[str]:
    """Images of the FROM lines, with ARG defaults declared before them substituted."""
    args: dict[str, str] = {}
    images: list[str] = []
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "ARG" and "=" in rest and not images:
            name, value = rest.split("=", 1)
            args[name.strip()] = value.strip().strip('"')
        elif keyword == "FROM":
            image = [part for part in rest.split() if not part.startswith("--")][0]
            images.append(re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), image))
    return images


def copy_sources(path: Path) -> list[str]:
    """Build-context sources of COPY/ADD instructions (not those copied from another stage)."""
    sources = []
    for keyword, rest in dockerfile_instructions(path):
        if keyword not in ("COPY", "ADD"):
            continue
        parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [part for part in parts if part.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        paths = [part for part in parts if not part.startswith("--")]
        sources += paths[:-1]
    return sources


def dockerignore_rules(dockerfile: Path) -> list[tuple[bool, str]]:
    """(excluded?, pattern) rules of the Dockerfile-specific ignore file BuildKit uses, else the root one."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), ROOT / ".dockerignore"):
        if candidate.is_file():
            rules = []
            for line in candidate.read_text().splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                negated = line.startswith("!")
                pattern = line.lstrip("!").strip().strip("/")
                rules.append((not negated, pattern))
            return rules
    return []


def ignored(rules: list[tuple[bool, str]], path: str) -> bool:
    """Whether the build context leaves ``path`` out: the last rule matching it or a parent wins."""
    path = path.strip("/")
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for excluded, pattern in rules:
        patterns = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        if any(fnmatch.fnmatchcase(candidate, p) for candidate in candidates for p in patterns):
            verdict = excluded
    return verdict


def builds() -> dict[str, dict[str, Any]]:
    """Service name -> build section as a dict (context, dockerfile)."""
    out = {}
    for name, service in services().items():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        out[name] = {"context": build.get("context", "."), "dockerfile": build.get("dockerfile", "Dockerfile")}
    return out


def dockerfiles() -> set[Path]:
    return {(ROOT / b["context"] / b["dockerfile"]).resolve() for b in builds().values()}


# --------------------------------------------------------------------------------------------------
# The services
# --------------------------------------------------------------------------------------------------

def test_stack_has_the_expected_services():
    expected = {"postgres", "redis", "minio", "minio-init", "airflow-init", *AIRFLOW_SERVICES,
                "dask-scheduler", "dask-worker", "dask-scheduler-gpu", "dask-worker-gpu",
                "spark-master", "spark-worker", "mlflow"}
    assert expected <= set(services()), f"missing: {sorted(expected - set(services()))}"


def test_every_service_has_an_image_or_a_build():
    for name, service in services().items():
        assert service.get("image") or service.get("build"), f"{name} has neither image nor build"


def test_gpu_services_are_only_in_the_gpu_profile():
    gpu = {name for name in services() if profiles(name)}
    assert gpu == {"dask-scheduler-gpu", "dask-worker-gpu"}
    assert all(profiles(name) == {"gpu"} for name in gpu)


def test_depends_on_targets_exist_and_can_be_met():
    for name, service in services().items():
        for target, condition in depends_on(service).items():
            assert target in services(), f"{name} depends on unknown service {target}"
            # A service started without a profile cannot wait for one that needs a profile.
            assert not profiles(target) or profiles(target) & profiles(name), (
                f"{name} (profiles {profiles(name) or 'none'}) depends on {target} "
                f"(profiles {profiles(target)})")
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert services()[target].get("healthcheck"), f"{name} waits for {target} to be healthy, " \
                                                              f"but {target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert is_one_shot(services()[target]), f"{target} must be a one-shot (restart: 'no')"


def test_long_running_services_have_healthchecks_and_restart():
    for name, service in services().items():
        if is_one_shot(service):
            continue
        health = service.get("healthcheck") or {}
        assert health.get("test") and not health.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name


def test_host_ports_do_not_collide_and_stay_on_localhost():
    published: dict[tuple[str, str], str] = {}
    for name, service in services().items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip, host_port, proto = port.get("host_ip", ""), str(port.get("published", "")), \
                    port.get("protocol", "tcp")
            else:
                spec, _, proto = str(port).partition("/")
                fields = spec.rsplit(":", 2)
                assert len(fields) >= 2, f"{name}: {port!r} publishes a random host port"
                host_ip, host_port = (fields[0], fields[1]) if len(fields) == 3 else ("", fields[0])
                proto = proto or "tcp"
            assert host_port, f"{name}: {port!r} has no host port"
            assert host_ip == "127.0.0.1", f"{name}: {port!r} is published beyond localhost"
            key = (host_port, proto)
            assert key not in published, f"host port {host_port} used by {published[key]} and {name}"
            published[key] = name
    assert published[("8080", "tcp")] == "airflow-api-server"


def test_every_variable_has_a_default_used_consistently():
    seen: dict[str, set[str | None]] = {}
    interpolate_tree(raw_compose(), seen)
    no_default = sorted(name for name, defaults in seen.items() if None in defaults)
    assert not no_default, f"variables without a default (the stack would need a .env file): {no_default}"
    inconsistent = {name: defaults for name, defaults in seen.items() if len(defaults) > 1}
    assert not inconsistent, f"variables with different defaults in different places: {inconsistent}"
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MLSCALE_PII_KEY"} <= set(seen)


def test_interpolation_helper_follows_compose_rules():
    assert interpolate("a${X:-d}b") == "adb"
    assert interpolate("${X-d}") == "d"
    assert interpolate("${X:+alt}$Y") == ""
    assert interpolate("$${HOSTNAME} $$") == "${HOSTNAME} $"
    with pytest.raises(InterpolationError):
        interpolate("cost: 5$")
    with pytest.raises(InterpolationError):
        interpolate("${X:?must be set}")


# --------------------------------------------------------------------------------------------------
# Airflow
# --------------------------------------------------------------------------------------------------

def airflow_env() -> dict[str, str]:
    return environment(services()["airflow-scheduler"])


def connections() -> dict[str, dict[str, Any]]:
    """conn_id -> the parsed JSON of its AIRFLOW_CONN_* variable."""
    out = {}
    for key, value in airflow_env().items():
        if key.startswith("AIRFLOW_CONN_"):
            out[key.removeprefix("AIRFLOW_CONN_").lower()] = json.loads(value)
    return out


def test_airflow_services_share_one_configuration():
    reference = services()["airflow-scheduler"]
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = services()[name]
        assert environment(service) == environment(reference), f"{name} has a different environment"
        assert service.get("image") == reference.get("image") and service.get("build") == reference.get("build")
        assert service.get("volumes") == reference.get("volumes"), f"{name} mounts other paths"


def test_airflow_core_settings():
    env = airflow_env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    db = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert db.scheme == "postgresql+psycopg2" and db.hostname == "postgres" and db.path == "/airflow"
    postgres_env = environment(services()["postgres"])
    assert db.username == postgres_env["POSTGRES_USER"] and db.password == postgres_env["POSTGRES_PASSWORD"]
    execution = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution.hostname == "airflow-api-server" and execution.port == 8080
    assert execution.path == "/execution/"
    assert command(services()["airflow-api-server"]) == ["api-server"]


def test_airflow_secrets_come_from_the_environment_with_valid_local_defaults():
    raw_env = raw_compose()["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:-[^}]+\}", raw_env[key]), f"{key} is not taken from the environment"
    assert "${MLSCALE_PII_KEY:-" in raw_env["AIRFLOW_CONN_PII_HMAC_DEFAULT"]
    fernet = pytest.importorskip("cryptography.fernet")
    fernet.Fernet(airflow_env()["AIRFLOW__CORE__FERNET_KEY"].encode())  # raises on a malformed key


def test_airflow_components_wait_for_postgres_and_init_and_have_healthchecks():
    commands = {"airflow-api-server": "api-server", "airflow-scheduler": "scheduler",
                "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
    for name, cmd in commands.items():
        service = services()[name]
        assert command(service) == [cmd]
        assert depends_on(service) == {"postgres": "service_healthy",
                                       "airflow-init": "service_completed_successfully"}, name
        assert service["healthcheck"]["test"], name
    assert environment(services()["airflow-scheduler"])["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "8974/health" in " ".join(services()["airflow-scheduler"]["healthcheck"]["test"])


def test_airflow_init_migrates_then_applies_the_project_settings():
    init = services()["airflow-init"]
    assert depends_on(init) == {"postgres": "service_healthy"}
    script = " ".join(command(init))
    assert "airflow db migrate" in script
    match = re.search(r"(?<![\w.-])mlscale apply-settings (\S+)", script)  # the installed console script
    assert match, f"airflow-init does not apply the settings: {script!r}"
    assert script.index("airflow db migrate") < match.start()
    settings_path = match[1] if match[1].startswith("/") else f"/opt/airflow/{match[1]}"
    mounts = {target: source for source, target in bind_mounts(init)}
    assert settings_path in mounts, f"{settings_path} is not mounted into airflow-init"
    assert (ROOT / mounts[settings_path]).is_file()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mlscale"] == "mlscale.airflow.cli:main"


def test_connections_are_valid_airflow_json():
    conns = connections()
    assert conns, "no AIRFLOW_CONN_* variables"
    for conn_id, conn in conns.items():
        assert set(conn) <= CONNECTION_JSON_KEYS, f"{conn_id}: unknown keys {set(conn) - CONNECTION_JSON_KEYS}"
        assert conn.get("conn_type"), f"{conn_id} has no conn_type"
        if "port" in conn:
            assert isinstance(conn["port"], int), f"{conn_id}: port {conn['port']!r}"
        if "extra" in conn:
            assert isinstance(conn["extra"], dict), f"{conn_id}: extra must be a JSON object"


def test_the_connections_the_project_uses_are_configured():
    conns = connections()
    missing = [conn_id for conn_id in PROJECT_CONNECTION_IDS if conn_id not in conns]
    assert not missing, f"connections used by the DAGs but not configured: {missing}"
    assert conns["dask_cpu_default"]["conn_type"] == conns["dask_gpu_default"]["conn_type"] == "dask"
    assert conns["dask_gpu_default"]["extra"]["gpu"] is True
    assert conns["aws_default"]["extra"]["region_name"]
    assert conns["pii_hmac_default"]["password"], "the pseudonymisation key is empty"
    assert airflow_env()["AIRFLOW_VAR_MLSCALE_LAKE_ROOT"].startswith("s3://")


def test_connection_hosts_are_services_of_this_stack():
    conns = connections()
    checked = 0
    for conn_id, conn in conns.items():
        hosts = [conn["host"]] if conn.get("host") else []
        if isinstance(conn.get("extra"), dict) and conn["extra"].get("endpoint_url"):
            hosts.append(conn["extra"]["endpoint_url"])
        for value in hosts:
            host = host_of(value)
            assert host in services(), f"{conn_id}: host {host!r} ({value}) is not a service"
            checked += 1
            if conn_id == "dask_gpu_default":
                assert profiles(host) == {"gpu"}, f"{host} should be in the gpu profile"
            else:
                assert not profiles(host), f"{conn_id} points at {host}, which only runs with a profile"
    assert checked >= len(PROJECT_CONNECTION_IDS) - 1  # pii_hmac_default has no host
    assert host_of(conns["aws_default"]["extra"]["endpoint_url"]) == "minio"


def test_aws_connection_uses_the_minio_credentials():
    conn = connections()["aws_default"]
    minio = environment(services()["minio"])
    assert conn["login"] == minio["MINIO_ROOT_USER"] and conn["password"] == minio["MINIO_ROOT_PASSWORD"]
    assert urlparse(conn["extra"]["endpoint_url"]).port == 9000


def test_spark_connection_and_worker_point_at_the_master():
    conn = connections()["spark_default"]
    master = command(services()["spark-master"])
    assert urlparse(conn["host"]).scheme == "spark" and host_of(conn["host"]) == "spark-master"
    assert str(conn["port"]) == option(master, "--port")
    worker = command(services()["spark-worker"])
    urls = [part for part in worker if part.startswith("spark://")]
    assert urls == [f"spark://spark-master:{conn['port']}"]
    env = environment(services()["spark-worker"])
    assert env.get("SPARK_WORKER_MEMORY") and env.get("SPARK_WORKER_CORES")


# --------------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------------

def scheduler_address(worker: str) -> tuple[str, int]:
    addresses = [part for part in command(services()[worker]) if part.startswith("tcp://")]
    assert len(addresses) == 1, f"{worker} names no single scheduler address"
    parsed = urlparse(addresses[0])
    return parsed.hostname or "", parsed.port or 0


@pytest.mark.parametrize(("worker", "scheduler", "conn_id"), [
    ("dask-worker", "dask-scheduler", "dask_cpu_default"),
    ("dask-worker-gpu", "dask-scheduler-gpu", "dask_gpu_default"),
])
def test_dask_workers_point_at_their_scheduler(worker, scheduler, conn_id):
    host, port = scheduler_address(worker)
    assert host == scheduler
    assert port == int(option(command(services()[scheduler]), "--port") or 8786)
    conn = connections()[conn_id]
    assert (conn["host"], conn["port"]) == (scheduler, port)
    assert depends_on(services()[worker]) == {scheduler: "service_healthy"}
    assert profiles(worker) == profiles(scheduler)


def test_cpu_workers():
    worker = services()["dask-worker"]
    cmd = command(worker)
    assert cmd[:2] == ["dask", "worker"]
    assert option(cmd, "--nthreads") == "2" and option(cmd, "--memory-limit") == "4GiB"
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker  # replicas need generated names


def test_gpu_worker_offers_the_gpu_resource_and_reserves_a_gpu():
    worker = services()["dask-worker-gpu"]
    cmd = command(worker)
    assert cmd[:3] == ["dask", "cuda", "worker"]
    assert option(cmd, "--resources") == "GPU=1"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_dask_client_scheduler_and_workers_share_one_image():
    """Dask needs the same library versions on client (Airflow tasks), scheduler and workers."""
    b = builds()
    project = b["airflow-scheduler"]
    for name in (*AIRFLOW_SERVICES, "airflow-init", "dask-scheduler", "dask-worker", "spark-master",
                 "spark-worker", "mlflow"):
        assert b.get(name) == project, f"{name} is not built from the project image"
        assert services()[name]["image"] == services()["airflow-scheduler"]["image"], name
    assert b["dask-scheduler-gpu"] == b["dask-worker-gpu"]
    assert b["dask-worker-gpu"]["dockerfile"] == "docker/dask-gpu.Dockerfile"
    assert services()["dask-scheduler-gpu"]["image"] == services()["dask-worker-gpu"]["image"]


def test_non_airflow_services_of_the_project_image_bypass_the_airflow_entrypoint():
    # The airflow image's entrypoint would run `airflow dask ...`.
    for name in ("dask-scheduler", "dask-worker", "spark-master", "spark-worker", "mlflow"):
        entrypoint = services()[name].get("entrypoint")
        assert entrypoint and "/entrypoint" not in entrypoint, name


# --------------------------------------------------------------------------------------------------
# MinIO, MLflow, storage
# --------------------------------------------------------------------------------------------------

def test_the_lake_bucket_is_created_with_object_lock():
    bucket = urlparse(airflow_env()["AIRFLOW_VAR_MLSCALE_LAKE_ROOT"]).hostname
    init = services()["minio-init"]
    assert environment(init)["LAKE_BUCKET"] == bucket
    assert depends_on(init) == {"minio": "service_healthy"}
    scripts = [ROOT / source for source, _ in bind_mounts(init)]
    assert scripts, "minio-init mounts no script"
    text = "\n".join(path.read_text() for path in scripts)
    mb = [line for line in text.splitlines() if re.match(r"\s*mc mb ", line)]
    assert mb and "--ignore-existing" in mb[0] and "--with-lock" in mb[0]
    assert re.search(r"mc version enable", text)
    mlflow = command(services()["mlflow"])
    assert urlparse(option(mlflow, "--artifacts-destination")).hostname == bucket


def test_minio_init_script_is_valid_sh():
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh")
    result = subprocess.run([sh, "-n", str(ROOT / "docker" / "minio-init.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_mlflow_backend_database_is_created_and_reachable():
    mlflow = services()["mlflow"]
    cmd = command(mlflow)
    assert cmd[:2] == ["mlflow", "server"]
    store = urlparse(option(cmd, "--backend-store-uri"))
    assert store.scheme == "postgresql+psycopg2" and store.hostname == "postgres"
    database = store.path.lstrip("/")
    assert database and database != "airflow", "MLflow needs its own database"
    init_sql = [ROOT / source for source, target in bind_mounts(services()["postgres"])
                if target.startswith("/docker-entrypoint-initdb.d/")]
    assert any(re.search(rf"CREATE DATABASE\s+{database}\b", p.read_text(), re.I) for p in init_sql)
    env = environment(mlflow)
    assert host_of(env["MLFLOW_S3_ENDPOINT_URL"]) == "minio" and env["AWS_ACCESS_KEY_ID"]
    assert depends_on(mlflow) == {"postgres": "service_healthy", "minio-init": "service_completed_successfully"}
    # MLflow's Host-header guard must let the other containers in as `mlflow:<port>`.
    allowed = option(cmd, "--allowed-hosts") or ""
    assert any(fnmatch.fnmatchcase(f"mlflow:{option(cmd, '--port')}", pattern) for pattern in allowed.split(","))
    conn = connections()["mlflow_default"]
    assert host_of(conn["host"]) == "mlflow" and str(conn["port"]) == option(cmd, "--port")


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of a service's bind mounts, in short or long syntax."""
    out = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                out.append((volume["source"], volume["target"]))
            continue
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/", "~")):
            out.append((source, rest.split(":", 1)[0]))
    return out


def named_volumes(service: dict[str, Any]) -> list[str]:
    out = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "volume":
                out.append(volume["source"])
            continue
        source, sep, _ = str(volume).partition(":")
        if sep and not source.startswith((".", "/", "~")):
            out.append(source)
    return out


def test_bind_mounted_host_paths_exist_in_the_repository():
    for name, service in services().items():
        for source, target in bind_mounts(service):
            assert not source.startswith(("/", "~")), f"{name}: {source} is outside the repository"
            path = (ROOT / source).resolve()
            assert path.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
            # A missing path would be created by Docker as an empty directory, even for a file mount.
            assert path.exists(), f"{name}: {source} (-> {target}) does not exist"
    mounts = dict(bind_mounts(services()["airflow-scheduler"]))
    for directory in ("dags", "plugins", "include"):
        assert mounts.get(f"./{directory}") == f"/opt/airflow/{directory}", f"./{directory} is not mounted"
        assert (ROOT / directory).is_dir(), f"./{directory} is not a directory"
    assert (ROOT / "airflow_settings.yaml").is_file()
    assert mounts.get("./airflow_settings.yaml") == "/opt/airflow/airflow_settings.yaml"


def test_named_volumes_are_declared():
    declared = set(compose().get("volumes") or {})
    for name, service in services().items():
        for volume in named_volumes(service):
            assert volume in declared, f"{name} uses undeclared volume {volume}"
    assert {"postgres-data", "minio-data"} <= declared


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------

def test_build_contexts_and_dockerfiles_exist():
    for name, build in builds().items():
        context = ROOT / build["context"]
        assert context.is_dir(), f"{name}: build context {context} is missing"
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} is missing"
    assert {path.name for path in dockerfiles()} == {"Dockerfile", "dask-gpu.Dockerfile"}


def test_dockerfile_copy_sources_exist_and_reach_the_build_context():
    assert {(ROOT / b["context"]).resolve() for b in builds().values()} == {ROOT}, "contexts other than the root"
    context = ROOT
    for dockerfile in dockerfiles():
        sources = copy_sources(dockerfile)
        for required in ("requirements.txt", "pyproject.toml", "include/"):
            assert required in sources, f"{dockerfile.name} does not COPY {required}"
        rules = dockerignore_rules(dockerfile)
        for source in sources:
            matches = list(context.glob(source.rstrip("/"))) if any(c in source for c in "*?[") \
                else [context / source]
            assert matches and all(path.exists() for path in matches), f"{dockerfile.name}: COPY {source} missing"
            assert not ignored(rules, source), f"{dockerfile.name}: COPY {source} is .dockerignored"
        assert not ignored(rules, "include/mlscale/__init__.py")
        # Keep the context small: never send the virtualenv or local data.
        assert ignored(rules, ".venv/bin/python") and ignored(rules, "data/lake/x.parquet")
        assert ignored(rules, "include/mlscale/__pycache__/x.pyc")


def test_dockerignore_helper():
    rules = [(True, "*"), (False, "include"), (True, "**/__pycache__")]
    assert ignored(rules, ".venv/lib/x.py") and ignored(rules, "README.md")
    assert not ignored(rules, "include/mlscale/a.py")
    assert ignored(rules, "include/mlscale/__pycache__/a.pyc")


def test_airflow_image_matches_the_lock_and_python_311():
    builds_by_file = {b["dockerfile"]: b for b in builds().values()}
    dockerfile = ROOT / builds_by_file["docker/Dockerfile"]["context"] / "docker/Dockerfile"
    images = from_images(dockerfile)
    assert len(images) == 1
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\w.]+)-python(?P<python>\d+\.\d+)", images[0])
    assert match, f"unexpected base image {images[0]}"
    assert match["airflow"] == lock_pins()["apache-airflow"], "image tag and the lock's apache-airflow differ"
    assert match["python"] == "3.11"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    specifiers = pytest.importorskip("packaging.specifiers")
    assert "3.11" in specifiers.SpecifierSet(requires), f"pyproject requires-python {requires}"


def test_gpu_image_uses_python_311_cuda_and_the_lock():
    path = ROOT / "docker" / "dask-gpu.Dockerfile"
    images = from_images(path)
    assert any(image.startswith("nvidia/cuda:") for image in images), images
    text = path.read_text()
    assert re.search(r"^ARG PYTHON_VERSION=3\.11\s*$", text, re.M)
    assert "requirements.txt" in text and "dask-cuda" in text and "check_lock.py" in text


def test_images_verify_the_lock_at_build_time():
    for dockerfile in dockerfiles():
        runs = " ".join(rest for keyword, rest in dockerfile_instructions(dockerfile) if keyword == "RUN")
        assert re.search(r"check_lock\.py \S*requirements\.txt", runs), f"{dockerfile.name} skips check_lock"
        # pyspark is installed after pyspark-client, which ships the same module.
        assert "^pyspark==" in runs


def run_check_lock(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    lock = tmp_path / "requirements.txt"
    lock.write_text("\n".join(lines) + "\n")
    return subprocess.run([sys.executable, str(ROOT / "docker" / "check_lock.py"), str(lock)],
                          capture_output=True, text=True, timeout=120)


def test_check_lock_accepts_installed_pins_and_rejects_others(tmp_path):
    from importlib.metadata import version

    installed = version("pyyaml")
    ok = run_check_lock(tmp_path, ["# comment", f"pyyaml=={installed}", "    # via -r requirements.in"])
    assert ok.returncode == 0, ok.stderr
    wrong = run_check_lock(tmp_path, [f"pyyaml=={installed}.999"])
    assert wrong.returncode == 1 and "pyyaml" in wrong.stderr
    missing = run_check_lock(tmp_path, ["surely-not-installed-mlscale-pkg==1.0"])
    assert missing.returncode == 1 and "not installed" in missing.stderr


# --------------------------------------------------------------------------------------------------
# Optional: compose's own validation, where the compose plugin exists (no engine needed).
# --------------------------------------------------------------------------------------------------

def test_docker_compose_config_validates():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin not installed")
    for extra in ([], ["--profile", "gpu"]):
        result = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), *extra, "config", "--quiet"],
                                capture_output=True, text=True, cwd=ROOT, timeout=120)
        if result.returncode != 0 and re.search(r"Cannot connect to the Docker daemon|docker daemon",
                                                result.stderr, re.I):
            pytest.skip("docker compose config needs an engine here")
        assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------------
# Parity with `make stack` (scripts/stack.sh): the same topology and the same settings, so neither rots
# --------------------------------------------------------------------------------------------------

#: compose service -> the process `make stack` runs for it (Spark: `make stack` keeps spark_default's local[*])
STACK_PROCESS = {"postgres": "postgres", "redis": "redis", "minio": "s3", "mlflow": "mlflow",
                 "dask-scheduler": "dask-scheduler", "dask-worker": "dask-workers", "serving": "serving",
                 "otel-collector": "otel-collector", **{name: name for name in AIRFLOW_SERVICES}}
NOT_IN_MAKE_STACK = {"spark-master", "spark-worker"}


def _stack_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "STACK_DIR": str(tmp_path / "stack")}
    subprocess.run(["bash", "scripts/stack.sh", "env"], cwd=ROOT, env=env, check=True, capture_output=True)
    out = subprocess.run(["bash", "-c", f"env -i bash -c 'source {tmp_path}/stack/env.sh && env -0'"],
                         capture_output=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.decode().split("\0") if "=" in line)


def test_make_stack_runs_what_compose_runs():
    started = re.search(r"local order=\(([^)]*)\)", (ROOT / "scripts/stack.sh").read_text())
    assert started, "scripts/stack.sh lists the processes it stops in `local order=(...)`"
    processes = set(started.group(1).split())
    running = {name for name, service in services().items() if not is_one_shot(service) and not profiles(name)}
    assert running - NOT_IN_MAKE_STACK == set(STACK_PROCESS), "a compose service without a `make stack` process"
    assert {STACK_PROCESS[name] for name in running - NOT_IN_MAKE_STACK} == processes


def test_make_stack_sets_the_connections_and_variables_compose_sets(tmp_path):
    stack = _stack_env(tmp_path)
    compose = airflow_env()
    settings = {k for k in stack if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    assert settings, "scripts/stack.sh env wrote no connections or Variables"
    assert not settings - set(compose), f"set by make stack only: {sorted(settings - set(compose))}"
    from mlscale.settings import VARIABLES

    for variable in VARIABLES.values():  # the platform settings a deployment must decide
        name = f"AIRFLOW_VAR_{variable.upper()}"
        if name in compose or name in stack:
            assert (name in compose) == (name in stack), f"{name}: set by only one of compose and make stack"
    for name in settings & {k for k in compose if k.startswith("AIRFLOW_CONN_")}:
        ours, theirs = json.loads(stack[name]), json.loads(compose[name])
        assert ours["conn_type"] == theirs["conn_type"], name
    assert stack["AIRFLOW_VAR_MLSCALE_LAKE_ROOT"].split("/")[0] == compose["AIRFLOW_VAR_MLSCALE_LAKE_ROOT"].split("/")[0]
    assert stack["AIRFLOW_VAR_MLSCALE_FEAST_ONLINE_STORE"] == compose["AIRFLOW_VAR_MLSCALE_FEAST_ONLINE_STORE"]


def test_traces_go_to_the_collector_in_compose_and_in_make_stack(tmp_path):
    """Airflow's traces are on, and Airflow and the Dask workers export OTLP/HTTP to the collector that each
    stack runs (``python -m mlscale.tracing.collector``), with the same exporter settings in both."""
    collector = services()["otel-collector"]
    cmd = command(collector)
    assert cmd[:3] == ["python", "-m", "mlscale.tracing.collector"]
    assert option(cmd, "--host") == "0.0.0.0"
    port = option(cmd, "--port")
    out = option(cmd, "--out") or ""
    assert services()["otel-collector"]["build"] == services()["airflow-scheduler"]["build"]
    assert "/entrypoint" not in (collector.get("entrypoint") or [])
    # the output file is on a volume the airflow user can write (the image's /opt/airflow/logs)
    assert any(out.startswith(f"{target}/") for source, target in
               (str(v).split(":")[:2] for v in collector["volumes"]) if source in compose()["volumes"])
    assert f"localhost:{port}/health" in " ".join(collector["healthcheck"]["test"])
    for name in ("airflow-scheduler", "dask-worker"):
        env = environment(services()[name])
        endpoint = urlparse(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert (endpoint.hostname, str(endpoint.port)) == ("otel-collector", port), name
        assert env["OTEL_TRACES_EXPORTER"] == "otlp_proto_http", name
    assert airflow_env()["AIRFLOW__TRACES__OTEL_ON"].lower() == "true"

    stack = _stack_env(tmp_path)
    assert stack["AIRFLOW__TRACES__OTEL_ON"].lower() == "true"
    assert stack["OTEL_TRACES_EXPORTER"] == airflow_env()["OTEL_TRACES_EXPORTER"]
    assert stack["OTEL_SERVICE_NAME"] == airflow_env()["OTEL_SERVICE_NAME"]
    script = (ROOT / "scripts/stack.sh").read_text()
    started = re.search(r"start otel-collector (.*?)\n(?!\s+--)", script, re.S)
    assert started, "scripts/stack.sh does not start the collector"
    stack_cmd = shlex.split(started.group(1).replace("\\\n", " "))
    assert stack_cmd[1:3] == ["-m", "mlscale.tracing.collector"]
    assert option(stack_cmd, "--port") == "$OTEL_PORT" and option(stack_cmd, "--out") == "$STACK/traces/spans.jsonl"
    offset = re.search(r"^OTEL_PORT=\$\(\(BASE \+ (\d+)\)\)", script, re.M)
    assert offset, "scripts/stack.sh sets no OTEL_PORT"
    endpoint = urlparse(stack["OTEL_EXPORTER_OTLP_ENDPOINT"])
    base = int(os.environ.get("STACK_PORT_BASE") or 55400)
    assert endpoint.hostname == "127.0.0.1" and endpoint.port == base + int(offset.group(1))
    assert stack["STACK_TRACES"] == f"{tmp_path}/stack/traces/spans.jsonl"
