"""Feast's own Dask computations, kept on local threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_dask() -> Iterator[None]:
    """Run Dask work on local threads with task-based shuffles, whatever client is the default."""
    import dask

    with dask.config.set({"scheduler": "threads", "dataframe.shuffle.method": "tasks"}):
        yield
