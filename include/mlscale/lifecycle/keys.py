"""Lake keys as the lifecycle sees them: home keys of cold files, day groups, and prefix overlap."""

from __future__ import annotations

import datetime as dt

from mlscale.lake.lake import COLD_ROOT


def home_key(key: str) -> str:
    """The key a file has in its own zone: ``cold/raw/x/dt=D/f`` → ``raw/x/dt=D/f`` (others unchanged)."""
    key = key.lstrip("/")
    return key[len(COLD_ROOT) + 1:] if key.startswith(f"{COLD_ROOT}/") else key


def overlaps(key: str, prefix: str) -> bool:
    """True when deleting ``key`` (a file, a partition or a directory) could remove anything below ``prefix``.

    Both are compared as home keys and as plain string prefixes (``raw/t/dt=2026-03`` covers the month),
    in both directions: a file inside the prefix, or a directory that contains it.
    """
    k, p = home_key(key).rstrip("/"), home_key(prefix)
    if not p:
        return True
    return k.startswith(p) or p.startswith(k + "/")


def day_of(key: str) -> dt.date | None:
    """The ``dt=`` day of a key below ``<zone>/<dataset>/dt=YYYY-MM-DD``, or None."""
    parts = home_key(key).split("/")
    if len(parts) >= 3 and parts[2].startswith("dt="):
        try:
            return dt.date.fromisoformat(parts[2][3:13])
        except ValueError:
            return None
    return None


def group_of(key: str, depth: int = 3) -> str | None:
    """The first ``depth`` components of ``key`` (``raw/x/dt=D``) when it has more, else None."""
    parts = key.split("/", depth)
    return "/".join(parts[:depth]) if len(parts) > depth else None
