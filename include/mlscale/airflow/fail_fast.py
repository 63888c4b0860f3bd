"""Fail a task at once, without retries, when the library says no retry can fix the error."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from mlscale.errors import NotRetryable

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def failing_fast() -> Iterator[None]:
    """Turn a :class:`~mlscale.errors.NotRetryable` error into ``AirflowFailException`` (no retry)."""
    try:
        yield
    except NotRetryable as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc} (not retried: fix the cause, then clear the "
                                   "task)") from exc


def fail_fast(fn: F) -> F:
    """Decorator form of :func:`failing_fast`, for ``@task`` functions (put it below ``@task``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with failing_fast():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
