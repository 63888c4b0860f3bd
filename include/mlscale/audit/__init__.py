"""Who reads sensitive data, and why: the access log, its report, and the sensitivity declaration."""

from mlscale.audit.access import (
    ACCESS_LOG_PREFIX,
    PURPOSES,
    AccessLogError,
    AccessRecord,
    Actor,
    UnknownPurpose,
    log_access,
    read_sensitive,
)
from mlscale.audit.access_report import access_report, read_access_log
from mlscale.audit.sensitivity import (
    SENSITIVE_ZONES,
    SensitivityPolicy,
    is_sensitive,
    load_policy,
    sensitive_columns,
)

__all__ = [
    "ACCESS_LOG_PREFIX", "PURPOSES", "SENSITIVE_ZONES", "AccessLogError", "AccessRecord", "Actor",
    "SensitivityPolicy", "UnknownPurpose", "access_report", "is_sensitive", "load_policy", "log_access",
    "read_access_log", "read_sensitive", "sensitive_columns",
]
