"""The library's layering, where import-linter (``[tool.importlinter]`` in pyproject.toml) cannot say it alone:
nothing under include/ imports a DAG file, and the "only mlscale.airflow imports Airflow" contract lists every
top-level module of mlscale (a new package is covered the day it is added)."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "include"
PACKAGE = INCLUDE / "mlscale"
AIRFLOW_CONTRACT = "airflow-only-in-mlscale-airflow"


def dag_module_names() -> set[str]:
    """What a DAG file could be imported as: ``dags`` itself, or a file's stem (Airflow puts dags/ on
    sys.path)."""
    return {"dags"} | {path.stem for path in (ROOT / "dags").glob("*.py") if path.stem != "__init__"}


def absolute_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in a module, at any depth (function-level ones included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def library_files() -> list[Path]:
    return sorted(path for path in INCLUDE.rglob("*.py") if ".egg-info" not in str(path))


def test_the_library_does_not_import_dag_files() -> None:
    forbidden = dag_module_names()
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in library_files()
        for line, module in absolute_imports(ast.parse(path.read_text(), filename=str(path)))
        if module.split(".")[0] in forbidden
    ]
    assert not offences, "DAG files sit above the library and are never imported by it:\n" + "\n".join(offences)


def test_the_checker_sees_function_level_imports() -> None:
    source = "def f():\n    import dags.ingest\n    from compact_lake import dag\n"
    assert [module for _, module in absolute_imports(ast.parse(source))] == ["dags.ingest", "compact_lake"]


def test_the_airflow_contract_covers_every_top_level_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c.get("id") == AIRFLOW_CONTRACT]
    top_level = {
        f"mlscale.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert set(contract["source_modules"]) == top_level - {"mlscale.airflow"}
    assert contract["forbidden_modules"] == ["airflow"]
