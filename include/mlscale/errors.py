"""The one error trait the task layer reads: an error that no retry can fix.

Library errors for configuration, a missing day, a missing model or GPU mix :class:`NotRetryable` in next
to their usual base class. The Airflow edge (:mod:`mlscale.airflow.fail_fast`) fails such a task at once
instead of retrying it, so the on-call engineer reads the real cause minutes earlier.
"""

from __future__ import annotations


class NotRetryable(Exception):
    """Retrying cannot help (a setting to fix, a day with no data, a model that is not there)."""
