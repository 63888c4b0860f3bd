"""Image build check: every package pinned in the lock is installed at exactly its pinned version.

Usage: python check_lock.py requirements.txt

The Airflow tasks (the Dask client), the Dask scheduler and the Dask workers must run the same library
versions, and so must the Spark driver and executors: an image whose packages drifted from the lock
fails here, at build time, instead of with an obscure serialisation error at run time. pyspark gets an
extra check because pyspark-client ships the same `pyspark` module: the module and the jars must both be
those of the pinned pyspark.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(?:;(.*))?$")


def read_pins(lock: Path) -> dict[str, str]:
    """``name==version`` lines of a pip/uv lock; lines whose environment marker is false are skipped."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line.strip())
        if not match:
            continue
        name, pinned, marker = match.groups()
        if marker:
            from packaging.markers import Marker

            if not Marker(marker.strip()).evaluate():
                continue
        pins[name] = pinned
    return pins


def same_version(have: str, want: str) -> bool:
    try:
        from packaging.version import Version

        return Version(have) == Version(want)
    except Exception:  # no packaging, or a version it cannot parse: compare the text
        return have == want


def pyspark_problems(want: str) -> list[str]:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return ["pyspark: the module cannot be found"]
    home = Path(next(iter(spec.submodule_search_locations)))
    problems = []
    found = re.search(r"__version__[^=]*=\s*['\"]([^'\"]+)", (home / "version.py").read_text())
    if not found or not same_version(found.group(1), want):
        problems.append(f"pyspark: the module is {found.group(1) if found else '?'} (pyspark-client "
                        f"overwrote it?), the lock pins {want}")
    if not list((home / "jars").glob(f"spark-core_*-{want}.jar")):
        problems.append(f"pyspark: no spark-core jar of version {want} in {home / 'jars'}")
    return problems


def check(lock: Path) -> list[str]:
    pins = read_pins(lock)
    problems = []
    for name, want in sorted(pins.items()):
        try:
            have = version(name)
        except PackageNotFoundError:
            problems.append(f"{name}: not installed, the lock pins {want}")
            continue
        if not same_version(have, want):
            problems.append(f"{name}: {have} is installed, the lock pins {want}")
    if "pyspark" in pins:
        problems += pyspark_problems(pins["pyspark"])
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    lock = Path(argv[1])
    problems = check(lock)
    for problem in problems:
        print(f"check_lock: {problem}", file=sys.stderr)
    if problems:
        print(f"check_lock: {len(problems)} package(s) differ from {lock}", file=sys.stderr)
        return 1
    print(f"check_lock: all {len(read_pins(lock))} pinned packages match {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
